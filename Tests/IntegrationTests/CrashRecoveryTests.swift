import Foundation
import TestSupport
import Testing

/// A SIGKILL in the middle of a cycle leaves its canary behind; the next start deletes it within one interval.
@Suite("Crash recovery against the real RGW", .tags(.faults), .serialized)
struct CrashRecoveryTests {
    @Test func theNextStartSweepsWhatAKilledCycleLeftBehind() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("crash")
        // Slow requests stretch the cycle, so the kill lands between its PUT and its DELETE: four requests of a
        // second each follow the PUT, time enough for the log poll even on a busy machine.
        let injector = try await FaultInjector(names: ["slow"], target: rgw.port, directory: work)
        defer { injector.stop() }
        try injector.set("slow", "latency:1000")
        let prefix = ".s3-canary-crash-\(UUID().uuidString.prefix(6).lowercased())/"
        let interval = 8.0
        let port = try Harness.freePort()
        let config = work.appendingPathComponent("s3-canary.yaml")
        try Data(
            """
            listen: 127.0.0.1:\(port)
            instance: crash
            probe: {interval: \(Int(interval))s, timeout: 2s, key_prefix: \(prefix)}
            backends:
              - name: rgw
                endpoint: http://127.0.0.1:\(injector.ports["slow"] ?? 0)
                bucket: \(RGWEnvironment.pathBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)

            """.utf8
        ).write(to: config)
        let first = try Daemon(
            Harness.binary, ["run", "--config", config.path, "--log-level", "debug"],
            log: work.appendingPathComponent("first.log")
        )
        defer { first.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(30), "a canary written") {
            guard first.isRunning else { throw HarnessError("s3-canary exited: \(first.log)") }
            return try !listKeysIndependently(rgw, bucket: RGWEnvironment.pathBucket, prefix: prefix).isEmpty
        }
        first.signal(SIGKILL)
        _ = await first.stop(SIGKILL)
        let left = try listKeysIndependently(rgw, bucket: RGWEnvironment.pathBucket, prefix: prefix)
        #expect(left.count == 1, "the killed cycle left its canary: \(left)")

        try injector.set("slow", "pass")
        let restarted = ContinuousClock.now
        let second = try Daemon(
            Harness.binary, ["run", "--config", config.path, "--log-level", "debug"],
            log: work.appendingPathComponent("second.log")
        )
        defer { second.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(interval + 10), "the leftover swept") {
            guard second.isRunning else { throw HarnessError("s3-canary exited: \(second.log)") }
            let (status, body) = try Harness.http("http://127.0.0.1:\(port)/metrics", timeout: 1)
            return status == 200 && Samples(body)["s3canary_sweep_removed_total{backend=\"rgw\",kind=\"canary\"}"] == 1
        }
        let sweptAfter = ContinuousClock.now - restarted
        #expect(sweptAfter < .seconds(interval), "swept \(sweptAfter) after the restart")
        let remaining = try listKeysIndependently(rgw, bucket: RGWEnvironment.pathBucket, prefix: prefix)
        #expect(!remaining.contains(left.first ?? "-"), "the leftover is gone: \(remaining)")
        #expect(await second.stop() == 0)
        #expect(try listKeysIndependently(rgw, bucket: RGWEnvironment.pathBucket, prefix: prefix).isEmpty)
    }
}
