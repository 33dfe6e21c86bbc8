import Foundation
import Logging
import PrometheusExposition
import ServiceLifecycleTestKit
import Synchronization
import TestSupport
import Testing

@testable import SidecarConfig
@testable import SidecarEvents
@testable import SidecarNotify
@testable import SidecarTelemetry

/// A transport that answers from a script and records every attempt; past the script it repeats the last answer.
/// `gate` holds the first attempt until the test opens it (an event in flight).
final class ScriptedTransport: WebhookTransport {
    private let state: Mutex<(answers: [WebhookAnswer], attempts: [WebhookAttempt])>
    private let gate: Mutex<CheckedContinuation<Void, Never>?> = Mutex(nil)
    private let gated: Bool
    private let entered = Mutex<[CheckedContinuation<Void, Never>]>([])
    private let hasEntered = Mutex(false)

    init(_ answers: [WebhookAnswer], gated: Bool = false) {
        self.state = Mutex((answers, []))
        self.gated = gated
    }

    var attempts: [WebhookAttempt] { self.state.withLock { $0.attempts } }

    func send(_ attempt: WebhookAttempt) async -> WebhookAnswer {
        let (answer, first) = self.state.withLock { state -> (WebhookAnswer, Bool) in
            state.attempts.append(attempt)
            let answer = state.answers.count > 1 ? state.answers.removeFirst() : state.answers[0]
            return (answer, state.attempts.count == 1)
        }
        if self.gated && first {
            let waiters = self.entered.withLock { waiters in
                defer { waiters = [] }
                return waiters
            }
            self.hasEntered.withLock { $0 = true }
            for waiter in waiters { waiter.resume() }
            await withCheckedContinuation { continuation in self.gate.withLock { $0 = continuation } }
        }
        return answer
    }

    /// Returns once the first attempt is being held at the gate.
    func firstAttemptInFlight() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = self.hasEntered.withLock { $0 }
            if now { continuation.resume() } else { self.entered.withLock { $0.append(continuation) } }
        }
        // The gate's continuation is stored right after `hasEntered` is set; wait for it without real sleeps.
        while self.gate.withLock({ $0 == nil }) { await Task.yield() }
    }

    func open() { self.gate.withLock { $0 }?.resume() }

    func shutdown() async {}
}

/// The dispatcher under a manual clock and a scripted transport: retries, `Retry-After`, `max_age`, the drain and
/// a full queue, with no socket and no real waiting (each test takes milliseconds).
@Suite("Webhook dispatcher under a test clock", .timeLimit(.minutes(1)))
struct WebhookDispatcherTests {
    static func webhook(
        maxRetries: Int = 8, maxAge: Duration = .seconds(3600), queueSize: Int = 100
    ) -> WebhookConfiguration {
        var webhook = WebhookConfiguration(name: "w", url: "http://127.0.0.1:9/hook")
        webhook.maxRetries = maxRetries
        webhook.maxAge = maxAge
        webhook.queueSize = queueSize
        return webhook
    }

    static func event(_ id: String) -> WebhookEvent {
        WebhookEvent(
            id: id, type: .serviceStarted, time: Date(timeIntervalSince1970: 0), instance: "i",
            statusURL: "http://i/status")
    }

    struct Running {
        var dispatcher: WebhookDispatcher<ManualClock>
        var metrics: CanaryMetrics
        var clock: ManualClock
        var transport: ScriptedTransport
    }

    /// Runs `body` beside a running dispatcher, then shuts it down gracefully and waits for `run()` to return.
    static func withDispatcher(
        _ answers: [WebhookAnswer],
        webhook: WebhookConfiguration = Self.webhook(),
        gated: Bool = false,
        random: Double = 0,
        drainTimeout: Duration = .seconds(10),
        _ body: (Running) async throws -> Void,
        afterShutdown: (Running) async throws -> Void = { _ in }
    ) async throws {
        let clock = ManualClock()
        let metrics = try CanaryMetrics(version: "test")
        let transport = ScriptedTransport(answers, gated: gated)
        let dispatcher = WebhookDispatcher(
            webhooks: [webhook], metrics: metrics, logger: .init(label: "test"), clock: clock, transport: transport,
            drainTimeout: drainTimeout, random: { random }
        )
        let running = Running(dispatcher: dispatcher, metrics: metrics, clock: clock, transport: transport)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await dispatcher.run() }
                try await body(running)
                trigger.triggerGracefulShutdown()
                try await afterShutdown(running)
                try await group.waitForAll()
            }
        }
    }

    /// Moves the clock from one sleeper to the next until `done` holds; returns each step. Between steps it only
    /// yields, so the dispatcher's tasks run but no real time passes.
    static func advance(_ clock: ManualClock, until done: () -> Bool) async -> [Duration] {
        var steps: [Duration] = []
        while !done() {
            if clock.sleeperCount > 0 {
                steps.append(await clock.advanceToNextSleeper())
            } else {
                await Task.yield()
            }
        }
        return steps
    }

    static func dropped(_ metrics: CanaryMetrics, _ reason: DropReason) -> Double? {
        metrics.webhookDropped.value(["w", reason.rawValue])
    }

    @Test func failedAttemptsAreRetriedOnTheBackoffScheduleWithTheSameIdAndBody() async throws {
        try await Self.withDispatcher([.init(status: 500), .init(status: nil, failure: "refused"), .init(status: 200)])
        { running in
            running.dispatcher.publish(Self.event("e1"))
            // Equal jitter with a draw of 0: half of 1 s, then half of 2 s.
            #expect(await running.clock.advanceToNextSleeper() == .milliseconds(500))
            #expect(await running.clock.advanceToNextSleeper() == .seconds(1))
            while running.metrics.webhookDeliveries.value(["w", "service.started", "success"]) != 1 {
                await Task.yield()
            }
            let attempts = running.transport.attempts
            #expect(attempts.count == 3)
            #expect(Set(attempts.map(\.body)).count == 1, "every attempt sends the same body")
            let ids = attempts.map { attempt in attempt.headers.first { $0.0 == "webhook-id" }?.1 }
            #expect(ids == ["e1", "e1", "e1"])
            #expect(running.metrics.webhookDeliveries.value(["w", "service.started", "failure"]) == 2)
        }
    }

    @Test func retryAfterReplacesTheComputedDelay() async throws {
        try await Self.withDispatcher([.init(status: 503, retryAfter: .seconds(7)), .init(status: 200)]) { running in
            running.dispatcher.publish(Self.event("e1"))
            #expect(await running.clock.advanceToNextSleeper() == .seconds(7))
            while running.metrics.webhookDeliveries.value(["w", "service.started", "success"]) != 1 {
                await Task.yield()
            }
            #expect(running.transport.attempts.count == 2)
        }
    }

    @Test func eventsOlderThanMaxAgeAreDroppedAsExpired() async throws {
        // A draw of 1 waits the full backoff: 1, 2, 4, 8 s. After 15 s the event is older than its 10 s max age.
        try await Self.withDispatcher(
            [.init(status: 500)], webhook: Self.webhook(maxRetries: 100, maxAge: .seconds(10)), random: 1
        ) {
            running in
            running.dispatcher.publish(Self.event("e1"))
            let waited = await Self.advance(running.clock) { Self.dropped(running.metrics, .expired) == 1 }
            #expect(waited == [.seconds(1), .seconds(2), .seconds(4), .seconds(8)])
            #expect(running.transport.attempts.count == 4)
            #expect(Self.dropped(running.metrics, .retriesExhausted) == 0, "max age is not retries running out")
        }
    }

    @Test func exhaustedRetriesAreCountedAsSuch() async throws {
        try await Self.withDispatcher([.init(status: 500)], webhook: Self.webhook(maxRetries: 2)) { running in
            running.dispatcher.publish(Self.event("e1"))
            _ = await Self.advance(running.clock) { Self.dropped(running.metrics, .retriesExhausted) == 1 }
            #expect(running.transport.attempts.count == 3)
            #expect(Self.dropped(running.metrics, .expired) == 0)
        }
    }

    @Test func shutdownDrainsWithinTheDrainTimeoutThenDropsWhatIsLeft() async throws {
        // Draw 1: retries wait 1, 2, 4 s. Shutdown cuts the first wait short and allows 3 s: the second retry's
        // 2 s fit, the third's 4 s do not, so the event is dropped then.
        try await Self.withDispatcher([.init(status: 500)], random: 1, drainTimeout: .seconds(3)) { running in
            running.dispatcher.publish(Self.event("e1"))
            // The first attempt failed and the worker waits for its first retry when shutdown begins.
            while running.clock.sleeperCount == 0 { await Task.yield() }
        } afterShutdown: { running in
            // The drain cuts the 1 s wait short; the second attempt fails at once and waits 2 s, which fit.
            while running.clock.sleeperDeadlines != [.seconds(2)] { await Task.yield() }
            let waited = await Self.advance(running.clock) { Self.dropped(running.metrics, .shutdown) == 1 }
            #expect(waited == [.seconds(2)])
            #expect(running.transport.attempts.count == 3, "one attempt before shutdown, two while draining")
        }
    }

    @Test func aFullQueueDropsItsOldestEvent() async throws {
        try await Self.withDispatcher([.init(status: 200)], webhook: Self.webhook(queueSize: 3), gated: true) {
            running in
            running.dispatcher.publish(Self.event("e0"))
            await running.transport.firstAttemptInFlight()
            for index in 1...5 { running.dispatcher.publish(Self.event("e\(index)")) }
            #expect(Self.dropped(running.metrics, .queueFull) == 2)
            running.transport.open()
            while running.metrics.webhookDeliveries.value(["w", "service.started", "success"]) != 4 {
                await Task.yield()
            }
            let ids = running.transport.attempts.map { attempt in
                attempt.headers.first { $0.0 == "webhook-id" }?.1 ?? ""
            }
            #expect(ids == ["e0", "e3", "e4", "e5"], "the newest three wait; e1 and e2 made room")
        }
    }
}
