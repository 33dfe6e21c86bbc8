import Foundation
import Logging
import ObjectStorage
import ServiceLifecycle
import SidecarCanary
import SidecarConfig
import SidecarTelemetry
import Synchronization

/// Delivers events to webhooks: a bounded queue and a worker per webhook, so a slow or dead receiver delays only
/// its own queue and never the probes (publishing never waits).
///
/// Delivery is at least once, in order per webhook (so per backend), with the same id and body on every attempt.
/// Failed attempts are retried on the ``RetrySchedule`` (honouring `Retry-After`); 410 drops the event (`gone`),
/// other 4xx but 408/429 drop it (`rejected`); events out of retries are dropped (`retries_exhausted`), events
/// older than `max_age` (`expired`). A full queue drops its oldest event (`queue_full`); a payload that cannot be
/// encoded is never queued (`unencodable`). On graceful shutdown pending events are delivered within
/// `drainTimeout`; what is left then is dropped (`shutdown`). All waiting is on `clock`, so tests drive retries,
/// `Retry-After`, `max_age` and the drain with a manual clock.
public final class WebhookDispatcher<C: Clock>: Service where C.Duration == Duration {
    struct Item: Sendable {
        var event: WebhookEvent
        var rendered: PayloadFormat.Rendered
        var enqueuedAt: C.Instant
    }

    /// One webhook's queue and worker state. The queue is an `AsyncStream` that keeps the newest `queue_size`
    /// events: when full, the oldest is dropped to make room (on-call cares most about the latest state).
    final class Lane: Sendable {
        let webhook: WebhookConfiguration
        let signer: WebhookSigner?
        let items: AsyncStream<Item>
        let sink: AsyncStream<Item>.Continuation
        let depth = Atomic<Int>(0)

        init(_ webhook: WebhookConfiguration) {
            self.webhook = webhook
            self.signer = webhook.secret.map(WebhookSigner.init(secret:))
            (self.items, self.sink) = AsyncStream.makeStream(
                of: Item.self, bufferingPolicy: .bufferingNewest(max(1, webhook.queueSize)))
        }
    }

    private let lanes: [Lane]
    private let metrics: CanaryMetrics
    private let logger: Logger
    private let schedule: RetrySchedule
    private let drainTimeout: Duration
    private let transport: any WebhookTransport
    private let clock: C
    private let now: @Sendable () -> Date
    private let random: @Sendable () -> Double
    private let draining = StopSignal()
    private let drainDeadline = Mutex<C.Instant?>(nil)
    private let userAgent: String

    /// A dispatcher with one queue per webhook; creates every delivery series of each webhook at once.
    ///
    /// - Parameters:
    ///   - clock: what backoff, `Retry-After`, `max_age` and the drain are measured on.
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
        now: @escaping @Sendable () -> Date = { Date() },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.lanes = webhooks.map(Lane.init)
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.transport = transport
        self.schedule = schedule
        self.drainTimeout = drainTimeout
        self.userAgent = userAgent
        self.now = now
        self.random = random
        for lane in self.lanes {
            metrics.addWebhook(
                lane.webhook.name, events: WebhookEventType.allCases.filter { $0.matches(lane.webhook.events) })
        }
    }

    /// Queues `event` for every webhook that subscribed to it. Never blocks.
    public func publish(_ event: WebhookEvent) {
        for lane in self.lanes where event.type.matches(lane.webhook.events) {
            let rendered: PayloadFormat.Rendered
            do {
                guard
                    let payload = try PayloadFormat.render(
                        event,
                        format: lane.webhook.format,
                        webhook: lane.webhook.name,
                        routingKey: lane.webhook.routingKey
                    )
                else { continue }  // this format does not carry this event type
                rendered = payload
            } catch {
                self.drop(lane, event, reason: .unencodable, error: "\(type(of: error))")
                continue
            }
            self.enqueue(Item(event: event, rendered: rendered, enqueuedAt: self.clock.now), on: lane)
        }
    }

    /// Queues a body rendered by the caller on every lane, counted under `event` (its type and id): how the
    /// Alertmanager pusher sends its alerts with the same delivery, retries and metrics as webhooks.
    func enqueue(_ rendered: PayloadFormat.Rendered, for event: WebhookEvent) {
        for lane in self.lanes {
            self.enqueue(Item(event: event, rendered: rendered, enqueuedAt: self.clock.now), on: lane)
        }
    }

    private func enqueue(_ item: Item, on lane: Lane) {
        switch lane.sink.yield(item) {
        case .enqueued:
            lane.depth.add(1, ordering: .relaxed)
        case .dropped(let oldest):
            // The new event is queued in the oldest one's place: the depth stays.
            self.drop(lane, oldest.event, reason: .queueFull)
        case .terminated:
            self.drop(lane, item.event, reason: .shutdown)
        @unknown default:
            self.drop(lane, item.event, reason: .shutdown)
        }
        self.publishDepth(lane)
    }

    private func publishDepth(_ lane: Lane) {
        self.metrics.webhookQueueDepth.set([lane.webhook.name], Double(max(0, lane.depth.load(ordering: .relaxed))))
    }

    /// Runs a worker per webhook until graceful shutdown, then drains the queues within `drainTimeout`.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            for lane in self.lanes {
                group.addTask { await self.work(lane) }
            }
            // Wait for shutdown, then let the workers drain what is queued within the grace period.
            try? await gracefulShutdown()
            self.drainDeadline.withLock { $0 = self.clock.now.advanced(by: self.drainTimeout) }
            self.draining.stop()
            for lane in self.lanes { lane.sink.finish() }
        }
        await self.transport.shutdown()
    }

    private var deadlinePassed: Bool {
        let now = self.clock.now
        return self.drainDeadline.withLock { $0.map { now >= $0 } ?? false }
    }

    private func work(_ lane: Lane) async {
        for await item in lane.items {
            lane.depth.subtract(1, ordering: .relaxed)
            self.publishDepth(lane)
            await self.deliver(item, lane)
        }
    }

    private func drop(_ lane: Lane, _ event: WebhookEvent, reason: DropReason, error: String? = nil) {
        self.metrics.webhookDropped.add([lane.webhook.name, reason.rawValue])
        self.logger.warning(
            "webhook event dropped",
            metadata: [
                "webhook.name": "\(lane.webhook.name)", "webhook.event": "\(event.type.rawValue)",
                "webhook.event_id": "\(event.id)", "webhook.reason": "\(reason.rawValue)",
                "webhook.error": "\(error ?? "-")",
            ]
        )
    }

    private func deliver(_ item: Item, _ lane: Lane) async {
        let webhook = lane.webhook
        var attempt = 0
        while true {
            if self.deadlinePassed { return self.drop(lane, item.event, reason: .shutdown) }
            if item.enqueuedAt.duration(to: self.clock.now) > webhook.maxAge {
                return self.drop(lane, item.event, reason: .expired)
            }
            attempt += 1
            let answer = await self.send(item, lane)
            let verdict = DeliveryVerdict.of(status: answer.status, retryAfter: answer.retryAfter)
            let labels = [webhook.name, item.event.type.rawValue]
            if verdict == .delivered {
                self.metrics.webhookDeliveries.add(labels + [DeliveryResult.success.rawValue])
                self.logger.debug(
                    "webhook delivered",
                    metadata: [
                        "webhook.name": "\(webhook.name)", "webhook.event_id": "\(item.event.id)",
                        "webhook.attempt": "\(attempt)",
                    ]
                )
                return
            }
            self.metrics.webhookDeliveries.add(labels + [DeliveryResult.failure.rawValue])
            self.logger.debug(
                "webhook attempt failed",
                metadata: [
                    "webhook.name": "\(webhook.name)", "webhook.event_id": "\(item.event.id)",
                    "webhook.attempt": "\(attempt)", "webhook.status": "\(answer.status.map(String.init) ?? "-")",
                    "webhook.error": "\(answer.failure ?? "-")",
                ]
            )
            switch verdict {
            case .delivered:
                return
            case .gone:
                return self.drop(lane, item.event, reason: .gone)
            case .rejected:
                return self.drop(lane, item.event, reason: .rejected)
            case .retry(let after):
                guard attempt <= webhook.maxRetries else {
                    return self.drop(lane, item.event, reason: .retriesExhausted)
                }
                let delay = self.schedule.delay(retry: attempt, jitter: self.random(), retryAfter: after)
                if let deadline = self.drainDeadline.withLock({ $0 }), self.clock.now.advanced(by: delay) > deadline {
                    // Shutting down: no time to wait for this retry.
                    return self.drop(lane, item.event, reason: .shutdown)
                }
                await self.sleep(delay)
            }
        }
    }

    /// Sleeps for `delay`, or until shutdown begins (then the caller re-checks its deadline). While draining, a
    /// retry that fits before the drain deadline waits its full delay: a struggling receiver still gets backoff.
    private func sleep(_ delay: Duration) async {
        if self.draining.isStopped {
            try? await self.clock.sleep(for: delay)
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.clock.sleep(for: delay) }
            group.addTask { await self.draining.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// One attempt, signed; its duration is observed.
    private func send(_ item: Item, _ lane: Lane) async -> WebhookAnswer {
        var headers: [(String, String)] = [("Content-Type", item.rendered.contentType), ("User-Agent", self.userAgent)]
        for (name, value) in lane.webhook.headers.sorted(by: { $0.key < $1.key }) {
            headers.append((name, value))
        }
        let now = self.now()
        if let signer = lane.signer {
            headers += signer.headers(body: item.rendered.body, id: item.event.id, timestamp: now)
        } else {
            headers.append(("webhook-id", item.event.id))
            headers.append(("webhook-timestamp", String(Int64(now.timeIntervalSince1970))))
        }
        let attempt = WebhookAttempt(
            url: lane.webhook.url, headers: headers, body: item.rendered.body, timeout: lane.webhook.timeout)
        let start = self.clock.now
        let answer = await self.transport.send(attempt)
        self.metrics.webhookRequestDuration.observe([lane.webhook.name], start.duration(to: self.clock.now).seconds)
        return answer
    }
}
