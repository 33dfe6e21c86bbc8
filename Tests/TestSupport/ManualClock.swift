import Synchronization

/// A clock tests move by hand: sleepers wake only when `advance` passes their deadline.
package final class ManualClock: Clock, Sendable {
    package struct Instant: InstantProtocol {
        package var offset: Duration
        package init(offset: Duration) { self.offset = offset }
        package func advanced(by duration: Duration) -> Instant { Instant(offset: self.offset + duration) }
        package func duration(to other: Instant) -> Duration { other.offset - self.offset }
        package static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
        /// Tests waiting for someone to sleep (``advanceToNextSleeper()``).
        var watchers: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    package init() {}

    package var now: Instant { self.state.withLock { $0.now } }
    package var minimumResolution: Duration { .nanoseconds(1) }

    /// When each sleeper wakes, as offsets from the clock's start, earliest first.
    package var sleeperDeadlines: [Duration] {
        self.state.withLock { $0.sleepers.values.map(\.deadline.offset).sorted() }
    }

    /// How many tasks are sleeping on this clock.
    package var sleeperCount: Int { self.state.withLock { $0.sleepers.count } }

    package func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = self.state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, watchers) = self.state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                    // Cancelled before registering: onCancel already ran and found nothing to resume.
                    if deadline <= state.now || Task.isCancelled { return (true, []) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    defer { state.watchers = [] }
                    return (false, state.watchers)
                }
                for watcher in watchers { watcher.resume() }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = self.state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }

    /// Moves time forward, waking every sleeper whose deadline has come.
    package func advance(by duration: Duration) {
        let due = self.state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for key in due.keys { state.sleepers.removeValue(forKey: key) }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}

extension ManualClock {
    /// Waits until some task sleeps on this clock, then moves time to the earliest sleeper's deadline and wakes
    /// it. Returns how far time moved. Tests step through timers this way instead of polling with real sleeps.
    @discardableResult
    package func advanceToNextSleeper() async -> Duration {
        while true {
            let step = self.state.withLock { state in
                state.sleepers.values.map(\.deadline).min().map { state.now.duration(to: $0) }
            }
            if let step {
                self.advance(by: step)
                return step
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let someoneSleeps = self.state.withLock { state -> Bool in
                    if !state.sleepers.isEmpty { return true }
                    state.watchers.append(continuation)
                    return false
                }
                if someoneSleeps { continuation.resume() }
            }
        }
    }
}

/// Lets other tasks run until `condition` holds (bounded, so a broken test fails instead of hanging).
func eventually(_ condition: () -> Bool, attempts: Int = 2000) async -> Bool {
    for _ in 0..<attempts {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}
