import Foundation
import TestSupport
import Testing

@Suite("s3-canary commands")
struct CommandLineTests {
    static let fixtures = Harness.root.appendingPathComponent("Tests/Fixtures/invalid-configs")

    static var invalidConfigs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? []).filter { $0.hasSuffix(".yaml") }
            .sorted()
    }

    @Test func everyInvalidConfigExitsTwoNamingItsField() async throws {
        let files = Self.invalidConfigs
        #expect(files.count >= 20)
        for file in files {
            let path = Self.fixtures.appendingPathComponent(file).path
            let firstLine = (try String(contentsOfFile: path, encoding: .isoLatin1)).split(separator: "\n").first ?? ""
            let expected = firstLine.replacingOccurrences(of: "# expect: ", with: "")
            let started = ContinuousClock.now
            let output = try await Harness.runDetached(Harness.binary, ["check-config", "--config", path])
            #expect(output.status == 2, "\(file): exit \(output.status) \(output.stderr)")
            #expect(
                output.stderr.contains("  \(expected):"), "\(file): stderr does not name \(expected): \(output.stderr)")
            #expect(ContinuousClock.now - started < .seconds(10), "\(file) took too long")
        }
    }

    @Test func runWithAnInvalidConfigExitsTwoToo() async throws {
        let path = Self.fixtures.appendingPathComponent("05-endpoint-not-url.yaml").path
        let output = try await Harness.runDetached(Harness.binary, ["run", "--config", path])
        #expect(output.status == 2)
        #expect(output.stderr.contains("backends[0].endpoint"))
    }

    @Test func missingConfigFileIsAClearError() async throws {
        let output = try await Harness.runDetached(Harness.binary, ["check-config", "--config", "/nonexistent/s3-canary.yaml"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("cannot read /nonexistent/s3-canary.yaml"))
    }

    @Test func checkConfigAcceptsAValidFileAndProbeRunsOneCycle() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("cli")
        let config = work.appendingPathComponent("ok.yaml")
        try Data(
            """
            instance: cli-test
            probe: {interval: 5s, timeout: 2s, operations: [put, head, get, get_range, copy, list, delete]}
            backends:
              - name: rgw
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: closed-port
                endpoint: http://127.0.0.1:1
                bucket: nothing
                credentials: {access_key_id: a, secret_access_key: b}
            """.utf8
        ).write(to: config)
        let check = try await Harness.runDetached(Harness.binary, ["check-config", "--config", config.path])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("valid: 2 backends"))

        let one = try await Harness.runDetached(Harness.binary, ["probe", "--config", config.path, "--backend", "rgw"])
        #expect(one.status == 0, "\(one.stdout)\(one.stderr)")
        #expect(one.stdout.contains("rgw") && one.stdout.contains("success") && one.stdout.contains("COPY ms"))

        let all = try await Harness.runDetached(Harness.binary, ["probe", "--config", config.path, "--json"])
        #expect(all.status == 1, "a failing backend makes probe exit 1")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [[String: Any]])
        #expect(json.count == 2)
        #expect(json.first { $0["backend"] as? String == "rgw" }?["status"] as? String == "success")
        let closed = json.first { $0["backend"] as? String == "closed-port" }
        #expect(closed?["status"] as? String == "failure")
        #expect((closed?["error"] as? [String: Any])?["reason"] as? String == "connect")

        let unknown = try await Harness.runDetached(Harness.binary, ["probe", "--config", config.path, "--backend", "nope"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no backend named nope"))
    }
}
