import Foundation
import ObjectStorage

/// One webhook receiver (DESIGN §6). The URL, secret and routing key are secrets: never logged or exported.
public struct WebhookConfiguration: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        case cloudevents, alertmanager, slack, pagerduty
    }

    public var name: String
    public var url: String
    public var format: Format = .cloudevents
    public var events: [String] = ["*"]
    public var secret: String?
    /// PagerDuty's integration key.
    public var routingKey: String?
    public var timeout: Duration = .seconds(5)
    public var maxRetries: Int = 8
    /// Events older than this are dropped instead of retried.
    public var maxAge: Duration = .seconds(600)
    public var queueSize: Int = 100
    public var headers: [String: String] = [:]

    public init(name: String, url: String) {
        self.name = name
        self.url = url
    }
}
