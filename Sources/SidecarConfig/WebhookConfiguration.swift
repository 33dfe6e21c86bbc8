import Foundation
import ObjectStorage

/// One webhook receiver (docs/design.md, 3.3). The URL, secret and routing key are secrets: never logged or exported.
public struct WebhookConfiguration: Sendable, Equatable {
    /// The payload shape the receiver expects (`format:`).
    public enum Format: String, Sendable, CaseIterable {
        case cloudevents, alertmanager, slack, pagerduty
    }

    /// Short unique name: the `webhook` label of the delivery metrics.
    public var name: String
    /// Where events are POSTed; secret, since URLs often carry a token.
    public var url: String
    /// The payload shape.
    public var format: Format = .cloudevents
    /// Which events to deliver: exact names, `*`, or a prefix ending in `*` (``WebhookEventType/matches(_:)``).
    public var events: [String] = ["*"]
    /// Key the payload is signed with (`X-Webhook-Signature` and Standard Webhooks); `nil` sends it unsigned.
    public var secret: String?
    /// PagerDuty's integration key.
    public var routingKey: String?
    /// Time limit of one delivery attempt.
    public var timeout: Duration = .seconds(5)
    /// Retries after the first attempt before the event is dropped as `retries_exhausted`.
    public var maxRetries: Int = 8
    /// Events older than this are dropped instead of retried.
    public var maxAge: Duration = .seconds(600)
    /// Events waiting for this webhook at most; when full, the oldest is dropped (`queue_full`).
    public var queueSize: Int = 100
    /// Extra HTTP headers sent with every delivery.
    public var headers: [String: String] = [:]

    /// A receiver at `url`, every other setting at its default.
    package init(name: String, url: String) {
        self.name = name
        self.url = url
    }
}
