import Foundation
import TestSupport
import Testing

/// The compatibility canaries against real servers: our verdicts against boto3's on Ceph RGW and moto (both behind
/// an HTTPS front, where the SDKs send their default aws-chunked uploads), a part killed mid-upload, a multipart
/// complete that fails, and a feature the server does not implement.
@Suite("Compatibility canaries against RGW and moto", .tags(.faults), .serialized)
struct CompatibilityTests {
    struct Row: Codable {
        var backend: String
        var feature: String
        var verdict: String
        var http_status: Int?
        var s3_code: String?
        var request_id: String?
        var message: String?
    }

    struct Reference: Codable {
        var verdict: String
        var evidence: String
    }

    static let features = ["conditional", "presign", "checksum", "aws_chunked", "multipart"]

    /// For every feature on each server, s3-canary's verdict is the one boto3 (default settings of its installed
    /// version) reaches on the same server in the same test. The table goes to test-output/compat-verdicts.md.
    @Test func verdictsMatchBoto3OnRGWAndMoto() async throws {
        let rgw = try RGWEnvironment.load()
        let directory = try Harness.temporaryDirectory("compat")
        let moto = try await MotoServer.start(directory: directory)
        defer { moto.daemon.signal(SIGKILL) }
        let created = try Harness.run(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import boto3; boto3.client('s3', endpoint_url='\(moto.base)', aws_access_key_id='testing', "
                    + "aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket='compat')",
            ])
        try #require(created.status == 0, "creating moto's bucket: \(created.stderr)")
        let front = try await TLSFront.start("compat-tls", upstreams: [rgw.port, moto.port])
        defer { front.stop() }
        let servers: [(name: String, endpoint: String, bucket: String, accessKey: String, secretKey: String)] = [
            ("rgw", "https://localhost:\(front.ports[0])", RGWEnvironment.miscBucket, rgw.accessKey, rgw.secretKey),
            ("moto", "https://localhost:\(front.ports[1])", "compat", "testing", "testing"),
        ]
        let prefix = ".s3-canary-compat-\(UUID().uuidString.prefix(8))/"
        var yaml = "instance: compat\nprobe: {key_prefix: \(prefix)}\nbackends:\n"
        for server in servers {
            yaml += """
                  - name: \(server.name)
                    endpoint: \(server.endpoint)
                    bucket: \(server.bucket)
                    tls: {ca_bundle: \(front.caBundle)}
                    credentials: {access_key_id: \(server.accessKey), secret_access_key: \(server.secretKey)}

                """
        }
        let configPath = directory.appendingPathComponent("compat.yaml")
        try Data(yaml.utf8).write(to: configPath)
        let ours = try await Harness.runDetached(Harness.binary, ["compat", "--config", configPath.path, "--json"])
        try #require([0, 1].contains(ours.status), "s3-canary compat failed: \(ours.stderr)")
        let rows = try JSONDecoder().decode([Row].self, from: Data(ours.stdout.utf8))
        #expect(rows.count == servers.count * Self.features.count)

        let script = Harness.root.appendingPathComponent("Tests/Fixtures/compat_reference.py").path
        var table = """
            # Compatibility verdicts: s3-canary vs boto3 \(Self.boto3Version())

            Both through an nginx HTTPS front (Tests/IntegrationTests/TLSFront.swift). Ceph RGW 16.2 of the suite; \
            moto server.

            | server | feature | s3-canary | boto3 | s3-canary's evidence | boto3's evidence |
            |---|---|---|---|---|---|

            """
        var verdicts: Set<String> = []
        for server in servers {
            let reference = try await Harness.runDetached(
                "/usr/bin/env",
                [
                    "python3", script, "--endpoint", server.endpoint, "--bucket", server.bucket, "--access-key",
                    server.accessKey, "--secret-key", server.secretKey, "--ca-bundle", front.caBundle, "--prefix",
                    "\(prefix)boto3/", "--max-attempts", "1",
                ])
            try #require(reference.status == 0, "compat_reference.py on \(server.name): \(reference.stderr)")
            let theirs = try JSONDecoder().decode([String: Reference].self, from: Data(reference.stdout.utf8))
            for feature in Self.features {
                let row = try #require(rows.first { $0.backend == server.name && $0.feature == feature })
                let expected = try #require(theirs[feature], "boto3 gave no verdict for \(feature)")
                #expect(
                    row.verdict == expected.verdict,
                    """
                    \(server.name) \(feature): s3-canary says \(row.verdict) (\(row.message ?? "")), \
                    boto3 says \(expected.verdict) (\(expected.evidence))
                    """)
                verdicts.insert(row.verdict)
                let evidence = row.verdict == "ok" ? "request id \(row.request_id ?? "-")" : row.message ?? ""
                table +=
                    "| \(server.name) | \(feature) | \(row.verdict) | \(expected.verdict) | "
                    + "\(evidence.replacingOccurrences(of: "|", with: "/")) | "
                    + "\(expected.evidence.replacingOccurrences(of: "|", with: "/")) |\n"
            }
        }
        try Data(table.utf8).write(to: Harness.outputDirectory.appendingPathComponent("compat-verdicts.md"))
        // The comparison covers more than "everything works": RGW 16.2 ignores flexible checksums and refuses
        // the SDKs' aws-chunked uploads.
        #expect(verdicts.count >= 2, "every verdict was the same: \(verdicts)")
        // Nothing is left by either client: no object, no upload in progress.
        for server in servers {
            let left = try listIndependently(
                endpoint: server.name == "rgw" ? rgw.endpoint : moto.base, bucket: server.bucket, prefix: prefix,
                uploads: true)
            #expect(left.isEmpty, "\(server.name) keeps \(left)")
        }
    }

    static func boto3Version() -> String {
        let output = try? Harness.run("/usr/bin/env", ["python3", "-c", "import boto3; print(boto3.__version__)"])
        return output.map { $0.stdout.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "?"
    }

    /// A part cut off mid-upload by a TCP reset: the cycle fails on `multipart` with a connection error, aborts
    /// the upload at once, and boto3 finds neither an upload nor an object under the canary's prefix.
    @Test func aPartKilledMidUploadLeavesNothingBehind() async throws {
        let rgw = try RGWEnvironment.load()
        let directory = try Harness.temporaryDirectory("compat-reset")
        let proxy = try await FaultInjector(names: ["killed"], target: rgw.port, directory: directory)
        defer { proxy.stop() }
        try proxy.set("killed", "reset_part")
        let prefix = ".s3-canary-killed-\(UUID().uuidString.prefix(8))/"
        let configPath = directory.appendingPathComponent("s3-canary.yaml")
        try Data(
            """
            instance: killed
            probe: {key_prefix: \(prefix), operations: [put, multipart, delete]}
            backends:
              - name: killed
                endpoint: http://127.0.0.1:\(proxy.ports["killed"] ?? 0)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """.utf8
        ).write(to: configPath)
        let probe = try await Harness.runDetached(Harness.binary, ["probe", "--config", configPath.path, "--json"])
        #expect(probe.status == 1, "the cycle must fail: \(probe.stdout) \(probe.stderr)")
        #expect(probe.stdout.contains("\"operation\" : \"multipart\""), "\(probe.stdout)")
        #expect(probe.stdout.contains("\"reason\" : \"connection\""), "\(probe.stdout)")
        let left = try listIndependently(
            endpoint: rgw.endpoint, bucket: RGWEnvironment.miscBucket, prefix: prefix, uploads: true)
        #expect(left.isEmpty, "left behind: \(left)")
    }

    /// A multipart upload a killed process left open under this replica's prefix (made here with boto3, dated an
    /// hour ago as the canary dates its keys): the next start's sweep aborts it, and boto3 no longer lists it.
    @Test func theSweeperAbortsALeftoverUpload() async throws {
        let rgw = try RGWEnvironment.load()
        let prefix = ".s3-canary-mpsweep-\(UUID().uuidString.prefix(8))/"
        let leftover = "\(prefix)mpsweep/rgw/\(Int64((Date().timeIntervalSince1970 - 3600) * 1000))-abc.multipart"
        let fixtures = Harness.root.appendingPathComponent("Tests/Fixtures").path
        let created = try Harness.run(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sys; sys.path.insert(0, '\(fixtures)'); from rgw_client import client; "
                    + "client('\(rgw.endpoint)').create_multipart_upload(Bucket='\(RGWEnvironment.miscBucket)', "
                    + "Key='\(leftover)')",
            ])
        try #require(created.status == 0, "boto3 could not start the leftover upload: \(created.stderr)")
        func uploads() throws -> [String] {
            try listIndependently(
                endpoint: rgw.endpoint, bucket: RGWEnvironment.miscBucket, prefix: prefix, uploads: true)
        }
        #expect(try uploads().contains("UPLOAD \(leftover)"))
        let (canary, _) = try await RunningCanary.start(name: "mpsweep") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: mpsweep
            probe: {interval: 2s, timeout: 1900ms, key_prefix: \(prefix), operations: [put, multipart, delete]}
            backends:
              - name: rgw
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(20), "the leftover upload aborted") {
            try canary.metrics()["s3canary_sweep_removed_total{backend=\"rgw\",kind=\"upload\"}"] == 1
        }
        #expect(try !uploads().contains("UPLOAD \(leftover)"), "boto3 still lists it")
    }

    /// Two backends through the fault proxy: on one every CompleteMultipartUpload fails while its plain PUT works;
    /// the other does not implement multipart at all (501 NotImplemented). The first breaker opens naming the
    /// complete; the second stays closed with the feature `unsupported`, until multipart works once and then
    /// answers 501 again: a regression, which opens its breaker.
    @Test func completeFailingOpensTheBreakerAndUnsupportedDoesNotUntilItRegresses() async throws {
        let rgw = try RGWEnvironment.load()
        let directory = try Harness.temporaryDirectory("compat-faults")
        let proxy = try await FaultInjector(
            names: ["complete-fails", "no-multipart"], target: rgw.port, directory: directory)
        defer { proxy.stop() }
        try proxy.set("complete-fails", "fail_complete")
        try proxy.set("no-multipart", "notimpl_multipart")
        let prefix = ".s3-canary-mpfaults-\(UUID().uuidString.prefix(8))/"
        let (canary, _) = try await RunningCanary.start(name: "compat-faults") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: mpfaults
            probe: {interval: 2s, timeout: 1900ms, key_prefix: \(prefix), operations: [put, get, multipart, delete]}
            breaker: {failure_threshold: 3, open_timeout: 60s}
            backends:
              - name: complete-fails
                endpoint: http://127.0.0.1:\(proxy.ports["complete-fails"] ?? 0)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: no-multipart
                endpoint: http://127.0.0.1:\(proxy.ports["no-multipart"] ?? 0)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        func state(_ backend: String) throws -> Double? {
            try canary.metrics()["s3canary_circuit_breaker_state{backend=\"\(backend)\"}"]
        }
        try await Harness.waitUntil(.seconds(40), "complete-fails opens its breaker") {
            try state("complete-fails") == 1
        }
        let samples = try canary.metrics()
        #expect(
            samples[#"s3canary_operations_total{backend="complete-fails",operation="put",result="success"}"#] ?? 0 >= 3)
        #expect(
            samples[
                #"s3canary_operation_errors_total{backend="complete-fails",operation="multipart",reason="http_5xx"}"#]
                ?? 0 >= 3)
        let status = try Harness.http("\(canary.base)/status").body
        let document = try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any]
        let backends = document?["backends"] as? [[String: Any]] ?? []
        func backend(_ name: String) -> [String: Any] { backends.first { $0["name"] as? String == name } ?? [:] }
        let lastError = (backend("complete-fails")["breaker"] as? [String: Any])?["last_error"] as? [String: Any]
        #expect(lastError?["operation"] as? String == "multipart")
        let message = lastError?["message"] as? String ?? ""
        #expect(message.contains("CompleteMultipartUpload"), "\(lastError ?? [:])")
        // Unsupported from the start: by now as many cycles have run, the breaker is closed, cycles succeed.
        #expect(try state("no-multipart") == 0)
        #expect(samples[#"s3canary_probe_success{backend="no-multipart"}"#] == 1)
        #expect(samples[#"s3canary_feature_supported{backend="no-multipart",feature="multipart"}"#] == 0)
        #expect(samples[#"s3canary_feature_supported{backend="complete-fails",feature="multipart"}"#] == 0)
        let features = backend("no-multipart")["features"] as? [[String: Any]] ?? []
        #expect(features.first?["verdict"] as? String == "unsupported", "\(features)")
        #expect(features.first?["http_status"] as? Int == 501, "\(features)")

        // Multipart works once, then the server answers 501 again: that is a regression, and it counts.
        try proxy.set("no-multipart", "pass")
        try await Harness.waitUntil(.seconds(20), "multipart ok on no-multipart") {
            try canary.metrics()[#"s3canary_feature_supported{backend="no-multipart",feature="multipart"}"#] == 1
        }
        try proxy.set("no-multipart", "notimpl_multipart")
        try await Harness.waitUntil(.seconds(30), "no-multipart opens its breaker after the regression") {
            try state("no-multipart") == 1
        }
        let after = try Harness.http("\(canary.base)/status").body
        #expect(after.contains("worked earlier, now:"), "\(after.prefix(2000))")
        let left = try listIndependently(
            endpoint: rgw.endpoint, bucket: RGWEnvironment.miscBucket, prefix: prefix, uploads: true)
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
