import Foundation
import Logging
import Testing

@testable import SidecarState

/// The state store on real SQLite files: what is appended survives closing and opening again, and a file that is
/// corrupt, of another schema or of another instance is moved aside for a fresh one. The process-level proofs
/// (SIGKILL, read-only directories) are in the integration tests.
@Suite("State store")
struct StateStoreTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    static func record(_ lane: String, _ id: String, at seconds: Double) -> OutboxRecord {
        OutboxRecord(
            lane: lane, eventID: id, eventType: "backend.circuit.opened", contentType: "application/json",
            body: Data("{\"id\":\"\(id)\"}".utf8), createdAt: Date(timeIntervalSince1970: seconds))
    }

    @Test func recordsAndOutagesSurviveReopeningInOrder() async throws {
        let directory = try Self.directory()
        let (first, problems) = await StateStore.open(directory: directory, instance: "a", logger: Self.logger)
        #expect(problems.isEmpty)
        let store = try #require(first)
        let outage = RememberedOutage(
            backend: "ceph", since: Date(timeIntervalSince1970: 1_000), openedEventID: "e1", consecutiveFailures: 3,
            failure: ["put", "http_5xx", "500"])
        let sequence = try await store.append(
            [Self.record("ce", "e1", at: 1_000), Self.record("slack", "e1", at: 1_000)], outage: .opened(outage))
        #expect(sequence.count == 2 && sequence[0] < sequence[1])
        _ = try await store.append([Self.record("ce", "e2", at: 1_001)], outage: nil)
        try await store.remove(sequence[1])
        #expect(try await store.stats().count == 2)
        await store.close()

        let (again, _) = await StateStore.open(directory: directory, instance: "a", logger: Self.logger)
        let reopened = try #require(again)
        let pending = try await reopened.pending()
        #expect(pending.map(\.eventID) == ["e1", "e2"])
        #expect(pending.map(\.lane) == ["ce", "ce"])
        #expect(pending.first?.body == Data("{\"id\":\"e1\"}".utf8))
        #expect(pending.first?.createdAt == Date(timeIntervalSince1970: 1_000))
        #expect(try await reopened.outages() == [outage])
        _ = try await reopened.append([], outage: .closed(backend: "ceph"))
        #expect(try await reopened.outages().isEmpty)
        let stats = try await reopened.stats()
        #expect(stats.count == 2 && stats.oldest == Date(timeIntervalSince1970: 1_000))
        try await reopened.compact()
        await reopened.close()
    }

    @Test(arguments: ["not a database at all", ""])
    func aCorruptFileIsMovedAsideForAFreshOne(content: String) async throws {
        let directory = try Self.directory()
        let path = (directory as NSString).appendingPathComponent(StateStore.fileName)
        try Data(String(repeating: content.isEmpty ? "\u{0}" : content, count: 200).utf8).write(
            to: URL(fileURLWithPath: path))
        let (opened, problems) = await StateStore.open(
            directory: directory, instance: "a", now: Date(timeIntervalSince1970: 42), logger: Self.logger)
        #expect(problems.map(\.kind) == [.corrupt], "\(problems)")
        let store = try #require(opened)
        _ = try await store.append([Self.record("ce", "x", at: 1)], outage: nil)
        #expect(try await store.pending().count == 1)
        await store.close()
        #expect(FileManager.default.fileExists(atPath: path + ".corrupt-42"))
    }

    @Test func aTruncatedStoreIsCorrupt() async throws {
        let directory = try Self.directory()
        let (first, _) = await StateStore.open(directory: directory, instance: "a", logger: Self.logger)
        let store = try #require(first)
        for index in 0..<200 {
            _ = try await store.append(
                [Self.record("ce", "event-\(index)-" + String(repeating: "x", count: 400), at: 1)], outage: nil)
        }
        await store.close()
        let path = (directory as NSString).appendingPathComponent(StateStore.fileName)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size / 3)
        try handle.close()
        let (opened, problems) = await StateStore.open(directory: directory, instance: "a", logger: Self.logger)
        #expect(problems.map(\.kind) == [.corrupt], "\(problems)")
        #expect(opened != nil)
        await opened?.close()
    }

    @Test func anotherInstancesStoreIsForeign() async throws {
        let directory = try Self.directory()
        let (first, _) = await StateStore.open(directory: directory, instance: "replica-1", logger: Self.logger)
        _ = try await first?.append([Self.record("ce", "theirs", at: 1)], outage: nil)
        await first?.close()
        let (opened, problems) = await StateStore.open(directory: directory, instance: "replica-2", logger: Self.logger)
        #expect(problems.map(\.kind) == [.foreign])
        #expect(problems.first?.message.contains("replica-1") == true)
        let store = try #require(opened)
        #expect(try await store.pending().isEmpty, "another instance's events are not ours to send")
        await store.close()
    }

    @Test func aDirectoryThatCannotBeCreatedGivesNoStore() async throws {
        let file = try Self.directory() + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let (store, problems) = await StateStore.open(directory: file + "/state", instance: "a", logger: Self.logger)
        #expect(store == nil)
        #expect(problems.map(\.kind) == [.unwritable])
    }
}
