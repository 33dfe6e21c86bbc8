import Foundation
import Testing

@Suite("s3-canary demo")
struct DemoTests {
    @Test func demoServesMetricsAndItsFlakyBreakerRoundTripsWithinThreeMinutes() async throws {
        let work = try Harness.temporaryDirectory("demo")
        let port = try Harness.freePort()
        let demo = try Daemon(
            Harness.binary, ["demo", "--listen", "127.0.0.1:\(port)"], log: work.appendingPathComponent("demo.log"))
        defer { demo.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        try await Harness.waitUntil(.seconds(30), "demo /metrics") { try Harness.http("\(base)/metrics").status == 200 }
        try await Harness.waitUntil(.seconds(180), "demo-flaky open → closed") {
            let samples = Samples(try Harness.http("\(base)/metrics").body)
            return samples[#"s3canary_circuit_breaker_transitions_total{backend="demo-flaky",from="closed",to="open"}"#]
                ?? 0 >= 1
                && samples[
                    #"s3canary_circuit_breaker_transitions_total{backend="demo-flaky",from="half_open",to="closed"}"#]
                    ?? 0 >= 1
        }
        let samples = Samples(try Harness.http("\(base)/metrics").body)
        #expect(samples[#"s3canary_probe_success{backend="demo-stable"}"#] == 1)
        #expect(
            samples[#"s3canary_circuit_breaker_transitions_total{backend="demo-stable",from="closed",to="open"}"#] == 0)
        #expect(await demo.stop() == 0)
    }
}
