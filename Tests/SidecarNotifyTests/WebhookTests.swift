import Crypto
import Foundation
import ObjectStorage
import Testing

@testable import SidecarConfig
@testable import SidecarEvents
@testable import SidecarNotify

/// One fixed event per kind, rendered in every format and compared field by field with the fixtures in
/// `Tests/Fixtures/webhooks` (reviewed against each format's documentation; the integration suite also validates
/// live deliveries against JSON schemas of those documents).
enum WebhookFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/webhooks")

    static let opened = WebhookEvent(
        id: "5f1c2b1e-6a4f-4c55-9a0e-2f1d3c4b5a69", type: .circuitOpened,
        time: Date(timeIntervalSince1970: 1_795_600_000),
        instance: "replica-1", backend: "ceph-a", from: "closed", to: "open", consecutiveFailures: 3, threshold: 3,
        lastError: .init(operation: "PutObject", reason: "connection", message: "connection refused by 127.0.0.1:7480"),
        statusURL: "http://replica-1:9340/status"
    )

    static let closed = WebhookEvent(
        id: "9d2e4f60-1b7a-4e3c-8f5d-0a6b7c8d9e01", type: .circuitClosed,
        time: Date(timeIntervalSince1970: 1_795_600_095.5),
        instance: "replica-1", backend: "ceph-a", from: "half_open", to: "closed", consecutiveFailures: 4, threshold: 3,
        openDurationSeconds: 95.5, statusURL: "http://replica-1:9340/status"
    )

    static func json(_ data: Data) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: data) as? NSDictionary)
    }
}

@Suite("Webhook payloads, signing, retry schedule")
struct WebhookTests {
    @Test(arguments: WebhookConfiguration.Format.allCases)
    func payloadsMatchTheirFixtures(format: WebhookConfiguration.Format) throws {
        for (name, event) in [("opened", WebhookFixtures.opened), ("closed", WebhookFixtures.closed)] {
            let rendered = try #require(
                try PayloadFormat.render(event, format: format, webhook: "oncall", routingKey: "R0UT1NGKEY"))
            let file = WebhookFixtures.directory.appendingPathComponent("\(format.rawValue)-\(name).json")
            if ProcessInfo.processInfo.environment["S3CANARY_WRITE_FIXTURES"] == "1" {
                let pretty = try JSONSerialization.data(
                    withJSONObject: try WebhookFixtures.json(rendered.body),
                    options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                try pretty.write(to: file)
            }
            let expected = try WebhookFixtures.json(try Data(contentsOf: file))
            let actual = try WebhookFixtures.json(rendered.body)
            let keys = Set(expected.allKeys.compactMap { $0 as? String }).union(
                actual.allKeys.compactMap { $0 as? String })
            #expect(!keys.isEmpty)
            for key in keys {
                #expect(
                    (expected[key] as? NSObject) == (actual[key] as? NSObject),
                    """
                    \(format.rawValue)-\(name).json: field \(key) differs: \
                    expected \(String(describing: expected[key])), got \(String(describing: actual[key]))
                    """
                )
            }
        }
    }

    @Test func cloudEventsCarryTheContractFields() throws {
        let rendered = try #require(
            try PayloadFormat.render(WebhookFixtures.opened, format: .cloudevents, webhook: "w"))
        #expect(rendered.contentType == "application/cloudevents+json")
        let json = try WebhookFixtures.json(rendered.body)
        #expect(json["specversion"] as? String == "1.0")
        #expect(json["type"] as? String == "backend.circuit.opened")
        #expect(json["subject"] as? String == "ceph-a")
        #expect(json["time"] as? String == "2026-11-25T09:46:40.000Z")
        let data = try #require(json["data"] as? NSDictionary)
        #expect(data["consecutive_failures"] as? Int == 3 && data["threshold"] as? Int == 3)
        #expect((data["last_error"] as? NSDictionary)?["reason"] as? String == "connection")
        #expect(data["status_url"] as? String == "http://replica-1:9340/status")
    }

    @Test func alertmanagerFiresAndResolvesWithOneFingerprintPerBackend() throws {
        let firing = try WebhookFixtures.json(
            try #require(try PayloadFormat.render(WebhookFixtures.opened, format: .alertmanager, webhook: "am")).body)
        let resolved = try WebhookFixtures.json(
            try #require(try PayloadFormat.render(WebhookFixtures.closed, format: .alertmanager, webhook: "am")).body)
        #expect(firing["status"] as? String == "firing" && resolved["status"] as? String == "resolved")
        let firingAlert = try #require((firing["alerts"] as? [NSDictionary])?.first)
        let resolvedAlert = try #require((resolved["alerts"] as? [NSDictionary])?.first)
        #expect(firingAlert["fingerprint"] as? String == resolvedAlert["fingerprint"] as? String)
        #expect(
            resolvedAlert["startsAt"] as? String == firingAlert["startsAt"] as? String,
            "the resolved alert starts when the outage began")
        // Service events are not alerts: nothing to send.
        let started = WebhookEvent(type: .serviceStarted, instance: "i", statusURL: "http://i/status")
        #expect(try PayloadFormat.render(started, format: .alertmanager, webhook: "am") == nil)
        #expect(try PayloadFormat.render(started, format: .pagerduty, webhook: "pd", routingKey: "k") == nil)
        #expect(try PayloadFormat.render(started, format: .slack, webhook: "s") != nil)
    }

    @Test func pagerDutyTriggersAndResolvesOneDedupKey() throws {
        let trigger = try WebhookFixtures.json(
            try #require(
                try PayloadFormat.render(WebhookFixtures.opened, format: .pagerduty, webhook: "pd", routingKey: "K")
            ).body)
        let resolve = try WebhookFixtures.json(
            try #require(
                try PayloadFormat.render(WebhookFixtures.closed, format: .pagerduty, webhook: "pd", routingKey: "K")
            ).body)
        #expect(trigger["event_action"] as? String == "trigger" && resolve["event_action"] as? String == "resolve")
        #expect(trigger["dedup_key"] as? String == resolve["dedup_key"] as? String)
        #expect(trigger["routing_key"] as? String == "K")
    }

    @Test func signaturesFollowBothSchemes() {
        let body = Data(#"{"a":1}"#.utf8)
        let secret = "whsec_" + Data("0123456789abcdef0123456789abcdef".utf8).base64EncodedString()
        let headers = Dictionary(
            uniqueKeysWithValues: WebhookSigner(secret: secret).headers(
                body: body, id: "msg_1", timestamp: Date(timeIntervalSince1970: 1_700_000_000)))
        let hmac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        #expect(headers["X-Webhook-Signature"] == "sha256=" + hmac.map { String(format: "%02x", $0) }.joined())
        var signed = Data("msg_1.1700000000.".utf8)
        signed.append(body)
        let standard = HMAC<SHA256>.authenticationCode(
            for: signed, using: SymmetricKey(data: Data("0123456789abcdef0123456789abcdef".utf8)))
        #expect(headers["webhook-signature"] == "v1," + Data(standard).base64EncodedString())
        #expect(headers["webhook-id"] == "msg_1" && headers["webhook-timestamp"] == "1700000000")
    }

    @Test func eventFiltersAndHalfOpenOnlyWhenNamed() {
        #expect(WebhookEventType.circuitOpened.matches(["*"]))
        #expect(!WebhookEventType.circuitHalfOpened.matches(["*"]))
        #expect(!WebhookEventType.circuitHalfOpened.matches(["backend.circuit.*"]))
        #expect(WebhookEventType.circuitHalfOpened.matches(["backend.circuit.half_opened"]))
        #expect(WebhookEventType.circuitClosed.matches(["backend.circuit.*"]))
        #expect(!WebhookEventType.serviceStarted.matches(["backend.*", "config.reload_failed"]))
        #expect(WebhookEventType.isValidFilter("service.*") && !WebhookEventType.isValidFilter("nope.*"))
    }

    @Test(arguments: [(1, 0.0, 0.5), (1, 0.999, 1.0), (2, 0.0, 1.0), (3, 0.0, 2.0), (7, 0.0, 30.0), (20, 0.999, 59.97)])
    func retryScheduleDoublesWithEqualJitterUpToTheMaximum(retry: Int, jitter: Double, expectedSeconds: Double) {
        let delay = RetrySchedule().delay(retry: retry, jitter: jitter)
        #expect(abs(delay.seconds - expectedSeconds) < 0.01, "retry \(retry): \(delay)")
    }

    @Test func retryAfterWinsAndIsCapped() {
        #expect(RetrySchedule().delay(retry: 1, jitter: 0, retryAfter: .seconds(7)) == .seconds(7))
        #expect(RetrySchedule().delay(retry: 1, jitter: 0, retryAfter: .seconds(7200)) == .seconds(300))
        #expect(RetrySchedule.parseRetryAfter("12") == .seconds(12))
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(RetrySchedule.parseRetryAfter("Tue, 14 Nov 2023 22:13:40 GMT", now: now) == .seconds(20))
        #expect(RetrySchedule.parseRetryAfter("soon") == nil)
    }

    @Test(arguments: [
        (200, DeliveryVerdict.delivered), (204, .delivered), (410, .gone), (400, .rejected), (404, .rejected),
        (408, .retry(after: nil)), (429, .retry(after: nil)), (500, .retry(after: nil)), (503, .retry(after: nil)),
    ])
    func verdicts(status: Int, verdict: DeliveryVerdict) {
        #expect(DeliveryVerdict.of(status: status, retryAfter: nil) == verdict)
    }

}
