import Foundation
import TestSupport
import Testing

/// The binary users deploy, as `scripts/release.sh` links it and `scripts/test.sh` builds it for its `release`
/// phase (`$S3CANARY_RELEASE_BINARY`). Its link moves every function (a linker script puts the hot ones first),
/// packs relocations and drops exported symbols: these tests hold that it still works end to end against the real
/// RGW, and that the link did what the footprint figures in bench/REPORT.md depend on.
@Suite("release binary", .tags(.release))
struct ReleaseBinaryTests {
    static func binary() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["S3CANARY_RELEASE_BINARY"], !path.isEmpty else {
            throw HarnessError(
                "S3CANARY_RELEASE_BINARY is not set: scripts/test.sh builds it with scripts/release.sh for its release"
                    + " phase")
        }
        return path
    }

    @Test func itNeedsNoSwiftRuntimeAndKeepsItsHotCodeTogether() throws {
        let binary = try Self.binary()
        let libraries = try Harness.run("/usr/bin/ldd", [binary])
        #expect(libraries.status == 0, "\(libraries.stderr)")
        #expect(!libraries.stdout.contains("libswift") && !libraries.stdout.contains("libFoundation"))
        #expect(libraries.stdout.contains("libc.so.6"))

        // The hot code opens `.text`, and it is what scripts/release/hot-text.lds says: megabytes, not a few
        // functions (a pattern that matches nothing links silently).
        let symbols = try Harness.run("/usr/bin/nm", [binary])
        func address(_ name: String) -> UInt64? {
            symbols.stdout.split(separator: "\n").lazy.map { $0.split(separator: " ") }
                .first { $0.count == 3 && $0[2] == name }.flatMap { UInt64($0[0], radix: 16) }
        }
        let start = try #require(address("__s3canary_hot_text_start"))
        let end = try #require(address("__s3canary_hot_text_end"))
        #expect(end - start >= 4 << 20, "hot code: \(end - start) bytes")
        let sections = try Harness.run("/usr/bin/readelf", ["-SW", binary])
        let text = sections.stdout.split(separator: "\n").map { $0.split(separator: " ") }.first {
            $0.contains(".text")
        }
        let textIndex = try #require(text?.firstIndex(of: ".text"))
        #expect(UInt64(try #require(text?[textIndex + 2]), radix: 16) == start)

        // Packed relative relocations, and no exported symbols beyond what the loader needs.
        let dynamic = try Harness.run("/usr/bin/readelf", ["-dW", binary])
        #expect(dynamic.stdout.contains("(RELR)"), "\(dynamic.stdout)")
        let exported = try Harness.run("/usr/bin/nm", ["-D", "--defined-only", binary])
        #expect(exported.stdout.split(separator: "\n").count < 50, "\(exported.stdout.prefix(2000))")
    }

    @Test func itProbesRGWServesItsEndpointsAndStops() async throws {
        let binary = try Self.binary()
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("release")
        let port = try Harness.freePort()
        let config = work.appendingPathComponent("release.yaml")
        try Data(
            rgw.oneBackendConfiguration(
                name: "release", port: port, stateDir: work.appendingPathComponent("state").path
            )
            .utf8
        ).write(to: config)
        let check = try Harness.run(binary, ["check-config", "--config", config.path])
        #expect(check.status == 0, "\(check.stderr)")
        let probe = try Harness.run(binary, ["probe", "--config", config.path, "--json"])
        #expect(probe.status == 0, "\(probe.stdout)\(probe.stderr)")
        let cycles = try #require(try JSONSerialization.jsonObject(with: Data(probe.stdout.utf8)) as? [[String: Any]])
        #expect(cycles.map { $0["status"] as? String } == ["success"])

        let canary = try Daemon(binary, ["run", "--config", config.path], log: work.appendingPathComponent("run.log"))
        defer { canary.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        try await Harness.waitUntil(.seconds(30), "the release binary's first cycle") {
            try Harness.http("\(base)/readyz").status == 200
        }
        #expect(try Harness.http("\(base)/healthz").status == 200)
        let samples = Samples(try Harness.http("\(base)/metrics").body)
        #expect(samples[#"s3canary_probe_success{backend="rgw"}"#] == 1)
        #expect(samples[#"s3canary_circuit_breaker_state{backend="rgw"}"#] == 0)
        let status = try Harness.http("\(base)/status").body
        let document = try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any]
        let backends = document?["backends"] as? [[String: Any]] ?? []
        #expect(backends.map { $0["name"] as? String } == ["rgw"], "\(status.prefix(500))")
        #expect(await canary.stop() == 0)
    }
}
