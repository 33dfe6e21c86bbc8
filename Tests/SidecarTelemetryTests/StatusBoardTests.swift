import Foundation
import Testing

@testable import SidecarCanary
@testable import SidecarTelemetry

@Suite("Status board readiness")
struct StatusBoardTests {
    static func cycle(_ backend: String, _ status: CycleResult.Status) -> CycleResult {
        CycleResult(
            backend: backend, startedAt: Date(), duration: .milliseconds(5), status: status, steps: [], failure: nil,
            integrityFailure: false)
    }

    @Test func readyAfterEveryBackendsFirstCycleAndNotReadyFromShutdown() {
        let board = StatusBoard()
        board.setBackends(["a", "b"])
        #expect(board.readiness.ready == false && board.readiness.waitingFor == ["a", "b"])
        board.record(Self.cycle("a", .success))
        board.record(Self.cycle("b", .failure))  // a failed first cycle still counts: the canary is working
        #expect(board.readiness.ready)
        board.beginShutdown()
        #expect(!board.readiness.ready && board.isShuttingDown)
    }

    @Test func removedBackendsAreForgottenAndTheirLateResultsIgnored() {
        let board = StatusBoard()
        board.setBackends(["a", "b"])
        board.setBackends(["a"])
        #expect(!board.contains("b"))
        board.record(Self.cycle("b", .success))
        #expect(board.backends.map(\.name) == ["a"])
    }
}
