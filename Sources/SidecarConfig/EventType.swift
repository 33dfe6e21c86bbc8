/// The event names webhooks subscribe to (docs/design.md, "Events"): the one place they are spelled.
public enum WebhookEventType: String, Sendable, CaseIterable, Codable {
    case circuitOpened = "backend.circuit.opened"
    /// Delivered only to webhooks that name it exactly: a probe starting is rarely worth a notification.
    case circuitHalfOpened = "backend.circuit.half_opened"
    case circuitClosed = "backend.circuit.closed"
    case corruptionDetected = "integrity.corruption_detected"
    /// With `addresses: all`, an address of the backend's name failed its cycle: the first time, or after it worked
    /// (whether or not the others work; when none does, the breaker's events say so too).
    case addressFailing = "address.failing"
    /// That address works again.
    case addressRecovered = "address.recovered"
    /// Objects of the backend's durability corpus are gone (found missing for the first time).
    case dataLost = "data.lost"
    /// Objects of the corpus read back with other bytes (found so for the first time).
    case dataCorrupted = "data.corrupted"
    case serviceStarted = "service.started"
    case serviceStopping = "service.stopping"
    case reloadFailed = "config.reload_failed"

    /// Whether a webhook's `events` filter (exact names, `*`, or a trailing `*` prefix) selects this event.
    public func matches(_ filters: [String]) -> Bool {
        filters.contains { filter in
            if filter == self.rawValue { return true }
            if self == .circuitHalfOpened { return false }
            if filter == "*" { return true }
            if filter.hasSuffix("*") { return self.rawValue.hasPrefix(String(filter.dropLast())) }
            return false
        }
    }

    /// Whether `filter` can ever match an event (for config validation).
    static func isValidFilter(_ filter: String) -> Bool {
        if filter == "*" { return true }
        if filter.hasSuffix("*") { return Self.allCases.contains { $0.rawValue.hasPrefix(String(filter.dropLast())) } }
        return Self(rawValue: filter) != nil
    }
}
