public import Foundation
public import Logging
import SQLiteNIO

/// An event waiting for one receiver, as the outbox keeps it: the rendered body and its id, so a delivery resumed by
/// the next process sends the same bytes under the same `webhook-id`.
public struct OutboxRecord: Sendable, Equatable {
    /// The order of acceptance, across every receiver (assigned by ``StateStore/append(_:outage:)``).
    public var seq: Int64
    /// The receiver (the webhook's name).
    public var lane: String
    public var eventID: String
    public var eventType: String
    public var contentType: String
    public var body: Data
    /// When the event was accepted: its age decides `max_age` after a restart too.
    public var createdAt: Date

    /// A record from its parts.
    public init(
        seq: Int64 = 0, lane: String, eventID: String, eventType: String, contentType: String, body: Data,
        createdAt: Date
    ) {
        self.seq = seq
        self.lane = lane
        self.eventID = eventID
        self.eventType = eventType
        self.contentType = contentType
        self.body = body
        self.createdAt = createdAt
    }
}

/// An outage this instance announced (its `backend.circuit.opened` was accepted) and has not closed yet.
public struct RememberedOutage: Sendable, Equatable {
    public var backend: String
    /// When the breaker opened (closed → open): the `closed` that ends the outage reports the time since.
    public var since: Date
    /// The id of the `opened` event that announced it.
    public var openedEventID: String
    public var consecutiveFailures: Int
    /// The failure that opened it: operation, reason label and message.
    public var failure: [String]?

    /// An outage from its parts.
    public init(backend: String, since: Date, openedEventID: String, consecutiveFailures: Int, failure: [String]?) {
        self.backend = backend
        self.since = since
        self.openedEventID = openedEventID
        self.consecutiveFailures = consecutiveFailures
        self.failure = failure
    }
}

/// What an accepted event changes in the remembered outages, in the same transaction as the event itself.
public enum OutageChange: Sendable, Equatable {
    case opened(RememberedOutage)
    case closed(backend: String)
}

/// Why the store could not be used as found: for a log line and `s3canary_state_problems_total{kind}`.
public struct StateProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// Not a database, truncated, or failing SQLite's quick check: moved aside, a new one created.
        case corrupt
        /// Written by another schema version: moved aside.
        case schema
        /// Written by another instance (another `instance:`): moved aside, its events are not ours to send.
        case foreign
        /// The directory cannot be created or written: events live in memory only.
        case unwritable
        /// An outbox record of an event type this version does not know (a newer version wrote it): dropped, never
        /// sent as another event. Counted by the dispatcher when it restores the outbox.
        case unknownEvent = "unknown_event"
    }

    public var kind: Kind
    public var message: String

    public var description: String { "\(self.kind.rawValue): \(self.message)" }
}

/// What survives a restart (`state_dir`): the event outbox and the remembered outages, in one SQLite file.
///
/// Crash safety: WAL journal with `synchronous = NORMAL`. A commit is in the WAL before `append` returns, so a
/// SIGKILL, an OOM kill or a container restart (all the process, none the kernel) never loses an accepted event,
/// and the file always opens (SQLite replays or ignores the WAL's last frames). `FULL` would add an fsync per commit
/// to survive power loss too, which an `emptyDir` does not outlive anyway. Every statement runs on one thread of its
/// own, in the order it was submitted; the caller (the dispatcher's writer) sends one operation at a time.
public actor StateStore {
    /// The file's name inside `state_dir`.
    public static let fileName = "s3-canary-state.sqlite"
    static let schemaVersion = "1"

    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    /// The database file.
    public nonisolated let path: String
    /// The instance whose store this is: a file of another instance is moved aside when opened, so every record
    /// read back is this instance's.
    public nonisolated let instance: String

    private init(connection: SQLiteConnection, threadPool: NIOThreadPool, path: String, instance: String) {
        self.connection = connection
        self.threadPool = threadPool
        self.path = path
        self.instance = instance
    }

    /// Opens (or creates) the store in `directory` for `instance`. A file that is corrupt, of another schema version
    /// or of another instance is moved aside (`<file>.<kind>-<unix time>`, kept for a person to look at) and a new
    /// one created; a directory that cannot be written gives no store. Every such problem is returned.
    public static func open(
        directory: String, instance: String, now: Date = Date(), logger: Logger
    ) async -> (StateStore?, [StateProblem]) {
        var problems: [StateProblem] = []
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            problems.append(.init(kind: .unwritable, message: "cannot create state_dir \(directory): \(error)"))
            return (nil, problems)
        }
        guard manager.isWritableFile(atPath: directory) else {
            problems.append(.init(kind: .unwritable, message: "state_dir \(directory) is not writable"))
            return (nil, problems)
        }
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        for _ in 0..<2 {
            let pool = NIOThreadPool(numberOfThreads: 1)
            pool.start()
            var connection: SQLiteConnection?
            do {
                let opened = try await SQLiteConnection.open(
                    storage: .file(path: path), threadPool: pool, logger: logger,
                    on: MultiThreadedEventLoopGroup.singleton.any())
                connection = opened
                if let problem = try await Self.prepare(opened, instance: instance) {
                    problems.append(problem)
                } else {
                    return (StateStore(connection: opened, threadPool: pool, path: path, instance: instance), problems)
                }
            } catch {
                problems.append(.init(kind: .corrupt, message: "\(path) cannot be read as a state store: \(error)"))
            }
            try? await connection?.close()
            try? await pool.shutdownGracefully()
            let kind = problems.last?.kind ?? .corrupt
            guard Self.moveAside(path, kind: kind, now: now) else {
                problems.append(.init(kind: .unwritable, message: "cannot move \(path) aside"))
                return (nil, problems)
            }
        }
        return (nil, problems)
    }

    /// Sets the journal, checks the file and its schema; returns the problem that makes it unusable, if any.
    private static func prepare(_ connection: SQLiteConnection, instance: String) async throws -> StateProblem? {
        // Only a new, empty file takes auto_vacuum; then freed pages can be returned with incremental_vacuum.
        _ = try await connection.query("PRAGMA auto_vacuum = INCREMENTAL")
        let journal = try await connection.query("PRAGMA journal_mode = WAL")
        guard journal.first?.column("journal_mode")?.string == "wal" else {
            return .init(kind: .corrupt, message: "SQLite refused the WAL journal")
        }
        _ = try await connection.query("PRAGMA synchronous = NORMAL")
        let check = try await connection.query("PRAGMA quick_check")
        let verdict = check.first?.columns.first?.data.string ?? "no answer"
        guard verdict == "ok" else { return .init(kind: .corrupt, message: "quick_check: \(verdict)") }
        _ = try await connection.query("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, lane TEXT NOT NULL, \
            event_id TEXT NOT NULL, event_type TEXT NOT NULL, content_type TEXT NOT NULL, body BLOB NOT NULL, \
            created_at REAL NOT NULL)
            """)
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS outages (backend TEXT PRIMARY KEY, since REAL NOT NULL, \
            opened_event_id TEXT NOT NULL, consecutive_failures INTEGER NOT NULL, failure_operation TEXT, \
            failure_reason TEXT, failure_message TEXT)
            """)
        var meta: [String: String] = [:]
        for row in try await connection.query("SELECT key, value FROM meta") {
            if let key = row.column("key")?.string, let value = row.column("value")?.string { meta[key] = value }
        }
        if meta.isEmpty {
            _ = try await connection.query(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('instance', ?)",
                [.text(Self.schemaVersion), .text(instance)])
            return nil
        }
        if meta["schema_version"] != Self.schemaVersion {
            return .init(
                kind: .schema,
                message: "schema version \(meta["schema_version"] ?? "none"), this version reads \(Self.schemaVersion)")
        }
        if meta["instance"] != instance {
            return .init(
                kind: .foreign,
                message: "written by instance \(meta["instance"] ?? "unknown"), this is \(instance): not ours to send")
        }
        return nil
    }

    /// Renames the file (and its WAL and shared-memory files) to `<file>.<kind>-<unix time>`.
    private static func moveAside(_ path: String, kind: StateProblem.Kind, now: Date) -> Bool {
        let suffix = ".\(kind.rawValue)-\(Int64(now.timeIntervalSince1970))"
        let manager = FileManager.default
        for extra in ["-wal", "-shm"] where manager.fileExists(atPath: path + extra) {
            try? manager.moveItem(atPath: path + extra, toPath: path + suffix + extra)
        }
        guard manager.fileExists(atPath: path) else { return true }
        return (try? manager.moveItem(atPath: path, toPath: path + suffix)) != nil
    }

    /// Stores `records` and applies `outage` in one transaction; returns each record's sequence number.
    public func append(_ records: [OutboxRecord], outage: OutageChange?) async throws -> [Int64] {
        _ = try await self.connection.query("BEGIN IMMEDIATE")
        do {
            var sequence: [Int64] = []
            for record in records {
                let rows = try await self.connection.query(
                    """
                    INSERT INTO outbox (lane, event_id, event_type, content_type, body, created_at) \
                    VALUES (?, ?, ?, ?, ?, ?) RETURNING seq
                    """,
                    [
                        .text(record.lane), .text(record.eventID), .text(record.eventType), .text(record.contentType),
                        .blob(ByteBuffer(bytes: record.body)), .float(record.createdAt.timeIntervalSince1970),
                    ])
                sequence.append(Int64(rows.first?.column("seq")?.integer ?? 0))
            }
            switch outage {
            case .opened(let outage):
                _ = try await self.connection.query(
                    """
                    INSERT OR REPLACE INTO outages (backend, since, opened_event_id, consecutive_failures, \
                    failure_operation, failure_reason, failure_message) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                    [
                        .text(outage.backend), .float(outage.since.timeIntervalSince1970), .text(outage.openedEventID),
                        .integer(.init(outage.consecutiveFailures)),
                    ]
                        + (0..<3).map { index in
                            outage.failure.map { .text($0.count > index ? $0[index] : "") } ?? .null
                        })
            case .closed(let backend):
                _ = try await self.connection.query("DELETE FROM outages WHERE backend = ?", [.text(backend)])
            case nil:
                break
            }
            _ = try await self.connection.query("COMMIT")
            return sequence
        } catch {
            _ = try? await self.connection.query("ROLLBACK")
            throw error
        }
    }

    /// Forgets a record: delivered, or dropped for good.
    public func remove(_ seq: Int64) async throws {
        _ = try await self.connection.query("DELETE FROM outbox WHERE seq = ?", [.integer(.init(seq))])
    }

    /// Every record not yet delivered, in the order it was accepted.
    public func pending() async throws -> [OutboxRecord] {
        try await self.connection.query(
            "SELECT seq, lane, event_id, event_type, content_type, body, created_at FROM outbox ORDER BY seq"
        ).map { row in
            OutboxRecord(
                seq: Int64(row.column("seq")?.integer ?? 0), lane: row.column("lane")?.string ?? "",
                eventID: row.column("event_id")?.string ?? "", eventType: row.column("event_type")?.string ?? "",
                contentType: row.column("content_type")?.string ?? "",
                body: row.column("body")?.blob.map { Data($0.readableBytesView) } ?? Data(),
                createdAt: Date(timeIntervalSince1970: row.column("created_at")?.double ?? 0))
        }
    }

    /// How many records wait, and when the oldest was accepted.
    public func stats() async throws -> (count: Int, oldest: Date?) {
        let row = try await self.connection.query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox").first
        return (
            Int(row?.column("n")?.integer ?? 0), row?.column("oldest")?.double.map(Date.init(timeIntervalSince1970:))
        )
    }

    /// The outages announced and not closed.
    public func outages() async throws -> [RememberedOutage] {
        try await self.connection.query(
            """
            SELECT backend, since, opened_event_id, consecutive_failures, failure_operation, failure_reason, \
            failure_message FROM outages ORDER BY backend
            """
        ).map { row in
            let failure = ["failure_operation", "failure_reason", "failure_message"].compactMap {
                row.column($0)?.string
            }
            return RememberedOutage(
                backend: row.column("backend")?.string ?? "",
                since: Date(timeIntervalSince1970: row.column("since")?.double ?? 0),
                openedEventID: row.column("opened_event_id")?.string ?? "",
                consecutiveFailures: Int(row.column("consecutive_failures")?.integer ?? 0),
                failure: failure.count == 3 ? failure : nil)
        }
    }

    /// Returns freed pages to the file system and truncates the WAL: the store stays as small as what it holds.
    public func compact() async throws {
        _ = try await self.connection.query("PRAGMA incremental_vacuum")
        _ = try await self.connection.query("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Closes the file.
    public func close() async {
        try? await self.connection.close()
        try? await self.threadPool.shutdownGracefully()
    }
}
