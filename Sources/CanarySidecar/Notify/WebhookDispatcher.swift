import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ObjectStorage
import ServiceLifecycle
import Synchronization

/// Delivers events to webhooks: a bounded queue and a worker per webhook, so a slow or dead receiver delays only
/// its own queue and never the probes (publishing never waits).
///
/// Delivery is at least once, in order per webhook (so per backend), with the same id and body on every attempt.
/// Failed attempts are retried on the ``RetrySchedule`` (honouring `Retry-After`); 410 drops the event (`gone`),
/// other 4xx but 408/429 drop it (`rejected`); events older than `max_age` or out of retries are dropped
/// (`retries_exhausted`). On graceful shutdown pending events are delivered within `drainTimeout`; what is left
/// then is counted as dropped (`shutdown`).
public final class WebhookDispatcher: Service {
    struct Lane: Sendable {
        var webhook: WebhookConfiguration
        var queue: DeliveryQueue
        var signer: WebhookSigner?
    }

    private let lanes: [Lane]
    private let metrics: CanaryMetrics
    private let logger: Logger
    private let schedule: RetrySchedule
    private let drainTimeout: Duration
    private let httpClient: HTTPClient
    private let draining = StopSignal()
    private let drainDeadline = Mutex<ContinuousClock.Instant?>(nil)
    private let userAgent: String

    public init(
        webhooks: [WebhookConfiguration],
        metrics: CanaryMetrics,
        logger: Logger,
        schedule: RetrySchedule = RetrySchedule(),
        drainTimeout: Duration = .seconds(10),
        userAgent: String = "s3-canary"
    ) {
        self.lanes = webhooks.map { webhook in
            Lane(
                webhook: webhook,
                queue: DeliveryQueue(capacity: webhook.queueSize),
                signer: webhook.secret.map(WebhookSigner.init(secret:))
            )
        }
        self.metrics = metrics
        self.logger = logger
        self.schedule = schedule
        self.drainTimeout = drainTimeout
        self.userAgent = userAgent
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        for lane in self.lanes {
            metrics.addWebhook(lane.webhook.name, events: WebhookEventType.allCases.filter { $0.matches(lane.webhook.events) })
        }
    }

    /// Queues `event` for every webhook that subscribed to it. Never blocks.
    public func publish(_ event: WebhookEvent) {
        for lane in self.lanes where event.type.matches(lane.webhook.events) {
            guard
                let rendered = PayloadFormat.render(
                    event,
                    format: lane.webhook.format,
                    webhook: lane.webhook.name,
                    routingKey: lane.webhook.routingKey
                )
            else { continue }
            let item = DeliveryQueue.Item(event: event, rendered: rendered, enqueuedAt: .now)
            switch lane.queue.push(item) {
            case .queued:
                break
            case .queuedDropping(let dropped):
                self.metrics.webhookDropped.add([lane.webhook.name, "queue_full"])
                self.logger.warning(
                    "webhook queue full; dropped the oldest event",
                    metadata: ["webhook.name": "\(lane.webhook.name)", "webhook.event": "\(dropped.event.type.rawValue)"]
                )
            case .closed:
                self.metrics.webhookDropped.add([lane.webhook.name, "shutdown"])
            }
            self.metrics.webhookQueueDepth.set([lane.webhook.name], Double(lane.queue.depth))
        }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            for lane in self.lanes {
                group.addTask { await self.work(lane) }
            }
            // Wait for shutdown, then let the workers drain what is queued within the grace period.
            try? await gracefulShutdown()
            self.drainDeadline.withLock { $0 = ContinuousClock.now + self.drainTimeout }
            self.draining.stop()
            for lane in self.lanes { lane.queue.close() }
        }
        try? await self.httpClient.shutdown()
    }

    private var deadlinePassed: Bool {
        self.drainDeadline.withLock { $0.map { ContinuousClock.now >= $0 } ?? false }
    }

    private func work(_ lane: Lane) async {
        while let item = await lane.queue.next() {
            self.metrics.webhookQueueDepth.set([lane.webhook.name], Double(lane.queue.depth))
            await self.deliver(item, lane)
        }
    }

    private func drop(_ lane: Lane, _ item: DeliveryQueue.Item, reason: String) {
        self.metrics.webhookDropped.add([lane.webhook.name, reason])
        self.logger.warning(
            "webhook event dropped",
            metadata: [
                "webhook.name": "\(lane.webhook.name)", "webhook.event": "\(item.event.type.rawValue)",
                "webhook.event_id": "\(item.event.id)", "webhook.reason": "\(reason)",
            ]
        )
    }

    private func deliver(_ item: DeliveryQueue.Item, _ lane: Lane) async {
        let webhook = lane.webhook
        var attempt = 0
        while true {
            if self.deadlinePassed { return self.drop(lane, item, reason: "shutdown") }
            if item.enqueuedAt.duration(to: .now) > webhook.maxAge { return self.drop(lane, item, reason: "retries_exhausted") }
            attempt += 1
            let (status, retryAfter, failure) = await self.send(item, lane)
            let verdict = DeliveryVerdict.of(status: status, retryAfter: retryAfter)
            let labels = [webhook.name, item.event.type.rawValue]
            if verdict == .delivered {
                self.metrics.webhookDeliveries.add(labels + ["success"])
                self.logger.debug(
                    "webhook delivered",
                    metadata: ["webhook.name": "\(webhook.name)", "webhook.event_id": "\(item.event.id)", "webhook.attempt": "\(attempt)"]
                )
                return
            }
            self.metrics.webhookDeliveries.add(labels + ["failure"])
            self.logger.debug(
                "webhook attempt failed",
                metadata: [
                    "webhook.name": "\(webhook.name)", "webhook.event_id": "\(item.event.id)",
                    "webhook.attempt": "\(attempt)", "webhook.status": "\(status.map(String.init) ?? "-")",
                    "webhook.error": "\(failure ?? "-")",
                ]
            )
            switch verdict {
            case .delivered:
                return
            case .gone:
                return self.drop(lane, item, reason: "gone")
            case .rejected:
                return self.drop(lane, item, reason: "rejected")
            case .retry(let after):
                guard attempt <= webhook.maxRetries else { return self.drop(lane, item, reason: "retries_exhausted") }
                let delay = self.schedule.delay(retry: attempt, jitter: Double.random(in: 0..<1), retryAfter: after)
                if let deadline = self.drainDeadline.withLock({ $0 }), ContinuousClock.now + delay > deadline {
                    // Shutting down: no time to wait for this retry.
                    return self.drop(lane, item, reason: "shutdown")
                }
                await self.sleep(delay)
            }
        }
    }

    /// Sleeps for `delay`, or until shutdown begins (then the caller re-checks its deadline).
    private func sleep(_ delay: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: delay) }
            group.addTask { await self.draining.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// One HTTP attempt: the status (nil when nothing answered), a `Retry-After`, and what went wrong.
    private func send(_ item: DeliveryQueue.Item, _ lane: Lane) async -> (Int?, Duration?, String?) {
        var request = HTTPClientRequest(url: lane.webhook.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: item.rendered.contentType)
        request.headers.add(name: "User-Agent", value: self.userAgent)
        for (name, value) in lane.webhook.headers.sorted(by: { $0.key < $1.key }) {
            request.headers.add(name: name, value: value)
        }
        if let signer = lane.signer {
            for (name, value) in signer.headers(body: item.rendered.body, id: item.event.id, timestamp: Date()) {
                request.headers.add(name: name, value: value)
            }
        } else {
            request.headers.add(name: "webhook-id", value: item.event.id)
            request.headers.add(name: "webhook-timestamp", value: String(Int64(Date().timeIntervalSince1970)))
        }
        request.body = .bytes(ByteBuffer(bytes: item.rendered.body))
        let start = ContinuousClock.now
        defer {
            self.metrics.webhookRequestDuration.observe([lane.webhook.name], start.duration(to: .now).seconds)
        }
        do {
            let response = try await self.httpClient.execute(request, timeout: lane.webhook.timeout.timeAmount)
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let retryAfter = RetrySchedule.parseRetryAfter(response.headers.first(name: "retry-after"))
            return (Int(response.status.code), retryAfter, nil)
        } catch {
            // The error's type only: descriptions of transport errors can name the host of a secret URL.
            return (nil, nil, String(describing: type(of: error)))
        }
    }
}
