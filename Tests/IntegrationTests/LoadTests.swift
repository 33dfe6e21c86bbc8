import Foundation
import TestSupport
import Testing

/// Load and soak: `/metrics` under wrk while 50 RGW backends are probed, and memory that stays flat from 1,000
/// to 10,000 cycles. Figures go to `test-output/load.txt`; the assertions are on errors and growth, not speed.
@Suite("Load and soak", .tags(.load), .serialized)
struct LoadTests {
    static func rssKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }

    static func cycles(_ base: String) throws -> Double {
        let (_, body) = try Harness.http("\(base)/metrics")
        return Samples(body).values.filter { $0.key.hasPrefix("s3canary_probes_total{") }.values.reduce(0, +)
    }

    static func append(_ line: String) {
        let url = Harness.outputDirectory.appendingPathComponent("load.txt")
        let previous = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        try? Data((previous + line + "\n").utf8).write(to: url)
    }

    @Test func metricsUnderWrkWithFiftyBackendsHasNoErrors() async throws {
        let rgw = try RGWEnvironment.load()
        let backends = (1...50).map { index in
            """
              - name: rgw-\(index)
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """
        }.joined(separator: "\n")
        let (canary, _) = try await RunningCanary.start(name: "wrk") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: load
            probe: {interval: 2s, timeout: 1s, key_prefix: .s3-canary-load/}
            backends:
            \(backends)

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(30), "every backend probed once") {
            try Harness.http("\(canary.base)/readyz").status == 200
        }
        let before = try Self.cycles(canary.base)
        let wrk = try Harness.run(
            "/usr/bin/env", ["wrk", "-t", "2", "-c", "50", "-d", "30s", "--latency", "\(canary.base)/metrics"])
        #expect(wrk.status == 0, "\(wrk.stderr)")
        let output = wrk.stdout
        let requests = output.split(separator: "\n").first { $0.contains("requests in") }.map(String.init) ?? "?"
        let p99 =
            output.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("99%") }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
        let p50 =
            output.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("50%") }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
        let after = try Self.cycles(canary.base)
        Self.append(
            """
            wrk /metrics, 50 connections, 30 s, 50 RGW backends every 2 s: \
            \(requests.trimmingCharacters(in: .whitespaces)); latency p50 \(p50), p99 \(p99); \
            \(Int(after - before)) cycles meanwhile
            """
        )
        // wrk prints these lines only when something went wrong.
        #expect(!output.contains("Socket errors"), "\(output)")
        #expect(!output.contains("Non-2xx"), "\(output)")
        #expect(requests.contains("requests in"), "\(output)")
        // The backends kept their schedule under the load: 50 backends × 30 s / 2 s ≈ 750 cycles.
        #expect(after - before >= 500, "\(after - before) cycles during the load")
        let samples = try canary.metrics()
        #expect((1...50).allSatisfy { samples[#"s3canary_circuit_breaker_state{backend="rgw-\#($0)"}"#] == 0 })
    }

    @Test func memoryStaysFlatFromOneThousandToTenThousandCycles() async throws {
        let work = try Harness.temporaryDirectory("soak")
        let port = try Harness.freePort()
        let daemon = try Daemon(
            Harness.binary,
            [
                "demo", "--listen", "127.0.0.1:\(port)", "--load-backends", "50", "--interval", "100ms", "--log-level",
                "warning",
            ],
            log: work.appendingPathComponent("demo.log")
        )
        defer { daemon.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        try await Harness.waitUntil(.seconds(60), "1,000 cycles") {
            guard daemon.isRunning else { throw HarnessError("demo exited: \(daemon.log)") }
            return try Self.cycles(base) >= 1000
        }
        let early = try #require(Self.rssKiB(daemon.pid))
        try await Harness.waitUntil(.seconds(300), "10,000 cycles") { try Self.cycles(base) >= 10_000 }
        let late = try #require(Self.rssKiB(daemon.pid))
        let growth = Double(late) / Double(early)
        Self.append(
            """
            RSS after 1,000 cycles \(early) KiB, after 10,000 cycles \(late) KiB: \
            ratio \(String(format: "%.3f", growth))
            """
        )
        #expect(growth <= 1.10, "RSS grew from \(early) KiB to \(late) KiB")
        #expect(await daemon.stop() == 0)
    }
}
