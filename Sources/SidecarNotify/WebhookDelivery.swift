import Foundation
import Logging
import ObjectStorage
import PrometheusExposition
import SidecarCanary
import SidecarConfig
import SidecarEvents
import SidecarTelemetry
import Synchronization

/// Delivers one queued event to its receiver, retrying on the ``RetrySchedule`` (honouring `Retry-After`): 410
/// drops it (`gone`), other 4xx but 408/429 drop it (`rejected`), an event out of retries is dropped
/// (`retries_exhausted`), one older than `max_age` too (`expired`). Once draining begins, nothing waits past the
/// drain deadline (`shutdown`). Every attempt is signed and timed; all waiting is on `clock`.
final class WebhookDelivery<C: Clock>: Sendable where C.Duration == Duration {
    let transport: any WebhookTransport
    let schedule: RetrySchedule
    let clock: C
    let metrics: CanaryMetrics
    let logger: Logger
    let userAgent: String
    /// Wall-clock time for the signature timestamp.
    let now: @Sendable () -> Date
    /// A draw in `0..<1` for the backoff jitter.
    let random: @Sendable () -> Double
    /// Set when draining begins: the time by which every worker must be done.
    let drainDeadline = Mutex<C.Instant?>(nil)
    let draining = StopSignal()

    init(
        transport: any WebhookTransport, schedule: RetrySchedule, clock: C, metrics: CanaryMetrics, logger: Logger,
        userAgent: String, now: @escaping @Sendable () -> Date, random: @escaping @Sendable () -> Double
    ) {
        self.transport = transport
        self.schedule = schedule
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        self.userAgent = userAgent
        self.now = now
        self.random = random
    }

    /// Draining begins now: deliveries end by `now + timeout`.
    func beginDraining(within timeout: Duration) {
        self.drainDeadline.withLock { $0 = self.clock.now.advanced(by: timeout) }
        self.draining.stop()
    }

    private var deadlinePassed: Bool {
        let now = self.clock.now
        return self.drainDeadline.withLock { $0.map { now >= $0 } ?? false }
    }

    /// Delivers `item` or gives up on it; `false` when shutdown cut it short (the outbox keeps it then).
    func deliver(
        _ item: QueuedEvent<C.Instant>, to queue: WebhookQueue<C.Instant>, signer: WebhookSigner?
    ) async
        -> Bool
    {
        let webhook = queue.webhook
        var attempt = 0
        while true {
            if self.deadlinePassed {
                queue.drop(item.event, reason: .shutdown)
                return false
            }
            if item.enqueuedAt.duration(to: self.clock.now) > webhook.maxAge {
                queue.drop(item.event, reason: .expired)
                return true
            }
            attempt += 1
            let answer = await self.send(item, to: queue, signer: signer)
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
                return true
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
                return true
            case .gone:
                queue.drop(item.event, reason: .gone)
                return true
            case .rejected:
                queue.drop(item.event, reason: .rejected)
                return true
            case .retry(let after):
                guard attempt <= webhook.maxRetries else {
                    queue.drop(item.event, reason: .retriesExhausted)
                    return true
                }
                let delay = self.schedule.delay(retry: attempt, jitter: self.random(), retryAfter: after)
                if let deadline = self.drainDeadline.withLock({ $0 }), self.clock.now.advanced(by: delay) > deadline {
                    // Shutting down: no time to wait for this retry.
                    queue.drop(item.event, reason: .shutdown)
                    return false
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
    private func send(
        _ item: QueuedEvent<C.Instant>, to queue: WebhookQueue<C.Instant>, signer: WebhookSigner?
    ) async
        -> WebhookAnswer
    {
        let webhook = queue.webhook
        var headers: [(String, String)] = [("Content-Type", item.rendered.contentType), ("User-Agent", self.userAgent)]
        for (name, value) in webhook.headers.sorted(by: { $0.key < $1.key }) {
            headers.append((name, value))
        }
        let now = self.now()
        if let signer {
            headers += signer.headers(body: item.rendered.body, id: item.event.id, timestamp: now)
        } else {
            headers.append(("webhook-id", item.event.id))
            headers.append(("webhook-timestamp", String(Int64(now.timeIntervalSince1970))))
        }
        let attempt = WebhookAttempt(
            url: webhook.url, headers: headers, body: item.rendered.body, timeout: webhook.timeout)
        let start = self.clock.now
        let answer = await self.transport.send(attempt)
        self.metrics.webhookRequestDuration.observe([webhook.name], start.duration(to: self.clock.now).seconds)
        return answer
    }
}
