import Foundation
import TestSupport
import Testing

/// Issue "SLOs with burn-rate alerts": a real run with one healthy and one failing backend, both held to 99.9 %,
/// scraped by a real Prometheus evaluating the repository's rules. Timing-sensitive (the page waits out its
/// `for: 2m`), so it runs in the faults phase.
@Suite("SLO burn-rate alerts against a real run and Prometheus", .tags(.faults), .serialized)
struct SLOBurnRateTests {
    @Test func theFastBurnPagesForTheFailingBackendOnlyAndTheSLORowHasData() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("slo")
        let fault = try await FaultS3.start(
            status: 500, code: "InternalError", message: "the storage is down", directory: work)
        defer { fault.daemon.signal(SIGKILL) }
        let (canary, _) = try await RunningCanary.start(name: "slo") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: slo-test
            probe: {interval: 1s, timeout: 500ms, key_prefix: .s3-canary-slo/}
            breaker: {failure_threshold: 2, open_timeout: 20s}
            slo:
              availability: 99.9%
              latency:
                get: {threshold: 250ms, objective: 99%}
            backends:
              - name: rgw-healthy
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: store-down
                endpoint: http://127.0.0.1:\(fault.port)
                bucket: any
                credentials: {access_key_id: a, secret_access_key: b}

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        let rules = Harness.root.appendingPathComponent("Config/prometheus")
        let prometheus = try await PrometheusServer.start(
            configuration: """
                global: {scrape_interval: 1s, evaluation_interval: 1s}
                rule_files: ["\(rules.appendingPathComponent("alerts.yaml").path)", \
                "\(rules.appendingPathComponent("slo.yaml").path)"]
                scrape_configs:
                  - job_name: s3-canary
                    static_configs: [{targets: ["127.0.0.1:\(canary.port)"]}]
                """,
            directory: work)
        defer { prometheus.daemon.signal(SIGKILL) }

        // The page: burn rates over 14.4 in the 1 h and 5 min windows, at least 3 bad cycles, for 2 minutes.
        var firing: [[String: Any]] = []
        try await Harness.waitUntil(.seconds(240), "S3CanarySLOAvailabilityFastBurn firing") {
            firing = try Self.alerts(prometheus).filter {
                ($0["labels"] as? [String: String])?["alertname"] == "S3CanarySLOAvailabilityFastBurn"
                    && $0["state"] as? String == "firing"
            }
            return !firing.isEmpty
        }
        let backends = Set(firing.compactMap { ($0["labels"] as? [String: String])?["backend"] })
        #expect(backends == ["store-down"], "fast burn fired for \(backends)")
        #expect(firing.allSatisfy { ($0["labels"] as? [String: String])?["severity"] == "critical" })
        let healthy = try Self.alerts(prometheus).filter {
            ($0["labels"] as? [String: String])?["backend"] == "rgw-healthy"
                && (($0["labels"] as? [String: String])?["alertname"] ?? "").hasPrefix("S3CanarySLO")
        }
        #expect(healthy.isEmpty, "SLO alerts for the healthy backend: \(healthy)")
        let burn = try prometheus.query(#"s3canary:slo_availability_errors:burn_rate1h{backend="store-down"}"#)
        #expect((burn.first?.value ?? 0) > 14.4, "1 h burn rate \(burn)")

        // The SLO row of the dashboard answers once the budget group (every minute) has run.
        try await Harness.waitUntil(.seconds(90), "28-day budget figures") {
            try !prometheus.query("s3canary:slo_availability_budget_remaining:ratio28d").isEmpty
        }
        let empty = try Dashboard.emptyPanels(in: ["SLO"], of: prometheus)
        #expect(empty.isEmpty, "SLO panels without data: \(empty)")
        let budget = try prometheus.query("s3canary:slo_availability_budget_remaining:ratio28d")
        let left = Dictionary(budget.map { ($0.labels["backend"] ?? "", $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect((left["rgw-healthy"] ?? 0) == 1, "healthy budget \(left)")
        #expect((left["store-down"] ?? 1) < 0, "failing budget \(left)")
        try Data(
            "fast burn fired for \(backends.sorted()); 1 h burn \(burn.first?.value ?? 0); budget left \(left)\n".utf8
        ).write(to: Harness.outputDirectory.appendingPathComponent("slo-burn-rate.txt"))
    }

    static func alerts(_ prometheus: PrometheusServer) throws -> [[String: Any]] {
        let (status, body) = try Harness.http("http://127.0.0.1:\(prometheus.port)/api/v1/alerts")
        guard status == 200, let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let data = json["data"] as? [String: Any], let alerts = data["alerts"] as? [[String: Any]]
        else { throw HarnessError("/api/v1/alerts answered \(status.map(String.init) ?? "nothing"): \(body)") }
        return alerts
    }
}
