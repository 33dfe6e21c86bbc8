public import Foundation
public import NIOCore
public import ObjectStorage
import Synchronization

/// A breaker transition of one backend, as metrics, logs, the status board and webhooks receive it.
public struct BreakerTransitionEvent: Sendable, Equatable {
    /// The configured name of the backend.
    public var backend: String
    /// What changed, with the counts that caused it.
    public var transition: CircuitBreaker<ContinuousClock.Instant>.Transition
    /// Wall-clock time of the transition.
    public var at: Date

    init(backend: String, transition: CircuitBreaker<ContinuousClock.Instant>.Transition, at: Date) {
        self.backend = backend
        self.transition = transition
        self.at = at
    }
}

/// An outage a previous process announced and did not close, to continue (docs/design.md, 4.12).
public struct ResumedOutage: Sendable, Equatable {
    /// When the breaker opened, wall-clock.
    public var since: Date
    public var consecutiveFailures: Int
    public var lastFailure: FailureSummary?

    /// An outage from its parts.
    public init(since: Date, consecutiveFailures: Int, lastFailure: FailureSummary?) {
        self.since = since
        self.consecutiveFailures = consecutiveFailures
        self.lastFailure = lastFailure
    }
}

/// What a breaker looks like right now, for `/status` and gauges.
public struct BreakerSnapshot: Sendable, Equatable {
    /// The current state.
    public var state: CircuitBreaker<ContinuousClock.Instant>.State
    /// Consecutive failures counted so far.
    public var consecutiveFailures: Int
    /// Failures that open the breaker.
    public var threshold: Int
    /// The last failure counted, if any.
    public var lastFailure: FailureSummary?
}

/// An ``ObjectBackend`` decorator that sends every call through a ``CircuitBreaker``.
///
/// While open, calls fail at once with ``ObjectStorageError/Code/backendUnavailable`` and touch no socket, so a
/// dead backend costs nothing and recovers through a single probe. Copy is forwarded when the wrapped backend
/// can copy; otherwise it throws ``ObjectStorageError/Code/copyNotSupported`` (not counted as a failure).
public final class CircuitBreakerBackend: ObjectBackend, BackendCopier {
    /// The breaker state machine, on the monotonic clock.
    public typealias Machine = CircuitBreaker<ContinuousClock.Instant>

    let name: String
    private let wrapped: any ObjectBackend
    private let machine: Mutex<Machine>
    private let now: @Sendable () -> ContinuousClock.Instant
    private let wallClock: @Sendable () -> Date
    private let jitter: @Sendable () -> Double
    private let onTransition: @Sendable (BreakerTransitionEvent) -> Void

    /// A breaker named `name` around `backend`, closed unless it continues `previous`.
    ///
    /// - Parameters:
    ///   - now: the monotonic clock the breaker's timeouts run on (tests move it by hand).
    ///   - jitter: a draw in `0..<1` for the open-timeout jitter.
    ///   - previous: the breaker this one replaces after a reload; its state carries over.
    ///   - onTransition: called after each transition, outside the breaker's lock.
    public init(
        name: String,
        wrapping backend: any ObjectBackend,
        configuration: Machine.Configuration,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        wallClock: @escaping @Sendable () -> Date = { Date() },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        continuing previous: CircuitBreakerBackend? = nil,
        resuming outage: ResumedOutage? = nil,
        onTransition: @escaping @Sendable (BreakerTransitionEvent) -> Void
    ) {
        self.name = name
        self.wrapped = backend
        if let previous {
            self.machine = Mutex(Machine(configuration: configuration, continuing: previous.machine.withLock { $0 }))
        } else if let outage {
            // The outage's start on the monotonic clock: as long ago as the wall clock says it was.
            let current = now()
            let elapsed = max(0, wallClock().timeIntervalSince(outage.since))
            self.machine = Mutex(
                Machine(
                    configuration: configuration,
                    resumingOutageSince: current.advanced(by: .milliseconds(Int64(-elapsed * 1000))), now: current,
                    consecutiveFailures: outage.consecutiveFailures, lastFailure: outage.lastFailure))
        } else {
            self.machine = Mutex(Machine(configuration: configuration))
        }
        self.now = now
        self.wallClock = wallClock
        self.jitter = jitter
        self.onTransition = onTransition
    }

    /// The backend this breaker guards, for work that must not count (cleanup of leftovers).
    public func unwrap() -> any ObjectBackend { self.wrapped }

    /// Where the guarded backend would like its callers to run, if it says.
    public var preferredExecutor: (any TaskExecutor)? {
        (self.wrapped as? any ExecutorPreferringBackend)?.preferredExecutor
    }

    /// The breaker's state and counts right now.
    public var snapshot: BreakerSnapshot {
        self.machine.withLock { machine in
            BreakerSnapshot(
                state: machine.state,
                consecutiveFailures: machine.consecutiveFailures,
                threshold: machine.configuration.failureThreshold,
                lastFailure: machine.lastFailure
            )
        }
    }

    /// How long the current outage has lasted; `nil` while closed (a reload that removes an open backend closes it).
    public var outageDuration: Duration? {
        let now = self.now()
        return self.machine.withLock { $0.outageDuration(at: now) }
    }

    /// The settings the breaker runs with.
    public var configuration: Machine.Configuration { self.machine.withLock { $0.configuration } }

    private static let cycleCounter = Atomic<UInt64>(0)

    /// Starts a canary cycle: the calls made through the returned view belong to it, so non-failures inside it
    /// do not reset the failure count and, when it is the half-open probe, all its calls are admitted and only
    /// its end decides (``CircuitBreaker/Outcome/successKeepingCount``). The identity is passed explicitly, never
    /// through a task-local, so what the breaker decides depends only on its arguments.
    public func beginCycle() -> CycleCalls {
        CycleCalls(breaker: self, id: Self.cycleCounter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// One canary cycle's calls through the breaker, each named by the canary operation it belongs to.
    public struct CycleCalls: Sendable {
        let breaker: CircuitBreakerBackend
        /// Unique in this process.
        let id: UInt64

        /// Whether the guarded backend can copy (a cycle records copy as skipped otherwise).
        public var canCopy: Bool { self.breaker.wrapped is any BackendCopier }

        /// Sends `body` to the guarded backend as part of this cycle; failures are recorded under `operation`.
        public func call<T: Sendable>(
            _ operation: String,
            _ body: @Sendable (any ObjectBackend) async throws -> T
        ) async throws -> T {
            let wrapped = self.breaker.wrapped
            return try await self.breaker.guarded(operation, cycle: self.id) { try await body(wrapped) }
        }

        /// Copies through the guarded backend; throws ``ObjectStorageError/Code/copyNotSupported`` (not counted)
        /// when it cannot.
        public func copy<T: Sendable>(
            _ operation: String,
            _ body: @Sendable (any BackendCopier) async throws -> T
        ) async throws -> T {
            guard let copier = self.breaker.wrapped as? any BackendCopier else {
                throw ObjectStorageError.copyNotSupported()
            }
            return try await self.breaker.guarded(operation, cycle: self.id) { try await body(copier) }
        }

        /// Whether the guarded backend speaks the S3 features the compatibility operations check.
        public var hasFeatures: Bool { self.breaker.wrapped is any FeatureBackend }

        /// Sends `body` to the guarded backend's S3 features as part of this cycle (check ``hasFeatures`` first;
        /// without them this throws ``ObjectStorageError/Code/invalidRequest``, which is not counted).
        public func feature<T: Sendable>(
            _ operation: String,
            _ body: @Sendable (any FeatureBackend) async throws -> T
        ) async throws -> T {
            guard let features = self.breaker.wrapped as? any FeatureBackend else {
                throw ObjectStorageError(
                    code: .invalidRequest, operation: operation, message: "this backend has no S3 features")
            }
            return try await self.breaker.guarded(operation, cycle: self.id) { try await body(features) }
        }

        /// Counts a failure the cycle found itself rather than in a request's outcome: bytes that differ from what
        /// was written, a step or the whole cycle out of time, a compatibility feature that fails.
        public func fail(_ failure: FailureSummary) { self.breaker.recordCycleFailure(failure) }

        /// The cycle ended: see ``CircuitBreakerBackend/reportCycleEnded(_:failure:)``.
        public func end(failure: FailureSummary?) { self.breaker.reportCycleEnded(self.id, failure: failure) }
    }

    /// A cycle ended (`failure` is `nil` when it succeeded as a whole): resets the count, or decides a half-open
    /// probe that this cycle is.
    func reportCycleEnded(_ cycle: UInt64, failure: FailureSummary?) {
        let (now, jitter) = (self.now(), self.jitter())
        let transition = self.machine.withLock { $0.cycleEnded(cycle, failure: failure, now: now, jitter: jitter) }
        self.emit(transition)
    }

    /// Counts a failure a cycle found itself (``CycleCalls/fail(_:)``). The breaker's state has one writer: this
    /// decorator, fed by the outcomes of the requests it forwards and by the cycles it hands out; nothing else
    /// reaches the state machine.
    fileprivate func recordCycleFailure(_ failure: FailureSummary) {
        let (now, jitter) = (self.now(), self.jitter())
        let transition = self.machine.withLock { $0.recordLateFailure(failure, now: now, jitter: jitter) }
        self.emit(transition)
    }

    private func emit(_ transition: Machine.Transition?) {
        guard let transition else { return }
        self.onTransition(BreakerTransitionEvent(backend: self.name, transition: transition, at: self.wallClock()))
    }

    private func guarded<T: Sendable>(
        _ operation: String,
        cycle: UInt64? = nil,
        _ body: () async throws -> T
    ) async throws -> T {
        let (now, jitter) = (self.now(), self.jitter())
        let (admission, admitTransition) = self.machine.withLock {
            $0.admit(now: now, jitter: jitter, cycle: cycle, operation: operation)
        }
        self.emit(admitTransition)
        guard case .allowed(let ticket) = admission else {
            throw ObjectStorageError(
                code: .backendUnavailable,
                operation: operation,
                message: "circuit breaker of \(self.name) is open; the call was not sent"
            )
        }
        let outcome: Machine.Outcome
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
            outcome = cycle != nil ? .successKeepingCount : .success
        } catch {
            result = .failure(error)
            let classification = ErrorClassification.classify(error)
            if classification.reason == nil && !classification.isRejection {
                // Cancelled by us (shutdown, or a deadline the caller reports itself): the backend said nothing,
                // so the breaker learns nothing. A cancelled probe is cleared by the stale-probe rule.
                throw error
            }
            if classification.isBackendFailure {
                outcome = .failure(
                    FailureSummary(
                        operation: operation,
                        reason: classification.reason ?? .other,
                        message: Self.message(of: error)
                    )
                )
            } else {
                outcome = cycle != nil ? .successKeepingCount : .neutral
            }
        }
        let (end, endJitter) = (self.now(), self.jitter())
        let transition = self.machine.withLock { $0.record(outcome, ticket: ticket, now: end, jitter: endJitter) }
        self.emit(transition)
        return try result.get()
    }

    /// A short message for status and events: the error's own words, never a request dump.
    package static func message(of error: any Error) -> String {
        switch error {
        case let error as ObjectStorageError: String(error.description.prefix(300))
        case let error as CopyError: String(error.description.prefix(300))
        default: String(String(describing: error).prefix(300))
        }
    }

    // MARK: - ObjectBackend

    /// Forwards `HeadObject` through the breaker.
    public func headObject(key: String) async throws -> HeadObjectResult {
        try await self.guarded("HeadObject") { try await self.wrapped.headObject(key: key) }
    }

    /// Forwards `PutObject` through the breaker.
    public func putObject(
        key: String, body: ByteBuffer, contentType: String?, metadata: [String: String]
    )
        async throws -> PutObjectResult
    {
        try await self.guarded("PutObject") {
            try await self.wrapped.putObject(key: key, body: body, contentType: contentType, metadata: metadata)
        }
    }

    /// Forwards `GetObject` through the breaker.
    public func getObject(key: String, range: String?) async throws -> GetObjectResult {
        try await self.guarded("GetObject") { try await self.wrapped.getObject(key: key, range: range) }
    }

    /// Forwards `DeleteObject` through the breaker.
    @discardableResult
    public func deleteObject(key: String) async throws -> DeleteObjectResult {
        try await self.guarded("DeleteObject") { try await self.wrapped.deleteObject(key: key) }
    }

    /// Lists through the breaker as one call: the pages are collected first, then handed to `page`.
    public func listObjects(
        prefix: String,
        pageSize: Int,
        page: (ListObjectsPage) async throws -> Bool
    ) async throws {
        // The whole listing is one call to the breaker: pages of one listing succeed or fail together.
        let pages = try await self.guarded("ListObjectsV2") { () async throws -> [ListObjectsPage] in
            var pages: [ListObjectsPage] = []
            try await self.wrapped.listObjects(prefix: prefix, pageSize: pageSize) { page in
                pages.append(page)
                return true
            }
            return pages
        }
        for listed in pages {
            guard try await page(listed) else { return }
        }
    }

    /// Forwards `CopyObject` through the breaker when the wrapped backend can copy.
    public func copyObject(
        source: String, destination: String, contentType: String?, metadata: [String: String]?
    )
        async throws -> CopyObjectResult
    {
        guard let copier = self.wrapped as? any BackendCopier else {
            throw ObjectStorageError.copyNotSupported()
        }
        return try await self.guarded("CopyObject") {
            try await copier.copyObject(
                source: source,
                destination: destination,
                contentType: contentType,
                metadata: metadata
            )
        }
    }
}
