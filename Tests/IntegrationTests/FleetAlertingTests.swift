import Foundation
import TestSupport
import Testing

/// Alertmanager (Debian's `prometheus-alertmanager`) with the repository's routing and inhibitions, its receivers
/// replaced by a Python webhook receiver and its timings shortened so a test can wait for them.
struct AlertmanagerServer {
    var daemon: Daemon
    var port: Int
    var receiver: Daemon
    var notifications: URL

    static func start(directory: URL) async throws -> AlertmanagerServer {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus-alertmanager") else {
            throw HarnessError("prometheus-alertmanager is not installed: run the tests through scripts/test.sh")
        }
        let receiverPort = try Harness.freePort()
        let notifications = directory.appendingPathComponent("notifications.jsonl")
        let receiver = try Daemon(
            "/usr/bin/env",
            [
                "python3", "-u", Harness.root.appendingPathComponent("Tests/Fixtures/alert_receiver.py").path,
                String(receiverPort), notifications.path,
            ],
            log: directory.appendingPathComponent("alert-receiver.log")
        )
        try await Harness.waitForPort(receiverPort, of: receiver, "alert receiver")
        // The repository's route tree and inhibit rules as they are; only the receivers (each a path of the test
        // receiver) and the waits (seconds instead of minutes) change.
        let config = directory.appendingPathComponent("alertmanager.yml")
        let rewrite = """
            import sys, yaml
            source, target, base = sys.argv[1], sys.argv[2], sys.argv[3]
            config = yaml.safe_load(open(source))
            config["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
            config["receivers"] = [
                {"name": r["name"], "webhook_configs": [{"url": base + "/" + r["name"], "send_resolved": True}]}
                for r in config["receivers"]
            ]
            yaml.safe_dump(config, open(target, "w"))
            """
        let converted = try Harness.run(
            "/usr/bin/env",
            [
                "python3", "-c", rewrite,
                Harness.root.appendingPathComponent("Config/alertmanager/alertmanager.yml").path, config.path,
                "http://127.0.0.1:\(receiverPort)",
            ])
        guard converted.status == 0 else { throw HarnessError("rewriting alertmanager.yml: \(converted.stderr)") }
        let port = try Harness.freePort()
        let daemon = try Daemon(
            "/usr/bin/prometheus-alertmanager",
            [
                "--config.file=\(config.path)", "--storage.path=\(directory.appendingPathComponent("am").path)",
                "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address=",
            ],
            log: directory.appendingPathComponent("alertmanager.log")
        )
        try await Harness.waitUntil(.seconds(20), "Alertmanager ready") {
            guard daemon.isRunning else { throw HarnessError("alertmanager exited: \(daemon.log)") }
            return try Harness.http("http://127.0.0.1:\(port)/-/ready", timeout: 1).status == 200
        }
        return AlertmanagerServer(daemon: daemon, port: port, receiver: receiver, notifications: notifications)
    }

    /// One notification a receiver got: its route (receiver name), status and the alerts' names and labels.
    struct Notification {
        var receiver: String
        var status: String
        var alerts: [[String: String]]
        var received: Double
    }

    func received() -> [Notification] {
        let text = (try? String(contentsOf: self.notifications, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let path = object["path"] as? String, let body = object["body"] as? [String: Any]
            else { return nil }
            let alerts = (body["alerts"] as? [[String: Any]] ?? []).map { ($0["labels"] as? [String: String]) ?? [:] }
            return Notification(
                receiver: String(path.dropFirst()), status: body["status"] as? String ?? "",
                alerts: alerts, received: object["received"] as? Double ?? 0
            )
        }
    }

    func stop() {
        self.daemon.signal(SIGKILL)
        self.receiver.signal(SIGKILL)
    }
}

extension PrometheusServer {
    /// A Prometheus evaluating `rules` every second and sending alerts to `alertmanager`.
    static func start(
        scraping targets: [String], rules: URL, alertmanager: Int, directory: URL
    ) async throws -> PrometheusServer {
        let list = targets.map { "\"\($0)\"" }.joined(separator: ", ")
        return try await Self.start(
            configuration:
                """
                global:
                  scrape_interval: 1s
                  evaluation_interval: 1s
                  external_labels: {runbook_base: "https://runbooks.test"}
                rule_files: ["\(rules.path)"]
                alerting:
                  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:\(alertmanager)"]}]}]
                scrape_configs:
                  - job_name: s3-canary
                    static_configs: [{targets: [\(list)]}]
                """,
            directory: directory)
    }
}

/// Three sidecars probe the same RGW, each through its own switchable path (a listener of the fault proxy). A real
/// Prometheus evaluates the repository's rules and a real Alertmanager routes with the repository's tree: a cut path
/// is a warning naming its instance and pages nobody; the storage gone for all three is one page and one resolve.
@Suite("Fleet alerting through Prometheus and Alertmanager", .tags(.faults), .serialized)
struct FleetAlertingTests {
    static let instances = ["c1", "c2", "c3"]

    @Test func aCutPathWarnsAndTheStorageDownPagesOnce() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("fleet-alerting")
        let paths = try await FaultInjector(names: Self.instances, target: rgw.port, directory: work)
        defer { paths.stop() }
        // Alertmanager first: the instances push their own alerts to it too.
        let alertmanager = try await AlertmanagerServer.start(directory: work)
        defer { alertmanager.stop() }
        var canaries: [RunningCanary] = []
        defer { for canary in canaries { canary.daemon.signal(SIGKILL) } }
        for instance in Self.instances {
            let (canary, _) = try await RunningCanary.start(name: "fleet-\(instance)") { port in
                """
                listen: 127.0.0.1:\(port)
                instance: \(instance)
                probe: {interval: 1s, timeout: 500ms, key_prefix: .s3-canary-fleet/}
                breaker: {failure_threshold: 1, open_timeout: 1s}
                external_labels: {cluster: fleet-test}
                alertmanagers: {urls: ["http://127.0.0.1:\(alertmanager.port)"], resend_interval: 2s}
                backends:
                  - name: ceph
                    endpoint: http://127.0.0.1:\(paths.ports[instance] ?? 0)
                    bucket: \(RGWEnvironment.miscBucket)
                    credentials: \(RGWEnvironment.credentialsFromEnvironment)
                """
            }
            canaries.append(canary)
        }
        let prometheus = try await PrometheusServer.start(
            scraping: canaries.map { "127.0.0.1:\($0.port)" },
            rules: Harness.root.appendingPathComponent("Config/prometheus/alerts.yaml"),
            alertmanager: alertmanager.port, directory: work
        )
        defer { prometheus.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(30), "three healthy probers") {
            try prometheus.query("s3canary:backend_probers:count").first?.value == 3
                && prometheus.query("s3canary:backend_failing:count").first?.value == 0
        }
        var figures: [String] = []
        func firing(_ alert: String) throws -> [[String: String]] {
            try prometheus.query(#"ALERTS{alertname="\#(alert)",alertstate="firing"}"#).map(\.labels)
        }
        let c1 = "127.0.0.1:\(canaries[0].port)"

        // 1. One instance's path cut: a warning naming it; the pager hears nothing.
        var start = ContinuousClock.now
        try paths.set("c1", "refuse")
        try await Harness.waitUntil(.seconds(150), "S3CanaryProbePathDegraded for c1") {
            alertmanager.received().contains { note in
                note.receiver == "storage-chat" && note.status == "firing"
                    && note.alerts.contains { $0["alertname"] == "S3CanaryProbePathDegraded" && $0["instance"] == c1 }
            }
        }
        figures.append("path of one instance cut -> path warning at the chat receiver: \(start.duration(to: .now))")
        #expect(try firing("S3CanaryProbePathDegraded").map { $0["instance"] } == [c1])
        #expect(try firing("S3CanaryBackendDown").isEmpty)
        #expect(alertmanager.received().filter { $0.receiver == "storage-pager" }.isEmpty, "a node's path pages nobody")
        // The instance's own pushed alert (a warning, with its external labels) reached the chat route, not the pager.
        #expect(
            alertmanager.received().contains { note in
                note.receiver == "storage-chat"
                    && note.alerts.contains {
                        $0["alertname"] == "S3CanaryCircuitOpen" && $0["instance"] == "c1"
                            && $0["cluster"] == "fleet-test"
                    }
            })
        try paths.set("c1", "pass")
        try await Harness.waitUntil(.seconds(60), "the path warning resolved") {
            try firing("S3CanaryProbePathDegraded").isEmpty
                && prometheus.query("s3canary:backend_failing:count").first?.value == 0
        }

        // 2. The storage gone for all three: one page for the backend, then one resolve; nothing in between.
        start = ContinuousClock.now
        for instance in Self.instances { try paths.set(instance, "refuse") }
        try await Harness.waitUntil(.seconds(150), "the page") {
            alertmanager.received().contains { $0.receiver == "storage-pager" && $0.status == "firing" }
        }
        figures.append("storage gone for all three -> page: \(start.duration(to: .now))")
        #expect(try firing("S3CanaryBackendDown").map { $0["backend"] } == ["ceph"])
        // Give a second page (were there one) time to arrive before the storage comes back.
        try await Task.sleep(for: .seconds(6))
        start = ContinuousClock.now
        for instance in Self.instances { try paths.set(instance, "pass") }
        try await Harness.waitUntil(.seconds(90), "the resolve") {
            alertmanager.received().contains { $0.receiver == "storage-pager" && $0.status == "resolved" }
        }
        figures.append("storage back -> resolved at the pager: \(start.duration(to: .now))")
        try await Task.sleep(for: .seconds(4))
        let pages = alertmanager.received().filter { $0.receiver == "storage-pager" }
        #expect(pages.map(\.status) == ["firing", "resolved"], "one page and one resolve: \(pages.map(\.status))")
        #expect(pages.allSatisfy { $0.alerts.map { $0["alertname"] } == ["S3CanaryBackendDown"] })
        #expect(pages.allSatisfy { $0.alerts.map { $0["backend"] } == ["ceph"] })
        let chat = alertmanager.received().filter { $0.receiver == "storage-chat" }
        #expect(
            !chat.contains { note in
                note.status == "firing" && note.alerts.contains { $0["alertname"] == "S3CanaryProbePathDegraded" }
                    && note.received > (pages.first?.received ?? 0)
            },
            "no path warning while the backend is down"
        )
        for canary in canaries { #expect(await canary.daemon.stop() == 0) }
        let output = Harness.root.appendingPathComponent("test-output/fleet-alerting.txt")
        try? FileManager.default.createDirectory(
            at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((figures.joined(separator: "\n") + "\n").utf8).write(to: output)
    }
}
