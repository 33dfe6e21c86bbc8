import Crypto
import Foundation
import SidecarConfig
import SidecarEvents

/// Renders an event in a webhook's format. The body is rendered once per event and webhook, so every retry
/// sends the same bytes (and the same id).
enum PayloadFormat {
    struct Rendered: Sendable, Equatable {
        var body: Data
        var contentType: String
    }

    /// The body for `event`, or `nil` when the format has nothing to say about this event type (Alertmanager and
    /// PagerDuty carry alerts: breaker open/close and corruption only). Throws when the payload cannot be encoded
    /// (the dispatcher counts it as dropped, reason `unencodable`).
    static func render(
        _ event: WebhookEvent,
        format: WebhookConfiguration.Format,
        webhook: String,
        routingKey: String? = nil
    ) throws -> Rendered? {
        let encoder = Self.encoder()
        switch format {
        case .cloudevents:
            return Rendered(body: try encoder.encode(CloudEvent(event)), contentType: "application/cloudevents+json")
        case .slack:
            return Rendered(body: try encoder.encode(SlackMessage(event)), contentType: "application/json")
        case .alertmanager:
            guard let payload = AlertmanagerPayload(event, receiver: webhook) else { return nil }
            return Rendered(body: try encoder.encode(payload), contentType: "application/json")
        case .pagerduty:
            guard let payload = PagerDutyEvent(event, routingKey: routingKey ?? "") else { return nil }
            return Rendered(body: try encoder.encode(payload), contentType: "application/json")
        }
    }

    /// The JSON encoder of every payload: keys sorted, slashes readable, dates in RFC 3339 with milliseconds.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Self.rfc3339(date))
        }
        return encoder
    }

    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    /// A one-line human summary, shared by Slack, Alertmanager and PagerDuty.
    static func summary(_ event: WebhookEvent) -> String {
        let backend = event.backend ?? "-"
        switch event.type {
        case .circuitOpened:
            return
                "S3 backend \(backend) is unavailable: "
                + "circuit breaker opened after \(event.consecutiveFailures ?? 0) consecutive failures"
                + (event.lastError.map { " (last: \($0.operation) \($0.reason))" } ?? "")
        case .circuitHalfOpened:
            return "S3 backend \(backend): circuit breaker half-open, probing"
        case .circuitClosed:
            let open = event.openDurationSeconds.map { String(format: " after %.0f s", $0) } ?? ""
            return "S3 backend \(backend) recovered: circuit breaker closed\(open)"
        case .corruptionDetected:
            return "S3 backend \(backend) returned corrupted data: \(event.message ?? "content mismatch")"
        case .addressFailing:
            let detail = event.lastError.map { " (\($0.operation) \($0.reason): \($0.message))" } ?? ""
            return "S3 backend \(backend): address \(event.address ?? "-") fails\(detail)"
        case .addressRecovered:
            return "S3 backend \(backend): address \(event.address ?? "-") works again"
        case .dataLost, .dataCorrupted:
            return "S3 backend \(backend) lost data: \(event.message ?? "objects of the durability corpus are damaged")"
        case .serviceStarted:
            return "s3-canary started on \(event.instance)"
        case .serviceStopping:
            return "s3-canary is stopping on \(event.instance)"
        case .reloadFailed:
            return "s3-canary on \(event.instance) rejected a new configuration: \(event.message ?? "")"
        }
    }

    /// A stable id for the alert of one backend on one instance (Alertmanager fingerprint, PagerDuty dedup key).
    static func alertKey(_ event: WebhookEvent, kind: String) -> String {
        let digest = SHA256.hash(data: Data("\(kind)\u{0}\(event.instance)\u{0}\(event.backend ?? "")".utf8))
        return digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}

// MARK: - CloudEvents 1.0 (structured JSON)

struct CloudEvent: Encodable {
    struct Payload: Encodable {
        var backend: String?
        var address: String?
        var from: String?
        var to: String?
        var consecutiveFailures: Int?
        var threshold: Int?
        var openDurationSeconds: Double?
        var lastError: WebhookEvent.LastError?
        var message: String?
        var instance: String
        var statusUrl: String
        /// Left out when the configuration has none.
        var externalLabels: [String: String]?

        enum CodingKeys: String, CodingKey {
            case backend, address, from, to, threshold, message, instance
            case consecutiveFailures = "consecutive_failures"
            case openDurationSeconds = "open_duration_seconds"
            case lastError = "last_error"
            case statusUrl = "status_url"
            case externalLabels = "external_labels"
        }
    }

    var specversion = "1.0"
    var id: String
    var source: String
    var type: String
    var time: Date
    var subject: String?
    var datacontenttype = "application/json"
    var data: Payload

    init(_ event: WebhookEvent) {
        self.id = event.id
        self.source = "/s3-canary/\(event.instance)"
        self.type = event.type.rawValue
        self.time = event.time
        self.subject = event.backend
        self.data = Payload(
            backend: event.backend, address: event.address, from: event.from, to: event.to, consecutiveFailures: event.consecutiveFailures,
            threshold: event.threshold, openDurationSeconds: event.openDurationSeconds, lastError: event.lastError,
            message: event.message, instance: event.instance, statusUrl: event.statusURL,
            externalLabels: event.externalLabels.isEmpty ? nil : event.externalLabels
        )
    }
}

// MARK: - Slack (incoming webhook: text plus blocks)

struct SlackMessage: Encodable {
    struct Text: Encodable {
        var type = "mrkdwn"
        var text: String
    }

    struct Block: Encodable {
        var type: String
        var text: Text?
        var elements: [Text]?
    }

    var text: String
    var blocks: [Block]

    init(_ event: WebhookEvent) {
        let icon: String
        switch event.type {
        case .circuitOpened, .corruptionDetected, .reloadFailed, .dataLost, .dataCorrupted: icon = ":red_circle:"
        case .circuitClosed, .addressRecovered: icon = ":large_green_circle:"
        case .addressFailing: icon = ":large_orange_circle:"
        default: icon = ":large_blue_circle:"
        }
        let summary = PayloadFormat.summary(event)
        var details: [String] = ["*instance* \(event.instance)"]
        for (name, value) in event.externalLabels.sorted(by: { $0.key < $1.key }) {
            details.append("*\(name)* \(value)")
        }
        if let backend = event.backend { details.append("*backend* \(backend)") }
        if let failures = event.consecutiveFailures, let threshold = event.threshold {
            details.append("*failures* \(failures)/\(threshold)")
        }
        if let error = event.lastError {
            details.append("*last error* \(error.operation) \(error.reason): \(error.message)")
        }
        self.text = summary
        self.blocks = [
            Block(type: "section", text: Text(text: "\(icon) \(summary)")),
            Block(
                type: "context",
                elements: [Text(text: details.joined(separator: " · ") + " · <\(event.statusURL)|status>")]),
        ]
    }
}

// MARK: - Alertmanager webhook payload, version 4

struct AlertmanagerPayload: Encodable {
    struct Alert: Encodable {
        var status: String
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String
        var generatorURL: String
        var fingerprint: String
    }

    var version = "4"
    var groupKey: String
    var truncatedAlerts = 0
    var status: String
    var receiver: String
    var groupLabels: [String: String]
    var commonLabels: [String: String]
    var commonAnnotations: [String: String]
    var externalURL: String
    var alerts: [Alert]

    init?(_ event: WebhookEvent, receiver: String) {
        let alertname: String
        let firing: Bool
        switch event.type {
        case .circuitOpened: (alertname, firing) = ("S3CanaryCircuitOpen", true)
        case .circuitClosed: (alertname, firing) = ("S3CanaryCircuitOpen", false)
        case .corruptionDetected: (alertname, firing) = ("S3CanaryIntegrityFailure", true)
        case .dataLost, .dataCorrupted: (alertname, firing) = ("S3CanaryDataLost", true)
        default: return nil
        }
        // External labels first: the alert's own labels win (the configuration forbids those names anyway).
        let labels = event.externalLabels.merging([
            "alertname": alertname, "backend": event.backend ?? "", "instance": event.instance,
            "severity": "critical",
        ]) { $1 }
        let annotations = [
            "summary": PayloadFormat.summary(event),
            "description": "consecutive failures \(event.consecutiveFailures ?? 0) of threshold \(event.threshold ?? 0)"
                + (event.lastError.map { "; last error \($0.operation) \($0.reason): \($0.message)" } ?? ""),
        ]
        let time = PayloadFormat.rfc3339(event.time)
        let started =
            event.openDurationSeconds.map { PayloadFormat.rfc3339(event.time.addingTimeInterval(-$0)) } ?? time
        self.status = firing ? "firing" : "resolved"
        self.receiver = receiver
        self.groupKey = "{}:{alertname=\"\(alertname)\", backend=\"\(event.backend ?? "")\"}"
        self.groupLabels = ["alertname": alertname, "backend": event.backend ?? ""]
        self.commonLabels = labels
        self.commonAnnotations = annotations
        // The instance's base URL: the status link without its last path segment.
        self.externalURL = event.statusURL.lastIndex(of: "/").map { String(event.statusURL[..<$0]) } ?? event.statusURL
        self.alerts = [
            Alert(
                status: self.status,
                labels: labels,
                annotations: annotations,
                startsAt: firing ? time : started,
                endsAt: firing ? "0001-01-01T00:00:00Z" : time,
                generatorURL: event.statusURL,
                fingerprint: PayloadFormat.alertKey(event, kind: alertname)
            )
        ]
    }
}

// MARK: - PagerDuty Events API v2

struct PagerDutyEvent: Encodable {
    struct Payload: Encodable {
        var summary: String
        var source: String
        var severity: String
        var timestamp: String
        var component: String?
        var group: String
        var `class`: String
        var customDetails: [String: String]

        enum CodingKeys: String, CodingKey {
            case summary, source, severity, timestamp, component, group, `class`
            case customDetails = "custom_details"
        }
    }

    struct Link: Encodable {
        var href: String
        var text: String
    }

    var routingKey: String
    var eventAction: String
    var dedupKey: String
    var payload: Payload?
    var links: [Link]

    enum CodingKeys: String, CodingKey {
        case routingKey = "routing_key"
        case eventAction = "event_action"
        case dedupKey = "dedup_key"
        case payload, links
    }

    init?(_ event: WebhookEvent, routingKey: String) {
        let kind: String
        switch event.type {
        case .circuitOpened: (self.eventAction, kind) = ("trigger", "circuit")
        case .circuitClosed: (self.eventAction, kind) = ("resolve", "circuit")
        case .corruptionDetected: (self.eventAction, kind) = ("trigger", "integrity")
        case .dataLost, .dataCorrupted: (self.eventAction, kind) = ("trigger", "data")
        default: return nil
        }
        self.routingKey = routingKey
        self.dedupKey = "s3-canary/\(event.instance)/\(event.backend ?? "")/\(kind)"
        var details = ["instance": event.instance, "event_id": event.id]
        if let failures = event.consecutiveFailures { details["consecutive_failures"] = String(failures) }
        if let threshold = event.threshold { details["threshold"] = String(threshold) }
        if let error = event.lastError {
            details["last_error"] = "\(error.operation) \(error.reason): \(error.message)"
        }
        if let seconds = event.openDurationSeconds {
            details["open_duration_seconds"] = String(format: "%.1f", seconds)
        }
        for (name, value) in event.externalLabels where details[name] == nil { details[name] = value }
        self.payload = Payload(
            summary: String(PayloadFormat.summary(event).prefix(1024)),
            source: event.instance,
            severity: self.eventAction == "trigger" ? "critical" : "info",
            timestamp: PayloadFormat.rfc3339(event.time),
            component: event.backend,
            group: "s3-canary",
            class: kind == "circuit" ? "circuit_breaker" : "data_integrity",
            customDetails: details
        )
        self.links = [Link(href: event.statusURL, text: "s3-canary status")]
    }
}
