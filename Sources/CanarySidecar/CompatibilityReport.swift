import Foundation
public import Logging
import ObjectStorage
import SidecarBreaker
public import SidecarCanary
public import SidecarConfig

/// `s3-canary compat`: every feature once per backend, each in a cycle of its own (PUT, the feature, DELETE) so one
/// failing feature never hides the next, then a table or JSON of verdicts with their evidence.
public enum CompatibilityReport {
    /// One feature of one backend.
    public struct Row: Sendable, Codable, Equatable {
        public var backend: String
        public var feature: String
        /// `ok`, `unsupported`, `failing` or `corrupting`.
        public var verdict: FeatureVerdict
        /// The deciding answer's HTTP status and S3 error code, when the verdict is not `ok`.
        public var httpStatus: Int?
        public var s3Code: String?
        /// The deciding request's id.
        public var requestID: String?
        /// What happened, in the server's or the canary's words; for `ok`, evidence that is not a failure (an ETag
        /// of another form) or nothing.
        public var message: String?
        /// How long the feature's requests took.
        public var seconds: Double?
    }

    /// Runs the features of every entry, backends concurrently, features one after another.
    public static func run(
        _ entries: [CanaryConfiguration.Backend],
        instance: String,
        factory: BackendFactory = .s3,
        logger: Logger
    ) async throws -> [Row] {
        try await factory.withEach(entries, logger: logger) { entry, backend in
            var rows: [Row] = []
            for feature in CanaryConfiguration.Operation.features {
                var single = entry
                single.probe.operations = [.put, feature, .delete]
                // compat reports what the server does: probe.require does not turn unsupported into failing here.
                single.probe.required = []
                let target = CanaryTarget(single, instance: instance, wrapping: backend) { _ in }
                rows.append(Self.row(feature, of: await CanaryCycle(target: target, clock: ContinuousClock()).run()))
            }
            return rows
        }.flatMap { $0 }
    }

    /// The verdict of `feature` in a cycle that ran it; a cycle that never reached it (its PUT failed) makes the
    /// feature `failing` with the PUT's error as evidence.
    static func row(_ feature: CanaryConfiguration.Operation, of result: CycleResult) -> Row {
        if let step = result.steps.last(where: { $0.operation == feature }) {
            if let verdict = step.verdict {
                return Row(
                    backend: result.backend, feature: feature.label, verdict: verdict,
                    httpStatus: step.httpStatus, s3Code: step.s3Code, requestID: step.requestID,
                    message: step.message, seconds: step.seconds)
            }
            if step.result == .skipped {
                return Row(
                    backend: result.backend, feature: feature.label, verdict: .unsupported,
                    message: step.message ?? "skipped")
            }
        }
        let failed = result.steps.last { $0.result == .error || $0.result == .rejected }
        return Row(
            backend: result.backend, feature: feature.label, verdict: .failing, httpStatus: failed?.httpStatus,
            s3Code: failed?.s3Code, requestID: failed?.requestID,
            message: "not reached: "
                + (result.failure.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" } ?? "the cycle failed"))
    }

    /// The rows as a text table: backend, feature, verdict, status, S3 code, request id, evidence.
    public static func table(_ rows: [Row]) -> String {
        var lines: [[String]] = [["BACKEND", "FEATURE", "VERDICT", "STATUS", "S3 CODE", "REQUEST ID", "EVIDENCE"]]
        for row in rows {
            lines.append([
                row.backend, row.feature, row.verdict.rawValue, row.httpStatus.map(String.init) ?? "-",
                row.s3Code ?? "-", row.requestID ?? "-", row.message ?? "",
            ])
        }
        // An `ok` row's evidence is mostly empty: no padding left dangling after its request id.
        return textTable(lines).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
    }

    /// The rows as JSON (snake_case keys).
    public static func json(_ rows: [Row]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(rows), as: UTF8.self)
    }
}
