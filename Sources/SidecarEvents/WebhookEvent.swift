public import Foundation
import ObjectStorage
package import SidecarBreaker
public import SidecarConfig

/// One event, as every payload format renders it. Holds configured names and counts only: no URL, key or secret.
public struct WebhookEvent: Sendable, Equatable {
    /// The failure behind an event, as payloads carry it.
    public struct LastError: Sendable, Equatable, Codable {
        /// The operation that failed.
        public var operation: String
        /// The failure's class (a ``FailureReason`` raw value).
        public var reason: String
        /// The error's own words.
        public var message: String

        public init(operation: String, reason: String, message: String) {
            self.operation = operation
            self.reason = reason
            self.message = message
        }
    }

    /// Unique per event, and the same on every delivery attempt (receivers deduplicate on it).
    public var id: String
    /// What happened.
    public var type: WebhookEventType
    /// When it happened.
    public var time: Date
    /// The instance that saw it.
    public var instance: String
    /// The backend concerned; `nil` for service events.
    public var backend: String?
    /// The address of an `address.*` event.
    public var address: String?
    /// The breaker state before, on breaker events.
    public var from: String?
    /// The breaker state after, on breaker events.
    public var to: String?
    /// Consecutive failures counted, on breaker events.
    public var consecutiveFailures: Int?
    /// The breaker's failure threshold, on breaker events.
    public var threshold: Int?
    /// How long the backend was unavailable, on `backend.circuit.closed`.
    public var openDurationSeconds: Double?
    /// The failure behind the event, if any.
    public var lastError: LastError?
    /// A human-readable line, such as why a reload failed.
    public var message: String?
    /// Link to this instance's `/status`.
    public var statusURL: String
    /// The configuration's `external_labels` (such as `cluster`, `location`), stamped on by the telemetry hook.
    public var externalLabels: [String: String] = [:]

    /// An event with every field given (the defaults: a new id, now).
    package init(
        id: String = UUID().uuidString.lowercased(),
        type: WebhookEventType,
        time: Date = Date(),
        instance: String,
        backend: String? = nil,
        from: String? = nil,
        to: String? = nil,
        consecutiveFailures: Int? = nil,
        threshold: Int? = nil,
        openDurationSeconds: Double? = nil,
        lastError: LastError? = nil,
        message: String? = nil,
        statusURL: String
    ) {
        self.id = id
        self.type = type
        self.time = time
        self.instance = instance
        self.backend = backend
        self.from = from
        self.to = to
        self.consecutiveFailures = consecutiveFailures
        self.threshold = threshold
        self.openDurationSeconds = openDurationSeconds
        self.lastError = lastError
        self.message = message
        self.statusURL = statusURL
    }

    /// The event of a breaker transition.
    package init(transition event: BreakerTransitionEvent, instance: String, statusURL: String) {
        let transition = event.transition
        let type: WebhookEventType
        switch transition.to {
        case .open: type = .circuitOpened
        case .halfOpen: type = .circuitHalfOpened
        case .closed: type = .circuitClosed
        }
        self.init(
            type: type,
            time: event.at,
            instance: instance,
            backend: event.backend,
            from: transition.from.rawValue,
            to: transition.to.rawValue,
            consecutiveFailures: transition.consecutiveFailures,
            threshold: transition.threshold,
            openDurationSeconds: transition.openDuration?.seconds,
            lastError: transition.lastFailure.map {
                LastError(operation: $0.operation, reason: $0.reason.rawValue, message: $0.message)
            },
            statusURL: statusURL
        )
    }
}
