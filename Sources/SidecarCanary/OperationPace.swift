public import Foundation
import ObjectStorage
public import SidecarConfig
import Synchronization

/// When each paced operation of a backend last ran (`probe.every`), so that costly checks run rarely and cheap ones
/// every cycle. Carried across reloads with the backend's breaker; a restart runs every operation once.
///
/// An operation is due at the first cycle that starts at least `every` minus half an interval after its last run (so
/// a cycle's jitter never pushes it a whole interval late), and at once after a run that did not end well: a failing
/// check is retried every cycle until it passes, not hidden for its pace. `put` and `delete` are the cycle itself and
/// are never paced.
public final class OperationPace: Sendable {
    private let lastRun = Mutex<[CanaryConfiguration.Operation: Date]>([:])

    /// No operation has run yet.
    public init() {}

    /// The operations of `probe` a cycle starting at `now` runs, in the cycle's order.
    public func operations(of probe: CanaryConfiguration.Probe, at now: Date) -> [CanaryConfiguration.Operation] {
        guard !probe.every.isEmpty else { return probe.operations }
        let slack = probe.interval.seconds / 2
        return self.lastRun.withLock { runs in
            probe.operations.filter { operation in
                guard let every = probe.every[operation], let last = runs[operation] else { return true }
                return now.timeIntervalSince(last) >= every.seconds - slack
            }
        }
    }

    /// Notes how the paced operations of a cycle that started at `startedAt` ended. With `addresses: all` the cycle
    /// ran once per address (`runs`): an operation ran well only when every address ran it well, and one that an
    /// address never reached (its cycle ended first) stays due.
    public func record(
        _ steps: [StepResult], of probe: CanaryConfiguration.Probe, startedAt: Date, runs expected: Int = 1
    ) {
        let paced = steps.filter { probe.every[$0.operation] != nil }
        guard !paced.isEmpty else { return }
        self.lastRun.withLock { runs in
            for operation in Set(paced.map(\.operation)) {
                let own = paced.filter { $0.operation == operation }
                let ranWell =
                    own.count >= expected && own.allSatisfy { [.success, .unsupported, .skipped].contains($0.result) }
                runs[operation] = ranWell ? startedAt : nil
            }
        }
    }

    /// When `operation` last ran and ended well; `nil` when it has not (or failed since).
    public func lastRun(of operation: CanaryConfiguration.Operation) -> Date? {
        self.lastRun.withLock { $0[operation] }
    }
}
