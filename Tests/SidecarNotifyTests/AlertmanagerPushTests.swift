import Foundation
import Logging
import ObjectStorage
import PrometheusExposition
import ServiceLifecycleTestKit
import TestSupport
import Testing

@testable import SidecarConfig
@testable import SidecarEvents
@testable import SidecarNotify
@testable import SidecarTelemetry

/// Pushing this instance's alerts to Alertmanager: the pure alert book, the pusher under a test clock, and the
/// configuration's checks.
@Suite("Alertmanager push", .timeLimit(.minutes(1)))
struct AlertmanagerPushTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_600_000)

    static func event(_ type: WebhookEventType, at seconds: Double = 0, openFor: Double? = nil) -> WebhookEvent {
        var event = WebhookEvent(
            id: "e", type: type, time: Self.t0.addingTimeInterval(seconds), instance: "replica-1", backend: "ceph-a",
            from: nil, to: nil, consecutiveFailures: 3, threshold: 3, openDurationSeconds: openFor,
            lastError: .init(operation: "put", reason: "connection", message: "connection refused"),
            statusURL: "http://replica-1:9340/status")
        event.externalLabels = ["cluster": "eu-1"]
        return event
    }

    @Test func anOutageFiresResendsAndResolves() {
        var book = AlertBook(validity: .seconds(240))
        let fired = book.apply(Self.event(.circuitOpened), now: Self.t0)
        #expect(
            fired == [
                .init(
                    alert: .init(
                        labels: [
                            "alertname": "S3CanaryCircuitOpen", "instance": "replica-1", "backend": "ceph-a",
                            "severity": "warning", "cluster": "eu-1",
                        ],
                        annotations: [
                            "summary": PayloadFormat.summary(Self.event(.circuitOpened)),
                            "description": "last error: put connection: connection refused",
                            "runbook_url":
                                "https://github.com/s3-canary/s3-canary/blob/main/docs/runbook.md#s3canarycircuitopen",
                        ],
                        startsAt: "2026-11-25T09:46:40.000Z", endsAt: "2026-11-25T09:50:40.000Z",
                        generatorURL: "http://replica-1:9340/status"),
                    event: .circuitOpened)
            ])
        // Every resend moves endsAt one validity past the resend; startsAt stays.
        let again = book.resend(now: Self.t0.addingTimeInterval(60))
        #expect(again.map(\.alert.endsAt) == ["2026-11-25T09:51:40.000Z"])
        #expect(again.map(\.alert.startsAt) == ["2026-11-25T09:46:40.000Z"])
        let resolved = book.apply(Self.event(.circuitClosed, at: 95, openFor: 95), now: Self.t0.addingTimeInterval(95))
        #expect(resolved.map(\.alert.endsAt) == ["2026-11-25T09:48:15.000Z"], "resolved: endsAt is now")
        #expect(resolved.map(\.event) == [.circuitClosed])
        #expect(book.resend(now: Self.t0.addingTimeInterval(120)).isEmpty, "nothing left to resend")
        #expect(book.apply(Self.event(.serviceStarted), now: Self.t0).isEmpty, "service events are no alerts")
    }

    @Test func anIntegrityAlertFiresForItsWindowThenResolves() {
        var book = AlertBook(validity: .seconds(240))
        let fired = book.apply(Self.event(.corruptionDetected), now: Self.t0)
        #expect(fired.map { $0.alert.labels["severity"] } == ["critical"])
        #expect(fired.map { $0.alert.labels["alertname"] } == ["S3CanaryIntegrityFailure"])
        #expect(book.resend(now: Self.t0.addingTimeInterval(899)).map(\.alert.endsAt) == ["2026-11-25T10:05:39.000Z"])
        let last = book.resend(now: Self.t0.addingTimeInterval(900))
        #expect(last.map(\.alert.endsAt) == ["2026-11-25T10:01:40.000Z"], "window over: resolved now")
        #expect(book.firing.isEmpty)
    }

    @Test func thePusherPostsToEveryAlertmanagerAndResendsOnTheClock() async throws {
        let clock = ManualClock()
        let transport = ScriptedTransport([.init(status: 200)])
        var configuration = AlertmanagerConfiguration(urls: ["http://am-0:9093", "http://am-1:9093"])
        configuration.resendInterval = .seconds(60)
        configuration.bearerToken = "t0ken"
        let metrics = try CanaryMetrics(version: "t")
        let pusher = AlertmanagerPusher(
            configuration: configuration, metrics: metrics, logger: Logger(label: "t"), clock: clock,
            transport: transport, now: { Self.t0 })
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pusher.run() }
                pusher.receive(Self.event(.circuitOpened))
                while transport.attempts.count < 2 { await Task.yield() }
                #expect(
                    Set(transport.attempts.map(\.url)) == [
                        "http://am-0:9093/api/v2/alerts", "http://am-1:9093/api/v2/alerts",
                    ])
                #expect(
                    transport.attempts.allSatisfy { $0.headers.contains { $0 == ("Authorization", "Bearer t0ken") } })
                let alerts = try JSONSerialization.jsonObject(with: transport.attempts[0].body) as? [[String: Any]]
                #expect((alerts?.first?["labels"] as? [String: String])?["alertname"] == "S3CanaryCircuitOpen")
                // The resend interval, on the test clock: two more posts.
                while !clock.sleeperDeadlines.contains(.seconds(60)) { await Task.yield() }
                clock.advance(by: .seconds(60))
                while transport.attempts.count < 4 { await Task.yield() }
                pusher.receive(Self.event(.circuitClosed, openFor: 60))
                while transport.attempts.count < 6 { await Task.yield() }
                let last = try JSONSerialization.jsonObject(with: transport.attempts[5].body) as? [[String: Any]]
                #expect(last?.first?["endsAt"] as? String == "2026-11-25T09:46:40.000Z", "resolved at once")
                #expect(metrics.webhookDeliveries.value(["alertmanager-0", "backend.circuit.opened", "success"]) == 2)
                #expect(metrics.webhookDeliveries.value(["alertmanager-1", "backend.circuit.closed", "success"]) == 1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test(arguments: [
        ("alertmanagers: {urls: [\"ftp://am:9093\"]}", "alertmanagers.urls[0]"),
        ("alertmanagers: {urls: []}", "alertmanagers.urls"),
        ("alertmanagers: {resend_interval: 1m}", "alertmanagers.urls"),
        ("alertmanagers: {urls: [\"http://am:9093\"], resend_interval: 0s}", "alertmanagers.resend_interval"),
        (
            "alertmanagers: {urls: [\"http://am:9093\"], bearer_token: abcdefabcdef, "
                + "basic_auth: {username: u, password: p}}",
            "alertmanagers.basic_auth"
        ),
        ("alertmanagers: {urls: [\"http://am:9093\"], ca_bundle: /nonexistent.pem}", "alertmanagers.ca_bundle"),
    ])
    func badSettingsNameTheirField(text: String, field: String) throws {
        let loader = ConfigurationLoader(environment: [:], hostName: "host-1")
        let error = try #require(throws: ConfigurationError.self) {
            try loader.load(
                data: Data(
                    """
                    \(text)
                    backends:
                      - {name: a, endpoint: "http://127.0.0.1:7480", bucket: b,
                          credentials: {access_key_id: A, secret_access_key: S}}
                    """.utf8))
        }
        #expect(error.problems.map(\.field).contains(field), "\(error.problems)")
        #expect(!error.description.contains("ftp://am"), "URLs are never echoed")
    }
}
