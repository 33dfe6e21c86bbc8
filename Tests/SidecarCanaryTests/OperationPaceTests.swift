import Foundation
import ObjectStorage
import Synchronization
import Testing

@testable import SidecarCanary
@testable import SidecarConfig

/// `probe.every`: which operations a cycle runs, by when each last ran (wall time from the cycle's injected `now`).
@Suite("Pace per operation")
struct OperationPaceTests {
    /// A wall clock the test moves.
    final class Wall: Sendable {
        static let start = Date(timeIntervalSince1970: 1_800_000_000)
        private let time = Mutex(Wall.start)
        var now: Date { self.time.withLock { $0 } }
        func advance(_ seconds: Double) { self.time.withLock { $0 += seconds } }
        func set(_ seconds: Double) { self.time.withLock { $0 = Wall.start + seconds } }
    }

    static func pacedProbe() -> CanaryConfiguration.Probe {
        var probe = Fixtures.probe(
            operations: [.put, .head, .list, .delete], interval: .seconds(15), timeout: .seconds(5))
        probe.every = [.list: .seconds(60)]
        return probe
    }

    @Test func aPacedOperationRunsEveryFourthCycleAndTheRestEveryCycle() async {
        let store = MemoryBackend()
        let wall = Wall()
        let target = Fixtures.target(store: store, probe: Self.pacedProbe())
        var ran: [[CanaryConfiguration.Operation]] = []
        // Cycles every 15 s, each a little late or early (the jitter, up to 10 %), for two and a half minutes.
        for (cycle, offset) in [0.0, 1.4, -1.2, 0.9, 0.0, 1.3, -1.4, 0.2, 0.8, -0.5, 0.0].enumerated() {
            wall.set(Double(cycle) * 15 + offset)
            let result = await CanaryCycle(target: target, clock: ContinuousClock(), now: { wall.now }).run(
                deadline: .seconds(120))
            #expect(result.status == .success)
            #expect(result.paced == [.list])
            ran.append(result.steps.map(\.operation))
        }
        let listed = ran.indices.filter { ran[$0].contains(.list) }
        #expect(listed == [0, 4, 8], "list runs at the first cycle and then once a minute: \(ran)")
        #expect(ran.allSatisfy { $0.starts(with: [.put, .head]) && $0.last == .delete })
        #expect(store.callCount(.list) == 3)
    }

    @Test func aFailedPacedOperationRunsAgainAtTheNextCycle() async {
        let store = MemoryBackend()
        let wall = Wall()
        let target = Fixtures.target(store: store, probe: Self.pacedProbe())
        store.failNext(1, status: 500, operations: [.list])
        var listed: [Bool] = []
        var statuses: [CycleResult.Status] = []
        for _ in 0..<4 {
            wall.advance(15)
            let result = await CanaryCycle(target: target, clock: ContinuousClock(), now: { wall.now }).run(
                deadline: .seconds(120))
            listed.append(result.steps.contains { $0.operation == .list })
            statuses.append(result.status)
        }
        #expect(statuses == [.failure, .success, .success, .success])
        #expect(listed == [true, true, false, false], "a failed check is retried, then paced from its success")
        #expect(target.pace.lastRun(of: .list) != nil)
    }

    @Test func aCycleCutShortBeforeThePacedOperationLeavesItDue() async {
        let store = MemoryBackend()
        let wall = Wall()
        let target = Fixtures.target(store: store, probe: Self.pacedProbe())
        store.failNext(1, status: 500, operations: [.head])
        wall.advance(15)
        let failed = await CanaryCycle(target: target, clock: ContinuousClock(), now: { wall.now }).run(
            deadline: .seconds(120))
        #expect(failed.status == .failure && !failed.steps.contains { $0.operation == .list })
        wall.advance(15)
        let next = await CanaryCycle(target: target, clock: ContinuousClock(), now: { wall.now }).run(
            deadline: .seconds(120))
        #expect(next.steps.contains { $0.operation == .list && $0.result == .success })
    }

    @Test func withoutEveryEachCycleRunsEveryOperation() {
        let pace = OperationPace()
        var probe = Self.pacedProbe()
        probe.every = [:]
        let now = Date()
        pace.record([StepResult(operation: .list, result: .success)], of: probe, startedAt: now)
        #expect(pace.operations(of: probe, at: now) == [.put, .head, .list, .delete])
        #expect(pace.lastRun(of: .list) == nil, "an operation that is not paced has no pace to keep")
    }
}
