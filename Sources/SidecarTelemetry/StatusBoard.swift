public import Foundation
import ObjectStorage
public import SidecarBreaker
public import SidecarCanary
public import SidecarConfig
import Synchronization

/// What `/status`, `/readyz` and the status page show: per backend its last cycle and recent latencies, the
/// recent transitions, and whether the service is ready.
public final class StatusBoard: Sendable {
    /// One backend as `/status` and the status page show it.
    public struct BackendStatus: Sendable {
        /// The configured name of the backend.
        public var name: String
        /// The last finished cycle; `nil` before the first.
        public var lastCycle: CycleResult?
        /// When the last successful cycle ended.
        public var lastSuccess: Date?
        /// Durations of recent cycles in seconds, oldest first (the status page's sparkline).
        public var recentDurations: [Double] = []
        /// Latencies of each operation's recent steps that reached the backend, oldest first (at most
        /// ``StatusBoard/maxLatencies`` each): the status page's percentiles, Prometheus-independent.
        public var recentLatencies: [String: [Double]] = [:]
        /// The last cycles, oldest first (at most ``StatusBoard/maxMarks``): the status page's availability bar.
        public var recentCycles: [CycleMark] = []
        /// Cycles by result since the backend was added (or since start), and when the first of them started: the
        /// availability the page shows, with its span.
        public var totals = Totals()
        /// The backend's objectives (empty: none).
        public var slo = SLOConfiguration()
        /// The last verdict of each feature operation the backend runs, in cycle order.
        public var features: [FeatureStatus] = []
        /// The name's answer and each address's phases, TLS session and verdict.
        public var network = NetworkStatus()
        /// The durability corpus's last report (`durability:`); `nil`: none, or not read yet.
        public var durability: DurabilityReport?
    }

    /// A feature's last verdict and its evidence, as `/status`, the status page and `s3-canary compat` show it.
    public struct FeatureStatus: Sendable, Codable, Equatable {
        /// The feature (its operation's name).
        public var feature: String
        /// `ok`, `unsupported`, `failing` or `corrupting`.
        public var verdict: FeatureVerdict
        /// When the cycle that gave it started.
        public var at: Date
        /// Since when the feature has had this verdict (the first cycle that gave it, in this process).
        public var since: Date
        /// What the server answered, when the verdict is not `ok`; for `ok`, evidence that is not a failure (a
        /// multipart ETag of another form), if any.
        public var message: String?
        /// The HTTP status and S3 error code of the deciding answer, when not `ok`.
        public var httpStatus: Int?
        public var s3Code: String?
        /// The request id of the deciding request.
        public var requestID: String?

        /// The verdict of `step` (a feature operation's step that ran), given at `at`.
        public init?(_ step: StepResult, at: Date, previous: FeatureStatus? = nil) {
            guard let verdict = step.verdict else { return nil }
            self.feature = step.operation.label
            self.verdict = verdict
            self.at = at
            self.since = previous?.verdict == verdict ? previous?.since ?? at : at
            self.message = step.message
            self.httpStatus = step.httpStatus
            self.s3Code = step.s3Code
            self.requestID = step.requestID
        }
    }

    /// One cycle as a mark of the availability bar.
    public struct CycleMark: Sendable, Codable, Equatable {
        /// When the cycle started.
        public var at: Date
        /// `success`, `failure` or `skipped`.
        public var status: String
        /// How long it took.
        public var seconds: Double
        /// The operation that failed and why, when it failed.
        public var operation: String?
        public var reason: String?
        /// The request id of the failed operation's request (none when it got no answer), or of the cycle's last
        /// request when it succeeded.
        public var requestID: String?
    }

    /// Counts since a backend was added: cycles by result, and each operation's steps that reached the backend.
    public struct Totals: Sendable, Equatable {
        /// When the first counted cycle started; `nil` before it.
        public var since: Date?
        public var success = 0
        public var failure = 0
        public var skipped = 0
        /// Per operation: its steps that reached the backend.
        public var operations: [String: OperationTotals] = [:]

        public var cycles: Int { self.success + self.failure + self.skipped }
    }

    /// An operation's steps that reached the backend (success or error) since the backend was added.
    public struct OperationTotals: Sendable, Equatable {
        public var steps = 0
        public var successes = 0
        /// Successful steps slower than the operation's latency objective allows (only with an objective).
        public var misses = 0

        public init() {}
    }

    /// One breaker transition as `/status` lists it.
    public struct TransitionRecord: Sendable, Codable, Equatable {
        /// The configured name of the backend.
        public var backend: String
        /// The state before.
        public var from: String
        /// The state after.
        public var to: String
        /// Wall-clock time of the transition.
        public var at: Date
        /// Consecutive failures counted at the transition.
        public var consecutiveFailures: Int
        /// The failure threshold in force.
        public var threshold: Int
        var openSeconds: Double?
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
    /// Marks kept per backend for the availability bar: the last 60 cycles, 15 minutes at the default interval.
    public static let maxMarks = 60
    /// Recent latencies kept per operation: the last 100 steps, about 25 minutes at the default 15 s interval.
    public static let maxLatencies = 100

    private let state = Mutex(State())

    /// An empty board, with no backends yet.
    public init() {}

    /// Sets the configured backends, in order; keeps what is known of those that stay.
    public func setBackends(_ names: [String]) {
        self.state.withLock { state in
            state.order = names
            state.backends = state.backends.filter { names.contains($0.key) }
            for name in names where state.backends[name] == nil {
                state.backends[name] = BackendStatus(name: name)
            }
        }
    }

    /// Records what the last check of a backend's durability corpus found.
    func record(durability report: DurabilityReport) {
        self.state.withLock { state in
            state.backends[report.backend]?.durability = report
        }
    }

    /// Records a cycle; returns what it changed of the backend's addresses (`addresses: all`).
    @discardableResult
    func record(_ result: CycleResult) -> NetworkStatus.Update {
        self.state.withLock { state in
            guard var status = state.backends[result.backend] else { return NetworkStatus.Update() }
            let changes = status.network.record(result.addresses, at: result.startedAt + result.duration.seconds)
            status.lastCycle = result
            if result.status == .success {
                status.lastSuccess = result.startedAt.addingTimeInterval(result.duration.seconds)
            }
            status.recentDurations.append(result.duration.seconds)
            if status.recentDurations.count > Self.maxDurations { status.recentDurations.removeFirst() }
            let failed = result.steps.last { $0.result == .error || $0.result == .rejected }
            status.recentCycles.append(
                CycleMark(
                    at: result.startedAt, status: result.status.rawValue, seconds: result.duration.seconds,
                    operation: failed?.operation.label ?? result.failure?.operation,
                    reason: failed?.reason?.rawValue ?? result.failure?.reason.rawValue,
                    // A failed cycle names its failed request's id or none: another request's id would send the
                    // vendor after the wrong request.
                    requestID: result.status == .success
                        ? result.steps.last { $0.requestID != nil }?.requestID : failed?.requestID
                ))
            if status.recentCycles.count > Self.maxMarks { status.recentCycles.removeFirst() }
            if status.totals.since == nil { status.totals.since = result.startedAt }
            switch result.status {
            case .success: status.totals.success += 1
            case .failure: status.totals.failure += 1
            case .skipped: status.totals.skipped += 1
            }
            for step in result.steps where step.result == .success || step.result == .error {
                var counts = status.totals.operations[step.operation.label] ?? OperationTotals()
                counts.steps += 1
                if step.result == .success {
                    counts.successes += 1
                    if let threshold = status.slo.latency[step.operation]?.threshold.seconds,
                        let seconds = step.seconds,
                        seconds > threshold
                    {
                        counts.misses += 1
                    }
                }
                status.totals.operations[step.operation.label] = counts
            }
            for step in result.steps {
                let previous = status.features.firstIndex { $0.feature == step.operation.label }
                guard
                    let verdict = FeatureStatus(
                        step, at: result.startedAt, previous: previous.map { status.features[$0] })
                else { continue }
                if let previous {
                    status.features[previous] = verdict
                } else {
                    status.features.append(verdict)
                    let order = CanaryConfiguration.Operation.allCases.map(\.label)
                    status.features.sort {
                        (order.firstIndex(of: $0.feature) ?? 0) < (order.firstIndex(of: $1.feature) ?? 0)
                    }
                }
            }
            for step in result.steps where step.result != .rejected && step.result != .unsupported {
                guard let seconds = step.seconds else { continue }
                status.recentLatencies[step.operation.label, default: []].append(seconds)
                if status.recentLatencies[step.operation.label, default: []].count > Self.maxLatencies {
                    status.recentLatencies[step.operation.label]?.removeFirst()
                }
            }
            state.backends[result.backend] = status
            return changes
        }
    }

    /// Records a request's address, phases and TLS session; returns the name's old and new answer when it changed,
    /// and the addresses of the last answer.
    func record(
        _ trace: RequestTrace, backend: String, at date: Date
    ) -> (change: (old: [String], new: [String])?, answer: [String]?) {
        self.state.withLock { state in
            let change = state.backends[backend]?.network.record(trace, at: date)
            return (change, state.backends[backend]?.network.resolution?.addresses)
        }
    }

    func record(_ event: BreakerTransitionEvent) {
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

    /// Sets a backend's objectives (at start-up and on every reload that changes the backend).
    public func setObjectives(_ slo: SLOConfiguration, backend name: String) {
        self.state.withLock { $0.backends[name]?.slo = slo }
    }

    /// Whether `name` is a configured backend (results of a removed backend's last cycle are ignored).
    public func contains(_ name: String) -> Bool {
        self.state.withLock { $0.backends[name] != nil }
    }

    /// Marks the service as shutting down, so `/readyz` fails from now on.
    public func beginShutdown() {
        self.state.withLock { $0.shuttingDown = true }
    }

    /// Whether graceful shutdown has begun.
    public var isShuttingDown: Bool { self.state.withLock { $0.shuttingDown } }

    /// Ready once every backend finished a first cycle, and until shutdown begins.
    public var readiness: (ready: Bool, waitingFor: [String]) {
        self.state.withLock { state in
            let waiting = state.order.filter { state.backends[$0]?.lastCycle == nil }
            return (!state.shuttingDown && waiting.isEmpty, waiting)
        }
    }

    /// Every configured backend, in configuration order.
    public var backends: [BackendStatus] {
        self.state.withLock { state in state.order.compactMap { state.backends[$0] } }
    }

    /// The most recent transitions, oldest first.
    public var transitions: [TransitionRecord] {
        self.state.withLock { $0.transitions }
    }
}
