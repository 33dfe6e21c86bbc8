import Foundation
import TestSupport
import Testing

/// A real Alertmanager pair (Debian's `prometheus-alertmanager`, clustered) receiving the alerts one s3-canary pushes,
/// next to an Alertmanager URL where nothing listens.
@Suite("Alertmanager push against real Alertmanagers", .tags(.faults), .serialized)
struct AlertmanagerPushRGWTests {
    /// Starts an Alertmanager with a receiver that sends nothing; `peer` joins it to another's cluster.
    static func alertmanager(_ name: String, directory: URL, clusterPort: Int, peer: Int?) async throws -> (Daemon, Int)
    {
        let config = directory.appendingPathComponent("\(name).yml")
        try Data(
            """
            route: {receiver: none, group_by: [alertname, backend], group_wait: 1s, group_interval: 2s}
            receivers: [{name: none}]
            """.utf8
        ).write(to: config)
        let port = try Harness.freePort()
        var arguments = [
            "--config.file=\(config.path)", "--storage.path=\(directory.appendingPathComponent(name).path)",
            "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address=127.0.0.1:\(clusterPort)",
            "--cluster.advertise-address=127.0.0.1:\(clusterPort)",
        ]
        if let peer { arguments.append("--cluster.peer=127.0.0.1:\(peer)") }
        let daemon = try Daemon(
            "/usr/bin/prometheus-alertmanager", arguments, log: directory.appendingPathComponent("\(name).log"))
        try await Harness.waitUntil(.seconds(20), "\(name) ready") {
            guard daemon.isRunning else { throw HarnessError("\(name) exited: \(daemon.log)") }
            return try Harness.http("http://127.0.0.1:\(port)/-/ready", timeout: 1).status == 200
        }
        return (daemon, port)
    }

    /// The active alerts an Alertmanager holds, each with its labels, annotations and generator URL.
    static func activeAlerts(_ port: Int) throws -> [[String: Any]] {
        let (status, body) = try Harness.http("http://127.0.0.1:\(port)/api/v2/alerts?active=true")
        guard status == 200, let alerts = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]]
        else { throw HarnessError("GET /api/v2/alerts answered \(status.map(String.init) ?? "-"): \(body)") }
        return alerts.filter { (($0["status"] as? [String: Any])?["state"] as? String) != "resolved" }
    }

    static func circuitOpen(_ port: Int) throws -> [String: Any]? {
        try Self.activeAlerts(port).first { alert in
            (alert["labels"] as? [String: String])?["alertname"] == "S3CanaryCircuitOpen"
        }
    }

    @Test func alertsFireResolveAndExpireWhenTheInstanceDies() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("alertmanager-push")
        let clusterA = try Harness.freePort()
        let clusterB = try Harness.freePort()
        let (amA, portA) = try await Self.alertmanager("am-a", directory: work, clusterPort: clusterA, peer: nil)
        defer { amA.signal(SIGKILL) }
        let (amB, portB) = try await Self.alertmanager("am-b", directory: work, clusterPort: clusterB, peer: clusterA)
        defer { amB.signal(SIGKILL) }
        let deadPort = try Harness.freePort()
        let path = try await FaultInjector(names: ["ceph"], target: rgw.port, directory: work)
        defer { path.stop() }
        let (canary, _) = try await RunningCanary.start(name: "am-push") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: pusher
            external_labels: {cluster: test-cluster}
            alertmanagers:
              urls: ["http://127.0.0.1:\(portA)", "http://127.0.0.1:\(portB)", "http://127.0.0.1:\(deadPort)"]
              resend_interval: 2s
              timeout: 1s
            probe: {interval: 1s, timeout: 500ms, key_prefix: .s3-canary-am-push/}
            breaker: {failure_threshold: 1, open_timeout: 1s}
            backends:
              - name: ceph
                endpoint: http://127.0.0.1:\(path.ports["ceph"] ?? 0)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        var figures: [String] = []

        // The path cut: both peers hold the alert, with the instance's labels and links.
        var start = ContinuousClock.now
        try path.set("ceph", "refuse")
        try await Harness.waitUntil(.seconds(30), "the alert at both Alertmanagers") {
            try Self.circuitOpen(portA) != nil && Self.circuitOpen(portB) != nil
        }
        figures.append("breaker open -> alert at both Alertmanagers: \(start.duration(to: .now))")
        let alert = try #require(try Self.circuitOpen(portA))
        let labels = try #require(alert["labels"] as? [String: String])
        #expect(labels["instance"] == "pusher" && labels["backend"] == "ceph" && labels["cluster"] == "test-cluster")
        #expect(labels["severity"] == "warning")
        #expect((alert["generatorURL"] as? String)?.hasSuffix("/status") == true)
        let annotations = try #require(alert["annotations"] as? [String: String])
        #expect(annotations["runbook_url"]?.hasSuffix("/docs/runbook.md#s3canarycircuitopen") == true)
        #expect(annotations["description"]?.contains("connection") == true, "\(annotations)")

        // Healed: resolved explicitly, at once.
        start = ContinuousClock.now
        try path.set("ceph", "pass")
        try await Harness.waitUntil(.seconds(30), "the alert resolved") {
            try Self.circuitOpen(portA) == nil && Self.circuitOpen(portB) == nil
        }
        figures.append("breaker closed -> resolved at both: \(start.duration(to: .now))")

        // The dead Alertmanager is retried and counted, and never held up probing.
        let samples = try canary.metrics()
        let failures = samples.values.filter {
            $0.key.hasPrefix("s3canary_webhook_deliveries_total{webhook=\"alertmanager-2\"")
                && $0.key.contains("result=\"failure\"")
        }.values.reduce(0, +)
        #expect(failures >= 1)
        let delivered = samples.values.filter {
            $0.key.hasPrefix("s3canary_webhook_deliveries_total{webhook=\"alertmanager-0\"")
                && $0.key.contains("result=\"success\"")
        }.values.reduce(0, +)
        #expect(delivered >= 2)
        #expect(samples[#"s3canary_probe_success{backend="ceph"}"#] == 1)

        // Firing again, then the instance dies: its alert ends by itself within endsAt (4 resends, 8 s).
        try path.set("ceph", "refuse")
        try await Harness.waitUntil(.seconds(30), "firing again") { try Self.circuitOpen(portA) != nil }
        start = ContinuousClock.now
        canary.daemon.signal(SIGKILL)
        try await Harness.waitUntil(.seconds(30), "the dead instance's alert resolved") {
            try Self.circuitOpen(portA) == nil && Self.circuitOpen(portB) == nil
        }
        let expired = start.duration(to: .now)
        figures.append("instance SIGKILLed -> its alert resolved at both: \(expired)")
        #expect(expired <= .seconds(15), "endsAt is 8 s ahead at most, plus Alertmanager's own tick")
        let output = Harness.root.appendingPathComponent("test-output/alertmanager-push.txt")
        try? FileManager.default.createDirectory(
            at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((figures.joined(separator: "\n") + "\n").utf8).write(to: output)
    }
}
