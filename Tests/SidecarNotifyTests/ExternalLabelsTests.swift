import Foundation
import Logging
import ObjectStorage
import Synchronization
import Testing

@testable import SidecarConfig
@testable import SidecarEvents
@testable import SidecarNotify
@testable import SidecarTelemetry

/// `external_labels`: read from the configuration, stamped on every event by the telemetry hook, and carried by every
/// payload format, so receivers of a fleet can group by cluster or location.
@Suite("External labels")
struct ExternalLabelsTests {
    static let labels = ["cluster": "eu-1", "location": "fra"]

    static func json(_ rendered: PayloadFormat.Rendered?) throws -> [String: Any] {
        let body = try #require(rendered).body
        return try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
    }

    @Test func theConfigurationReadsThem() throws {
        let loader = ConfigurationLoader(environment: [:], hostName: "host-1")
        let configuration = try loader.load(
            data: Data(
                """
                external_labels: {cluster: eu-1, location: fra}
                backends:
                  - {name: a, endpoint: "http://127.0.0.1:7480", bucket: b,
                      credentials: {access_key_id: A, secret_access_key: S}}
                """.utf8)
        )
        #expect(configuration.externalLabels == Self.labels)
    }

    @Test(arguments: [
        ("{instance: x}", "external_labels.instance"), ("{__meta: x}", "external_labels.__meta"),
        ("{\"a-b\": x}", "external_labels.a-b"), ("{cluster: \"\"}", "external_labels.cluster"),
        ("[cluster]", "external_labels"),
    ])
    func badLabelsNameTheirField(labels: String, field: String) throws {
        let loader = ConfigurationLoader(environment: [:], hostName: "host-1")
        let error = try #require(throws: ConfigurationError.self) {
            try loader.load(
                data: Data(
                    """
                    external_labels: \(labels)
                    backends:
                      - {name: a, endpoint: "http://127.0.0.1:7480", bucket: b,
                          credentials: {access_key_id: A, secret_access_key: S}}
                    """.utf8)
            )
        }
        #expect(error.problems.map(\.field) == [field])
    }

    @Test func theHookStampsThemOnEveryEvent() throws {
        let hook = TelemetryHook(
            metrics: try CanaryMetrics(version: "t"), board: StatusBoard(),
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }),
            origin: .init(instance: "i", statusURL: "http://i/status", externalLabels: Self.labels)
        )
        final class Received: Sendable { let events = Mutex<[WebhookEvent]>([]) }
        let received = Received()
        hook.addSink { event in received.events.withLock { $0.append(event) } }
        hook.emit(.serviceStarted)
        #expect(received.events.withLock { $0 }.map(\.externalLabels) == [Self.labels])
    }

    @Test func everyFormatCarriesThem() throws {
        var event = WebhookFixtures.opened
        event.externalLabels = Self.labels
        let cloudEvent = try Self.json(try PayloadFormat.render(event, format: .cloudevents, webhook: "w"))
        #expect((cloudEvent["data"] as? [String: Any])?["external_labels"] as? [String: String] == Self.labels)
        let alertmanager = try Self.json(try PayloadFormat.render(event, format: .alertmanager, webhook: "w"))
        let alert = try #require((alertmanager["alerts"] as? [[String: Any]])?.first)
        #expect((alert["labels"] as? [String: String])?["cluster"] == "eu-1")
        #expect((alertmanager["commonLabels"] as? [String: String])?["location"] == "fra")
        let pagerDuty = try Self.json(
            try PayloadFormat.render(event, format: .pagerduty, webhook: "w", routingKey: "k"))
        let details = (pagerDuty["payload"] as? [String: Any])?["custom_details"] as? [String: String]
        #expect(details?["cluster"] == "eu-1" && details?["location"] == "fra")
        let slack = try #require(try PayloadFormat.render(event, format: .slack, webhook: "w"))
        #expect(String(decoding: slack.body, as: UTF8.self).contains("*cluster* eu-1 · *location* fra"))
        // Without external labels the payloads stay as they were (the fixtures of WebhookTests).
        let plain = try Self.json(try PayloadFormat.render(WebhookFixtures.opened, format: .cloudevents, webhook: "w"))
        #expect((plain["data"] as? [String: Any])?["external_labels"] == nil)
    }
}
