import Foundation
import TestSupport
import Testing

/// The compatibility canaries' faults on the real RGW: a part killed mid-upload, a multipart complete that fails, a
/// feature the server does not implement, and a leftover upload swept. The verdicts themselves are checked against
/// boto3's on six servers in ServerMatrixTests.
@Suite("Compatibility canaries under faults on RGW", .tags(.faults), .serialized)
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
            probe: {interval: 5s, timeout: 4500ms, key_prefix: \(prefix), operations: [put, get, multipart, delete]}
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
        // Cycles of 5 s: a 6 MiB multipart through the proxy must never hit the cycle's deadline on a loaded CI
        // machine (at 2 s one did, so a breaker failure was a timeout and its upload was left for the sweeper).
        try await Harness.waitUntil(.seconds(60), "complete-fails opens its breaker") {
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
        try await Harness.waitUntil(.seconds(40), "multipart ok on no-multipart") {
            try canary.metrics()[#"s3canary_feature_supported{backend="no-multipart",feature="multipart"}"#] == 1
        }
        try proxy.set("no-multipart", "notimpl_multipart")
        try await Harness.waitUntil(.seconds(60), "no-multipart opens its breaker after the regression") {
            try state("no-multipart") == 1
        }
        let after = try Harness.http("\(canary.base)/status").body
        #expect(after.contains("worked earlier, now:"), "\(after.prefix(2000))")
        let left = try listIndependently(
            endpoint: rgw.endpoint, bucket: RGWEnvironment.miscBucket, prefix: prefix, uploads: true)
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
