import Foundation
import ObjectStorage
import SidecarBreaker
import SidecarCanary
import SidecarConfig

/// One event, as every payload format renders it. Holds configured names and counts only: no URL, key or secret.
public struct WebhookEvent: Sendable, Equatable {
    public struct LastError: Sendable, Equatable, Codable {
        public var operation: String
        public var reason: String
        public var message: String
    }

    /// Unique per event, and the same on every delivery attempt (receivers deduplicate on it).
    public var id: String
    public var type: WebhookEventType
    public var time: Date
    public var instance: String
    public var backend: String?
    public var from: String?
    public var to: String?
    public var consecutiveFailures: Int?
    public var threshold: Int?
    /// How long the backend was unavailable, on `backend.circuit.closed`.
    public var openDurationSeconds: Double?
    public var lastError: LastError?
    public var message: String?
    public var statusURL: String

    public init(
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
    public init(transition event: BreakerTransitionEvent, instance: String, statusURL: String) {
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
