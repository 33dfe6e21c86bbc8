import ObjectStorage

/// The circuit breaker's logic as a pure value: no clock reads, no randomness, no I/O.
///
/// Callers pass the current instant and a jitter draw in `0..<1`; the machine answers whether a call may go
/// through and, when a result changes its state, which transition happened. That makes every rule below
/// testable as a table under a test clock.
///
/// - Closed: calls pass. `failureThreshold` consecutive failures open it; any non-failure resets the count.
/// - Open: calls are rejected without I/O until `openTimeout` plus a jitter of up to `jitterFraction` of it
///   has passed; then the first call is admitted as the half-open probe.
/// - Half-open: only the probe is in flight; others are rejected. A non-failure closes the breaker, a failure
///   opens it again with a new timeout. When the probe is a canary cycle (admitted with a cycle id), the whole
///   cycle is the probe: its later calls are admitted too, and only the cycle's end decides, so a backend whose
///   PUT works but whose GET fails does not flap closed and open again. A probe in flight longer than
///   `probeTimeout` is abandoned: the breaker returns to open and the late result is ignored, so no breaker is
///   ever stuck half-open.
public struct CircuitBreaker<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// The breaker's rules: when it opens, and how long it stays open or half-open.
    public struct Configuration: Sendable, Equatable {
        var failureThreshold: Int
        /// How long the breaker stays open before it admits a half-open probe (plus jitter).
        public var openTimeout: Duration
        /// Up to this fraction of `openTimeout` is added at random, so breakers that tripped together do not
        /// all probe at the same instant.
        var jitterFraction: Double
        var probeTimeout: Duration

        /// Breaker settings; the sidecar passes the configured threshold and timeouts and keeps the default jitter.
        public init(
            failureThreshold: Int = 3,
            openTimeout: Duration = .seconds(30),
            jitterFraction: Double = 0.25,
            probeTimeout: Duration = .seconds(15)
        ) {
            self.failureThreshold = failureThreshold
            self.openTimeout = openTimeout
            self.jitterFraction = jitterFraction
            self.probeTimeout = probeTimeout
        }
    }

    /// The three breaker states; the raw values are the `from` and `to` label values.
    public enum State: String, Sendable, CaseIterable {
        case closed
        case open
        case halfOpen = "half_open"

        /// The value of `s3canary_circuit_breaker_state`.
        public var gaugeValue: Double {
            switch self {
            case .closed: 0
            case .open: 1
            case .halfOpen: 2
            }
        }
    }

    /// What the breaker says to a call about to start.
    public enum Admission: Sendable, Equatable {
        /// Go ahead; report the result with this ticket.
        case allowed(Ticket)
        /// Rejected without I/O: the breaker is open, or a half-open probe is already in flight.
        case rejected
    }

    /// Identifies an admitted call, so a result from an abandoned probe can be told apart.
    public struct Ticket: Sendable, Equatable {
        var generation: UInt64
        var isProbe: Bool
    }

    /// How a call ended, as the breaker counts it.
    public enum Outcome: Sendable, Equatable {
        case success
        /// A failure of the backend (connection, timeout, 5xx, 429, 401, 403, content mismatch).
        case failure(FailureSummary)
        /// Neither: the backend answered about one request (404, 412, 416...), or we cancelled the call.
        case neutral
        /// A non-failure inside a canary cycle: it leaves the count alone (so a backend whose GET always fails
        /// still trips although each cycle's PUT works) and does not close a half-open breaker. The cycle's end
        /// does both (``cycleEnded(_:failure:now:jitter:)``).
        case successKeepingCount
    }

    private(set) var configuration: Configuration
    private(set) var state: State = .closed
    private(set) var consecutiveFailures = 0
    private(set) var lastFailure: FailureSummary?
    /// When the current outage began (first closed → open), for the open duration reported on close.
    private var outageStartedAt: Instant?
    private var retryAt: Instant?
    private var probeStartedAt: Instant?
    /// What the half-open probe's first call was doing, for the failure an abandoned probe records.
    private var probeOperation: String?
    /// The canary cycle that is the half-open probe, if the probe came from one.
    private var probeCycle: UInt64?
    /// Bumped on every transition; tickets from an older generation no longer count.
    private var generation: UInt64 = 0

    /// A closed breaker with no failures counted.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// A breaker with new settings that continues `previous`'s state, so a reload that changes a backend's settings
    /// neither forgets an outage (leaving an `opened` event without its `closed`) nor reports a stale state. A probe
    /// in flight is forgotten: the breaker is open and probes again at once.
    init(configuration: Configuration, continuing previous: CircuitBreaker) {
        self = previous
        self.configuration = configuration
        self.generation &+= 1
        self.probeCycle = nil
        if previous.state == .halfOpen {
            self.state = .open
            self.retryAt = previous.probeStartedAt
            self.probeStartedAt = nil
        }
    }

    /// An open breaker that continues an outage a previous process announced (docs/design.md, 4.12): open since
    /// `outageStartedAt`, probing at `now`, so no second `opened` is sent and the `closed` that ends it reports the
    /// whole outage.
    init(
        configuration: Configuration, resumingOutageSince outageStartedAt: Instant, now: Instant,
        consecutiveFailures: Int, lastFailure: FailureSummary?
    ) {
        self.configuration = configuration
        self.state = .open
        self.outageStartedAt = outageStartedAt
        self.retryAt = now
        self.consecutiveFailures = consecutiveFailures
        self.lastFailure = lastFailure
    }

    /// How long the current outage has lasted at `now`; `nil` while closed.
    func outageDuration(at now: Instant) -> Duration? {
        guard self.state != .closed, let start = self.outageStartedAt else { return nil }
        return start.duration(to: now)
    }

    /// Decides whether a call may start now. May move open → half-open (the returned transition).
    /// `cycle` identifies the canary cycle making the call, if any; `operation` names what the call does, and is
    /// the operation an abandoned probe is reported under.
    public mutating func admit(
        now: Instant,
        jitter: Double,
        cycle: UInt64? = nil,
        operation: String? = nil
    ) -> (Admission, Transition?) {
        switch self.state {
        case .closed:
            return (.allowed(Ticket(generation: self.generation, isProbe: false)), nil)
        case .open:
            guard let retryAt = self.retryAt, now >= retryAt else { return (.rejected, nil) }
            let transition = self.move(to: .halfOpen, now: now)
            self.probeStartedAt = now
            self.probeCycle = cycle
            self.probeOperation = operation
            return (.allowed(Ticket(generation: self.generation, isProbe: true)), transition)
        case .halfOpen:
            if let started = self.probeStartedAt, started.duration(to: now) >= self.configuration.probeTimeout {
                // The probe never came back: give up on it and wait another open timeout.
                self.consecutiveFailures += 1
                self.lastFailure = FailureSummary(
                    operation: self.probeOperation ?? self.lastFailure?.operation ?? "probe",
                    reason: .timeout,
                    message: "half-open probe abandoned after \(self.configuration.probeTimeout)"
                )
                let transition = self.open(now: now, jitter: jitter)
                return (.rejected, transition)
            }
            if let cycle, cycle == self.probeCycle {
                return (.allowed(Ticket(generation: self.generation, isProbe: true)), nil)
            }
            return (.rejected, nil)
        }
    }

    /// Records how an admitted call ended. Returns the transition it caused, if any.
    public mutating func record(_ outcome: Outcome, ticket: Ticket, now: Instant, jitter: Double) -> Transition? {
        guard ticket.generation == self.generation else {
            // A call admitted before the last transition (an abandoned probe, a call in flight when the
            // breaker opened): its result describes a state that no longer exists.
            return nil
        }
        switch (self.state, outcome) {
        case (.closed, .failure(let failure)):
            self.consecutiveFailures += 1
            self.lastFailure = failure
            if self.consecutiveFailures >= self.configuration.failureThreshold {
                return self.open(now: now, jitter: jitter)
            }
            return nil
        case (.closed, .success), (.closed, .neutral):
            self.consecutiveFailures = 0
            return nil
        case (.closed, .successKeepingCount):
            return nil
        case (.halfOpen, .failure(let failure)) where ticket.isProbe:
            self.consecutiveFailures += 1
            self.lastFailure = failure
            return self.open(now: now, jitter: jitter)
        case (.halfOpen, .successKeepingCount):
            // One good call of a probing cycle proves nothing yet: the cycle's end decides.
            return nil
        case (.halfOpen, .success), (.halfOpen, .neutral):
            guard ticket.isProbe else { return nil }
            return self.close(now: now)
        case (.halfOpen, .failure), (.open, _):
            return nil
        }
    }

    /// Counts a failure found after the call itself succeeded (a content mismatch seen by the caller).
    mutating func recordLateFailure(_ failure: FailureSummary, now: Instant, jitter: Double) -> Transition? {
        switch self.state {
        case .closed:
            let ticket = Ticket(generation: self.generation, isProbe: false)
            return self.record(.failure(failure), ticket: ticket, now: now, jitter: jitter)
        case .halfOpen:
            let ticket = Ticket(generation: self.generation, isProbe: true)
            return self.record(.failure(failure), ticket: ticket, now: now, jitter: jitter)
        case .open:
            self.lastFailure = failure
            return nil
        }
    }

    /// A canary cycle ended: `failure` is `nil` when it succeeded as a whole. A success resets the count; the end
    /// of the cycle that is the half-open probe closes the breaker or opens it again.
    mutating func cycleEnded(_ cycle: UInt64, failure: FailureSummary?, now: Instant, jitter: Double) -> Transition? {
        switch self.state {
        case .closed:
            if failure == nil { self.consecutiveFailures = 0 }
            return nil
        case .halfOpen where self.probeCycle == cycle:
            guard let failure else { return self.close(now: now) }
            self.consecutiveFailures += 1
            self.lastFailure = failure
            return self.open(now: now, jitter: jitter)
        case .halfOpen, .open:
            return nil
        }
    }

    private mutating func close(now: Instant) -> Transition {
        let transition = self.move(to: .closed, now: now)
        self.consecutiveFailures = 0
        self.outageStartedAt = nil
        self.retryAt = nil
        self.probeStartedAt = nil
        self.probeCycle = nil
        return transition
    }

    /// When an open breaker will admit its probe.
    var nextProbeAt: Instant? { self.state == .open ? self.retryAt : nil }

    private mutating func open(now: Instant, jitter: Double) -> Transition {
        let transition = self.move(to: .open, now: now)
        if self.outageStartedAt == nil { self.outageStartedAt = now }
        let extra = self.configuration.openTimeout * (self.configuration.jitterFraction * min(max(jitter, 0), 1))
        self.retryAt = now.advanced(by: self.configuration.openTimeout + extra)
        self.probeStartedAt = nil
        self.probeCycle = nil
        return transition
    }

    private mutating func move(to newState: State, now: Instant) -> Transition {
        let transition = Transition(
            from: self.state,
            to: newState,
            consecutiveFailures: self.consecutiveFailures,
            threshold: self.configuration.failureThreshold,
            openDuration: newState == .closed ? self.outageStartedAt.map { $0.duration(to: now) } : nil,
            lastFailure: self.lastFailure
        )
        self.state = newState
        self.generation &+= 1
        return transition
    }

    /// A change of state, with the counts that caused it.
    public struct Transition: Sendable, Equatable {
        /// The state before.
        public var from: State
        /// The state after.
        public var to: State
        /// Consecutive failures counted when the transition happened.
        public var consecutiveFailures: Int
        /// The failure threshold in force.
        public var threshold: Int
        /// How long the backend was unavailable, on the transition back to closed.
        public var openDuration: Duration?
        /// The last failure counted, if any (why the breaker opened).
        public var lastFailure: FailureSummary?
    }
}

/// The last error a breaker counted, small and free of secrets: for logs, `/status` and webhooks.
public struct FailureSummary: Sendable, Equatable, Codable {
    /// The operation that failed, as the breaker was told it (a canary operation or an S3 call name).
    public var operation: String
    /// The failure's class: the `reason` label value.
    public var reason: FailureReason
    /// What went wrong, in the error's own words (short; never a request dump).
    public var message: String

    /// A summary of one failure.
    public init(operation: String, reason: FailureReason, message: String) {
        self.operation = operation
        self.reason = reason
        self.message = message
    }
}
