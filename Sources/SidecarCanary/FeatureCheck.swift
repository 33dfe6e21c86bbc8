import Foundation
import NIOCore
import ObjectStorage
import SidecarBreaker
import SidecarConfig

/// One compatibility operation of one cycle (docs/design.md, 4.2): the requests that check a feature, through the
/// breaker under the operation's name. It returns `ok`, `unsupported` or `corrupting`; `failing` is thrown.
///
/// An "unsupported" answer is caught inside the breaker's call, so the breaker sees a request that did its job and
/// counts nothing, unless the feature has worked here before: then the answer goes through as the failure it is.
struct FeatureCheck: Sendable {
    typealias Operation = CanaryConfiguration.Operation

    var calls: CircuitBreakerBackend.CycleCalls
    var operation: Operation
    /// The cycle's canary, already written: conditional and presign read it; the others write keys beside it.
    var key: String
    var payload: ByteBuffer
    var probe: CanaryConfiguration.Probe
    var written: Written
    /// Whether this feature has been `ok` on this backend before.
    var hasWorked: Bool
    /// Whether the configuration requires it (`probe.require`): an unsupported answer then fails.
    var required: Bool = false

    /// The wrong ETag the conditional GET sends: no object has it.
    static let wrongETag = "\"0123456789abcdef0123456789abcdef\""

    func run() async throws -> FeatureOutcome {
        switch self.operation {
        case .conditional: try await self.conditional()
        case .presign: try await self.presign()
        case .checksum: try await self.checksum()
        case .awsChunked: try await self.awsChunked()
        case .multipart: try await self.multipart()
        default: .ok(requestID: nil)
        }
    }

    /// How a request of a feature was answered.
    enum Answer<T: Sendable>: Sendable {
        case value(T)
        case unsupported(FeatureEvidence)
        /// 412: what a conditional request must get.
        case preconditionFailed(FeatureEvidence)
    }

    /// Sends one request of the feature through the breaker.
    private func ask<T: Sendable>(
        expectingPreconditionFailed: Bool = false,
        _ body: @escaping @Sendable (any FeatureBackend) async throws -> T
    ) async throws -> Answer<T> {
        let hasWorked = self.hasWorked
        return try await self.calls.feature(self.operation.label) { backend in
            do {
                return .value(try await body(backend))
            } catch let error as ObjectStorageError where expectingPreconditionFailed && error.httpStatus == 412 {
                return .preconditionFailed(FeatureEvidence(error))
            } catch let error as ObjectStorageError where !hasWorked && FeatureVerdict.isUnsupportedAnswer(error) {
                return .unsupported(FeatureEvidence(error))
            }
        }
    }

    /// A request of the feature whose "unsupported" answer would make no sense (the feature already answered).
    private func send<T: Sendable>(_ body: @escaping @Sendable (any FeatureBackend) async throws -> T) async throws -> T
    {
        try await self.calls.feature(self.operation.label, body)
    }

    private func delete(_ key: String) async throws {
        _ = try await self.calls.call(self.operation.label) { try await $0.deleteObject(key: key) }
        self.written.remove(key)
    }

    /// Writes the payload beside the canary (`<key><suffix>`) with `options`, reads it back with `read` and deletes it:
    /// the read's answer, or the server's "unsupported" answer to the write.
    private func roundTrip(
        _ suffix: String, _ options: PutOptions, read: GetOptions
    ) async throws
        -> Answer<GetObjectResult>
    {
        let (key, payload) = (self.key + suffix, self.payload)
        self.written.add(key)
        let put = try await self.ask { try await $0.putObject(key: key, body: payload, options: options) }
        if case .unsupported(let evidence) = put { return .unsupported(evidence) }
        let answer = try await self.send { try await $0.getObject(key: key, options: read) }
        try await self.delete(key)
        return .value(answer)
    }

    /// `PUT If-None-Match: *` on the existing canary must get 412; so must `GET If-Match: <wrong ETag>`. A server
    /// that answers 200 instead ignored the condition (the PUT wrote the same bytes, so nothing is harmed).
    private func conditional() async throws -> FeatureOutcome {
        let (key, payload) = (self.key, self.payload)
        let put = try await self.ask(expectingPreconditionFailed: true) { backend in
            try await backend.putObject(
                key: key, body: payload, options: PutOptions(contentType: "application/octet-stream", ifNoneMatch: "*"))
        }
        switch put {
        case .unsupported(let evidence): return .unsupported(evidence)
        case .value(let answer):
            return .unsupported(
                FeatureEvidence(
                    message: "PUT with If-None-Match: * on an existing key was answered 200: the server ignores it",
                    httpStatus: 200, requestID: answer.requestID))
        case .preconditionFailed: break
        }
        let get = try await self.ask(expectingPreconditionFailed: true) { backend in
            try await backend.getObject(key: key, options: GetOptions(ifMatch: Self.wrongETag))
        }
        switch get {
        case .unsupported(let evidence): return .unsupported(evidence)
        case .value(let answer):
            return .unsupported(
                FeatureEvidence(
                    message: "GET with an If-Match no object has was answered 200: the server ignores it",
                    httpStatus: 200, requestID: answer.requestID))
        case .preconditionFailed(let evidence): return .ok(requestID: evidence.requestID)
        }
    }

    /// A presigned GET of the canary, sent with no `Authorization` header, must return its bytes.
    private func presign() async throws -> FeatureOutcome {
        let key = self.key
        switch try await self.ask({ try await $0.presignedGetObject(key: key, expires: .seconds(300)) }) {
        case .unsupported(let evidence), .preconditionFailed(let evidence): return .unsupported(evidence)
        case .value(let answer):
            guard answer.body == self.payload else {
                return .corrupting(
                    FeatureEvidence(
                        message: "the presigned GET returned \(answer.body.readableBytes) bytes that differ from the "
                            + "\(self.payload.readableBytes) written",
                        httpStatus: 200, requestID: answer.requestID))
            }
            return .ok(requestID: answer.requestID)
        }
    }

    /// A PUT with the checksum as a header, read back with `x-amz-checksum-mode: ENABLED`: the stored checksum must
    /// be ours. A server that returns none ignores flexible checksums.
    private func checksum() async throws -> FeatureOutcome {
        let (payload, algorithm) = (self.payload, self.probe.checksumAlgorithm)
        let read: GetObjectResult
        switch try await self.roundTrip(
            ".checksum", PutOptions(contentType: "application/octet-stream", checksum: algorithm),
            read: GetOptions(checksumMode: true))
        {
        case .unsupported(let evidence), .preconditionFailed(let evidence): return .unsupported(evidence)
        case .value(let answer): read = answer
        }
        let expected = algorithm.digest(of: payload.readableBytesView)
        guard read.body == payload else {
            return .corrupting(
                FeatureEvidence(
                    message:
                        "GET returned \(read.body.readableBytes) bytes that differ from the \(payload.readableBytes) "
                        + "written with \(algorithm.headerName)",
                    httpStatus: 200, requestID: read.requestID))
        }
        guard let stored = read.checksums[algorithm] else {
            return .unsupported(
                FeatureEvidence(
                    message: "the server took \(algorithm.headerName) but returned no checksum to "
                        + "x-amz-checksum-mode: ENABLED: it ignores flexible checksums",
                    httpStatus: 200, requestID: read.requestID))
        }
        guard stored == expected else {
            return .corrupting(
                FeatureEvidence(
                    message: "the server returned \(algorithm.headerName) \(stored) for an object whose checksum is "
                        + "\(expected)",
                    httpStatus: 200, requestID: read.requestID))
        }
        return .ok(requestID: read.requestID)
    }

    /// An `aws-chunked` upload with a trailing checksum, as the SDKs send by default, read back plainly: a server
    /// that stores the chunk framing as data corrupts every default SDK upload.
    private func awsChunked() async throws -> FeatureOutcome {
        let (payload, algorithm) = (self.payload, self.probe.checksumAlgorithm)
        let read: GetObjectResult
        switch try await self.roundTrip(
            ".chunked", PutOptions(contentType: "application/octet-stream", trailingChecksum: algorithm),
            read: GetOptions())
        {
        case .unsupported(let evidence), .preconditionFailed(let evidence): return .unsupported(evidence)
        case .value(let answer): read = answer
        }
        guard read.body == payload else {
            let framing = read.body == AWSChunkedEncoding.encode(payload, trailer: algorithm)
            return .corrupting(
                FeatureEvidence(
                    message: framing
                        ? "the server stored the aws-chunked framing as data (\(read.body.readableBytes) bytes for "
                            + "\(payload.readableBytes))"
                        : "GET returned \(read.body.readableBytes) bytes that differ from the \(payload.readableBytes) "
                            + "uploaded aws-chunked",
                    httpStatus: 200, requestID: read.requestID))
        }
        return .ok(requestID: read.requestID)
    }

    /// Create, two parts, complete, read the whole object back (the ETag's form is noted), delete. A failure leaves
    /// the upload in ``Written``, which the cycle's cleanup aborts at once.
    private func multipart() async throws -> FeatureOutcome {
        let key = self.key + ".multipart"
        let sizes = self.probe.multipart
        var random = FastRandom()
        let first = random.bytes(sizes.partSize)
        let last = random.bytes(sizes.lastPartSize)
        let created = try await self.ask { try await $0.createMultipartUpload(key: key, contentType: nil) }
        let upload: MultipartUpload
        switch created {
        case .unsupported(let evidence), .preconditionFailed(let evidence): return .unsupported(evidence)
        case .value(let value): upload = value
        }
        self.written.add(upload)
        let one = try await self.send { try await $0.uploadPart(upload, partNumber: 1, body: first) }
        let two = try await self.send { try await $0.uploadPart(upload, partNumber: 2, body: last) }
        self.written.add(key)
        let completed = try await self.send { try await $0.completeMultipartUpload(upload, parts: [one, two]) }
        self.written.remove(upload)
        let read = try await self.calls.call(self.operation.label) { try await $0.getObject(key: key, range: nil) }
        try await self.delete(key)
        var whole = first
        whole.writeImmutableBuffer(last)
        guard read.body == whole else {
            return .corrupting(
                FeatureEvidence(
                    message: "GET of the completed upload returned \(read.body.readableBytes) bytes that differ from "
                        + "the \(whole.readableBytes) uploaded in two parts",
                    httpStatus: 200, requestID: read.requestID))
        }
        // The stored object's ETag (the GET's) is the one clients see; the complete answer's may be empty (Ceph
        // RGW 16.2 sends <ETag></ETag>). No client checks its form (rclone serve s3 gives a plain MD5-like tag):
        // another form is evidence for the verdict's detail, not a failure.
        let form = Self.etagForm((read.etag ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
        let note = form == "<md5>-2" ? nil : "the completed upload's ETag is of the form \(form), not <md5>-2"
        return .ok(requestID: completed.requestID, note: note)
    }

    /// The shape of an ETag, without its value (which changes with every upload): `<md5>-2` for a two-part upload
    /// as S3 makes it, `<md5>` for 32 hex digits alone, `<md5>-N`, `empty`, or `other (N characters)`.
    static func etagForm(_ etag: String) -> String {
        func isMD5<S: StringProtocol>(_ text: S) -> Bool {
            text.utf8.count == 32 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        }
        if etag.isEmpty { return "empty" }
        if isMD5(etag) { return "<md5>" }
        let parts = etag.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 2, isMD5(parts[0]), let count = Int(parts[1]), count > 0 {
            return count == 2 ? "<md5>-2" : "<md5>-N"
        }
        return "other (\(etag.utf8.count) characters)"
    }
}

/// Random bytes for megabyte-sized parts: SplitMix64 seeded from the system generator, since drawing each word from
/// the system generator costs a system call.
struct FastRandom {
    private var state: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        self.state = system.next()
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        for _ in 0..<(count / 8) { buffer.writeInteger(self.next()) }
        for _ in 0..<(count % 8) { buffer.writeInteger(UInt8(truncatingIfNeeded: self.next())) }
        return buffer
    }
}

extension CanaryCycle {
    /// Runs a feature check as a step: times it, records its verdict, and throws when it is `failing` or
    /// `corrupting` (ending the cycle like any failed operation).
    func feature(_ operation: Operation, _ steps: Steps, _ check: FeatureCheck) async throws {
        guard check.calls.hasFeatures else {
            steps.append(StepResult(operation: operation, result: .skipped, message: "backend has no S3 features"))
            return
        }
        steps.begin(operation)
        let start = self.clock.now
        let outcome: FeatureOutcome
        do {
            outcome = try await RequestLabel.$current.withValue(operation.label) {
                try await withTimeout(self.target.probe.timeout, clock: self.clock, operation: operation.rawValue) {
                    try await check.run()
                }
            }
        } catch {
            let classification = ErrorClassification.classify(error)
            if classification.reason != nil, !classification.isBackendFailure, !classification.isRejection {
                // A feature that fails counts against the breaker even when the server's answer was a 4xx that a
                // basic operation would not be blamed for: its clients' requests fail the same way.
                steps.calls.fail(
                    FailureSummary(
                        operation: operation.label, reason: classification.reason ?? .other,
                        message: CircuitBreakerBackend.message(of: error)))
            }
            var failure = error
            if check.hasWorked, var answer = error as? ObjectStorageError, FeatureVerdict.isUnsupportedAnswer(answer) {
                // The same answer from a server that never had the feature would be `unsupported`: say why not.
                answer.message = "worked earlier, now: " + answer.message
                failure = answer
            }
            self.record(failure, of: operation, steps, seconds: start.duration(to: self.clock.now).seconds)
            throw failure
        }
        let seconds = start.duration(to: self.clock.now).seconds
        switch outcome {
        case .ok(let requestID, let note):
            self.target.features.markWorking(operation)
            steps.append(
                StepResult(
                    operation: operation, result: .success, seconds: seconds, message: note, requestID: requestID))
            let id = requestID.map { " (request id \($0))" } ?? ""
            self.log?("\(operation.rawValue): ok in \(String(format: "%.3f", seconds * 1000)) ms\(id)")
        case .unsupported(let evidence) where check.hasWorked || check.required:
            // The server's answer is "unsupported", but this feature worked here before (a regression), or the
            // configuration requires it (probe.require): a failure either way.
            var failed = evidence
            failed.message =
                (check.hasWorked ? "worked earlier, now: " : "required by probe.require, but unsupported: ")
                + evidence.message
            let failure = FeatureFailure(evidence: failed)
            steps.calls.fail(
                FailureSummary(operation: operation.label, reason: .other, message: failed.message))
            self.record(failure, of: operation, steps, seconds: seconds)
            throw failure
        case .unsupported(let evidence):
            steps.append(
                StepResult(
                    operation: operation, result: .unsupported, seconds: seconds, message: evidence.message,
                    requestID: evidence.requestID, httpStatus: evidence.httpStatus, s3Code: evidence.s3Code))
            self.log?("\(operation.rawValue): unsupported: \(evidence.message)")
        case .corrupting(let evidence):
            throw self.integrity(operation, steps, seconds: seconds, evidence.message, requestID: evidence.requestID)
        }
    }
}
