import Foundation
import Logging
import PrometheusExposition
import SidecarConfig
import SidecarEvents
import SidecarState
import SidecarTelemetry

/// The durable outbox (`state_dir`) beside the queues: every accepted event is stored before it is queued, and
/// forgotten once delivered or given up on, by one writer, in the order of publishing. A failed write is counted and
/// the event still delivered from memory. The outbox gauges follow the writer's own bookkeeping.
final class EventOutbox<C: Clock>: Sendable where C.Duration == Duration {
    /// What the writer does, in order: store accepted events (then queue them), or forget one.
    enum Work: Sendable {
        case accept([(queue: Int, item: QueuedEvent<C.Instant>)], OutageChange?)
        case remove(Int64)
    }

    let store: StateStore
    private let work: AsyncStream<Work>
    private let sink: AsyncStream<Work>.Continuation
    private let metrics: CanaryMetrics
    private let logger: Logger

    init(store: StateStore, metrics: CanaryMetrics, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
        (self.work, self.sink) = AsyncStream.makeStream(of: Work.self)
    }

    /// Hands accepted events to the writer, which stores then queues them; `false` once the writer has ended.
    func accept(_ accepted: [(queue: Int, item: QueuedEvent<C.Instant>)], outage: OutageChange?) -> Bool {
        if case .terminated = self.sink.yield(.accept(accepted, outage)) { return false }
        return true
    }

    /// The record is done with (delivered, given up on, or pushed out of a full queue).
    func forget(_ seq: Int64) { self.sink.yield(.remove(seq)) }

    /// No more work: the writer ends once it has done what is asked.
    func finish() { self.sink.finish() }

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

    /// Queues the outbox's records on their webhooks with their original ids, bodies, ages and instance (the store
    /// is this instance's: another's is moved aside when opened). A record of a webhook no longer configured is
    /// forgotten; one of an event type this version does not know (a newer version wrote it) is counted as a state
    /// problem (`unknown_event`) and dropped, never sent as another event. Returns when each queued record was
    /// accepted, by its number.
    func restore(into queues: [WebhookQueue<C.Instant>], clockNow: C.Instant, now: Date) async -> [Int64: Date] {
        let records: [OutboxRecord]
        do {
            records = try await self.store.pending()
        } catch {
            self.logger.error(
                "cannot read the event outbox; its events stay for the next start", metadata: ["error": "\(error)"])
            return [:]
        }
        var pending: [Int64: Date] = [:]
        for record in records {
            guard let queue = queues.first(where: { $0.webhook.name == record.lane }) else {
                try? await self.store.remove(record.seq)
                self.logger.warning(
                    "outbox event of a webhook no longer configured forgotten",
                    metadata: ["webhook.name": "\(record.lane)", "webhook.event_id": "\(record.eventID)"])
                continue
            }
            guard let type = WebhookEventType(rawValue: record.eventType) else {
                try? await self.store.remove(record.seq)
                self.metrics.stateProblems.add([StateProblem.Kind.unknownEvent.rawValue])
                self.logger.error(
                    "outbox event of an unknown type dropped (written by another version of s3-canary?)",
                    metadata: [
                        "webhook.name": "\(record.lane)", "webhook.event_id": "\(record.eventID)",
                        "webhook.event": "\(record.eventType.prefix(64))",
                    ])
                continue
            }
            let event = WebhookEvent(
                id: record.eventID, type: type, time: record.createdAt, instance: self.store.instance, statusURL: "")
            let age = max(0, now.timeIntervalSince(record.createdAt))
            let item = QueuedEvent(
                event: event, rendered: .init(body: record.body, contentType: record.contentType),
                enqueuedAt: clockNow.advanced(by: .milliseconds(Int64(-age * 1000))),
                seq: record.seq)
            pending[record.seq] = record.createdAt
            if let displaced = queue.enqueue(item) { self.forget(displaced) }
        }
        if !records.isEmpty {
            self.logger.notice(
                "resuming undelivered events from the outbox", metadata: ["outbox.events": "\(records.count)"])
        }
        self.publish(pending)
        return pending
    }

    /// The writer: stores each accepted event before it is queued, forgets delivered ones, and keeps the outbox
    /// gauges from what it stored and forgot (`pending`: acceptance time by record number), without asking the store.
    func write(pending: [Int64: Date], queues: [WebhookQueue<C.Instant>]) async {
        var pending = pending
        var removedSinceCompaction = 0
        for await work in self.work {
            switch work {
            case .accept(let accepted, let outage):
                var sequence: [Int64?] = Array(repeating: nil, count: accepted.count)
                do {
                    let stored = try await self.store.append(
                        accepted.map { queue, item in
                            OutboxRecord(
                                lane: queues[queue].webhook.name, eventID: item.event.id,
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
                for ((queue, item), seq) in zip(accepted, sequence) {
                    var item = item
                    item.seq = seq
                    if let displaced = queues[queue].enqueue(item) { self.forget(displaced) }
                }
            case .remove(let seq):
                do {
                    try await self.store.remove(seq)
                    pending[seq] = nil
                    removedSinceCompaction += 1
                } catch {
                    self.metrics.outboxWriteErrors.add([])
                    self.logger.error("event outbox delete failed", metadata: ["error": "\(error)"])
                }
            }
            self.publish(pending)
            if pending.isEmpty && removedSinceCompaction >= 100 {
                try? await self.store.compact()
                removedSinceCompaction = 0
            }
        }
    }

    /// Sets the outbox gauges from the records waiting (acceptance time by record number).
    private func publish(_ pending: [Int64: Date]) {
        self.metrics.outboxEvents.set([], Double(pending.count))
        self.metrics.outboxOldest.set([], pending.values.min()?.timeIntervalSince1970 ?? 0)
    }
}
