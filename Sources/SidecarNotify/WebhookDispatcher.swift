public import Foundation
public import Logging
import ObjectStorage
import PrometheusExposition
public import ServiceLifecycle
import SidecarCanary
public import SidecarConfig
public import SidecarEvents
public import SidecarState
public import SidecarTelemetry
import Synchronization

/// Delivers events to webhooks. Its one job is routing: each event goes to the queue of every webhook that
/// subscribed to it (``WebhookQueue``), through the durable outbox first when there is one (``EventOutbox``), and a
/// worker per queue hands it to ``WebhookDelivery``, which retries. A slow or dead receiver delays only its own queue
/// and never the probes (publishing never waits).
///
/// Delivery is at least once, in order per webhook (so per backend), with the same id and body on every attempt. A
/// payload that cannot be encoded is never queued (`unencodable`). On graceful shutdown pending events are delivered
/// within `drainTimeout`; what is left then is dropped (`shutdown`) and, with an outbox, kept for the next start.
/// All waiting is on `clock`, so tests drive retries, `Retry-After`, `max_age` and the drain with a manual clock.
public final class WebhookDispatcher<C: Clock>: Service where C.Duration == Duration {
    private let queues: [WebhookQueue<C.Instant>]
    private let signers: [WebhookSigner?]
    private let delivery: WebhookDelivery<C>
    private let outbox: EventOutbox<C>?
    private let drainTimeout: Duration
    private let clock: C
    private let now: @Sendable () -> Date

    /// A dispatcher with one queue per webhook; creates every delivery series of each webhook at once.
    ///
    /// - Parameters:
    ///   - clock: what backoff, `Retry-After`, `max_age` and the drain are measured on.
    ///   - store: the outbox's store (`state_dir`); without it events live in memory only.
    ///   - now: wall-clock time for the signature timestamp.
    ///   - random: a draw in `0..<1` for the backoff jitter.
    public init(
        webhooks: [WebhookConfiguration],
        metrics: CanaryMetrics,
        logger: Logger,
        clock: C,
        transport: any WebhookTransport = HTTPWebhookTransport(),
        schedule: RetrySchedule = RetrySchedule(),
        drainTimeout: Duration = .seconds(10),
        userAgent: String = "s3-canary",
        store: StateStore? = nil,
        now: @escaping @Sendable () -> Date = { Date() },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.queues = webhooks.map { WebhookQueue($0, metrics: metrics, logger: logger) }
        self.signers = webhooks.map { $0.secret.map(WebhookSigner.init(secret:)) }
        self.delivery = WebhookDelivery(
            transport: transport, schedule: schedule, clock: clock, metrics: metrics, logger: logger,
            userAgent: userAgent, now: now, random: random)
        self.outbox = store.map { EventOutbox(store: $0, metrics: metrics, logger: logger) }
        self.drainTimeout = drainTimeout
        self.clock = clock
        self.now = now
        for webhook in webhooks {
            metrics.addWebhook(webhook.name, events: WebhookEventType.allCases.filter { $0.matches(webhook.events) })
        }
    }

    /// Queues `event` for every webhook that subscribed to it. Never blocks. With an outbox, the event is queued once
    /// the outbox's writer has stored it (with the outage it opens or closes), in the order of publishing.
    public func publish(_ event: WebhookEvent) {
        var accepted: [(queue: Int, item: QueuedEvent<C.Instant>)] = []
        for (index, queue) in self.queues.enumerated() where event.type.matches(queue.webhook.events) {
            let rendered: PayloadFormat.Rendered
            do {
                guard
                    let payload = try PayloadFormat.render(
                        event,
                        format: queue.webhook.format,
                        webhook: queue.webhook.name,
                        routingKey: queue.webhook.routingKey
                    )
                else { continue }  // this format does not carry this event type
                rendered = payload
            } catch {
                queue.drop(event, reason: .unencodable, error: "\(type(of: error))")
                continue
            }
            accepted.append((index, QueuedEvent(event: event, rendered: rendered, enqueuedAt: self.clock.now)))
        }
        if let outbox = self.outbox, outbox.accept(accepted, outage: EventOutbox<C>.outageChange(of: event)) {
            return
        }
        // Without an outbox, or published after its writer ended (shutdown): queued from memory, which counts it
        // as dropped once the queues are finished.
        for (index, item) in accepted { self.queues[index].enqueue(item) }
    }

    /// Queues a body rendered by the caller on every queue, counted under `event` (its type and id): how the
    /// Alertmanager pusher sends its alerts with the same delivery, retries and metrics as webhooks.
    func enqueue(_ rendered: PayloadFormat.Rendered, for event: WebhookEvent) {
        for queue in self.queues {
            queue.enqueue(QueuedEvent(event: event, rendered: rendered, enqueuedAt: self.clock.now))
        }
    }

    /// Runs a worker per webhook until graceful shutdown, then drains the queues within `drainTimeout`.
    public func run() async throws {
        await withDiscardingTaskGroup { outer in
            if let outbox = self.outbox {
                // What a previous process accepted and did not deliver goes first, in its order, then the writer
                // stores and queues what is published from now on.
                let pending = await outbox.restore(into: self.queues, clockNow: self.clock.now, now: self.now())
                outer.addTask { await outbox.write(pending: pending, queues: self.queues) }
            }
            await withDiscardingTaskGroup { group in
                for (queue, signer) in zip(self.queues, self.signers) {
                    group.addTask { await self.work(queue, signer: signer) }
                }
                // Wait for shutdown, then let the workers drain what is queued within the grace period.
                try? await gracefulShutdown()
                self.delivery.beginDraining(within: self.drainTimeout)
                for queue in self.queues { queue.finish() }
            }
            // The workers are done: the writer forgets what they delivered, then ends.
            self.outbox?.finish()
        }
        await self.outbox?.store.close()
        await self.delivery.transport.shutdown()
    }

    private func work(_ queue: WebhookQueue<C.Instant>, signer: WebhookSigner?) async {
        for await item in queue.events {
            queue.taken()
            let ended = await self.delivery.deliver(item, to: queue, signer: signer)
            // Delivered or given up on for good: forgotten. Cut short by shutdown: kept for the next start.
            if ended, let seq = item.seq { self.outbox?.forget(seq) }
        }
    }
}
