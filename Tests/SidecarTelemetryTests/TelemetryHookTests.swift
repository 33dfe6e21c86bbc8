import Foundation
import InMemoryLogging
import Logging
import ObjectStorage
import PrometheusExposition
import Synchronization
import Testing

@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig
@testable import SidecarEvents
@testable import SidecarTelemetry

/// A whole outage through a real breaker and the telemetry hook: every transition reaches the metrics, the board,
/// one `notice` log line with `breaker.*` keys and the event sinks, exactly as on-call has always seen them.
@Suite("Telemetry hook: one fan-out for breaker transitions")
struct TelemetryHookTests {
    final class Box<Value: Sendable>: Sendable {
        let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        var current: Value { self.value.withLock { $0 } }
    }

    @Test func anOutageFansOutToMetricsBoardLogAndEvents() async throws {
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "test", factory: { _ in logs })
        logger.logLevel = .debug
        let metrics = try CanaryMetrics(version: "test")
        let hook = TelemetryHook(
            metrics: metrics, board: StatusBoard(), logger: logger,
            origin: .init(instance: "replica-1", statusURL: "http://replica-1:9340/status")
        )
        let events = Box<[WebhookEvent]>([])
        hook.addSink { event in events.value.withLock { $0.append(event) } }
        hook.board.setBackends(["mem"])
        metrics.addBackend("mem", operations: ["put"], threshold: 2)

        let start = ContinuousClock.now
        let now = Box(start)
        let wall = Date(timeIntervalSince1970: 1_795_600_000)
        let store = MemoryBackend()
        let breaker = CircuitBreakerBackend(
            name: "mem", wrapping: store, configuration: .init(failureThreshold: 2, openTimeout: .seconds(30)),
            now: { now.current }, wallClock: { wall }, jitter: { 0 }, onTransition: { hook.breakerTransition($0) }
        )
        var probe = CanaryConfiguration.Probe()
        probe.operations = [.put, .delete]
        // Cycles on the real clock: deadlines no busy test process reaches.
        probe.interval = .seconds(600)
        probe.timeout = .seconds(60)
        let target = CanaryTarget(name: "mem", instance: "replica-1", probe: probe, backend: breaker)
        func cycle() async { _ = await CanaryCycle(target: target, clock: ContinuousClock(), now: { wall }).run() }

        store.failNext(3, status: 500, operations: [.put])
        await cycle()
        await cycle()  // the second failure opens the breaker
        now.value.withLock { $0 = start.advanced(by: .seconds(30)) }
        await cycle()  // the probing cycle fails: open again, a new open timeout
        now.value.withLock { $0 = start.advanced(by: .seconds(60)) }
        await cycle()  // the probing cycle succeeds: closed

        let expected: [(from: String, to: String)] = [
            ("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"),
            ("half_open", "closed"),
        ]
        // Metrics: one count per transition, the state gauge back at closed.
        #expect(metrics.breakerTransitions.value(["mem", "closed", "open"]) == 1)
        #expect(metrics.breakerTransitions.value(["mem", "open", "half_open"]) == 2)
        #expect(metrics.breakerTransitions.value(["mem", "half_open", "open"]) == 1)
        #expect(metrics.breakerTransitions.value(["mem", "half_open", "closed"]) == 1)
        #expect(metrics.breakerState.value(["mem"]) == 0)

        // Board: every transition, newest last, with the failure that caused it.
        let board = hook.board.transitions
        #expect(board.map { "\($0.from)->\($0.to)" } == expected.map { "\($0.from)->\($0.to)" })
        #expect(board.first?.consecutiveFailures == 2 && board.first?.threshold == 2)
        #expect(board.first?.lastError?.operation == "put" && board.first?.lastError?.reason == .http5xx)
        #expect(board.last?.openSeconds == 60)

        // Log: one notice line per transition with the breaker.* keys.
        let lines = logs.entries.filter { $0.message.description.hasPrefix("circuit breaker ") }
        #expect(lines.map(\.message.description) == expected.map { "circuit breaker \($0.from) -> \($0.to)" })
        #expect(lines.allSatisfy { $0.level == .notice })
        let opened = try #require(lines.first)
        #expect(
            Set(opened.metadata.keys) == [
                "canary.backend", "breaker.from", "breaker.to", "breaker.consecutive_failures", "breaker.threshold",
                "breaker.open_seconds", "breaker.last_error",
            ]
        )
        #expect(opened.metadata["canary.backend"] == "mem")
        #expect(opened.metadata["breaker.consecutive_failures"] == "2" && opened.metadata["breaker.threshold"] == "2")
        #expect(opened.metadata["breaker.open_seconds"] == "-")
        #expect(opened.metadata["breaker.last_error"]?.description.hasPrefix("put http_5xx: ") == true)
        #expect(lines.last?.metadata["breaker.open_seconds"] == "60.0")

        // Events: one outage is one `opened` and one `closed`; a failed probe re-opening it is not sent.
        let sent = events.current
        #expect(sent.map(\.type) == [.circuitOpened, .circuitHalfOpened, .circuitHalfOpened, .circuitClosed])
        let first = try #require(sent.first)
        #expect(
            first.instance == "replica-1" && first.backend == "mem" && first.statusURL == "http://replica-1:9340/status"
        )
        #expect(first.lastError?.operation == "put" && first.lastError?.reason == "http_5xx")
        #expect(first.consecutiveFailures == 2 && first.threshold == 2 && first.time == wall)
        #expect(sent.last?.openDurationSeconds == 60)
    }

    @Test func transitionsOfARemovedBackendAreDropped() throws {
        let metrics = try CanaryMetrics(version: "test")
        let hook = TelemetryHook(
            metrics: metrics, board: StatusBoard(),
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }),
            origin: .init(instance: "i", statusURL: "u")
        )
        let events = Box<[WebhookEvent]>([])
        hook.addSink { event in events.value.withLock { $0.append(event) } }
        let transition = CircuitBreakerBackend.Machine.Transition(
            from: .closed, to: .open, consecutiveFailures: 3, threshold: 3, openDuration: nil, lastFailure: nil
        )
        hook.breakerTransition(BreakerTransitionEvent(backend: "gone", transition: transition, at: Date()))
        #expect(events.current.isEmpty)
        #expect(metrics.breakerTransitions.value(["gone", "closed", "open"]) == nil, "no series brought back")
    }
}
