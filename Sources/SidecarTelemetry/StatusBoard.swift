import Foundation
import ObjectStorage
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import Synchronization

/// What `/status`, `/readyz` and the status page show: per backend its last cycle and recent latencies, the
/// recent transitions, and whether the service is ready.
public final class StatusBoard: Sendable {
    public struct BackendStatus: Sendable {
        public var name: String
        public var lastCycle: CycleResult?
        public var lastSuccess: Date?
        /// Durations of recent cycles in seconds, oldest first (the status page's sparkline).
        public var recentDurations: [Double] = []
    }

    public struct TransitionRecord: Sendable, Codable, Equatable {
        public var backend: String
        public var from: String
        public var to: String
        public var at: Date
        public var consecutiveFailures: Int
        public var threshold: Int
        public var openSeconds: Double?
        public var lastError: FailureSummary?
    }

    struct State {
        var backends: [String: BackendStatus] = [:]
        var order: [String] = []
        var transitions: [TransitionRecord] = []
        var shuttingDown = false
    }

    static let maxTransitions = 50
    static let maxDurations = 60

    private let state = Mutex(State())

    public init() {}

    public func setBackends(_ names: [String]) {
        self.state.withLock { state in
            state.order = names
            state.backends = state.backends.filter { names.contains($0.key) }
            for name in names where state.backends[name] == nil {
                state.backends[name] = BackendStatus(name: name)
            }
        }
    }

    public func record(_ result: CycleResult) {
        self.state.withLock { state in
            guard var status = state.backends[result.backend] else { return }
            status.lastCycle = result
            if result.status == .success { status.lastSuccess = result.startedAt.addingTimeInterval(result.duration.seconds) }
            status.recentDurations.append(result.duration.seconds)
            if status.recentDurations.count > Self.maxDurations { status.recentDurations.removeFirst() }
            state.backends[result.backend] = status
        }
    }

    public func record(_ event: BreakerTransitionEvent) {
        let record = TransitionRecord(
            backend: event.backend,
            from: event.transition.from.rawValue,
            to: event.transition.to.rawValue,
            at: event.at,
            consecutiveFailures: event.transition.consecutiveFailures,
            threshold: event.transition.threshold,
            openSeconds: event.transition.openDuration?.seconds,
            lastError: event.transition.lastFailure
        )
        self.state.withLock { state in
            state.transitions.append(record)
            if state.transitions.count > Self.maxTransitions { state.transitions.removeFirst() }
        }
    }

    /// Whether `name` is a configured backend (results of a removed backend's last cycle are ignored).
    public func contains(_ name: String) -> Bool {
        self.state.withLock { $0.backends[name] != nil }
    }

    public func beginShutdown() {
        self.state.withLock { $0.shuttingDown = true }
    }

    public var isShuttingDown: Bool { self.state.withLock { $0.shuttingDown } }

    /// Ready once every backend finished a first cycle, and until shutdown begins.
    public var readiness: (ready: Bool, waitingFor: [String]) {
        self.state.withLock { state in
            let waiting = state.order.filter { state.backends[$0]?.lastCycle == nil }
            return (!state.shuttingDown && waiting.isEmpty, waiting)
        }
    }

    public var backends: [BackendStatus] {
        self.state.withLock { state in state.order.compactMap { state.backends[$0] } }
    }

    public var transitions: [TransitionRecord] {
        self.state.withLock { $0.transitions }
    }
}
