import Crypto
public import Foundation
import NIOCore
public import ObjectStorage
public import SidecarBreaker
public import SidecarConfig
import Synchronization

/// The result of one canary operation.
public struct StepResult: Sendable, Equatable, Codable {
    /// How a step ended.
    public enum Result: String, Sendable, Codable {
        case success
        case error
        /// The breaker rejected the call: no I/O happened.
        case rejected
        /// The operation does not apply to this backend (copy on a backend that cannot copy).
        case skipped
        /// The server does not implement the feature this operation checks (``FeatureVerdict/unsupported``).
        case unsupported
    }

    /// The canary operation this step ran.
    public var operation: CanaryConfiguration.Operation
    /// How it ended.
    public var result: Result
    /// Time the backend took; `nil` when the call never reached it.
    public var seconds: Double?
    /// Why it failed, as the `reason` label; `nil` when it did not.
    public var reason: FailureReason?
    /// What happened, in the error's own words, when the step did not succeed; on a success, evidence that is not
    /// a failure (a multipart ETag of another form, a ranged GET answered 200), or nothing.
    public var message: String?
    /// The `x-amz-request-id` of the step's request (of its error when it failed), for the storage vendor.
    public var requestID: String?
    /// The HTTP status of the answer that decided a step that did not succeed, when a server answered.
    public var httpStatus: Int?
    /// The S3 error code of that answer (`NotImplemented`, `InvalidArgument`...).
    public var s3Code: String?
    /// The phase of the HTTP request the step failed in (`dns`, `connect`, `tls`, `first_byte`...), when known.
    public var phase: RequestPhase?

    /// A step from its parts.
    public init(
        operation: CanaryConfiguration.Operation,
        result: Result,
        seconds: Double? = nil,
        reason: FailureReason? = nil,
        message: String? = nil,
        requestID: String? = nil,
        httpStatus: Int? = nil,
        s3Code: String? = nil,
        phase: RequestPhase? = nil
    ) {
        self.operation = operation
        self.result = result
        self.seconds = seconds
        self.reason = reason
        self.message = message
        self.requestID = requestID
        self.httpStatus = httpStatus
        self.s3Code = s3Code
        self.phase = phase
    }

    /// The verdict of a feature operation's step; `nil` for the basic operations and for steps that did not run
    /// (rejected by the open breaker, skipped).
    public var verdict: FeatureVerdict? {
        guard self.operation.isFeature else { return nil }
        switch self.result {
        case .success: return .ok
        case .unsupported: return .unsupported
        case .error: return self.reason == .integrity ? .corrupting : .failing
        case .rejected, .skipped: return nil
        }
    }
}

/// The result of one canary cycle of one backend.
public struct CycleResult: Sendable, Equatable {
    /// How a cycle ended as a whole: the `result` label of `s3canary_probes_total`.
    public enum Status: String, Sendable, Codable, CaseIterable {
        case success, failure
        /// The breaker was open: the cycle sent nothing.
        case skipped
    }

    /// The configured name of the backend.
    public var backend: String
    /// Wall-clock time the cycle started.
    public var startedAt: Date
    /// How long the whole cycle took, cleanup included.
    public var duration: Duration
    /// How the cycle ended.
    public var status: Status
    /// Each operation that ran, in order.
    public var steps: [StepResult]
    /// The first error of a failed cycle.
    public var failure: FailureSummary?
    /// Whether a read returned other bytes than were written.
    public var integrityFailure: Bool
    /// With `addresses: all`: the name's resolution and each address's own cycle (empty otherwise).
    public var addresses = AddressSet()
    /// The backend's paced operations (`probe.every`), whether this cycle ran them or not.
    public var paced: Set<CanaryConfiguration.Operation> = []

    /// A result from its parts.
    public init(
        backend: String, startedAt: Date, duration: Duration, status: Status, steps: [StepResult],
        failure: FailureSummary? = nil, integrityFailure: Bool
    ) {
        self.backend = backend
        self.startedAt = startedAt
        self.duration = duration
        self.status = status
        self.steps = steps
        self.failure = failure
        self.integrityFailure = integrityFailure
    }
}

/// What a cycle needs to know about its backend.
public struct CanaryTarget: Sendable {
    /// The configured name of the backend.
    public var name: String
    var instance: String
    var probe: CanaryConfiguration.Probe
    /// The breaker-wrapped backend every counted operation goes through.
    public var backend: CircuitBreakerBackend
    /// The features that have worked on this backend: an "unsupported" answer from one of them is a regression.
    public var features: FeatureHistory
    /// When each paced operation (`probe.every`) last ran.
    public var pace: OperationPace
    /// The backend's durability corpus (`durability:`), checked beside its cycles; `nil`: none.
    public var durability: DurabilityTarget?
    /// Whether a cycle probes the first address of the endpoint's name or every one.
    var addresses = AddressSelection.first
    /// With `addresses: all`, the most addresses probed.
    var maxAddresses = 8

    init(
        name: String, instance: String, probe: CanaryConfiguration.Probe, backend: CircuitBreakerBackend,
        features: FeatureHistory = FeatureHistory(), pace: OperationPace = OperationPace()
    ) {
        self.name = name
        self.instance = instance
        self.probe = probe
        self.backend = backend
        self.features = features
        self.pace = pace
    }

    /// A target for a configured backend, its breaker around `backend`.
    public init(
        _ entry: CanaryConfiguration.Backend,
        instance: String,
        wrapping backend: any ObjectBackend,
        continuing previous: CircuitBreakerBackend? = nil,
        features: FeatureHistory = FeatureHistory(),
        pace: OperationPace = OperationPace(),
        resuming outage: ResumedOutage? = nil,
        onTransition: @escaping @Sendable (BreakerTransitionEvent) -> Void
    ) {
        let configuration = CircuitBreakerBackend.Machine.Configuration(
            failureThreshold: entry.breaker.failureThreshold,
            openTimeout: entry.breaker.openTimeout,
            probeTimeout: entry.breakerProbeTimeout
        )
        let breaker = CircuitBreakerBackend(
            name: entry.name,
            wrapping: backend,
            configuration: configuration,
            continuing: previous,
            resuming: outage,
            onTransition: onTransition
        )
        self.init(
            name: entry.name, instance: instance, probe: entry.probe, backend: breaker, features: features, pace: pace)
        self.addresses = entry.addresses
        self.maxAddresses = entry.maxAddresses
    }

    /// `<key_prefix><instance>/<backend>/`: where this replica's canaries of this backend live.
    var keyPrefix: String { "\(self.probe.keyPrefix)\(self.instance)/\(self.name)/" }

    /// A new canary key; its first part is the creation time in milliseconds, which the sweeper reads.
    func newKey(now: Date) -> String {
        let millis = Int64(now.timeIntervalSince1970 * 1000)
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "\(self.keyPrefix)\(millis)-\(random)"
    }
}

/// Keys written by a cycle, kept outside the cycle's task so cleanup can run after a deadline cancelled it.
final class Written: Sendable {
    let keys = Mutex<[String]>([])
    let multipartUploads = Mutex<[MultipartUpload]>([])
    func add(_ key: String) { self.keys.withLock { $0.append(key) } }
    func remove(_ key: String) { self.keys.withLock { $0.removeAll { $0 == key } } }
    var all: [String] { self.keys.withLock { $0 } }
    func add(_ upload: MultipartUpload) { self.multipartUploads.withLock { $0.append(upload) } }
    func remove(_ upload: MultipartUpload) { self.multipartUploads.withLock { $0.removeAll { $0 == upload } } }
    var uploads: [MultipartUpload] { self.multipartUploads.withLock { $0 } }
}

/// One canary cycle (docs/design.md, 4.2): PUT → HEAD → GET (verify) → ranged GET → [COPY → HEAD] →
/// [LIST] → DELETE → HEAD (404). A failed operation ends the cycle; whatever was written is then deleted on a
/// best-effort basis through the unwrapped backend, so the cleanup never counts against the breaker.
public struct CanaryCycle<C: Clock>: Sendable where C.Duration == Duration {
    typealias Operation = CanaryConfiguration.Operation

    var target: CanaryTarget
    var clock: C
    /// Wall-clock time for the cycle's start and its key's timestamp (tests pass a fixed one).
    var now: @Sendable () -> Date
    /// Each step, as it finishes (for `/probe?debug=true`).
    var log: (@Sendable (String) -> Void)?

    /// A cycle of `target`, timed on `clock`; `log` receives a line per step as it finishes.
    public init(
        target: CanaryTarget,
        clock: C,
        now: @escaping @Sendable () -> Date = { Date() },
        log: (@Sendable (String) -> Void)? = nil
    ) {
        self.target = target
        self.clock = clock
        self.now = now
        self.log = log
    }

    final class Steps: Sendable {
        /// The cycle's calls through the breaker, and where it reports the failures it finds itself.
        let calls: CircuitBreakerBackend.CycleCalls
        init(calls: CircuitBreakerBackend.CycleCalls) { self.calls = calls }
        private let state = Mutex<(steps: [StepResult], current: CanaryConfiguration.Operation?)>(([], nil))
        func begin(_ operation: CanaryConfiguration.Operation) { self.state.withLock { $0.current = operation } }
        func append(_ step: StepResult) { self.state.withLock { $0.steps.append(step) } }
        /// Evidence on the last step that succeeded anyway (a ranged GET answered 200).
        func note(_ message: String) {
            self.state.withLock { state in
                guard let last = state.steps.indices.last else { return }
                state.steps[last].message = message
            }
        }
        var all: [StepResult] { self.state.withLock { $0.steps } }
        /// The operation that started last: the one in flight if the cycle is cut short.
        var current: CanaryConfiguration.Operation? { self.state.withLock { $0.current } }
    }

    /// Runs the cycle; never throws: every failure is in the result.
    public func run(deadline: Duration? = nil) async -> CycleResult {
        if self.target.addresses == .all, let addressed = self.target.backend.unwrap() as? any AddressedBackend {
            return await AddressCycle(cycle: self, addressed: addressed).run(deadline: deadline)
        }
        let startedAt = self.now()
        let start = self.clock.now
        let operations = self.target.pace.operations(of: self.target.probe, at: startedAt)
        let written = Written()
        let cycleDeadline = deadline ?? self.target.probe.interval * 0.9
        var failure: FailureSummary?
        let calls = self.target.backend.beginCycle()
        (self.target.backend.unwrap() as? any AddressedBackend)?.beginConnectionCycle()
        let steps = Steps(calls: calls)
        do {
            _ = try await withTimeout(cycleDeadline, clock: self.clock, operation: "cycle") { () async throws -> Bool in
                try await self.steps(operations, calls, written: written, steps: steps)
                return true
            }
        } catch {
            let classification = ErrorClassification.classify(error)
            // Every failure is named by the canary operation it happened in (the one in flight when the whole
            // cycle ran out of time), so `last_error.operation` is always an operation name.
            let operation = steps.current ?? .put
            if let deadline = error as? DeadlineExceeded, deadline.operation == "cycle" {
                // The whole cycle ran out of time: the operation in flight was cancelled, count it once.
                steps.calls.fail(
                    FailureSummary(
                        operation: operation.label,
                        reason: .timeout,
                        message: "the cycle got no answer within \(cycleDeadline)"
                    )
                )
            }
            failure = FailureSummary(
                operation: operation.label,
                reason: classification.reason ?? .other,
                message: CircuitBreakerBackend.message(of: error)
            )
        }
        let uploads = written.uploads
        if !uploads.isEmpty {
            await self.abort(uploads)
        }
        let leftovers = written.all
        if !leftovers.isEmpty {
            await self.cleanup(leftovers)
        }
        let recorded = steps.all
        self.target.pace.record(recorded, of: self.target.probe, startedAt: startedAt)
        let status: CycleResult.Status
        calls.end(failure: failure)
        if failure == nil {
            status = .success
        } else if recorded.first?.result == .rejected {
            status = .skipped
        } else {
            status = .failure
        }
        var result = CycleResult(
            backend: self.target.name,
            startedAt: startedAt,
            duration: start.duration(to: self.clock.now),
            status: status,
            steps: recorded,
            failure: failure,
            integrityFailure: recorded.contains { $0.reason == .integrity }
        )
        result.paced = Set(self.target.probe.every.keys)
        return result
    }

    private func cleanup(_ keys: [String]) async {
        let raw = self.target.backend.unwrap()
        for key in keys {
            do {
                _ = try await withTimeout(self.target.probe.timeout, clock: self.clock, operation: "DeleteObject") {
                    try await raw.deleteObject(key: key)
                }
                self.log?("cleanup: deleted \(key)")
            } catch {
                self.log?("cleanup: could not delete \(key) (the sweeper will): \(error)")
            }
        }
    }

    /// Aborts multipart uploads a failed cycle left open, through the unwrapped backend (not counted).
    private func abort(_ uploads: [MultipartUpload]) async {
        guard let raw = self.target.backend.unwrap() as? any FeatureBackend else { return }
        for upload in uploads {
            do {
                _ = try await withTimeout(self.target.probe.timeout, clock: self.clock, operation: "abort") {
                    try await raw.abortMultipartUpload(upload)
                }
                self.log?("cleanup: aborted the multipart upload of \(upload.key)")
            } catch {
                self.log?("cleanup: could not abort the upload of \(upload.key) (the sweeper will): \(error)")
            }
        }
    }

    /// Times one operation and records its step; rethrows its error to end the cycle.
    private func step<T: IdentifiedResponse>(
        _ operation: CanaryConfiguration.Operation,
        _ steps: Steps,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        steps.begin(operation)
        let start = self.clock.now
        do {
            let value = try await RequestLabel.$current.withValue(operation.label) {
                try await withTimeout(self.target.probe.timeout, clock: self.clock, operation: operation.rawValue, body)
            }
            let seconds = start.duration(to: self.clock.now).seconds
            steps.append(
                StepResult(operation: operation, result: .success, seconds: seconds, requestID: value.requestID))
            let id = value.requestID.map { " (request id \($0))" } ?? ""
            self.log?("\(operation.rawValue): ok in \(String(format: "%.3f", seconds * 1000)) ms\(id)")
            return value
        } catch {
            self.record(error, of: operation, steps, seconds: start.duration(to: self.clock.now).seconds)
            throw error
        }
    }

    /// A request that checks what a step did (the HEAD of a copy, its DELETE, the HEAD that must answer 404): it
    /// goes through the breaker under the step's name and its failure is the step's error, but its time is not the
    /// step's (an operation's latency stays its own request's) and it records no time to first byte.
    private func verify<T: Sendable>(
        _ operation: CanaryConfiguration.Operation,
        _ steps: Steps,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        do {
            return try await withTimeout(
                self.target.probe.timeout, clock: self.clock, operation: operation.rawValue, body)
        } catch {
            self.record(error, of: operation, steps, seconds: nil)
            throw error
        }
    }

    /// Records a failed request of `operation` as a step (error or rejected), reporting our own deadline to the
    /// breaker, which never saw the cancelled call end.
    func record(
        _ error: any Error, of operation: CanaryConfiguration.Operation, _ steps: Steps, seconds: Double?
    ) {
        let classification = ErrorClassification.classify(error)
        let message = CircuitBreakerBackend.message(of: error)
        let storageError = (error as? ObjectStorageError) ?? (error as? CopyError)?.underlying
        let evidence = storageError.map(FeatureEvidence.init) ?? (error as? FeatureFailure)?.evidence
        let requestID = evidence?.requestID
        if error is DeadlineExceeded {
            steps.calls.fail(
                FailureSummary(operation: operation.rawValue, reason: .timeout, message: message)
            )
        }
        if (error as? ObjectStorageError)?.code == .copyNotSupported {
            // Recorded by the caller as skipped.
        } else if classification.isRejection {
            steps.append(StepResult(operation: operation, result: .rejected, message: message))
        } else if classification.reason != nil {
            steps.append(
                StepResult(
                    operation: operation, result: .error, seconds: seconds, reason: classification.reason,
                    message: message, requestID: requestID, httpStatus: evidence?.httpStatus, s3Code: evidence?.s3Code,
                    phase: storageError?.failedPhase)
            )
        }
        let elapsed = seconds.map { " after \(String(format: "%.3f", $0 * 1000)) ms" } ?? ""
        self.log?("\(operation.rawValue): \(classification.isRejection ? "rejected" : "error")\(elapsed): \(message)")
    }

    /// Raises an integrity failure: counted by the breaker, recorded on the step, ends the cycle.
    func integrity(
        _ operation: CanaryConfiguration.Operation, _ steps: Steps, seconds: Double?, _ message: String,
        requestID: String? = nil
    ) -> IntegrityError {
        let error = IntegrityError(operation: operation.rawValue, message: message)
        steps.append(
            StepResult(
                operation: operation, result: .error, seconds: seconds, reason: .integrity, message: message,
                requestID: requestID ?? steps.all.last { $0.operation == operation }?.requestID))
        steps.calls.fail(
            FailureSummary(operation: operation.rawValue, reason: .integrity, message: message))
        self.log?("\(operation.rawValue): INTEGRITY FAILURE: \(message)")
        return error
    }

    /// The operations, each a step: every request a step sends goes through the breaker as part of this cycle,
    /// under the step's operation name, inside the step's timing.
    private func steps(
        _ operations: [Operation], _ calls: CircuitBreakerBackend.CycleCalls, written: Written, steps: Steps
    ) async throws {
        let size = self.target.probe.objectSize
        let key = self.target.newKey(now: self.now())
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
                try await calls.call(Operation.put.label) { backend in
                    try await backend.putObject(
                        key: key,
                        body: payload,
                        contentType: "application/octet-stream",
                        metadata: ["s3-canary": "1"]
                    )
                }
            }
        } catch let error as ObjectStorageError where error.code == .backendUnavailable {
            // Rejected by the open breaker: nothing was sent, so there is nothing to clean up (and no I/O to do).
            written.remove(key)
            throw error
        }

        if operations.contains(.head) {
            let head = try await self.step(.head, steps) {
                try await calls.call(Operation.head.label) { try await $0.headObject(key: key) }
            }
            if head.size != Int64(size) {
                throw self.integrity(
                    .head, steps, seconds: steps.all.last?.seconds,
                    "HEAD reports \(head.size) bytes, \(size) were written")
            }
        }
        if operations.contains(.get) {
            let get = try await self.step(.get, steps) {
                try await calls.call(Operation.get.label) { try await $0.getObject(key: key, range: nil) }
            }
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
            let ranged = try await self.step(.getRange, steps) {
                try await calls.call(Operation.getRange.label) { try await $0.getObject(key: key, range: range) }
            }
            if ranged.body != payload.getSlice(at: payload.readerIndex + offset, length: length) {
                throw self.integrity(
                    .getRange, steps, seconds: steps.all.last?.seconds,
                    "GET \(range) returned \(ranged.body.readableBytes) bytes that differ from the written range"
                        + (ranged.contentRange == nil ? " (the Range header was ignored)" : "")
                )
            }
            if !ranged.partialContent {
                // The right bytes with 200 instead of 206: no client rejects that, so it is evidence, not a failure.
                steps.note(
                    "answered 200, not 206 Partial Content, with the range's bytes"
                        + (ranged.contentRange == nil ? "" : " and a Content-Range header"))
            }
        }
        if operations.contains(.copy) {
            if calls.canCopy {
                let copyKey = key + ".copy"
                written.add(copyKey)
                // The copy step times the COPY; the HEAD of the copy and its DELETE check it, through the breaker
                // under the same name (their failure is the step's error, their time is not the step's).
                let label = Operation.copy.label
                _ = try await self.step(.copy, steps) {
                    try await calls.copy(label) {
                        try await $0.copyObject(source: key, destination: copyKey, contentType: nil, metadata: nil)
                    }
                }
                let head = try await self.verify(.copy, steps) {
                    try await calls.call(label) { try await $0.headObject(key: copyKey) }
                }
                if head.size != Int64(size) {
                    throw self.integrity(
                        .copy, steps, seconds: steps.all.last?.seconds,
                        "the copy has \(head.size) bytes, \(size) were written"
                    )
                }
                _ = try await self.verify(.copy, steps) {
                    try await calls.call(label) { try await $0.deleteObject(key: copyKey) }
                }
                written.remove(copyKey)
            } else {
                steps.append(StepResult(operation: .copy, result: .skipped, message: "backend cannot copy"))
            }
        }
        if operations.contains(.list) {
            let prefix = self.target.keyPrefix
            let listing = try await self.step(.list, steps) { () async throws -> Listing in
                try await calls.call(Operation.list.label) { backend in
                    var listing = Listing(found: false)
                    try await backend.listObjects(prefix: prefix, pageSize: 1000) { page in
                        listing.found = listing.found || page.objects.contains { $0.key == key }
                        listing.requestID = page.requestID
                        return !listing.found
                    }
                    return listing
                }
            }
            if !listing.found {
                throw self.integrity(
                    .list, steps, seconds: steps.all.last?.seconds, "the listing of \(prefix) lacks \(key)")
            }
        }
        for feature in Operation.features where operations.contains(feature) {
            try await self.feature(
                feature, steps,
                FeatureCheck(
                    calls: calls, operation: feature, key: key, payload: payload, probe: self.target.probe,
                    written: written, hasWorked: self.target.features.hasWorked(feature),
                    required: self.target.probe.required.contains(feature)))
        }
        // The delete step times the DELETE; the HEAD that must answer 404 checks it, through the breaker under the
        // same name (its failure is the step's error, its time is not the step's).
        let label = Operation.delete.label
        _ = try await self.step(.delete, steps) {
            try await calls.call(label) { try await $0.deleteObject(key: key) }
        }
        let stillThere = try await self.verify(.delete, steps) { () async throws -> Bool in
            do {
                _ = try await calls.call(label) { try await $0.headObject(key: key) }
                return true
            } catch let error as ObjectStorageError where error.isNotFound {
                return false
            }
        }
        written.remove(key)
        if stillThere {
            throw self.integrity(
                .delete, steps, seconds: steps.all.last?.seconds, "the object is still there after DELETE")
        }
    }
}

/// What the list step learned: whether the canary was listed, and the request id of the page that said so.
private struct Listing: IdentifiedResponse {
    var found: Bool
    var requestID: String?
}
