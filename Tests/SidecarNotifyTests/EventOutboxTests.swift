import Foundation
import Logging
import PrometheusExposition
import SidecarEvents
import Testing

@testable import SidecarConfig
@testable import SidecarNotify
@testable import SidecarState
@testable import SidecarTelemetry

/// What the outbox gives back after a restart, on a real SQLite store: the events as they were (id, type and the
/// instance whose store it is), and nothing made up for a record it cannot read.
@Suite("Event outbox restore")
struct EventOutboxTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test func restoredEventsKeepTheirInstanceAndAnUnknownTypeIsCountedAndDropped() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("outbox-\(UUID().uuidString.prefix(8))").path
        let (opened, problems) = await StateStore.open(directory: directory, instance: "canary-7", logger: Self.logger)
        let store = try #require(opened)
        #expect(problems.isEmpty)
        func record(_ id: String, _ type: String) -> OutboxRecord {
            OutboxRecord(
                lane: "w", eventID: id, eventType: type, contentType: "application/json", body: Data("{}".utf8),
                createdAt: Date(timeIntervalSince1970: 1_000))
        }
        // A newer version's event type between two this version knows.
        _ = try await store.append(
            [
                record("a", "backend.circuit.opened"), record("b", "backend.circuit.exploded"),
                record("c", "backend.circuit.closed"),
            ], outage: nil)

        let metrics = try CanaryMetrics(version: "test")
        let queue = WebhookQueue<ContinuousClock.Instant>(
            WebhookConfiguration(name: "w", url: "http://127.0.0.1:9/"), metrics: metrics, logger: Self.logger)
        let outbox = EventOutbox<ContinuousClock>(store: store, metrics: metrics, logger: Self.logger)
        let pending = await outbox.restore(
            into: [queue], clockNow: ContinuousClock.now, now: Date(timeIntervalSince1970: 1_010))
        queue.finish()

        var restored: [QueuedEvent<ContinuousClock.Instant>] = []
        for await item in queue.events { restored.append(item) }
        #expect(restored.map(\.event.id) == ["a", "c"])
        #expect(restored.map(\.event.type) == [.circuitOpened, .circuitClosed])
        #expect(restored.allSatisfy { $0.event.instance == "canary-7" })
        #expect(pending.count == 2)
        #expect(metrics.stateProblems.value([StateProblem.Kind.unknownEvent.rawValue]) == 1)
        // Dropped from the store too: the next start does not meet it again.
        #expect(try await store.pending().map(\.eventID) == ["a", "c"])
        await store.close()
    }
}
