import Crypto
import Foundation
import NIOCore
import ObjectStorage
import Synchronization

/// The result of one canary operation.
public struct StepResult: Sendable, Equatable, Codable {
    public enum Result: String, Sendable, Codable {
        case success
        case error
        /// The breaker rejected the call: no I/O happened.
        case rejected
        /// The operation does not apply to this backend (copy on a backend that cannot copy).
        case skipped
    }

    public var operation: CanaryConfiguration.Operation
    public var result: Result
    /// Time the backend took; `nil` when the call never reached it.
    public var seconds: Double?
    public var reason: FailureReason?
    public var message: String?
}

/// The result of one canary cycle of one backend.
public struct CycleResult: Sendable, Equatable {
    public enum Status: String, Sendable, Codable {
        case success, failure
        /// The breaker was open: the cycle sent nothing.
        case skipped
    }

    public var backend: String
    public var startedAt: Date
    public var duration: Duration
    public var status: Status
    public var steps: [StepResult]
    /// The first error of a failed cycle.
    public var failure: FailureSummary?
    /// Whether a read returned other bytes than were written.
    public var integrityFailure: Bool
}

/// What a cycle needs to know about its backend.
public struct CanaryTarget: Sendable {
    public var name: String
    public var instance: String
    public var probe: CanaryConfiguration.Probe
    /// The breaker-wrapped backend every counted operation goes through.
    public var backend: CircuitBreakerBackend

    public init(name: String, instance: String, probe: CanaryConfiguration.Probe, backend: CircuitBreakerBackend) {
        self.name = name
        self.instance = instance
        self.probe = probe
        self.backend = backend
    }

    /// `<key_prefix><instance>/<backend>/`: where this replica's canaries of this backend live.
    public var keyPrefix: String { "\(self.probe.keyPrefix)\(self.instance)/\(self.name)/" }

    /// A new canary key; its first part is the creation time in milliseconds, which the sweeper reads.
    func newKey(now: Date) -> String {
        let millis = Int64(now.timeIntervalSince1970 * 1000)
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "\(self.keyPrefix)\(millis)-\(random)"
    }
}

/// One canary cycle (DESIGN §4): PUT → HEAD → GET (verify) → ranged GET → [COPY → HEAD] → [LIST] → DELETE →
/// HEAD (404). A failed operation ends the cycle; whatever was written is then deleted on a best-effort basis
/// through the unwrapped backend, so the cleanup never counts against the breaker.
public struct CanaryCycle<C: Clock>: Sendable where C.Duration == Duration {
    public var target: CanaryTarget
    public var clock: C
    /// Each step, as it finishes (for `/probe?debug=true`).
    public var log: (@Sendable (String) -> Void)?

    public init(target: CanaryTarget, clock: C, log: (@Sendable (String) -> Void)? = nil) {
        self.target = target
        self.clock = clock
        self.log = log
    }

    /// Keys written by a cycle, kept outside the cycle's task so cleanup can run after a deadline cancelled it.
    final class Written: Sendable {
        let keys = Mutex<[String]>([])
        func add(_ key: String) { self.keys.withLock { $0.append(key) } }
        func remove(_ key: String) { self.keys.withLock { $0.removeAll { $0 == key } } }
        var all: [String] { self.keys.withLock { $0 } }
    }

    final class Steps: Sendable {
        let steps = Mutex<[StepResult]>([])
        func append(_ step: StepResult) { self.steps.withLock { $0.append(step) } }
        var all: [StepResult] { self.steps.withLock { $0 } }
    }

    /// Runs the cycle; never throws: every failure is in the result.
    public func run(deadline: Duration? = nil) async -> CycleResult {
        let startedAt = Date()
        let start = self.clock.now
        let written = Written()
        let steps = Steps()
        let cycleDeadline = deadline ?? self.target.probe.interval * 0.9
        var failure: FailureSummary?
        let cycleID = CircuitBreakerBackend.CycleScope.next()
        do {
            try await CircuitBreakerBackend.CycleScope.$id.withValue(cycleID) {
                try await withTimeout(cycleDeadline, clock: self.clock, operation: "cycle") { () async throws -> Bool in
                    try await self.steps(written: written, steps: steps)
                    return true
                }
            }
        } catch {
            let classification = ErrorClassification.classify(error)
            if let deadline = error as? DeadlineExceeded, deadline.operation == "cycle" {
                // The whole cycle ran out of time: the operation in flight was cancelled, count it once.
                self.target.backend.reportLateFailure(
                    FailureSummary(operation: deadline.operation, reason: .timeout, message: deadline.description)
                )
            }
            failure = FailureSummary(
                operation: (error as? ObjectStorageError)?.operation ?? (error as? IntegrityError)?.operation ?? "cycle",
                reason: classification.reason ?? .other,
                message: CircuitBreakerBackend.message(of: error)
            )
        }
        let leftovers = written.all
        if !leftovers.isEmpty {
            await self.cleanup(leftovers)
        }
        let recorded = steps.all
        let status: CycleResult.Status
        self.target.backend.reportCycleEnded(cycleID, failure: failure)
        if failure == nil {
            status = .success
        } else if recorded.first?.result == .rejected {
            status = .skipped
        } else {
            status = .failure
        }
        return CycleResult(
            backend: self.target.name,
            startedAt: startedAt,
            duration: start.duration(to: self.clock.now),
            status: status,
            steps: recorded,
            failure: failure,
            integrityFailure: recorded.contains { $0.reason == .integrity }
        )
    }

    private func cleanup(_ keys: [String]) async {
        let raw = self.target.backend.unwrap()
        for key in keys {
            do {
                try await withTimeout(self.target.probe.timeout, clock: self.clock, operation: "DeleteObject") {
                    try await raw.deleteObject(key: key)
                }
                self.log?("cleanup: deleted \(key)")
            } catch {
                self.log?("cleanup: could not delete \(key) (the sweeper will): \(error)")
            }
        }
    }

    /// Times one operation and records its step; rethrows its error to end the cycle.
    private func step<T: Sendable>(
        _ operation: CanaryConfiguration.Operation,
        _ steps: Steps,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let start = self.clock.now
        do {
            let value = try await CanaryOperationContext.$current.withValue(operation) {
                try await withTimeout(self.target.probe.timeout, clock: self.clock, operation: operation.rawValue, body)
            }
            let seconds = start.duration(to: self.clock.now).seconds
            steps.append(StepResult(operation: operation, result: .success, seconds: seconds))
            self.log?("\(operation.rawValue): ok in \(String(format: "%.3f", seconds * 1000)) ms")
            return value
        } catch {
            let seconds = start.duration(to: self.clock.now).seconds
            let classification = ErrorClassification.classify(error)
            let message = CircuitBreakerBackend.message(of: error)
            if error is DeadlineExceeded {
                // Our timeout cancelled the call, so the breaker saw no result: report the timeout to it.
                self.target.backend.reportLateFailure(
                    FailureSummary(operation: operation.rawValue, reason: .timeout, message: message)
                )
            }
            if (error as? ObjectStorageError)?.code == .copyNotSupported {
                // Recorded by the caller as skipped.
            } else if classification.isRejection {
                steps.append(StepResult(operation: operation, result: .rejected, reason: nil, message: message))
            } else if classification.reason != nil {
                steps.append(
                    StepResult(operation: operation, result: .error, seconds: seconds, reason: classification.reason, message: message)
                )
            }
            self.log?("\(operation.rawValue): \(classification.isRejection ? "rejected" : "error") after \(String(format: "%.3f", seconds * 1000)) ms: \(message)")
            throw error
        }
    }

    /// Raises an integrity failure: counted by the breaker, recorded on the step, ends the cycle.
    private func integrity(_ operation: CanaryConfiguration.Operation, _ steps: Steps, seconds: Double?, _ message: String) -> IntegrityError {
        let error = IntegrityError(operation: operation.rawValue, message: message)
        steps.append(StepResult(operation: operation, result: .error, seconds: seconds, reason: .integrity, message: message))
        self.target.backend.reportLateFailure(FailureSummary(operation: operation.rawValue, reason: .integrity, message: message))
        self.log?("\(operation.rawValue): INTEGRITY FAILURE: \(message)")
        return error
    }

    private func steps(written: Written, steps: Steps) async throws {
        let backend = self.target.backend
        let operations = self.target.probe.operations
        let size = self.target.probe.objectSize
        let key = self.target.newKey(now: Date())
        var body = ByteBuffer()
        body.reserveCapacity(size)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<(size / 8) { body.writeInteger(generator.next() as UInt64) }
        for _ in 0..<(size % 8) { body.writeInteger(UInt8.random(in: 0...255)) }
        let digest = SHA256.hash(data: body.readableBytesView)
        let payload = body
        self.log?("key \(key), \(size) bytes")

        written.add(key)
        do {
            _ = try await self.step(.put, steps) {
                try await backend.putObject(
                    key: key,
                    body: payload,
                    contentType: "application/octet-stream",
                    metadata: ["s3-canary": "1"]
                )
            }
        } catch let error as ObjectStorageError where error.code == .backendUnavailable {
            // Rejected by the open breaker: nothing was sent, so there is nothing to clean up (and no I/O to do).
            written.remove(key)
            throw error
        }

        if operations.contains(.head) {
            let head = try await self.step(.head, steps) { try await backend.headObject(key: key) }
            if head.size != Int64(size) {
                throw self.integrity(.head, steps, seconds: steps.all.last?.seconds, "HEAD reports \(head.size) bytes, \(size) were written")
            }
        }
        if operations.contains(.get) {
            let get = try await self.step(.get, steps) { try await backend.getObject(key: key, range: nil) }
            if get.body.readableBytes != size || SHA256.hash(data: get.body.readableBytesView) != digest {
                throw self.integrity(
                    .get, steps, seconds: steps.all.last?.seconds,
                    "GET returned \(get.body.readableBytes) bytes that differ from the \(size) written"
                )
            }
        }
        if operations.contains(.getRange) {
            let length = max(1, min(size / 4, 4096))
            let offset = size > length ? Int.random(in: 0...(size - length)) : 0
            let range = "bytes=\(offset)-\(offset + length - 1)"
            let ranged = try await self.step(.getRange, steps) { try await backend.getObject(key: key, range: range) }
            if ranged.body != payload.getSlice(at: payload.readerIndex + offset, length: length) {
                throw self.integrity(
                    .getRange, steps, seconds: steps.all.last?.seconds,
                    "GET \(range) returned \(ranged.body.readableBytes) bytes that differ from the written range"
                        + (ranged.contentRange == nil ? " (the Range header was ignored)" : "")
                )
            }
        }
        if operations.contains(.copy) {
            let copyKey = key + ".copy"
            written.add(copyKey)
            do {
                _ = try await self.step(.copy, steps) {
                    try await backend.copyObject(source: key, destination: copyKey, contentType: nil, metadata: nil)
                }
                let head = try await backend.headObject(key: copyKey)
                if head.size != Int64(size) {
                    throw self.integrity(.copy, steps, seconds: nil, "the copy has \(head.size) bytes, \(size) were written")
                }
                try await backend.deleteObject(key: copyKey)
                written.remove(copyKey)
            } catch let error as ObjectStorageError where error.code == .copyNotSupported {
                written.remove(copyKey)
                steps.append(StepResult(operation: .copy, result: .skipped, message: "backend cannot copy"))
            }
        }
        if operations.contains(.list) {
            let prefix = self.target.keyPrefix
            let found = try await self.step(.list, steps) { () async throws -> Bool in
                var found = false
                try await backend.listObjects(prefix: prefix, pageSize: 1000) { page in
                    found = found || page.objects.contains { $0.key == key }
                    return !found
                }
                return found
            }
            if !found {
                throw self.integrity(.list, steps, seconds: steps.all.last?.seconds, "the listing of \(prefix) lacks \(key)")
            }
        }
        try await self.step(.delete, steps) { try await backend.deleteObject(key: key) }
        written.remove(key)
        // The object must be gone: a HEAD now answers 404 (not counted as an operation of its own).
        do {
            _ = try await backend.headObject(key: key)
            throw self.integrity(.delete, steps, seconds: nil, "the object is still there after DELETE")
        } catch let error as ObjectStorageError where error.isNotFound {
            _ = error
        }
    }
}
