import Foundation
import Yams

/// `webhooks[]`: one receiver of breaker-transition events.
public enum WebhookKey: String, ConfigSectionKey {
    case name, url, format, events, secret
    case routingKey = "routing_key"
    case timeout
    case maxRetries = "max_retries"
    case maxAge = "max_age"
    case queueSize = "queue_size"
    case headers

    public static let section = "webhooks[]"
    public static let summary =
        "One receiver of signed events, with its own queue and retries; a slow one never delays another."

    public var spec: ConfigKeySpec {
        switch self {
        case .name: .init(.string, required: true, "A short unique name, the receiver label of the delivery metrics.")
        case .url:
            .init(
                .string, required: true, secret: true,
                "The receiver's http(s) URL; never shown, as URLs may carry tokens.")
        case .format:
            .init(
                .choice(WebhookConfiguration.Format.allCases.map(\.rawValue)), default: "cloudevents",
                "The payload's shape.")
        case .events:
            .init(
                .list("event types, *, or a prefix ending in *"), default: "[\"*\"]",
                "The events to deliver: " + WebhookEventType.allCases.map(\.rawValue).joined(separator: ", ") + ".")
        case .secret: .init(.string, secret: true, "Signs each delivery (Standard Webhooks); unsigned without it.")
        case .routingKey:
            .init(.string, secret: true, "The PagerDuty integration's routing key; required with format pagerduty.")
        case .timeout:
            .init(
                .duration(min: .milliseconds(100), max: .seconds(120)), default: "5s",
                "Each delivery attempt's deadline.")
        case .maxRetries:
            .init(
                .integer(0...100), default: "8",
                "Attempts after the first, with exponential backoff (Retry-After is honoured).")
        case .maxAge:
            .init(
                .duration(min: .seconds(1), max: .seconds(86_400 * 7)), default: "10m",
                "An event older than this is dropped and counted, not delivered.")
        case .queueSize:
            .init(
                .integer(1...100_000), default: "100",
                "Events waiting for this receiver; when full the oldest is dropped and counted.")
        case .headers:
            .init(.mapping("header name to value"), "Extra request headers; not the ones s3-canary sets itself.")
        }
    }
}

extension Reader {
    /// A webhook as read; the resolution pass fills its URL and secrets at `webhooks[index]`.
    mutating func webhook(_ node: Node, _ path: String, index: Int) -> WebhookConfiguration {
        guard let map = self.section(node, path, WebhookKey.self) else {
            return WebhookConfiguration(name: "", url: "")
        }
        var name = ""
        if let v = self.string(map, .name) {
            if Self.isSafeName(v) {
                name = v
            } else {
                self.problem(map.path(.name), "\"\(v)\" may hold only letters, digits, -, _ and .")
            }
        } else if !map.has(.name) {
            self.problem(map.path(.name), "is missing; give the webhook a short name such as oncall")
        }
        var webhook = WebhookConfiguration(name: name, url: "")
        if let (source, sourcePath) = self.secretSource(map, .url) {
            self.resolveLater(source, sourcePath) { reader, configuration, url in
                // Never echo the URL: it may carry a token.
                guard Self.httpURL(url) != nil else {
                    reader.problem(
                        map.path(.url), "is not an http(s) URL (the value is not shown: URLs may carry tokens)")
                    return
                }
                configuration.webhooks[index].url = url
            }
        } else if !map.has(.url) {
            self.problem(map.path(.url), "is missing; give the receiver's URL (or url_file / url_env)")
        }
        if let v = self.choice(map, .format), let format = WebhookConfiguration.Format(rawValue: v) {
            webhook.format = format
        }
        if let (n, p) = map[.events], let items = self.list(n, p) {
            var events: [String] = []
            for (item, itemPath) in items {
                guard let text = self.string(item, itemPath) else { continue }
                if WebhookEventType.isValidFilter(text) {
                    events.append(text)
                } else {
                    let names = WebhookEventType.allCases.map(\.rawValue).joined(separator: ", ")
                    self.problem(
                        itemPath, "\"\(text)\" matches no event (events: \(names); or *, or a prefix ending in *)")
                }
            }
            if items.isEmpty { self.problem(p, "is empty; list the events to deliver, or * for all") }
            webhook.events = events
        }
        if let (source, sourcePath) = self.secretSource(map, .secret) {
            self.resolveLater(source, sourcePath) { _, configuration, secret in
                configuration.webhooks[index].secret = secret
            }
        }
        if let (source, sourcePath) = self.secretSource(map, .routingKey) {
            self.resolveLater(source, sourcePath) { _, configuration, key in
                configuration.webhooks[index].routingKey = key
            }
        } else if webhook.format == .pagerduty && !map.has(.routingKey) {
            self.problem(
                map.path(.routingKey),
                "is missing; PagerDuty needs the integration's routing key (routing_key_file or routing_key_env)")
        }
        if let v = self.duration(map, .timeout) { webhook.timeout = v }
        if let v = self.integer(map, .maxRetries) { webhook.maxRetries = v }
        if let v = self.duration(map, .maxAge) { webhook.maxAge = v }
        if let v = self.integer(map, .queueSize) { webhook.queueSize = v }
        if let (n, p) = map[.headers] {
            webhook.headers = self.headers(n, p)
        }
        return webhook
    }

    /// A webhook's extra headers: valid names, single-line values, none that s3-canary sets itself.
    private mutating func headers(_ node: Node, _ path: String) -> [String: String] {
        guard case .mapping(let pairs) = node else {
            self.problem(path, "must be a mapping of header names to values")
            return [:]
        }
        let reserved = [
            "content-type", "content-length", "host", "webhook-id", "webhook-timestamp", "webhook-signature",
            "x-webhook-signature",
        ]
        var headers: [String: String] = [:]
        for (keyNode, valueNode) in pairs {
            guard case .scalar(let key) = keyNode else { continue }
            let headerPath = "\(path).\(key.string)"
            if key.string.isEmpty
                || !key.string.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            {
                self.problem(headerPath, "is not a valid header name")
            } else if reserved.contains(key.string.lowercased()) {
                self.problem(headerPath, "is set by s3-canary itself; remove it")
            } else if let value = self.string(valueNode, headerPath) {
                if value.contains(where: { $0 == "\r" || $0 == "\n" }) {
                    self.problem(headerPath, "must be a single line")
                } else {
                    headers[key.string] = value
                }
            }
        }
        return headers
    }
}
