import Foundation
import TestSupport
import Testing

/// The HTTP endpoint as an attacker and as Prometheus see it: TLS with a certificate swapped on SIGHUP, basic auth
/// against an `htpasswd` bcrypt hash, a bearer token, `/healthz` open, and hostile requests answered with 4xx.
@Suite("Endpoint security")
struct EndpointSecurityTests {
    /// A self-signed certificate for 127.0.0.1 and localhost, made by openssl.
    static func makeCertificate(_ directory: URL, _ name: String) throws -> (cert: URL, key: URL) {
        let cert = directory.appendingPathComponent("\(name).crt")
        let key = directory.appendingPathComponent("\(name).key")
        let result = try Harness.run(
            "/usr/bin/env",
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-days", "2", "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", key.path, "-out", cert.path,
            ]
        )
        guard result.status == 0 else { throw HarnessError("openssl: \(result.stderr)") }
        return (cert, key)
    }

    @Test func tlsAndAuthenticationGuardEveryRouteButHealthz() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("endpoint-tls")
        let first = try Self.makeCertificate(work, "first")
        let second = try Self.makeCertificate(work, "second")
        let live = (cert: work.appendingPathComponent("live.crt"), key: work.appendingPathComponent("live.key"))
        try FileManager.default.copyItem(at: first.cert, to: live.cert)
        try FileManager.default.copyItem(at: first.key, to: live.key)
        // The hash comes from Apache's htpasswd ($2y$), as an operator would make it.
        let htpasswd = try Harness.run("/usr/bin/env", ["htpasswd", "-nbBC", "5", "prometheus", "scrape-pass-1"])
        let hash = try #require(htpasswd.stdout.split(separator: ":", maxSplits: 1).last)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hash.hasPrefix("$2y$05$"))
        let tokenFile = work.appendingPathComponent("token")
        try Data("token-0123456789abcdef".utf8).write(to: tokenFile)
        let port = try Harness.freePort()
        let config = work.appendingPathComponent("s3-canary.yaml")
        try Data(
            """
            listen: 127.0.0.1:\(port)
            server:
              tls: {cert_file: \(live.cert.path), key_file: \(live.key.path)}
              basic_auth_users:
                prometheus: "\(hash)"
              bearer_token_file: \(tokenFile.path)
            probe: {interval: 2s, timeout: 1s, key_prefix: .s3-canary-tls/}
            backends:
              - name: rgw
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)

            """.utf8
        ).write(to: config)
        let daemon = try Daemon(
            Harness.binary, ["run", "--config", config.path], log: work.appendingPathComponent("s3-canary.log")
        )
        defer { daemon.signal(SIGKILL) }
        let base = "https://127.0.0.1:\(port)"
        let trustFirst = ["--cacert", first.cert.path]
        try await Harness.waitUntil(.seconds(30), "/healthz over TLS") {
            guard daemon.isRunning else { throw HarnessError("s3-canary exited: \(daemon.log)") }
            return try Harness.http("\(base)/healthz", curl: trustFirst).status == 200
        }

        // No credentials: 401 with a challenge everywhere but /healthz.
        for path in ["/metrics", "/status", "/", "/readyz", "/probe?backend=rgw"] {
            #expect(try Harness.http("\(base)\(path)", curl: trustFirst).status == 401, "\(path)")
        }
        let challenge = try Harness.run(
            "/usr/bin/env",
            ["curl", "-s", "-o", "/dev/null", "-D", "-", "--cacert", first.cert.path, "\(base)/metrics"])
        #expect(
            challenge.stdout.lowercased().contains("www-authenticate: basic realm=\"s3-canary\""), "\(challenge.stdout)"
        )
        #expect(try Harness.http("\(base)/metrics", curl: trustFirst + ["-u", "prometheus:wrong"]).status == 401)
        #expect(try Harness.http("\(base)/metrics", curl: trustFirst + ["-u", "nobody:scrape-pass-1"]).status == 401)
        #expect(
            try Harness.http(
                "\(base)/metrics", headers: ["Authorization: Bearer token-0123456789abcdeX"], curl: trustFirst
            ).status == 401)
        let scraped = try Harness.http("\(base)/metrics", curl: trustFirst + ["-u", "prometheus:scrape-pass-1"])
        #expect(scraped.status == 200)
        #expect(scraped.body.contains("s3canary_circuit_breaker_state"))
        #expect(
            try Harness.http(
                "\(base)/status", headers: ["Authorization: Bearer token-0123456789abcdef"], curl: trustFirst
            ).status == 200)
        // A method the route does not answer is 405 once authenticated.
        #expect(
            try Harness.http(
                "\(base)/metrics", method: "DELETE", curl: trustFirst + ["-u", "prometheus:scrape-pass-1"]
            ).status == 405)
        // Plain HTTP on the TLS port gets no page.
        let plain = try Harness.http("http://127.0.0.1:\(port)/metrics")
        #expect(plain.status == nil || plain.status! >= 400)

        // Swap the certificate files and send SIGHUP: new handshakes get the second certificate.
        try FileManager.default.removeItem(at: live.cert)
        try FileManager.default.removeItem(at: live.key)
        try FileManager.default.copyItem(at: second.cert, to: live.cert)
        try FileManager.default.copyItem(at: second.key, to: live.key)
        daemon.signal(SIGHUP)
        try await Harness.waitUntil(.seconds(15), "the second certificate served") {
            try Harness.http("\(base)/healthz", curl: ["--cacert", second.cert.path]).status == 200
        }
        #expect(
            try Harness.http("\(base)/healthz", curl: trustFirst).status == nil, "the first certificate is still served"
        )
        // A broken key file on reload keeps the current certificate and says so.
        try Data("not a key".utf8).write(to: live.key)
        daemon.signal(SIGHUP)
        try await Harness.waitUntil(.seconds(15), "the failed reload counted") {
            let (status, body) = try Harness.http(
                "\(base)/metrics", curl: ["--cacert", second.cert.path, "-u", "prometheus:scrape-pass-1"])
            return status == 200 && Samples(body)["s3canary_config_reloads_total{result=\"failure\"}"] == 1
        }
        #expect(daemon.log.contains("server.tls.key_file"), "the failed reload names the key it could not read")
        #expect(try Harness.http("\(base)/healthz", curl: ["--cacert", second.cert.path]).status == 200)
        #expect(daemon.isRunning)
        #expect(!daemon.log.contains("scrape-pass-1") && !daemon.log.contains("token-0123456789abcdef"))
    }

    @Test func hostileRequestsGet4xxAndTheServerKeepsServing() async throws {
        let rgw = try RGWEnvironment.load()
        let (canary, _) = try await RunningCanary.start(name: "hostile-http") { port in
            """
            listen: 127.0.0.1:\(port)
            probe: {interval: 2s, timeout: 1s, key_prefix: .s3-canary-hostile/}
            backends:
              - name: rgw
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        let output = try Harness.run(
            "/usr/bin/env",
            ["python3", Harness.root.appendingPathComponent("Tests/Fixtures/raw_http.py").path, String(canary.port)]
        )
        let cases = output.stdout.split(separator: "\n").compactMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
        #expect(cases.count == 20, "\(output.stdout) \(output.stderr)")
        for entry in cases {
            let status = entry["status"] as? Int
            #expect(status.map { (400..<500).contains($0) } == true, "\(entry)")
        }
        let byName = Dictionary(uniqueKeysWithValues: cases.map { ($0["case"] as? String ?? "", $0["status"] as? Int) })
        #expect(byName["delete_metrics"] == 405)
        #expect(byName["get_reload"] == 405)
        #expect(byName["body_too_large"] == 413)
        #expect(byName["path_traversal"] == 404)
        #expect(canary.daemon.isRunning)
        #expect(try Harness.http("\(canary.base)/healthz").status == 200)
        #expect(try canary.metrics()[#"s3canary_circuit_breaker_state{backend="rgw"}"#] == 0)
        // HEAD answers like GET without a body.
        let head = try Harness.run("/usr/bin/env", ["curl", "-s", "-I", "\(canary.base)/metrics"])
        #expect(head.stdout.hasPrefix("HTTP/1.1 200"), "\(head.stdout)")
    }
}
