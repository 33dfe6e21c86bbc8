import Foundation
import SidecarConfig
import Testing

@testable import SidecarBreaker
@testable import SidecarEvents

/// The event model: a breaker transition becomes the event every payload renders, with the counts and the failure
/// that caused it, and nothing else.
@Suite("Events from breaker transitions")
struct WebhookEventTests {
    typealias Transition = CircuitBreaker<ContinuousClock.Instant>.Transition

    static func event(_ transition: Transition) -> WebhookEvent {
        WebhookEvent(
            transition: BreakerTransitionEvent(
                backend: "ceph-a", transition: transition, at: Date(timeIntervalSince1970: 1_700_000_000)),
            instance: "canary-1", statusURL: "http://canary-1:9340/status")
    }

    @Test(arguments: [
        (
            CircuitBreakerBackend.Machine.State.closed, CircuitBreakerBackend.Machine.State.open,
            WebhookEventType.circuitOpened
        ),
        (.open, .halfOpen, .circuitHalfOpened),
        (.halfOpen, .closed, .circuitClosed),
        (.halfOpen, .open, .circuitOpened),
    ])
    func theTargetStateNamesTheEvent(
        from: CircuitBreakerBackend.Machine.State, to: CircuitBreakerBackend.Machine.State, type: WebhookEventType
    ) {
        let event = Self.event(
            Transition(from: from, to: to, consecutiveFailures: 3, threshold: 3, openDuration: nil, lastFailure: nil))
        #expect(event.type == type)
        #expect(event.from == from.rawValue && event.to == to.rawValue)
        #expect(event.backend == "ceph-a" && event.instance == "canary-1")
        #expect(event.time == Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test func theFailureAndTheOutageTravelWithTheEvent() {
        let failure = FailureSummary(operation: "get", reason: .integrity, message: "read 3 bytes, wrote 4")
        let opened = Self.event(
            Transition(
                from: .closed, to: .open, consecutiveFailures: 3, threshold: 3, openDuration: nil,
                lastFailure: failure))
        #expect(opened.lastError == .init(operation: "get", reason: "integrity", message: "read 3 bytes, wrote 4"))
        #expect(opened.consecutiveFailures == 3 && opened.threshold == 3)
        #expect(opened.openDurationSeconds == nil)

        let closed = Self.event(
            Transition(
                from: .halfOpen, to: .closed, consecutiveFailures: 0, threshold: 3,
                openDuration: .milliseconds(42_500), lastFailure: nil))
        #expect(closed.openDurationSeconds == 42.5)
        #expect(closed.lastError == nil)
        // Each event is its own: receivers deduplicate on the id.
        #expect(opened.id != closed.id)
    }
}
