import Foundation
import Logging
import ObjectStorage
import SidecarConfig
import Synchronization
import TestSupport
import Testing

@testable import SidecarCanary

@Suite("Scheduler under a test clock", .timeLimit(.minutes(1)))
struct SchedulerTests {
    final class Recorder: Sendable {
        let reports = Mutex<
            [(name: String, startedAt: ManualClock.Instant, drift: Duration, status: CycleResult.Status)]
        >([])
        func count(_ name: String) -> Int { self.reports.withLock { $0.filter { $0.name == name }.count } }
    }

    static func scheduler(
        _ clock: ManualClock, random: Double = 0.5, recorder: Recorder
    ) -> CanaryScheduler<ManualClock> {
        CanaryScheduler(clock: clock, logger: .init(label: "test"), sweepEvery: 1000, random: { random }) { report in
            recorder.reports.withLock {
                $0.append((report.result.backend, report.start, report.drift, report.result.status))
            }
        }
    }

    /// Advances the clock in small steps, letting tasks run in between.
    static func advance(_ clock: ManualClock, by total: Duration, step: Duration = .milliseconds(100)) async {
        var elapsed = Duration.zero
        while elapsed < total {
            clock.advance(by: step)
            elapsed += step
            for _ in 0..<5 { await Task.yield() }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    @Test func backendsAreStaggeredOverTheInterval() async throws {
        let clock = ManualClock()
        let recorder = Recorder()
        let scheduler = Self.scheduler(clock, random: 0.5, recorder: recorder)  // 0.5 → zero jitter
        let probe = Fixtures.probe(operations: [.put, .delete], interval: .seconds(10))
        let targets = (0..<4).map { Fixtures.target("b\($0)", store: MemoryBackend(), probe: probe) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await scheduler.run() }
            scheduler.start(targets)
            await Self.advance(clock, by: .seconds(10.05))
            scheduler.shutdown()
            try await group.waitForAll()
        }
        let firsts = recorder.reports.withLock { reports in
            (0..<4).compactMap { index in reports.first { $0.name == "b\(index)" }?.startedAt.offset }
        }
        #expect(firsts.count == 4)
        for (index, first) in firsts.enumerated() {
            let expected = Duration.seconds(2.5 * Double(index))
            #expect(first >= expected && first <= expected + .milliseconds(200), "b\(index) started at \(first)")
        }
    }

    @Test(arguments: [0.0, 0.999])
    func jitterStaysWithinBounds(random: Double) async throws {
        let clock = ManualClock()
        let recorder = Recorder()
        let scheduler = Self.scheduler(clock, random: random, recorder: recorder)
        var probe = Fixtures.probe(operations: [.put, .delete], interval: .seconds(10))
        probe.jitter = 0.1
        let target = Fixtures.target("j", store: MemoryBackend(), probe: probe)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await scheduler.run() }
            scheduler.start([target])
            await Self.advance(clock, by: .seconds(42))
            scheduler.shutdown()
            try await group.waitForAll()
        }
        let starts = recorder.reports.withLock { $0.map(\.startedAt.offset) }
        #expect(starts.count >= 4)
        for (slot, start) in starts.enumerated() {
            let planned = Duration.seconds(10 * slot)
            // Jitter of ±10% of 10 s: the start must be within [planned - 1 s, planned + 1 s] (+ one step).
            #expect(
                start >= planned - .seconds(1) && start <= planned + .seconds(1) + .milliseconds(200),
                "slot \(slot) at \(start)")
        }
        // Drift, measured against the jittered plan, stays within one clock step.
        #expect(recorder.reports.withLock { $0.allSatisfy { $0.drift <= .milliseconds(200) } })
    }

    @Test func aHungBackendDoesNotDelayAHealthyOne() async throws {
        let clock = ManualClock()
        let recorder = Recorder()
        let scheduler = Self.scheduler(clock, recorder: recorder)
        let probe = Fixtures.probe(operations: [.put, .head, .delete], interval: .seconds(10), timeout: .seconds(5))
        let hung = MemoryBackend()
        hung.hangNext(1000, operations: [.head])
        let targets = [
            Fixtures.target("hung", store: hung, probe: probe),
            Fixtures.target("healthy", store: MemoryBackend(), probe: probe),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await scheduler.run() }
            scheduler.start(targets)
            await Self.advance(clock, by: .seconds(60))
            scheduler.shutdown()
            await Self.advance(clock, by: .seconds(10))
            try await group.waitForAll()
        }
        // The healthy backend ran every slot (starting at 5 s, every 10 s) although the other hung each time.
        #expect(recorder.count("healthy") == 6)
        #expect(recorder.reports.withLock { $0.filter { $0.name == "healthy" }.allSatisfy { $0.status == .success } })
        #expect(recorder.count("hung") >= 5)
        #expect(recorder.reports.withLock { $0.filter { $0.name == "hung" }.allSatisfy { $0.status != .success } })
    }

    @Test func cyclesOfOneBackendNeverOverlap() async throws {
        let clock = ManualClock()
        let recorder = Recorder()
        let inFlight = Mutex((now: 0, max: 0))
        let scheduler = CanaryScheduler(clock: clock, logger: .init(label: "t"), sweepEvery: 1000, random: { 0.5 }) {
            report in
            recorder.reports.withLock {
                $0.append((report.result.backend, report.start, report.drift, report.result.status))
            }
        }
        // Every HEAD takes 14 s of the 10 s interval's budget until the op timeout (5 s) and cycle deadline cut it.
        let store = MemoryBackend()
        store.hangNext(1000, operations: [.head])
        let probe = Fixtures.probe(operations: [.put, .head, .delete], interval: .seconds(10), timeout: .seconds(9.5))
        let target = Fixtures.target("slow", store: store, probe: probe)
        _ = inFlight
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await scheduler.run() }
            scheduler.start([target])
            await Self.advance(clock, by: .seconds(50))
            scheduler.shutdown()
            await Self.advance(clock, by: .seconds(10))
            try await group.waitForAll()
        }
        // Each cycle runs into its 9 s deadline; the next starts only after it ended.
        let starts = recorder.reports.withLock { $0.map(\.startedAt.offset) }
        #expect(starts.count >= 4)
        for (earlier, later) in zip(starts, starts.dropFirst()) {
            #expect(later - earlier >= .seconds(9), "cycles overlapped: \(starts)")
        }
    }

    @Test func stoppedBackendsStopAndNewOnesStart() async throws {
        let clock = ManualClock()
        let recorder = Recorder()
        let scheduler = Self.scheduler(clock, recorder: recorder)
        let probe = Fixtures.probe(operations: [.put, .delete], interval: .seconds(10))
        let released = Mutex<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await scheduler.run() }
            scheduler.start([Fixtures.target("a", store: MemoryBackend(), probe: probe)]) { name in
                released.withLock { $0.append(name) }
            }
            await Self.advance(clock, by: .seconds(25))
            scheduler.stop(["a"])
            scheduler.start([Fixtures.target("b", store: MemoryBackend(), probe: probe)])
            let aBefore = recorder.count("a")
            await Self.advance(clock, by: .seconds(30))
            #expect(recorder.count("a") == aBefore)
            #expect(recorder.count("b") >= 3)
            #expect(released.withLock { $0 } == ["a"])
            #expect(scheduler.targets.map(\.name) == ["b"])
            scheduler.shutdown()
            try await group.waitForAll()
        }
    }
}
