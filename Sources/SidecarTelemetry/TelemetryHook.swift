public import Foundation
public import Logging
public import ObjectStorage
import PrometheusExposition
public import SidecarBreaker
public import SidecarCanary
public import SidecarConfig
public import SidecarEvents
import Synchronization

/// The one place events fan out: a breaker transition, a finished cycle or a service event goes to metrics, the
/// status board, the log and every event sink (the webhook dispatcher), always the same way. The wiring only
/// connects sinks to it.
public final class TelemetryHook: Sendable {
    /// What every event carries about this instance, read when the event happens (a reload may change it).
    public struct Origin: Sendable, Equatable {
        var instance: String
        var statusURL: String
        /// Labels every event carries (the configuration's `external_labels`).
        var externalLabels: [String: String]

        /// The origin of this instance's events.
        public init(instance: String, statusURL: String, externalLabels: [String: String] = [:]) {
            self.instance = instance
            self.statusURL = statusURL
            self.externalLabels = externalLabels
        }
    }

    /// Every metric family events are recorded in.
    public let metrics: CanaryMetrics
    /// What `/status` shows.
    public let board: StatusBoard
    let logger: Logger
    private let origin: Mutex<Origin>
    private let sinks = Mutex<[@Sendable (WebhookEvent) -> Void]>([])

    /// A hook recording into `metrics` and `board`, its events stamped with `origin` until ``setOrigin(_:)``.
    public init(metrics: CanaryMetrics, board: StatusBoard, logger: Logger, origin: Origin) {
        self.metrics = metrics
        self.board = board
        self.logger = logger
        self.origin = Mutex(origin)
    }

    /// Where events say they come from from now on (the running configuration's instance and `/status` link).
    public func setOrigin(_ origin: Origin) {
        self.origin.withLock { $0 = origin }
    }

    var currentOrigin: Origin { self.origin.withLock { $0 } }

    /// Adds a receiver of every event (the webhook dispatcher, tests).
    public func addSink(_ sink: @escaping @Sendable (WebhookEvent) -> Void) {
        self.sinks.withLock { $0.append(sink) }
    }

    /// Sends `event` to every sink.
    func emit(_ event: WebhookEvent) {
        var event = event
        event.externalLabels = self.currentOrigin.externalLabels
        for sink in self.sinks.withLock({ $0 }) { sink(event) }
    }

    /// Sends a service-level event (`service.started`, `service.stopping`, `config.reload_failed`).
    public func emit(_ type: WebhookEventType, message: String? = nil) {
        let origin = self.currentOrigin
        self.emit(WebhookEvent(type: type, instance: origin.instance, message: message, statusURL: origin.statusURL))
    }

    /// A breaker changed state: gauge and counter, board, one `notice` line with `breaker.*` keys, and an event.
    ///
    /// One outage is one `opened` event: a failed half-open probe re-opening the breaker is not news to on-call, so
    /// it stays in metrics and logs only. Transitions of a backend a reload removed are dropped.
    public func breakerTransition(_ event: BreakerTransitionEvent) {
        guard self.board.contains(event.backend) else { return }
        self.metrics.record(event)
        self.board.record(event)
        let transition = event.transition
        self.logger.notice(
            "circuit breaker \(transition.from.rawValue) -> \(transition.to.rawValue)",
            metadata: [
                "canary.backend": "\(event.backend)",
                "breaker.from": "\(transition.from.rawValue)",
                "breaker.to": "\(transition.to.rawValue)",
                "breaker.consecutive_failures": "\(transition.consecutiveFailures)",
                "breaker.threshold": "\(transition.threshold)",
                "breaker.open_seconds": "\(transition.openDuration.map { String(format: "%.1f", $0.seconds) } ?? "-")",
                "breaker.last_error":
                    "\(transition.lastFailure.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" } ?? "-")",
            ]
        )
        guard !(transition.from == .halfOpen && transition.to == .open) else { return }
        let origin = self.currentOrigin
        self.emit(WebhookEvent(transition: event, instance: origin.instance, statusURL: origin.statusURL))
    }

    /// An announced outage ends without a transition: its backend was removed (by a reload, or from the
    /// configuration while a previous process had it open). The `closed` event says why; nothing else changes.
    public func outageEnded(backend: String, after open: Duration, message: String) {
        let origin = self.currentOrigin
        self.logger.notice(
            "outage closed: \(message)",
            metadata: [
                "canary.backend": "\(backend)", "breaker.open_seconds": "\(String(format: "%.1f", open.seconds))",
            ]
        )
        self.emit(
            WebhookEvent(
                type: .circuitClosed, instance: origin.instance, backend: backend,
                from: CircuitBreakerBackend.Machine.State.open.rawValue,
                to: CircuitBreakerBackend.Machine.State.closed.rawValue, openDurationSeconds: open.seconds,
                message: message, statusURL: origin.statusURL))
    }

    /// The `opened` event of an outage a previous process announced, rebuilt (same id and time) for the sinks that
    /// keep state rather than a history, such as the Alertmanager pusher; it is not emitted to the webhooks again.
    public func resumedOutageEvent(
        backend: String, since: Date, eventID: String, consecutiveFailures: Int, lastFailure: FailureSummary?
    ) -> WebhookEvent {
        let origin = self.currentOrigin
        var event = WebhookEvent(
            id: eventID, type: .circuitOpened, time: since, instance: origin.instance, backend: backend,
            from: CircuitBreakerBackend.Machine.State.closed.rawValue,
            to: CircuitBreakerBackend.Machine.State.open.rawValue, consecutiveFailures: consecutiveFailures,
            lastError: lastFailure.map {
                WebhookEvent.LastError(operation: $0.operation, reason: $0.reason.rawValue, message: $0.message)
            }, statusURL: origin.statusURL)
        event.externalLabels = origin.externalLabels
        return event
    }

    /// A cycle finished: metrics (with the breaker's live failure count), board, and an
    /// `integrity.corruption_detected` event when a read returned other bytes than were written. `drift` is how
    /// late a scheduled cycle started (`nil` for `/probe`). Results of a backend a reload removed are dropped, so
    /// its series do not come back.
    /// A request of a backend ended: its phases and TLS session to the metrics and the board; a new answer for
    /// the backend's name is logged.
    public func requestFinished(_ trace: RequestTrace, backend: String, at date: Date) {
        guard self.board.contains(backend) else { return }
        let (change, answer) = self.board.record(trace, backend: backend, at: date)
        self.metrics.record(trace, backend: backend, answer: answer)
        if let change { self.answerChanged(change, backend: backend, server: trace.resolution?.server) }
    }

    /// The backend's name resolves to another set of addresses: logged, since it explains a change of behaviour.
    private func answerChanged(_ change: (old: [String], new: [String]), backend: String, server: String?) {
        self.logger.info(
            "the backend's name resolves to other addresses",
            metadata: [
                "canary.backend": "\(backend)", "dns.old": "\(change.old.joined(separator: ","))",
                "dns.new": "\(change.new.joined(separator: ","))", "dns.server": "\(server ?? "-")",
            ])
    }

    /// An address of a backend's name started failing or works again: logged and sent as an event.
    private func addressChanged(_ change: NetworkStatus.AddressChange, backend: String) {
        let origin = self.currentOrigin
        self.logger.notice(
            change.up ? "address works again" : "address fails",
            metadata: [
                "canary.backend": "\(backend)", "canary.address": "\(change.address)",
                "canary.error": "\(change.failure.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" } ?? "-")",
            ])
        var event = WebhookEvent(
            type: change.up ? .addressRecovered : .addressFailing, instance: origin.instance, backend: backend,
            lastError: change.failure.map {
                WebhookEvent.LastError(operation: $0.operation, reason: $0.reason.rawValue, message: $0.message)
            }, statusURL: origin.statusURL)
        event.address = change.address
        self.emit(event)
    }

    public func cycleFinished(_ result: CycleResult, breaker: BreakerSnapshot, drift: Duration? = nil) {
        guard self.board.contains(result.backend) else { return }
        if let drift { self.metrics.scheduleDrift.observe([], max(drift.seconds, 0)) }
        self.metrics.record(result)
        self.metrics.record(breaker, backend: result.backend)
        let update = self.board.record(result)
        if let answer = update.answer {
            self.answerChanged(answer, backend: result.backend, server: result.addresses.resolution?.server)
        }
        for change in update.changes { self.addressChanged(change, backend: result.backend) }
        guard result.integrityFailure else { return }
        let origin = self.currentOrigin
        let step = result.steps.last { $0.reason == .integrity }
        self.emit(
            WebhookEvent(
                type: .corruptionDetected,
                instance: origin.instance,
                backend: result.backend,
                lastError: step.map {
                    .init(
                        operation: $0.operation.label, reason: FailureReason.integrity.rawValue,
                        message: $0.message ?? "")
                },
                message: step?.message,
                statusURL: origin.statusURL
            )
        )
    }
}
