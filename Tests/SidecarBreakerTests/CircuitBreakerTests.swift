import ObjectStorage
import TestSupport
import Testing

@testable import SidecarBreaker
@testable import SidecarConfig

/// The breaker's transition table, under a clock that only moves when the test says so.
@Suite("Circuit breaker state machine")
struct CircuitBreakerTests {
    typealias Breaker = CircuitBreaker<ManualClock.Instant>
    static let configuration = Breaker.Configuration(
        failureThreshold: 3, openTimeout: .seconds(30), jitterFraction: 0.25, probeTimeout: .seconds(10)
    )
    static let failureSummary = FailureSummary(operation: "PutObject", reason: .http5xx, message: "503")
    static let failure = Breaker.Outcome.failure(failureSummary)

    static func at(_ seconds: Double) -> ManualClock.Instant { ManualClock.Instant(offset: .seconds(seconds)) }

    /// Admits one call at `t` and records `outcome` at `t`.
    static func call(
        _ breaker: inout Breaker, _ outcome: Breaker.Outcome, at t: Double, jitter: Double = 0, cycle: UInt64? = nil
    )
        -> (admitted: Bool, transitions: [Breaker.Transition])
    {
        let (admission, admitTransition) = breaker.admit(now: Self.at(t), jitter: jitter, cycle: cycle)
        guard case .allowed(let ticket) = admission else { return (false, admitTransition.map { [$0] } ?? []) }
        let recorded = breaker.record(outcome, ticket: ticket, now: Self.at(t), jitter: jitter)
        return (true, [admitTransition, recorded].compactMap { $0 })
    }

    @Test func opensAfterThresholdConsecutiveFailures() {
        var breaker = Breaker(configuration: Self.configuration)
        #expect(Self.call(&breaker, Self.failure, at: 0).transitions.isEmpty)
        #expect(Self.call(&breaker, Self.failure, at: 1).transitions.isEmpty)
        #expect(breaker.consecutiveFailures == 2)
        let third = Self.call(&breaker, Self.failure, at: 2)
        #expect(third.transitions.map(\.to) == [.open])
        #expect(third.transitions.first?.from == .closed)
        // The counts that caused the trip travel with the transition and stay readable.
        #expect(third.transitions.first?.consecutiveFailures == 3)
        #expect(third.transitions.first?.threshold == 3)
        #expect(third.transitions.first?.lastFailure?.reason == .http5xx)
        #expect(breaker.state == .open && breaker.consecutiveFailures == 3)
    }

    @Test(arguments: [Breaker.Outcome.success, .neutral])
    func anyNonFailureResetsTheCount(outcome: Breaker.Outcome) {
        var breaker = Breaker(configuration: Self.configuration)
        _ = Self.call(&breaker, Self.failure, at: 0)
        _ = Self.call(&breaker, Self.failure, at: 1)
        _ = Self.call(&breaker, outcome, at: 2)
        #expect(breaker.consecutiveFailures == 0)
        _ = Self.call(&breaker, Self.failure, at: 3)
        _ = Self.call(&breaker, Self.failure, at: 4)
        #expect(breaker.state == .closed)
    }

    @Test func openRejectsWithoutIOUntilTheTimeout() {
        var breaker = Self.opened(at: 0)
        #expect(!Self.call(&breaker, .success, at: 1).admitted)
        #expect(!Self.call(&breaker, .success, at: 30.0).admitted)  // tripped at 0.002: not yet
        let probe = Self.call(&breaker, .success, at: 30.01)
        #expect(probe.admitted)
        #expect(probe.transitions.map(\.to) == [.halfOpen, .closed])
        #expect(breaker.state == .closed && breaker.consecutiveFailures == 0)
    }

    static func opened(at t: Double, jitter: Double = 0) -> Breaker {
        var breaker = Breaker(configuration: Self.configuration)
        for i in 0..<3 { _ = Self.call(&breaker, Self.failure, at: t + Double(i) * 0.001, jitter: jitter) }
        return breaker
    }

    @Test(arguments: [0.0, 0.5, 0.999])
    func jitterDelaysTheProbeByUpToAQuarter(jitter: Double) {
        var breaker = Self.opened(at: 0, jitter: jitter)
        let earliest = 0.002 + 30 + 30 * 0.25 * jitter
        #expect(breaker.nextProbeAt != nil)
        #expect(!Self.call(&breaker, .success, at: earliest - 0.01).admitted)
        #expect(Self.call(&breaker, .success, at: earliest + 0.001).admitted)
        #expect(earliest <= 0.002 + 37.5)
    }

    @Test func jitterOutOfRangeIsClamped() {
        var breaker = Self.opened(at: 0, jitter: 7)
        #expect(!Self.call(&breaker, .success, at: 37.0).admitted)
        #expect(Self.call(&breaker, .success, at: 37.6).admitted)
    }

    @Test func exactlyOneCallIsAdmittedWhileHalfOpen() {
        var breaker = Self.opened(at: 0)
        let (first, transition) = breaker.admit(now: Self.at(31), jitter: 0)
        #expect(transition?.to == .halfOpen)
        guard case .allowed(let ticket) = first else {
            Issue.record("the probe was not admitted")
            return
        }
        #expect(ticket.isProbe)
        for t in stride(from: 31.0, to: 40.0, by: 0.5) {
            #expect(breaker.admit(now: Self.at(t), jitter: 0).0 == .rejected)
        }
        #expect(breaker.record(.success, ticket: ticket, now: Self.at(40), jitter: 0)?.to == .closed)
    }

    @Test func failedProbeReopensWithANewTimeout() {
        var breaker = Self.opened(at: 0)
        let probe = Self.call(&breaker, Self.failure, at: 31)
        #expect(probe.transitions.map(\.to) == [.halfOpen, .open])
        #expect(breaker.consecutiveFailures == 4)
        #expect(!Self.call(&breaker, .success, at: 60).admitted)
        #expect(Self.call(&breaker, .success, at: 61.1).admitted)
    }

    @Test func neutralProbeClosesTheBreaker() {
        var breaker = Self.opened(at: 0)
        #expect(Self.call(&breaker, .neutral, at: 31).transitions.map(\.to) == [.halfOpen, .closed])
    }

    @Test func staleProbeIsAbandonedAndItsLateResultIgnored() {
        var breaker = Self.opened(at: 0)
        guard case (.allowed(let staleTicket), _) = breaker.admit(now: Self.at(31), jitter: 0) else {
            Issue.record("the probe was not admitted")
            return
        }
        #expect(breaker.admit(now: Self.at(40.9), jitter: 0).0 == .rejected)
        #expect(breaker.state == .halfOpen)
        let (admission, transition) = breaker.admit(now: Self.at(41), jitter: 0)
        #expect(admission == .rejected)
        #expect(transition?.from == .halfOpen && transition?.to == .open)
        #expect(breaker.state == .open)
        #expect(transition?.lastFailure?.reason == .timeout)
        // The abandoned probe answers at last: its success must not close the breaker.
        #expect(breaker.record(.success, ticket: staleTicket, now: Self.at(42), jitter: 0) == nil)
        #expect(breaker.state == .open)
        // A new probe after another open timeout works as usual.
        #expect(Self.call(&breaker, .success, at: 71.1).transitions.map(\.to) == [.halfOpen, .closed])
    }

    @Test func resultsOfCallsAdmittedBeforeATripAreIgnored() {
        var breaker = Breaker(configuration: Self.configuration)
        guard case (.allowed(let early), _) = breaker.admit(now: Self.at(0), jitter: 0) else { return }
        for i in 1...3 { _ = Self.call(&breaker, Self.failure, at: Double(i)) }
        #expect(breaker.state == .open)
        #expect(breaker.record(.success, ticket: early, now: Self.at(4), jitter: 0) == nil)
        #expect(breaker.state == .open && breaker.consecutiveFailures == 3)
    }

    @Test func closeReportsHowLongTheOutageLasted() {
        var breaker = Self.opened(at: 100)
        _ = Self.call(&breaker, Self.failure, at: 131)  // probe fails: still the same outage
        let close = Self.call(&breaker, .success, at: 170)
        let closed = close.transitions.last
        #expect(closed?.to == .closed)
        let seconds = closed?.openDuration?.seconds ?? 0
        #expect(abs(seconds - 69.998) < 0.000_001)
    }

    /// A restart during an outage (state_dir): the new breaker starts open, probes at once, sends no `opened`
    /// (its first transition is open → half-open), and the `closed` reports the whole outage, restart included.
    @Test func aResumedOutageProbesAtOnceAndItsCloseCoversTheWholeOutage() {
        var breaker = Breaker(
            configuration: Self.configuration, resumingOutageSince: Self.at(-500), now: Self.at(0),
            consecutiveFailures: 3, lastFailure: Self.failureSummary)
        #expect(breaker.state == .open)
        #expect(breaker.outageDuration(at: Self.at(10)) == .seconds(510))
        let failed = Self.call(&breaker, Self.failure, at: 0)
        #expect(failed.transitions.map(\.to) == [.halfOpen, .open])
        #expect(!failed.transitions.contains { $0.from == .closed })
        let closed = Self.call(&breaker, .success, at: 40).transitions.last
        #expect(closed?.to == .closed)
        #expect(closed?.openDuration == .seconds(540))
        #expect(breaker.outageDuration(at: Self.at(41)) == nil)
    }

    @Test func lateFailureCountsLikeAnyOther() {
        var breaker = Breaker(configuration: Self.configuration)
        let integrity = FailureSummary(operation: "get", reason: .integrity, message: "bytes differ")
        #expect(breaker.recordLateFailure(integrity, now: Self.at(0), jitter: 0) == nil)
        #expect(breaker.recordLateFailure(integrity, now: Self.at(1), jitter: 0) == nil)
        #expect(breaker.recordLateFailure(integrity, now: Self.at(2), jitter: 0)?.to == .open)
        #expect(breaker.lastFailure?.reason == .integrity)
    }

    @Test func insideACycleNonFailuresKeepTheCountUntilTheCycleSucceeds() {
        var breaker = Breaker(configuration: Self.configuration)
        for t in 0..<3 {
            // Each cycle: PUT works, GET fails. Per call, the PUT would reset the count and nothing would trip.
            let cycle = UInt64(t)
            _ = Self.call(&breaker, .successKeepingCount, at: Double(t) * 10, cycle: cycle)
            _ = Self.call(&breaker, Self.failure, at: Double(t) * 10 + 1, cycle: cycle)
            _ = breaker.cycleEnded(cycle, failure: Self.failureSummary, now: Self.at(Double(t) * 10 + 2), jitter: 0)
        }
        #expect(breaker.state == .open && breaker.consecutiveFailures == 3)
        // The probing cycle's PUT works: still half-open, and its GET is admitted as part of the probe.
        #expect(Self.call(&breaker, .successKeepingCount, at: 60, cycle: 7).transitions.map(\.to) == [.halfOpen])
        #expect(Self.call(&breaker, .successKeepingCount, at: 60.1, cycle: 8).admitted == false, "another cycle waits")
        // Its GET fails: open again, once, without a detour through closed.
        #expect(Self.call(&breaker, Self.failure, at: 60.2, cycle: 7).transitions.map(\.to) == [.open])
        #expect(breaker.cycleEnded(7, failure: Self.failureSummary, now: Self.at(60.3), jitter: 0) == nil)
        // The next probing cycle works as a whole: only its end closes the breaker.
        #expect(Self.call(&breaker, .successKeepingCount, at: 120, cycle: 9).transitions.map(\.to) == [.halfOpen])
        #expect(Self.call(&breaker, .successKeepingCount, at: 120.1, cycle: 9).transitions.isEmpty)
        #expect(breaker.cycleEnded(9, failure: nil, now: Self.at(120.2), jitter: 0)?.to == .closed)
        _ = Self.call(&breaker, Self.failure, at: 121, cycle: 10)
        #expect(breaker.consecutiveFailures == 1)
        _ = breaker.cycleEnded(10, failure: nil, now: Self.at(122), jitter: 0)
        #expect(breaker.consecutiveFailures == 0)
    }

    @Test func aProbingCycleThatFailsWithoutABackendFailureOpensAgain() {
        var breaker = Breaker(configuration: Self.configuration)
        for t in 0..<3 { _ = Self.call(&breaker, Self.failure, at: Double(t)) }
        #expect(Self.call(&breaker, .successKeepingCount, at: 60, cycle: 1).transitions.map(\.to) == [.halfOpen])
        // A 404 where the object must be is neutral per call, but the cycle failed: the backend is not proven.
        let notFound = FailureSummary(operation: "GetObject", reason: .notFound, message: "gone")
        #expect(breaker.cycleEnded(1, failure: notFound, now: Self.at(60.5), jitter: 0)?.to == .open)
        #expect(breaker.lastFailure == notFound)
    }

    @Test func aCallOutsideACycleStillProbesAlone() {
        var breaker = Breaker(configuration: Self.configuration)
        for t in 0..<3 { _ = Self.call(&breaker, Self.failure, at: Double(t)) }
        #expect(Self.call(&breaker, .success, at: 60).transitions.map(\.to) == [.halfOpen, .closed])
    }

    @Test func aReplacedBreakerContinuesTheOutage() {
        var breaker = Breaker(configuration: Self.configuration)
        for t in 0..<3 { _ = Self.call(&breaker, Self.failure, at: Double(t)) }
        var settings = Self.configuration
        settings.failureThreshold = 5
        var next = Breaker(configuration: settings, continuing: breaker)
        #expect(next.state == .open && next.consecutiveFailures == 3 && next.lastFailure == Self.failureSummary)
        #expect(next.configuration.failureThreshold == 5)
        // It still closes with one transition when the backend is back: the outage gets its `closed`.
        let probe = Self.call(&next, .success, at: 60)
        #expect(probe.transitions.map(\.to) == [.halfOpen, .closed])
        #expect(probe.transitions.last?.openDuration != nil)
        // A probe in flight at the reload is dropped; the new breaker probes again at once.
        var probing = Breaker(configuration: Self.configuration)
        for t in 0..<3 { _ = Self.call(&probing, Self.failure, at: Double(t)) }
        _ = probing.admit(now: Self.at(60), jitter: 0)
        #expect(probing.state == .halfOpen)
        var replaced = Breaker(configuration: Self.configuration, continuing: probing)
        #expect(replaced.state == .open)
        #expect(Self.call(&replaced, .success, at: 60.5).transitions.map(\.to) == [.halfOpen, .closed])
    }

    @Test func gaugeValues() {
        #expect(Breaker.State.closed.gaugeValue == 0)
        #expect(Breaker.State.open.gaugeValue == 1)
        #expect(Breaker.State.halfOpen.gaugeValue == 2)
    }
}

@Suite("Failure classification (docs/design.md, 4.1)")
struct ErrorClassificationTests {
    static func http(_ status: Int, _ code: String? = nil) -> ObjectStorageError {
        ObjectStorageError(code: status == 404 ? .notFound : .httpError, httpStatus: status, s3Code: code, message: "")
    }

    @Test(arguments: [
        (http(500), FailureReason.http5xx, true),
        (http(503, "SlowDown"), .throttled, true),
        (http(429), .throttled, true),
        (http(401), .auth, true),
        (http(403, "SignatureDoesNotMatch"), .auth, true),
        (http(404, "NoSuchKey"), .notFound, false),
        (http(412), .http4xx, false),
        (http(416, "InvalidRange"), .http4xx, false),
        (http(400), .http4xx, false),
        (ObjectStorageError(code: .timeout, message: ""), .timeout, true),
        (ObjectStorageError(code: .connection, message: ""), .connection, true),
        (ObjectStorageError(code: .dns, message: ""), .dns, true),
        (ObjectStorageError(code: .tls, message: ""), .tls, true),
        (ObjectStorageError(code: .invalidResponse, message: ""), .other, true),
        (ObjectStorageError(code: .credentials, message: ""), .other, true),
    ])
    func storageErrors(error: ObjectStorageError, reason: FailureReason, failure: Bool) {
        let classification = ErrorClassification.classify(error)
        #expect(classification.reason == reason)
        #expect(classification.isBackendFailure == failure)
        #expect(!classification.isRejection)
        // Wrapped in a copy error, it counts the same.
        #expect(ErrorClassification.classify(CopyError(phase: .write, underlying: error)) == classification)
    }

    @Test func integrityIsAFailure() {
        let classification = ErrorClassification.classify(IntegrityError(operation: "get", message: "differs"))
        #expect(classification.reason == .integrity && classification.isBackendFailure)
    }

    @Test func ourCancellationIsNobodysFailure() {
        for error: any Error in [CancellationError(), ObjectStorageError(code: .cancelled, message: "")] {
            let classification = ErrorClassification.classify(error)
            #expect(classification.reason == nil && !classification.isBackendFailure)
        }
    }

    @Test func rejectionIsNeitherAFailureNorAnError() {
        let classification = ErrorClassification.classify(ObjectStorageError(code: .backendUnavailable, message: ""))
        #expect(classification.isRejection && !classification.isBackendFailure && classification.reason == nil)
    }
}
