import Foundation
import TestSupport
import Testing

/// The checks of the server matrix, each run by s3-canary and by boto3 (Tests/Fixtures/compat_reference.py) on the
/// same servers through the same HTTPS front, turned into cells.
struct MatrixRun: Sendable {
    var servers: [MatrixServer]
    var front: TLSFront
    var directory: URL
    /// Everything either client writes is under it; the test checks it is empty at the end.
    var prefix = ".s3-canary-matrix-\(UUID().uuidString.prefix(8))/"
    static let instance = "matrix"

    /// The i-th server's HTTPS endpoint on the front.
    func secureEndpoint(_ server: MatrixServer) -> String {
        let index = self.servers.firstIndex { $0.name == server.name } ?? 0
        return "https://localhost:\(self.front.ports[index])"
    }

    /// A configuration with every server as a backend, through the front.
    func configuration(
        operations: [String], require: [String] = [], listen: Int? = nil, interval: String = "10s"
    ) -> String {
        var yaml = listen.map { "listen: 127.0.0.1:\($0)\n" } ?? ""
        let list = operations.joined(separator: ", ")
        let required = require.isEmpty ? "" : ", require: [\(require.joined(separator: ", "))]"
        yaml += """
            instance: \(Self.instance)
            probe: {interval: \(interval), timeout: 8s, key_prefix: \(self.prefix), operations: [\(list)]\(required)}
            backends:

            """
        for server in self.servers {
            yaml += """
                  - name: \(server.name)
                    endpoint: \(self.secureEndpoint(server))
                    bucket: \(server.bucket)
                    tls: {ca_bundle: \(self.front.caBundle)}
                    credentials: {access_key_id: "\(server.accessKey)", secret_access_key: "\(server.secretKey)"}

                """
        }
        return yaml
    }

    func writeConfiguration(_ name: String, operations: [String], require: [String] = []) throws -> String {
        let path = self.directory.appendingPathComponent(name)
        try Data(self.configuration(operations: operations, require: require).utf8).write(to: path)
        return path.path
    }

    /// `s3-canary probe --json` with the configuration at `config`: one result per backend, by name.
    func probe(_ config: String) async throws -> [String: ProbeResult] {
        let output = try await Harness.runDetached(Harness.binary, ["probe", "--config", config, "--json"])
        guard [0, 1].contains(output.status) else { throw HarnessError("s3-canary probe failed: \(output.stderr)") }
        let results = try JSONDecoder().decode([ProbeResult].self, from: Data(output.stdout.utf8))
        return Dictionary(uniqueKeysWithValues: results.map { ($0.backend, $0) })
    }

    /// A cell per server and check: ours from `ours` (nil: `absent`), boto3's from `theirs`.
    private func cells(
        _ checks: [String], absent: String, theirs: [String: [String: Reference]],
        ours: (MatrixServer, String) -> (verdict: String, evidence: String)?
    ) -> [MatrixCell] {
        self.servers.flatMap { server in
            checks.map { check in
                let mine = ours(server, check)
                let reference = theirs[server.name]?[check]
                return MatrixCell(
                    server: server.name, check: check, verdict: mine?.verdict ?? absent, evidence: mine?.evidence ?? "",
                    boto3: reference?.verdict ?? absent, boto3Evidence: reference?.evidence ?? "")
            }
        }
    }

    /// The reference client's verdicts on one server: the five features, or the basic cycle with `basic`.
    func reference(_ server: MatrixServer, basic: Bool) async throws -> [String: Reference] {
        let script = Harness.root.appendingPathComponent("Tests/Fixtures/compat_reference.py").path
        let output = try await Harness.runDetached(
            "/usr/bin/env",
            [
                "python3", script, "--endpoint", self.secureEndpoint(server), "--bucket", server.bucket,
                "--access-key", server.accessKey, "--secret-key", server.secretKey, "--ca-bundle", self.front.caBundle,
                "--prefix", "\(self.prefix)boto3/", "--max-attempts", "1",
            ] + (basic ? ["--basic"] : []))
        guard output.status == 0 else { throw HarnessError("compat_reference.py on \(server.name): \(output.stderr)") }
        return try JSONDecoder().decode([String: Reference].self, from: Data(output.stdout.utf8))
    }

    /// The reference's verdicts for every server, concurrently.
    func references(basic: Bool) async throws -> [String: [String: Reference]] {
        try await withThrowingTaskGroup(of: (String, [String: Reference]).self) { group in
            for server in self.servers {
                group.addTask { (server.name, try await self.reference(server, basic: basic)) }
            }
            var all: [String: [String: Reference]] = [:]
            for try await (name, verdicts) in group { all[name] = verdicts }
            return all
        }
    }

    /// put, head, get, get_range, copy, list, delete: `s3-canary probe` against `compat_reference.py --basic`. A
    /// step after the first that is not ok is "not reached" on both sides.
    func basicCycle() async throws -> [MatrixCell] {
        let config = try self.writeConfiguration("basic.yaml", operations: ServerMatrixTests.basic)
        async let references = self.references(basic: true)
        let results = try await self.probe(config)
        return self.cells(ServerMatrixTests.basic, absent: "not reached", theirs: try await references) {
            server, check in
            (results[server.name]?.operations.last { $0.operation == check }).map {
                ($0.verdict, Self.evidence($0.verdict, $0.message, $0.http_status, $0.s3_code))
            }
        }
    }

    /// `s3-canary compat` against `compat_reference.py`, feature by feature.
    func features() async throws -> [MatrixCell] {
        let config = try self.writeConfiguration("compat.yaml", operations: ["put", "delete"])
        async let references = self.references(basic: false)
        let compat = try await Harness.runDetached(Harness.binary, ["compat", "--config", config, "--json"])
        guard [0, 1].contains(compat.status) else { throw HarnessError("s3-canary compat failed: \(compat.stderr)") }
        let rows = try JSONDecoder().decode([CompatibilityTests.Row].self, from: Data(compat.stdout.utf8))
        return self.cells(ServerMatrixTests.features, absent: "missing", theirs: try await references) {
            server, check in
            (rows.first { $0.backend == server.name && $0.feature == check }).map {
                ($0.verdict, Self.evidence($0.verdict, $0.message, $0.http_status, $0.s3_code))
            }
        }
    }

    /// A stale canary (dated an hour ago, under each backend's own prefix, written by boto3) is deleted by the
    /// running service's start-up sweep without a sweep error (with `multipart` on, the sweep also lists the
    /// backend's uploads), and boto3 no longer lists it.
    func sweep() async throws -> [MatrixCell] {
        let stamp = Int64((Date().timeIntervalSince1970 - 3600) * 1000)
        func stale(_ server: MatrixServer) -> String { "\(self.prefix)\(Self.instance)/\(server.name)/\(stamp)-stale" }
        for server in self.servers {
            let put = try Harness.run("/usr/bin/env", self.client("put", server, stale(server)))
            guard put.status == 0 else {
                throw HarnessError("boto3 could not write \(server.name)'s stale canary: \(put.stderr)")
            }
        }
        let (canary, _) = try await RunningCanary.start(name: "matrix-sweep") { port in
            // The sweep runs as each backend's runner starts; a long interval keeps the cycles (6 MiB of multipart
            // each, through the TLS front) from loading the machine while the test reads the metrics.
            self.configuration(operations: ServerMatrixTests.basic + ["multipart"], listen: port, interval: "60s")
        }
        /// Each backend's canaries removed by the sweep, and the sweep's errors, from one scrape.
        func sweepCounts() throws -> [String: (removed: Double, errors: Double)] {
            let samples = try canary.metrics()
            return Dictionary(
                uniqueKeysWithValues: self.servers.map { server in
                    (
                        server.name,
                        (
                            samples["s3canary_sweep_removed_total{backend=\"\(server.name)\",kind=\"canary\"}"] ?? 0,
                            samples["s3canary_sweep_errors_total{backend=\"\(server.name)\"}"] ?? 0
                        )
                    )
                })
        }
        // A backend whose sweep never comes is a `failing` cell below, with boto3's listing beside it.
        _ = try? await Harness.waitUntil(.seconds(60), "every backend's stale canary swept") {
            try sweepCounts().values.allSatisfy { $0.removed >= 1 }
        }
        let counts: [String: (removed: Double, errors: Double)]
        do {
            counts = try sweepCounts()
        } catch {
            canary.daemon.signal(SIGKILL)
            throw error
        }
        // SIGTERM: the cycles in flight finish and delete their canaries, so nothing is left under the prefix.
        let status = await canary.daemon.stop()
        guard status == 0 else { throw HarnessError("the sweep run's s3-canary exited with \(status)") }
        var cells: [MatrixCell] = []
        for server in self.servers {
            let (count, errors) = counts[server.name] ?? (0, 0)
            let listed = try self.leftovers(server).contains(stale(server))
            let evidence =
                count < 1
                ? "the start-up sweep removed nothing" : errors > 0 ? "the sweep counted \(Int(errors)) errors" : ""
            cells.append(
                MatrixCell(
                    server: server.name, check: "sweep", verdict: evidence.isEmpty ? "ok" : "failing",
                    evidence: evidence,
                    boto3: listed ? "failing" : "ok",
                    boto3Evidence: listed ? "ListObjectsV2 still lists the stale canary" : "the stale canary is gone"))
        }
        return cells
    }

    /// Whether a PUT signed with a wrong secret is refused.
    func checksSignatures(_ server: MatrixServer) async throws -> Bool {
        let output = try await Harness.runDetached("/usr/bin/env", self.client("signature", server, self.prefix))
        let answer = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard output.status == 0, ["refused", "accepted"].contains(answer) else {
            throw HarnessError("signature check on \(server.name): \(answer) \(output.stderr)")
        }
        return answer == "refused"
    }

    /// Every key and upload left under the run's prefix, as boto3 lists them.
    func leftovers(_ server: MatrixServer) throws -> [String] {
        let output = try Harness.run("/usr/bin/env", self.client("list", server, self.prefix))
        guard output.status == 0 else { throw HarnessError("listing \(server.name) with boto3: \(output.stderr)") }
        return output.stdout.split(separator: "\n").map(String.init)
    }

    /// The arguments of `Tests/Fixtures/matrix_client.py COMMAND` against `server`; `last` is the command's key or
    /// prefix.
    func client(_ command: String, _ server: MatrixServer, _ last: String) -> [String] {
        [
            "python3", Harness.root.appendingPathComponent("Tests/Fixtures/matrix_client.py").path, command,
            server.endpoint, server.bucket, server.accessKey, server.secretKey, last,
        ]
    }

    /// The evidence line of the docs, the same on every run: the server's status and code for an answer other
    /// than 200; for `ok` and `unsupported`, the canary's own words (an ETag form, a ranged 200, a header the
    /// server ignored: they name no key, value or request id); fixed words for the rest, whose messages carry
    /// byte counts, ranges, checksums or ports of one run.
    static func evidence(_ verdict: String, _ message: String?, _ status: Int?, _ code: String?) -> String {
        if verdict != "ok", let status, status != 200 {
            return "HTTP \(status)" + (code.map { " \($0)" } ?? "")
        }
        switch verdict {
        case "ok", "unsupported": return message ?? ""
        case "corrupting":
            let framing = message?.contains("framing") == true ? " (the aws-chunked framing was stored)" : ""
            return "the bytes read back differ from those written" + framing
        default: return "no HTTP error answer (the run's test output has the message)"
        }
    }

    struct Reference: Codable, Sendable {
        var verdict: String
        var evidence: String
    }

    struct ProbeResult: Codable {
        struct Step: Codable {
            var operation: String
            var result: String
            var reason: String?
            var message: String?
            var http_status: Int?
            var s3_code: String?

            /// The step as a verdict: an error of reason integrity is `corrupting`, any other `failing`.
            var verdict: String {
                switch self.result {
                case "success": "ok"
                case "unsupported": "unsupported"
                case "error": self.reason == "integrity" ? "corrupting" : "failing"
                default: self.result
                }
            }
        }

        var backend: String
        var status: String
        var operations: [Step]
    }
}
