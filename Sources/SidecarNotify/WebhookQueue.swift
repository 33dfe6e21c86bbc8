import Logging
import PrometheusExposition
import SidecarConfig
import SidecarEvents
import SidecarTelemetry
import Synchronization

/// An event waiting for one receiver, with its rendered body.
struct QueuedEvent<Instant: InstantProtocol>: Sendable {
    var event: WebhookEvent
    var rendered: PayloadFormat.Rendered
    var enqueuedAt: Instant
    /// Its record in the durable outbox; `nil` without state_dir (or when storing it failed).
    var seq: Int64?
}

/// One webhook's queue: an `AsyncStream` that keeps the newest `queue_size` events. When full, the oldest is
/// dropped to make room (on-call cares most about the latest state) and counted; the depth is a gauge.
final class WebhookQueue<Instant: InstantProtocol>: Sendable {
    let webhook: WebhookConfiguration
    let events: AsyncStream<QueuedEvent<Instant>>
    private let sink: AsyncStream<QueuedEvent<Instant>>.Continuation
    private let depth = Atomic<Int>(0)
    private let metrics: CanaryMetrics
    private let logger: Logger

    init(_ webhook: WebhookConfiguration, metrics: CanaryMetrics, logger: Logger) {
        self.webhook = webhook
        self.metrics = metrics
        self.logger = logger
        (self.events, self.sink) = AsyncStream.makeStream(
            of: QueuedEvent<Instant>.self, bufferingPolicy: .bufferingNewest(max(1, webhook.queueSize)))
    }

    /// Queues `item`; returns the outbox record of an event it pushed out, for the outbox to forget.
    @discardableResult
    func enqueue(_ item: QueuedEvent<Instant>) -> Int64? {
        var displaced: Int64?
        switch self.sink.yield(item) {
        case .enqueued:
            self.depth.add(1, ordering: .relaxed)
        case .dropped(let oldest):
            // The new event is queued in the oldest one's place: the depth stays.
            self.drop(oldest.event, reason: .queueFull)
            displaced = oldest.seq
        case .terminated:
            self.drop(item.event, reason: .shutdown)
        @unknown default:
            self.drop(item.event, reason: .shutdown)
        }
        self.publishDepth()
        return displaced
    }

    /// A worker took an event off the queue.
    func taken() {
        self.depth.subtract(1, ordering: .relaxed)
        self.publishDepth()
    }

    /// No more events: the worker ends once it has taken what is queued.
    func finish() { self.sink.finish() }

    /// Counts and logs an event this receiver will never get.
    func drop(_ event: WebhookEvent, reason: DropReason, error: String? = nil) {
        self.metrics.webhookDropped.add([self.webhook.name, reason.rawValue])
        self.logger.warning(
            "webhook event dropped",
            metadata: [
                "webhook.name": "\(self.webhook.name)", "webhook.event": "\(event.type.rawValue)",
                "webhook.event_id": "\(event.id)", "webhook.reason": "\(reason.rawValue)",
                "webhook.error": "\(error ?? "-")",
            ]
        )
    }

    private func publishDepth() {
        self.metrics.webhookQueueDepth.set([self.webhook.name], Double(max(0, self.depth.load(ordering: .relaxed))))
    }
}
