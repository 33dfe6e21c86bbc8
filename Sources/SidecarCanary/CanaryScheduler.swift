public import Foundation
public import Logging
public import ServiceLifecycle
public import SidecarBreaker
import SidecarConfig
import Synchronization

/// Runs every backend's canary cycle on its own schedule: one runner task per backend, so a slow or hung backend
/// never delays another, and cycles of one backend never overlap (a runner awaits its cycle).
///
/// Runner `i` of `n` starts at `i/n` of the interval (stagger); each later start is `interval` after the planned
/// previous one, moved by a random jitter of up to `±jitter × interval`. A cycle that overran its slot makes the
/// runner skip the missed slots instead of bursting. On graceful shutdown no new cycle starts and running cycles
/// finish (each is bounded by its deadline); then `run()` returns.
public final class CanaryScheduler<C: Clock>: Service where C.Duration == Duration {
    /// What the scheduler reports after each cycle.
    public struct Report: Sendable {
        /// The cycle's result.
        public var result: CycleResult
        /// When the cycle started, on the scheduler's clock.
        var start: C.Instant
        /// Actual start minus planned start.
        public var drift: Duration
        /// The backend's breaker right after the cycle (its live failure count for the gauges).
        public var breaker: BreakerSnapshot
    }

    /// Receives every report; the scheduler awaits it before the runner plans its next cycle.
    public typealias Observer = @Sendable (Report) async -> Void

    private struct Runner: Sendable {
        var target: CanaryTarget
        var stop: StopSignal
        var onStopped: @Sendable () async -> Void
    }

    private enum Command: Sendable {
        case start(Runner, offset: Duration)
    }

    private let clock: C
    private let logger: Logger
    private let observer: Observer
    private let random: @Sendable () -> Double
    private let commands: AsyncStream<Command>
    private let commandSink: AsyncStream<Command>.Continuation
    private let runners = Mutex<[String: Runner]>([:])
    private let sweepEvery: Int
    private let onSweep: @Sendable (SweepReport) -> Void
    private let onDurability: DurabilityChecker<C>.Observer
    /// Per backend, the durability checker running now, signalled when it has ended.
    private let corpora = Mutex<[String: StopSignal]>([:])
    private let now: @Sendable () -> Date
    /// Canaries under our prefixes written before this are a predecessor's leftovers.
    private let startedAt: Date

    /// A scheduler with no targets yet; `observer` receives the report of every cycle.
    ///
    /// - Parameters:
    ///   - random: a draw in `0..<1` for jitter (tests pass a fixed sequence).
    ///   - sweepEvery: run the leftover sweeper every this many cycles (and once before the first).
    ///   - now: wall-clock time, for canary keys and the sweeper's cut-off.
    ///   - onSweep: what each sweep of a backend removed and could not (failures are also logged at warning).
    ///   - onDurability: what each check of a backend's durability corpus found.
    public init(
        clock: C,
        logger: Logger,
        sweepEvery: Int = 20,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        now: @escaping @Sendable () -> Date = { Date() },
        onSweep: @escaping @Sendable (SweepReport) -> Void = { _ in },
        onDurability: @escaping DurabilityChecker<C>.Observer = { _ in },
        observer: @escaping Observer
    ) {
        self.onDurability = onDurability
        self.clock = clock
        self.logger = logger
        self.observer = observer
        self.random = random
        self.sweepEvery = sweepEvery
        self.now = now
        self.onSweep = onSweep
        self.startedAt = now()
        (self.commands, self.commandSink) = AsyncStream.makeStream(of: Command.self)
    }

    /// The targets running now.
    public var targets: [CanaryTarget] {
        self.runners.withLock { $0.values.map(\.target).sorted { $0.name < $1.name } }
    }

    /// The running target named `name`, if any (for `/probe`).
    public func target(named name: String) -> CanaryTarget? {
        self.runners.withLock { $0[name]?.target }
    }

    /// Starts runners for `targets`, staggered over their interval. A target whose name already runs is stopped
    /// first (its current cycle finishes) and replaced. `onStopped` runs when the runner has ended.
    public func start(_ targets: [CanaryTarget], onStopped: @escaping @Sendable (String) async -> Void = { _ in }) {
        let count = max(targets.count, 1)
        for (index, target) in targets.enumerated() {
            let runner = Runner(target: target, stop: StopSignal(), onStopped: { await onStopped(target.name) })
            let previous = self.runners.withLock { runners -> Runner? in
                defer { runners[target.name] = runner }
                return runners[target.name]
            }
            previous?.stop.stop()
            let offset = target.probe.interval * (Double(index) / Double(count))
            self.commandSink.yield(.start(runner, offset: offset))
        }
    }

    /// Stops the runners of `names` for good; each finishes its current cycle, then deletes every canary left under
    /// its prefix (the backend leaves this replica).
    public func stop(_ names: [String]) {
        let stopped = self.runners.withLock { runners in names.compactMap { runners.removeValue(forKey: $0) } }
        for runner in stopped { runner.stop.stop(retiring: true) }
    }

    /// Runs the runners until graceful shutdown, then waits for their cycles to finish.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await command in self.commands {
                    switch command {
                    case .start(let runner, let offset):
                        group.addTask { await self.runLoop(runner, offset: offset) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Stops every runner and ends `run()` once their cycles are done.
    func shutdown() {
        let all = self.runners.withLock { runners -> [Runner] in
            defer { runners = [:] }
            return Array(runners.values)
        }
        for runner in all { runner.stop.stop() }
        self.commandSink.finish()
    }

    /// Sleeps until `deadline` or until the runner is stopped; returns false when stopped.
    private func sleep(until deadline: C.Instant, _ stop: StopSignal) async -> Bool {
        await stop.sleep(until: deadline, on: self.clock)
    }

    /// Deletes the leftovers of `target` (canaries older than `minimumAge` or written before `startedBefore`) and
    /// reports what it removed and what it could not (`onSweep`; failures also logged at warning).
    private func sweep(
        _ target: CanaryTarget, minimumAge: Duration, startedBefore: Date, log: @escaping @Sendable (String) -> Void
    ) async {
        let outcome = await Sweeper(target: target, minimumAge: minimumAge)
            .sweep(now: self.now(), processStartedAt: startedBefore, log: log)
        self.onSweep(
            SweepReport(
                backend: target.name, removedCanaries: outcome.deleted, abortedUploads: outcome.aborted,
                errors: outcome.errors))
        guard outcome.errors > 0 else { return }
        self.logger.warning(
            "the sweeper could not remove every leftover canary (a later sweep tries again)",
            metadata: [
                "canary.backend": "\(target.name)",
                "sweep.failed": "\(outcome.listingFailed ? "listing" : "\(outcome.failedKeys.count) deletes")",
                "sweep.deleted": "\(outcome.deleted)",
                "sweep.error": "\(outcome.firstError ?? "-")",
            ]
        )
    }

    /// A backend's runner: its cycles and, with `durability:`, its corpus's checks beside them; when both have
    /// ended, its connections are released.
    private func runLoop(_ runner: Runner, offset: Duration) async {
        await withDiscardingTaskGroup { group in
            if let durability = runner.target.durability {
                group.addTask {
                    // One checker per backend at a time: a reload's new one waits until the old one has saved its
                    // progress and ended (else both would write one progress record and announce one loss twice).
                    let ended = StopSignal()
                    let previous = self.corpora.withLock { corpora -> StopSignal? in
                        defer { corpora[durability.name] = ended }
                        return corpora[durability.name]
                    }
                    defer {
                        ended.stop()
                        self.corpora.withLock { if $0[durability.name] === ended { $0[durability.name] = nil } }
                    }
                    await previous?.wait()
                    guard !runner.stop.isStopped else { return }
                    let checker = DurabilityChecker(
                        target: durability, clock: self.clock, now: self.now,
                        log: { [logger = self.logger] message in
                            logger.debug("\(message)", metadata: ["canary.backend": "\(durability.name)"])
                        },
                        observe: self.onDurability)
                    await checker.run(until: runner.stop)
                }
            }
            await self.cycles(runner, offset: offset)
        }
        await runner.onStopped()
    }

    private func cycles(_ runner: Runner, offset: Duration) async {
        let target = runner.target
        let interval = target.probe.interval
        let origin = self.clock.now.advanced(by: offset)
        var slot: Int64 = 0
        var cycles = 0
        let log: @Sendable (String) -> Void = { [logger] message in
            logger.debug("\(message)", metadata: ["canary.backend": "\(target.name)"])
        }
        while !runner.stop.isStopped {
            if cycles % self.sweepEvery == 0 {
                await self.sweep(target, minimumAge: interval * 3, startedBefore: self.startedAt, log: log)
            }
            let jitter = interval * (target.probe.jitter * (self.random() * 2 - 1))
            var planned = origin.advanced(by: interval * Double(slot)).advanced(by: jitter)
            if planned < origin { planned = origin }  // a negative jitter never moves the first cycle into the past
            let now = self.clock.now
            if planned < now, planned.duration(to: now) > interval / 2 {
                // The previous cycle overran: start at the next slot that is still ahead instead of bursting.
                let behind = planned.duration(to: now)
                let skip = Int64((behind / interval).rounded(.up))
                slot += skip
                planned = planned.advanced(by: interval * Double(skip))
            }
            guard await self.sleep(until: planned, runner.stop) else { break }
            let start = self.clock.now
            let cycle = CanaryCycle(target: target, clock: self.clock, now: self.now, log: log)
            // On the backend's own event loop when it has one: no thread hop per request.
            let result = await withTaskExecutorPreference(target.backend.preferredExecutor) { await cycle.run() }
            await self.observer(
                Report(
                    result: result, start: start, drift: planned.duration(to: start), breaker: target.backend.snapshot))
            slot += 1
            cycles += 1
        }
        if runner.stop.isRetiring {
            // The backend left this replica (removed from the file, or now another shard's): nothing of ours may stay
            // under its prefix, whatever its age. Only this replica writes there, so nothing live is deleted.
            await self.sweep(target, minimumAge: .zero, startedBefore: self.now(), log: log)
        }
    }
}
