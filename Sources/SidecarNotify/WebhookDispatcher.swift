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
        /// Its record in the durable outbox; `nil` without state_dir (or when storing it failed).
        var seq: Int64?
    }

    /// What the outbox's one writer does, in order: store an accepted event (then queue it), or forget one.
    enum StoreWork: Sendable {
        case accept([(lane: Int, item: Item)], OutageChange?)
        case remove(Int64)
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
    private let store: StateStore?
    private let storeWork: AsyncStream<StoreWork>
    private let storeSink: AsyncStream<StoreWork>.Continuation

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
        store: StateStore? = nil,
        now: @escaping @Sendable () -> Date = { Date() },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.lanes = webhooks.map(Lane.init)
        self.store = store
        (self.storeWork, self.storeSink) = AsyncStream.makeStream(of: StoreWork.self)
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

    /// Queues `event` for every webhook that subscribed to it. Never blocks. With a store, the event is queued once
    /// the outbox's writer has stored it (with the outage it opens or closes), in the order of publishing.
    public func publish(_ event: WebhookEvent) {
        var accepted: [(lane: Int, item: Item)] = []
        for (index, lane) in self.lanes.enumerated() where event.type.matches(lane.webhook.events) {
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
            accepted.append((index, Item(event: event, rendered: rendered, enqueuedAt: self.clock.now)))
        }
        guard self.store != nil else {
            for (index, item) in accepted { self.enqueue(item, on: self.lanes[index]) }
            return
        }
        if case .terminated = self.storeSink.yield(.accept(accepted, Self.outageChange(of: event))) {
            // Published after the writer ended (shutdown): queued as without a store, which counts it as dropped.
            for (index, item) in accepted { self.enqueue(item, on: self.lanes[index]) }
        }
    }

    /// What an event changes in the remembered outages: an `opened` starts one, a `closed` ends it.
    static func outageChange(of event: WebhookEvent) -> OutageChange? {
        guard let backend = event.backend else { return nil }
        switch event.type {
        case .circuitOpened:
            return .opened(
                RememberedOutage(
                    backend: backend, since: event.time, openedEventID: event.id,
                    consecutiveFailures: event.consecutiveFailures ?? 0,
                    failure: event.lastError.map { [$0.operation, $0.reason, $0.message] }))
        case .circuitClosed:
            return .closed(backend: backend)
        default:
            return nil
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
            if let seq = oldest.seq { self.storeSink.yield(.remove(seq)) }
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
        await withDiscardingTaskGroup { outer in
            if let store = self.store {
                // What a previous process accepted and did not deliver goes first, in its order, then the writer
                // stores and queues what is published from now on.
                let pending = await self.restore(from: store)
                outer.addTask { await self.write(store, pending: pending) }
            }
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
            // The workers are done: the writer forgets what they delivered, then ends.
            self.storeSink.finish()
        }
        await self.store?.close()
        await self.transport.shutdown()
    }

    /// Queues the outbox's records on their webhooks with their original ids, bodies and ages; a record of a webhook
    /// that is no longer configured is forgotten. Returns when each queued record was accepted, by its number.
    private func restore(from store: StateStore) async -> [Int64: Date] {
        let records: [OutboxRecord]
        do {
            records = try await store.pending()
        } catch {
            self.logger.error(
                "cannot read the event outbox; its events stay for the next start", metadata: ["error": "\(error)"])
            return [:]
        }
        var pending: [Int64: Date] = [:]
        let now = self.now()
        for record in records {
            guard let lane = self.lanes.first(where: { $0.webhook.name == record.lane }) else {
                try? await store.remove(record.seq)
                self.logger.warning(
                    "outbox event of a webhook no longer configured forgotten",
                    metadata: ["webhook.name": "\(record.lane)", "webhook.event_id": "\(record.eventID)"])
                continue
            }
            let event = WebhookEvent(
                id: record.eventID, type: WebhookEventType(rawValue: record.eventType) ?? .serviceStarted,
                time: record.createdAt, instance: "", statusURL: "")
            let age = max(0, now.timeIntervalSince(record.createdAt))
            let item = Item(
                event: event, rendered: .init(body: record.body, contentType: record.contentType),
                enqueuedAt: self.clock.now.advanced(by: .milliseconds(Int64(-age * 1000))), seq: record.seq)
            pending[record.seq] = record.createdAt
            self.enqueue(item, on: lane)
        }
        if !records.isEmpty {
            self.logger.notice(
                "resuming undelivered events from the outbox", metadata: ["outbox.events": "\(records.count)"])
        }
        self.publishOutbox(pending)
        return pending
    }

    /// The outbox's one writer: stores each accepted event before it is queued, forgets delivered ones, and keeps
    /// the outbox gauges from what it stored and forgot (`pending`: acceptance time by record number), without asking
    /// the store. A failed write is counted and the event still delivered from memory.
    private func write(_ store: StateStore, pending: [Int64: Date]) async {
        var pending = pending
        var removedSinceCompaction = 0
        for await work in self.storeWork {
            switch work {
            case .accept(let accepted, let outage):
                var sequence: [Int64?] = Array(repeating: nil, count: accepted.count)
                do {
                    let stored = try await store.append(
                        accepted.map { lane, item in
                            OutboxRecord(
                                lane: self.lanes[lane].webhook.name, eventID: item.event.id,
                                eventType: item.event.type.rawValue, contentType: item.rendered.contentType,
                                body: item.rendered.body, createdAt: item.event.time)
                        }, outage: outage)
                    sequence = stored.map { $0 }
                    for ((_, item), seq) in zip(accepted, stored) { pending[seq] = item.event.time }
                    if !accepted.isEmpty {
                        self.logger.debug(
                            "events accepted into the outbox",
                            metadata: ["outbox.event_ids": "\(accepted.map(\.item.event.id).joined(separator: ","))"])
                    }
                } catch {
                    self.metrics.outboxWriteErrors.add([])
                    self.logger.error(
                        "event outbox write failed; the event is delivered from memory only",
                        metadata: ["error": "\(error)"])
                }
                for ((lane, item), seq) in zip(accepted, sequence) {
                    var item = item
                    item.seq = seq
                    self.enqueue(item, on: self.lanes[lane])
                }
            case .remove(let seq):
                do {
                    try await store.remove(seq)
                    pending[seq] = nil
                    removedSinceCompaction += 1
                } catch {
                    self.metrics.outboxWriteErrors.add([])
                    self.logger.error("event outbox delete failed", metadata: ["error": "\(error)"])
                }
            }
            self.publishOutbox(pending)
            if pending.isEmpty && removedSinceCompaction >= 100 {
                try? await store.compact()
                removedSinceCompaction = 0
            }
        }
    }

    /// Sets the outbox gauges from the records waiting (acceptance time by record number).
    private func publishOutbox(_ pending: [Int64: Date]) {
        self.metrics.outboxEvents.set([], Double(pending.count))
        self.metrics.outboxOldest.set([], pending.values.min()?.timeIntervalSince1970 ?? 0)
    }

    private var deadlinePassed: Bool {
        let now = self.clock.now
        return self.drainDeadline.withLock { $0.map { now >= $0 } ?? false }
    }

    private func work(_ lane: Lane) async {
        for await item in lane.items {
            lane.depth.subtract(1, ordering: .relaxed)
            self.publishDepth(lane)
            let ended = await self.deliver(item, lane)
            // Delivered or given up on for good: forgotten. Cut short by shutdown: kept for the next start.
            if ended, let seq = item.seq { self.storeSink.yield(.remove(seq)) }
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

    /// Delivers `item` or gives up on it; `false` when shutdown cut it short (the outbox keeps it then).
    private func deliver(_ item: Item, _ lane: Lane) async -> Bool {
        let webhook = lane.webhook
        var attempt = 0
        while true {
            if self.deadlinePassed {
                self.drop(lane, item.event, reason: .shutdown)
                return false
            }
            if item.enqueuedAt.duration(to: self.clock.now) > webhook.maxAge {
                self.drop(lane, item.event, reason: .expired)
                return true
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
                self.drop(lane, item.event, reason: .gone)
                return true
            case .rejected:
                self.drop(lane, item.event, reason: .rejected)
                return true
            case .retry(let after):
                guard attempt <= webhook.maxRetries else {
                    self.drop(lane, item.event, reason: .retriesExhausted)
                    return true
                }
                let delay = self.schedule.delay(retry: attempt, jitter: self.random(), retryAfter: after)
                if let deadline = self.drainDeadline.withLock({ $0 }), self.clock.now.advanced(by: delay) > deadline {
                    // Shutting down: no time to wait for this retry.
                    self.drop(lane, item.event, reason: .shutdown)
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
