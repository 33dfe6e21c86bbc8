import Foundation
import TestSupport
import Testing

/// The canary and `compat` on six real S3 servers (Ceph RGW, moto, JuiceFS, rclone `serve s3`, OpenStack Swift with
/// s3api, LocalStack), every check also done by boto3 on the same server through the same HTTPS front (where
/// botocore sends its default aws-chunked uploads). A cell where the two disagree fails with both answers. The run
/// writes test-output/compat-matrix.json, from which scripts/compat-matrix.sh renders docs/compatibility.md.
@Suite("Server matrix: s3-canary against boto3 on six S3 servers", .tags(.matrix), .serialized)
struct ServerMatrixTests {
    /// The basic cycle's operations, in order, then the sweep, then the five features.
    static let basic = ["put", "head", "get", "get_range", "copy", "list", "delete"]
    static let features = ["conditional", "presign", "checksum", "aws_chunked", "multipart"]

    /// Each cell's two verdicts are the same, or the test fails with both answers.
    static func expectAgreement(_ cells: [MatrixCell], sourceLocation: SourceLocation = #_sourceLocation) {
        for cell in cells {
            #expect(
                cell.verdict == cell.boto3,
                """
                \(cell.server) \(cell.check): s3-canary says \(cell.verdict) (\(cell.evidence)), \
                boto3 says \(cell.boto3) (\(cell.boto3Evidence))
                """, sourceLocation: sourceLocation)
        }
    }

    @Test func everyCheckAgreesWithBoto3OnEveryServer() async throws {
        let directory = try Harness.temporaryDirectory("matrix")
        let moto = try await MotoServer.start(directory: directory)
        defer { moto.daemon.signal(SIGKILL) }
        let servers =
            [try MatrixEnvironment.rgw(), try MatrixEnvironment.moto(moto)] + (try MatrixEnvironment.servers())
        let front = try await TLSFront.start("matrix-tls", upstreams: servers.map(\.port), kind: .bytes)
        defer { front.stop() }
        let run = MatrixRun(servers: servers, front: front, directory: directory)

        var cells: [MatrixCell] = []
        cells += try await run.basicCycle()
        cells += try await run.sweep()
        cells += try await run.features()
        Self.expectAgreement(cells)
        // Every feature was reported by both clients (a row missing on both sides would compare equal).
        #expect(!cells.contains { $0.verdict == "missing" || $0.boto3 == "missing" }, "\(cells)")
        // The basic cycle works on all six; the features are where they differ.
        for server in servers {
            let failed = cells.filter {
                $0.server == server.name && Self.basic.contains($0.check) && $0.verdict != "ok"
            }
            #expect(failed.isEmpty, "\(server.name): the basic cycle is not ok: \(failed)")
        }
        #expect(Set(cells.map(\.verdict)).count >= 2, "every verdict was the same")
        // rclone's multipart works; its ETag form is the evidence, not a failure.
        let rclone = try #require(cells.first { $0.server == "rclone" && $0.check == "multipart" })
        #expect(rclone.verdict == "ok" && rclone.evidence.contains("ETag is of the form"), "\(rclone)")
        // rclone answers a ranged GET with 200 and the range's bytes: evidence on an ok step, not a failure.
        let range = try #require(cells.first { $0.server == "rclone" && $0.check == "get_range" })
        #expect(range.verdict == "ok" && range.evidence.hasPrefix("answered 200, not 206"), "\(range)")

        var signatures: [String: Bool] = [:]
        for server in servers { signatures[server.name] = try await run.checksSignatures(server) }
        // LocalStack (and moto's server) take a request signed with a wrong secret; RGW refuses it. The matrix
        // records each, for the docs.
        #expect(signatures["localstack"] == false && signatures["rgw"] == true, "\(signatures)")

        let matrix = MatrixDocument(
            boto3: CompatibilityTests.boto3Version(),
            servers: servers.map { .init(name: $0.name, version: $0.version, checksSignatures: signatures[$0.name]) },
            cells: cells)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(matrix).write(to: Harness.outputDirectory.appendingPathComponent("compat-matrix.json"))

        for server in servers {
            let left = try run.leftovers(server)
            #expect(left.isEmpty, "\(server.name) keeps \(left)")
        }
    }

    /// An unsupported feature never fails a cycle, unless the configuration requires it: with
    /// `require: [conditional]`, Swift's 501 to the conditional PUT fails the cycle (and counts against the
    /// breaker) while RGW, which supports it, passes; without `require` both cycles succeed.
    @Test func aRequiredFeatureThatIsUnsupportedFailsTheCycle() async throws {
        let directory = try Harness.temporaryDirectory("matrix-require")
        let servers = [try MatrixEnvironment.rgw()] + (try MatrixEnvironment.servers()).filter { $0.name == "swift" }
        try #require(servers.count == 2, "the matrix's swift server is not in the environment")
        let front = try await TLSFront.start("matrix-require-tls", upstreams: servers.map(\.port), kind: .bytes)
        defer { front.stop() }
        let run = MatrixRun(servers: servers, front: front, directory: directory)
        func probe(require: Bool) async throws -> [String: MatrixRun.ProbeResult] {
            try await run.probe(
                try run.writeConfiguration(
                    "require-\(require).yaml", operations: ["put", "conditional", "delete"],
                    require: require ? ["conditional"] : []))
        }
        let plain = try await probe(require: false)
        #expect(plain["swift"]?.status == "success" && plain["rgw"]?.status == "success", "\(plain)")
        #expect(plain["swift"]?.operations.first { $0.operation == "conditional" }?.result == "unsupported")
        let required = try await probe(require: true)
        #expect(required["rgw"]?.status == "success", "\(required)")
        let step = required["swift"]?.operations.first { $0.operation == "conditional" }
        #expect(required["swift"]?.status == "failure" && step?.result == "error", "\(required)")
        #expect(
            step?.message?.hasPrefix("required by probe.require, but unsupported: ") == true,
            "\(String(describing: step))")
        #expect(try run.leftovers(servers[0]).isEmpty && run.leftovers(servers[1]).isEmpty)
    }

    /// Servers that damage data, made by the fault proxy in front of moto (which checks no signature, so a rewritten
    /// request still lands): one stores the aws-chunked framing as the object's bytes, one flips a byte of every
    /// body it returns. Both clients call each `corrupting`; a feature whose read-back carries no body (the
    /// conditional GET's 412) stays `ok`.
    @Test func serversThatDamageDataAreCorrupting() async throws {
        let directory = try Harness.temporaryDirectory("matrix-damage")
        let moto = try await MotoServer.start(directory: directory)
        defer { moto.daemon.signal(SIGKILL) }
        let base = try MatrixEnvironment.moto(moto)
        let proxy = try await FaultInjector(names: ["framing", "flip"], target: moto.port, directory: directory)
        defer { proxy.stop() }
        try proxy.set("framing", "store_framing")
        try proxy.set("flip", "corrupt")
        let servers = ["framing", "flip"].map { name in
            var server = base
            server.name = name
            server.port = proxy.ports[name] ?? 0
            return server
        }
        let front = try await TLSFront.start("matrix-damage-tls", upstreams: servers.map(\.port), kind: .bytes)
        defer { front.stop() }
        let run = MatrixRun(servers: servers, front: front, directory: directory)
        let cells = try await run.features() + (try await run.basicCycle())
        Self.expectAgreement(cells)
        func verdict(_ server: String, _ check: String) -> String? {
            cells.first { $0.server == server && $0.check == check }?.verdict
        }
        #expect(verdict("framing", "aws_chunked") == "corrupting")
        #expect(
            cells.first { $0.server == "framing" && $0.check == "aws_chunked" }?.evidence.contains("framing") == true)
        for check in ["presign", "checksum", "aws_chunked", "multipart"] {
            #expect(verdict("flip", check) == "corrupting", "flip \(check)")
        }
        #expect(verdict("flip", "get") == "corrupting")
        #expect(verdict("flip", "conditional") == "ok")
        // Plain uploads are untouched by the framing fault.
        #expect(verdict("framing", "multipart") == "ok")
        #expect(verdict("framing", "get") == "ok")
    }
}

/// One cell of the matrix: what s3-canary and boto3 concluded for one check on one server.
struct MatrixCell: Codable, Sendable, CustomStringConvertible {
    var server: String
    var check: String
    var verdict: String
    /// One line a reader can act on, the same on every run (no request ids, keys or ETag values).
    var evidence: String
    var boto3: String
    var boto3Evidence: String

    var description: String { "\(self.server) \(self.check) \(self.verdict) (\(self.evidence))" }

    enum CodingKeys: String, CodingKey {
        case server, check, verdict, evidence, boto3
        case boto3Evidence = "boto3_evidence"
    }
}

/// What `scripts/compat-matrix.sh` renders.
struct MatrixDocument: Codable {
    struct Server: Codable {
        var name: String
        var version: String
        /// Whether a request signed with a wrong secret key is refused.
        var checksSignatures: Bool?

        enum CodingKeys: String, CodingKey {
            case name, version
            case checksSignatures = "checks_signatures"
        }
    }

    var boto3: String
    var servers: [Server]
    var cells: [MatrixCell]
}
