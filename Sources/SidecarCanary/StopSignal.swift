import ObjectStorage
import SidecarBreaker
import Synchronization

/// A one-shot signal a runner can sleep against: `stop()` wakes every waiter, now and later.
package final class StopSignal: Sendable {
    private struct State {
        var stopped = false
        var retiring = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// A signal not yet stopped.
    package init() {}

    /// Whether ``stop()`` was called.
    package var isStopped: Bool { self.state.withLock { $0.stopped } }

    /// Whether the stop retires the runner's backend for good (removed, or given to another shard): its canaries go.
    package var isRetiring: Bool { self.state.withLock { $0.retiring } }

    /// Stops for good: wakes every waiter now, and later waiters return at once. `retiring`: the backend leaves
    /// this replica (not replaced by a new runner of the same name, not a shutdown).
    package func stop(retiring: Bool = false) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopped = true
            state.retiring = state.retiring || retiring
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when stopped, or when the calling task is cancelled.
    package func wait() async {
        let id = self.state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.stopped || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

extension StopSignal {
    /// Sleeps on `clock` until `deadline` or until stopped; false when stopped.
    package func sleep<C: Clock>(until deadline: C.Instant, on clock: C) async -> Bool {
        if self.isStopped { return false }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    try await clock.sleep(until: deadline, tolerance: nil)
                    return true
                } catch {
                    return false
                }
            }
            group.addTask {
                await self.wait()
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first && !self.isStopped
        }
    }
}
