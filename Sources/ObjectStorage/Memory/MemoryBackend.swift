import Crypto
public import NIOCore
import Synchronization

/// An in-memory ``ObjectBackend`` with fault injection: the test double for unit tests and the demo's store.
///
/// It behaves as S3 does for everything a canary uses (ranges, copy directives, paged listings, 404s) and can
/// be told to fail the next calls with an error or HTTP status, add latency, hang until cancelled, or corrupt
/// the next reads, so breaker and canary logic can be tested without a network.
public final class MemoryBackend: ObjectBackend, BackendCopier {
    /// The operations faults can target.
    public enum Operation: String, Sendable, CaseIterable {
        case head, put, get, delete, list, copy

        /// The S3 operation name, as ``ObjectStorageError/operation`` reports it for ``S3Backend`` too.
        var s3Name: String {
            switch self {
            case .head: "HeadObject"
            case .put: "PutObject"
            case .get: "GetObject"
            case .delete: "DeleteObject"
            case .list: "ListObjectsV2"
            case .copy: "CopyObject"
            }
        }
    }

    struct StoredObject {
        var body: ByteBuffer
        var contentType: String?
        var metadata: [String: String]
        var etag: String
        var sequence: Int
    }

    struct Faults {
        var failures: [(remaining: Int, operations: Set<Operation>, error: ObjectStorageError)] = []
        var persistentFailure: (operations: Set<Operation>, error: ObjectStorageError)?
        var hangs: [(remaining: Int, operations: Set<Operation>)] = []
        var latency: [Operation: Duration] = [:]
        var corruptReads = 0
    }

    struct State {
        var objects: [String: StoredObject] = [:]
        var faults = Faults()
        var calls: [Operation: Int] = [:]
        var sequence = 0
        /// Requests answered, for request ids (`memory-` and a number, as S3 answers `x-amz-request-id`).
        var requests = 0
    }

    private let state = Mutex(State())

    /// A name used in error messages.
    public let name: String

    /// An empty store.
    public init(name: String = "memory") {
        self.name = name
    }

    // MARK: - Fault injection

    /// Fails the next `count` calls (to `operations`, or any) with `error`.
    public func failNext(
        _ count: Int, with error: ObjectStorageError, operations: Set<Operation> = Set(Operation.allCases)
    ) {
        self.state.withLock { $0.faults.failures.append((count, operations, error)) }
    }

    /// Fails the next `count` calls as if the server had answered with `status` (and S3 code `s3Code`).
    public func failNext(
        _ count: Int,
        status: Int,
        s3Code: String? = nil,
        operations: Set<Operation> = Set(Operation.allCases)
    ) {
        let error = ObjectStorageError(
            code: status == 404 ? .notFound : .httpError,
            httpStatus: status,
            s3Code: s3Code,
            message: "injected HTTP \(status)"
        )
        self.failNext(count, with: error, operations: operations)
    }

    /// Fails every call to `operations` with `error` until ``clearFaults()`` or another `failAlways`.
    /// Passing `nil` ends a persistent failure.
    public func failAlways(with error: ObjectStorageError?, operations: Set<Operation> = Set(Operation.allCases)) {
        self.state.withLock { state in
            state.faults.persistentFailure = error.map { (operations, $0) }
        }
    }

    /// Makes the next `count` calls wait until their task is cancelled, like a server that never answers.
    public func hangNext(_ count: Int, operations: Set<Operation> = Set(Operation.allCases)) {
        self.state.withLock { $0.faults.hangs.append((count, operations)) }
    }

    /// Delays every call to `operations` by `latency` (zero removes the delay).
    public func setLatency(_ latency: Duration, operations: Set<Operation> = Set(Operation.allCases)) {
        self.state.withLock { state in
            for operation in operations {
                state.faults.latency[operation] = latency == .zero ? nil : latency
            }
        }
    }

    /// Flips a byte in the body of the next `count` GETs: the canary's content check must notice.
    public func corruptNextReads(_ count: Int = 1) {
        self.state.withLock { $0.faults.corruptReads += count }
    }

    /// Removes every injected fault.
    public func clearFaults() {
        self.state.withLock { $0.faults = Faults() }
    }

    /// How many times `operation` was called, faults included.
    public func callCount(_ operation: Operation) -> Int {
        self.state.withLock { $0.calls[operation, default: 0] }
    }

    /// The keys stored now, sorted.
    public var keys: [String] {
        self.state.withLock { $0.objects.keys.sorted() }
    }

    private enum Decision {
        case proceed(latency: Duration?)
        case fail(ObjectStorageError, latency: Duration?)
        case hang
    }

    private func applyFaults(_ operation: Operation) async throws {
        let decision: Decision = self.state.withLock { state in
            state.calls[operation, default: 0] += 1
            let latency = state.faults.latency[operation]
            if let index = state.faults.hangs.firstIndex(where: {
                $0.remaining > 0 && $0.operations.contains(operation)
            }) {
                state.faults.hangs[index].remaining -= 1
                return .hang
            }
            if let index = state.faults.failures.firstIndex(where: {
                $0.remaining > 0 && $0.operations.contains(operation)
            }) {
                state.faults.failures[index].remaining -= 1
                let error = state.faults.failures[index].error
                state.faults.failures.removeAll { $0.remaining <= 0 }
                return .fail(error, latency: latency)
            }
            if let persistent = state.faults.persistentFailure, persistent.operations.contains(operation) {
                return .fail(persistent.error, latency: latency)
            }
            return .proceed(latency: latency)
        }
        switch decision {
        case .hang:
            do {
                while true { try await Task.sleep(for: .seconds(3600)) }
            } catch {
                throw ObjectStorageError(code: .cancelled, operation: operation.s3Name, message: "cancelled")
            }
        case .proceed(let latency):
            try await self.sleep(latency, operation)
        case .fail(var error, let latency):
            try await self.sleep(latency, operation)
            if error.operation == nil { error.operation = operation.s3Name }
            throw error
        }
    }

    private func sleep(_ latency: Duration?, _ operation: Operation) async throws {
        guard let latency else { return }
        do {
            try await Task.sleep(for: latency)
        } catch {
            throw ObjectStorageError(code: .cancelled, operation: operation.s3Name, message: "cancelled")
        }
    }

    private func notFound(_ key: String, operation: String) -> ObjectStorageError {
        ObjectStorageError(
            code: .notFound,
            operation: operation,
            httpStatus: 404,
            s3Code: "NoSuchKey",
            message: "\(self.name): no object \(key)"
        )
    }

    // MARK: - ObjectBackend

    /// Reports a stored object, after any injected fault.
    public func headObject(key: String) async throws -> HeadObjectResult {
        try await self.applyFaults(.head)
        guard let object = self.state.withLock({ $0.objects[key] }) else {
            throw self.notFound(key, operation: "HeadObject")
        }
        return HeadObjectResult(
            size: Int64(object.body.readableBytes),
            etag: object.etag,
            contentType: object.contentType,
            metadata: object.metadata,
            requestID: self.nextRequestID()
        )
    }

    /// Stores an object, after any injected fault.
    public func putObject(
        key: String, body: ByteBuffer, contentType: String?, metadata: [String: String]
    )
        async throws -> PutObjectResult
    {
        try await self.applyFaults(.put)
        let etag = SigV4Signer.hex(Insecure.MD5.hash(data: body.readableBytesView))
        self.state.withLock { state in
            state.sequence += 1
            state.objects[key] = StoredObject(
                body: body,
                contentType: contentType,
                metadata: metadata,
                etag: etag,
                sequence: state.sequence
            )
        }
        return PutObjectResult(etag: etag, requestID: self.nextRequestID())
    }

    /// Reads an object or a range of it, after any injected fault.
    public func getObject(key: String, range: String?) async throws -> GetObjectResult {
        try await self.applyFaults(.get)
        let (found, corrupt) = self.state.withLock { state -> (StoredObject?, Bool) in
            guard let object = state.objects[key] else { return (nil, false) }
            let corrupt = state.faults.corruptReads > 0
            if corrupt { state.faults.corruptReads -= 1 }
            return (object, corrupt)
        }
        guard let object = found else { throw self.notFound(key, operation: "GetObject") }
        var body = object.body
        var contentRange: String?
        if let range {
            let total = object.body.readableBytes
            guard let (start, end) = Self.parseRange(range, size: total) else {
                throw ObjectStorageError(
                    code: .httpError,
                    operation: "GetObject",
                    httpStatus: 416,
                    s3Code: "InvalidRange",
                    message: "\(self.name): range \(range) not satisfiable for \(total) bytes"
                )
            }
            body = object.body.getSlice(at: object.body.readerIndex + start, length: end - start + 1) ?? ByteBuffer()
            contentRange = "bytes \(start)-\(end)/\(total)"
        }
        if corrupt, body.readableBytes > 0 {
            let index = body.readerIndex
            let byte = body.getInteger(at: index, as: UInt8.self) ?? 0
            body.setInteger(byte ^ 0xFF, at: index)
        }
        return GetObjectResult(
            body: body,
            size: Int64(body.readableBytes),
            etag: object.etag,
            contentType: object.contentType,
            metadata: object.metadata,
            contentRange: contentRange,
            requestID: self.nextRequestID()
        )
    }

    /// Deletes an object, after any injected fault.
    @discardableResult
    public func deleteObject(key: String) async throws -> DeleteObjectResult {
        try await self.applyFaults(.delete)
        _ = self.state.withLock { $0.objects.removeValue(forKey: key) }
        return DeleteObjectResult(requestID: self.nextRequestID())
    }

    /// A new request id, unique in this store.
    private func nextRequestID() -> String {
        let number = self.state.withLock { state in
            state.requests += 1
            return state.requests
        }
        return "memory-\(number)"
    }

    /// Lists the keys under `prefix` in pages, after any injected fault.
    public func listObjects(
        prefix: String,
        pageSize: Int,
        page: (ListObjectsPage) async throws -> Bool
    ) async throws {
        let size = max(1, pageSize)
        var after: String?
        while true {
            try await self.applyFaults(.list)
            let (objects, truncated) = self.state.withLock { state -> ([ListedObject], Bool) in
                let keys = state.objects.keys.filter { key in
                    key.hasPrefix(prefix) && after.map { key > $0 } ?? true
                }.sorted()
                let slice = keys.prefix(size)
                let objects = slice.compactMap { key in
                    state.objects[key].map { ListedObject(key: key, size: Int64($0.body.readableBytes), etag: $0.etag) }
                }
                return (objects, keys.count > size)
            }
            let keepGoing = try await page(
                ListObjectsPage(objects: objects, isTruncated: truncated, requestID: self.nextRequestID()))
            guard keepGoing, truncated, let last = objects.last else { return }
            after = last.key
        }
    }

    /// Copies an object inside the store, after any injected fault.
    public func copyObject(
        source: String, destination: String, contentType: String?, metadata: [String: String]?
    )
        async throws -> CopyObjectResult
    {
        do {
            try await self.applyFaults(.copy)
        } catch let error as ObjectStorageError {
            throw CopyError(phase: S3Backend.copyPhase(of: error), underlying: error)
        }
        let result: StoredObject? = self.state.withLock { state in
            guard var object = state.objects[source] else { return nil }
            if contentType != nil || metadata != nil {
                object.contentType = contentType
                object.metadata = metadata ?? [:]
            }
            state.sequence += 1
            object.sequence = state.sequence
            state.objects[destination] = object
            return object
        }
        guard let copied = result else {
            throw CopyError(phase: .read, underlying: self.notFound(source, operation: "CopyObject"))
        }
        return CopyObjectResult(etag: copied.etag, requestID: self.nextRequestID())
    }

    /// Parses a single `bytes=` range as RFC 9110 defines it, clamped to the object; `nil` when unsatisfiable.
    static func parseRange(_ header: String, size: Int) -> (Int, Int)? {
        guard header.hasPrefix("bytes="), size > 0 else { return nil }
        let spec = header.dropFirst("bytes=".count)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = Int(last), suffix > 0 else { return nil }
            return (max(0, size - suffix), size - 1)
        }
        guard let start = Int(first), start >= 0, start < size else { return nil }
        if last.isEmpty { return (start, size - 1) }
        guard let end = Int(last), end >= start else { return nil }
        return (start, min(end, size - 1))
    }
}
