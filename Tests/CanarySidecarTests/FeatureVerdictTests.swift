import Foundation
import ObjectStorage
import PrometheusExposition
import Testing

@testable import CanarySidecar
@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig
@testable import SidecarTelemetry

/// How the compatibility operations turn answers into verdicts, and where the verdicts go: metrics, the status board
/// and `s3-canary compat`'s table. Their requests are checked against real servers in CompatibilityTests.
@Suite("Feature verdicts")
struct FeatureVerdictTests {
    static func answer(_ status: Int?, _ code: String?) -> ObjectStorageError {
        ObjectStorageError(code: .httpError, httpStatus: status, s3Code: code, message: "m")
    }

    @Test(
        arguments: [
            (501, nil, true), (501, "NotImplemented", true), (400, "NotImplemented", true),
            (400, "InvalidArgument", true),
            (400, "InvalidRequest", true), (400, "XAmzContentSHA256Mismatch", false), (400, nil, false),
            (403, "InvalidArgument", false), (411, "MissingContentLength", false), (500, "InternalError", false),
            (nil, nil, false),
        ] as [(Int?, String?, Bool)])
    func unsupportedAnswers(status: Int?, code: String?, unsupported: Bool) {
        #expect(FeatureVerdict.isUnsupportedAnswer(Self.answer(status, code)) == unsupported)
    }

    @Test func stepsGiveVerdictsOnlyForFeatures() {
        func verdict(
            _ operation: CanaryConfiguration.Operation, _ result: StepResult.Result, _ reason: FailureReason?
        )
            -> FeatureVerdict?
        {
            StepResult(operation: operation, result: result, reason: reason).verdict
        }
        #expect(verdict(.multipart, .success, nil) == .ok)
        #expect(verdict(.checksum, .unsupported, nil) == .unsupported)
        #expect(verdict(.awsChunked, .error, .http4xx) == .failing)
        #expect(verdict(.awsChunked, .error, .integrity) == .corrupting)
        #expect(verdict(.presign, .rejected, nil) == nil)
        #expect(verdict(.conditional, .skipped, nil) == nil)
        #expect(verdict(.put, .success, nil) == nil)
        #expect(
            CanaryConfiguration.Operation.features.map(\.label) == [
                "conditional", "presign", "checksum", "aws_chunked", "multipart",
            ])
    }

    /// An ETag's form is evidence, never a verdict: the values change with every upload, the forms do not.
    @Test(arguments: [
        ("8b0be7847da5564ae08e97af63b60885-2", "<md5>-2"), ("8b0be7847da5564ae08e97af63b60885", "<md5>"),
        ("8b0be7847da5564ae08e97af63b60885-3", "<md5>-N"),
        ("8B0BE7847DA5564AE08E97AF63B60885-2", "other (34 characters)"),
        ("8b0be7847da5564ae08e97af63b6088-2", "other (33 characters)"), ("", "empty"), ("-2", "other (2 characters)"),
        ("8b0be7847da5564ae08e97af63b60885-0", "other (34 characters)"),
    ])
    func multipartETagForm(etag: String, form: String) {
        #expect(FeatureCheck.etagForm(etag) == form)
    }

    static func cycle(_ steps: [StepResult], at seconds: Double = 1_800_000_000) -> CycleResult {
        CycleResult(
            backend: "ceph-a", startedAt: Date(timeIntervalSince1970: seconds), duration: .milliseconds(40),
            status: .success, steps: steps, integrityFailure: false)
    }

    /// An unsupported feature is neither a success nor an error of its operation, and has no latency; the gauge
    /// says 0 for it and 1 for a feature that works.
    @Test func metricsRecordVerdictsWithoutCountingUnsupported() throws {
        let metrics = try CanaryMetrics(version: "test")
        metrics.addBackend("ceph-a", operations: ["put", "checksum", "multipart", "delete"], threshold: 3)
        metrics.record(
            Self.cycle([
                StepResult(operation: .put, result: .success, seconds: 0.01),
                StepResult(operation: .checksum, result: .unsupported, seconds: 0.02, message: "ignored"),
                StepResult(operation: .multipart, result: .success, seconds: 0.3),
                StepResult(operation: .delete, result: .success, seconds: 0.01),
            ]))
        let lines = metrics.renderText(format: .text004).split(separator: "\n").map(String.init)
        #expect(lines.contains(#"s3canary_feature_supported{backend="ceph-a",feature="checksum"} 0"#))
        #expect(lines.contains(#"s3canary_feature_supported{backend="ceph-a",feature="multipart"} 1"#))
        #expect(!lines.contains { $0.hasPrefix("s3canary_feature_supported{") && $0.contains("\"put\"") })
        #expect(lines.contains(#"s3canary_operations_total{backend="ceph-a",operation="checksum",result="success"} 0"#))
        #expect(lines.contains(#"s3canary_operations_total{backend="ceph-a",operation="checksum",result="error"} 0"#))
        #expect(lines.contains(#"s3canary_operation_duration_seconds_count{backend="ceph-a",operation="checksum"} 0"#))
        #expect(lines.contains(#"s3canary_operation_duration_seconds_count{backend="ceph-a",operation="multipart"} 1"#))
        // A reload that drops a feature drops its verdict.
        metrics.addBackend("ceph-a", operations: ["put", "multipart", "delete"], threshold: 3)
        let after = metrics.renderText(format: .text004)
        #expect(!after.contains(#"feature="checksum""#))
        #expect(after.contains(#"s3canary_feature_supported{backend="ceph-a",feature="multipart"} 1"#))
    }

    /// The board keeps each feature's last verdict in cycle order, and since when it has held.
    @Test func theBoardKeepsVerdictsAndTheirStart() throws {
        let board = StatusBoard()
        board.setBackends(["ceph-a"])
        board.record(
            Self.cycle(
                [
                    StepResult(operation: .multipart, result: .success, seconds: 0.3, requestID: "tx1"),
                    StepResult(operation: .conditional, result: .success, seconds: 0.01),
                ], at: 100))
        board.record(
            Self.cycle(
                [
                    StepResult(operation: .multipart, result: .success, seconds: 0.3, requestID: "tx2"),
                    StepResult(
                        operation: .conditional, result: .unsupported, seconds: 0.01, message: "ignored",
                        httpStatus: 200),
                ], at: 200))
        let features = try #require(board.backends.first?.features)
        #expect(features.map(\.feature) == ["conditional", "multipart"])
        #expect(features.map(\.verdict) == [.unsupported, .ok])
        #expect(features.map(\.since) == [Date(timeIntervalSince1970: 200), Date(timeIntervalSince1970: 100)])
        #expect(features.map(\.requestID) == [nil, "tx2"])
    }

    /// The compat table, exactly: an ok row shows evidence only when it has some (an ETag of another form); a
    /// feature its cycle never reached is failing with the reason.
    @Test func theCompatTableAndAFeatureNotReached() {
        let failedPut = CycleResult(
            backend: "down", startedAt: Date(), duration: .seconds(1), status: .failure,
            steps: [StepResult(operation: .put, result: .error, reason: .connection, message: "refused")],
            failure: FailureSummary(operation: "put", reason: .connection, message: "connection refused"),
            integrityFailure: false)
        let notReached = CompatibilityReport.row(.presign, of: failedPut)
        #expect(notReached.verdict == .failing)
        #expect(notReached.message == "not reached: put connection: connection refused")
        let rows: [CompatibilityReport.Row] = [
            .init(backend: "rgw", feature: "presign", verdict: .ok, requestID: "tx1", message: nil),
            .init(
                backend: "rclone", feature: "multipart", verdict: .ok, requestID: "tx3",
                message: "the completed upload's ETag is of the form <md5>, not <md5>-2"),
            .init(
                backend: "rgw", feature: "aws_chunked", verdict: .failing, httpStatus: 400,
                s3Code: "XAmzContentSHA256Mismatch", requestID: "tx2", message: "PutObject http_error HTTP 400"),
            notReached,
        ]
        #expect(
            CompatibilityReport.table(rows) == """
                BACKEND  FEATURE      VERDICT  STATUS  S3 CODE                    REQUEST ID  EVIDENCE
                rgw      presign      ok       -       -                          tx1
                rclone   multipart    ok       -       -                          tx3         the completed upload's ETag is of the form <md5>, not <md5>-2
                rgw      aws_chunked  failing  400     XAmzContentSHA256Mismatch  tx2         PutObject http_error HTTP 400
                down     presign      failing  -       -                          -           not reached: put connection: connection refused
                """)
    }

    /// `probe.require` names features only, each run by the cycle; every problem is reported with its path.
    @Test func requiredFeaturesMustBeFeaturesTheCycleRuns() throws {
        let loader = ConfigurationLoader(environment: [:], hostName: "h")
        let backend = Self.oneBackend
        let good = try loader.load(
            data: Data(("probe: {operations: [put, conditional, delete], require: [conditional]}\n" + backend).utf8))
        #expect(good.backends[0].probe.required == [.conditional])
        #expect(try loader.load(data: Data(backend.utf8)).backends[0].probe.required.isEmpty)
        let bad = "probe: {operations: [put, delete], require: [conditional, put, conditional]}\n" + backend
        do {
            _ = try loader.load(data: Data(bad.utf8))
            Issue.record("a bad probe.require was accepted")
        } catch {
            let text = error.description
            #expect(
                text.contains("probe.require[1]") && text.contains("\"put\" is not a compatibility feature"), "\(text)")
            #expect(text.contains("probe.require[2]") && text.contains("listed twice"), "\(text)")
            #expect(
                text.contains("conditional required (here or by the top-level probe.require) but not run: add it "
                    + "to probe.operations"), "\(text)")
        }
    }

    /// A configuration's `backends:` with one backend, for the tests of `probe:` keys.
    static let oneBackend = """
        backends:
          - name: a
            endpoint: http://127.0.0.1:7480
            bucket: b
            credentials: {access_key_id: AK, secret_access_key: SK}

        """

    @Test func probeKeysForFeaturesParseWithDefaults() throws {
        let loader = ConfigurationLoader(environment: [:], hostName: "h")
        let base = Self.oneBackend
        let defaults = try loader.load(data: Data(base.utf8)).backends[0].probe
        #expect(defaults.multipart.partSize == 5 << 20 && defaults.multipart.lastPartSize == 1 << 20)
        #expect(defaults.checksumAlgorithm == .crc32)
        let set = try loader.load(
            data: Data(
                ("""
                probe:
                  timeout: 5s
                  operations: [presign, put, multipart, delete, aws_chunked]
                  multipart: {part_size: 8MiB, last_part_size: 10KiB}
                  checksum_algorithm: CRC32C

                """ + base).utf8)
        ).backends[0].probe
        #expect(set.operations == [.put, .presign, .awsChunked, .multipart, .delete])
        #expect(set.multipart.partSize == 8 << 20 && set.multipart.lastPartSize == 10 << 10)
        #expect(set.checksumAlgorithm == .crc32c)
    }
}
