import Foundation
import Synchronization

/// A bounded FIFO of events for one webhook, with one consumer (its delivery worker).
///
/// When full, the oldest event is dropped to make room: on-call cares most about the latest state.
final class DeliveryQueue: Sendable {
    struct Item: Sendable {
        var event: WebhookEvent
        var rendered: PayloadFormat.Rendered
        var enqueuedAt: ContinuousClock.Instant
    }

    private struct State {
        var items: [Item] = []
        var head = 0
        var waiter: CheckedContinuation<Item?, Never>?
        var closed = false

        var count: Int { self.items.count - self.head }

        mutating func popFirst() -> Item? {
            guard self.head < self.items.count else { return nil }
            let item = self.items[self.head]
            self.head += 1
            if self.head > 64 && self.head * 2 > self.items.count {
                self.items.removeFirst(self.head)
                self.head = 0
            }
            return item
        }
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    enum PushResult {
        case queued
        /// Queued, and this older event was dropped to make room.
        case queuedDropping(Item)
        /// The queue is closed (shutting down): the event was not queued.
        case closed
    }

    func push(_ item: Item) -> PushResult {
        let (result, waiter): (PushResult, CheckedContinuation<Item?, Never>?) = self.state.withLock { state in
            if state.closed { return (.closed, nil) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (.queued, waiter)
            }
            var dropped: Item?
            if state.count >= self.capacity { dropped = state.popFirst() }
            state.items.append(item)
            return (dropped.map { .queuedDropping($0) } ?? .queued, nil)
        }
        waiter?.resume(returning: item)
        return result
    }

    /// The next event; `nil` once the queue is closed and empty.
    func next() async -> Item? {
        await withCheckedContinuation { continuation in
            let ready: Item?? = self.state.withLock { state in
                if let item = state.popFirst() { return .some(item) }
                if state.closed { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Stops accepting events; the consumer still gets what is queued, then `nil`.
    func close() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Item?, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    var depth: Int { self.state.withLock { $0.count } }
}
