import Foundation
import TestSupport
import Testing

/// `probe.every` on the real RGW: a paced operation runs at its own pace and says when it last ran; the others run
/// every cycle.
@Suite("Pace per operation against RGW", .serialized)
struct PaceRGWTests {
    @Test func aPacedListRunsAboutEveryFourthCycleAndPublishesItsLastRun() async throws {
        let rgw = try RGWEnvironment.load()
        let prefix = ".s3-canary-pace-\(UUID().uuidString.prefix(6).lowercased())/"
        let (canary, _) = try await RunningCanary.start(name: "pace") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: pace
            probe:
              interval: 1s
              timeout: 500ms
              jitter: 0%
              key_prefix: \(prefix)
              operations: [put, head, list, delete]
              every: {list: 4s}
            backends:
              - name: rgw
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        let ok = #"{backend="rgw",result="success"}"#
        func operations(_ samples: Samples, _ operation: String) -> Double {
            samples[#"s3canary_operations_total{backend="rgw",operation="\#(operation)",result="success"}"#] ?? 0
        }
        var samples = try canary.metrics()
        try await Harness.waitUntil(.seconds(60), "13 good cycles") {
            samples = try canary.metrics()
            return (samples["s3canary_probes_total\(ok)"] ?? 0) >= 13
        }
        let cycles = samples["s3canary_probes_total\(ok)"] ?? 0
        let listed = operations(samples, "list")
        #expect(operations(samples, "head") == cycles, "head is not paced: it runs every cycle")
        // One list at the first cycle, then one every four: 4 in 13 cycles, a cycle more or less at either end.
        #expect((cycles / 4).rounded(.down)...(cycles / 4).rounded(.up) + 1 ~= listed, "\(listed) lists in \(cycles)")
        let lastRun = try #require(
            samples[#"s3canary_operation_last_run_timestamp_seconds{backend="rgw",operation="list"}"#],
            "a paced operation publishes its last run")
        #expect(abs(lastRun - Date().timeIntervalSince1970) < 10)
        let lastRuns = samples.values.keys.filter { $0.hasPrefix("s3canary_operation_last_run_timestamp_seconds{") }
        #expect(lastRuns.count == 1, "only the paced operation has a last-run series: \(lastRuns)")
        #expect(await canary.daemon.stop(SIGTERM, timeout: .seconds(30)) == 0)
        #expect(try listKeysIndependently(rgw, bucket: RGWEnvironment.miscBucket, prefix: prefix).isEmpty)
    }
}
