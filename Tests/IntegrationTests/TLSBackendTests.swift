import Foundation
import Testing

/// RGW behind a TLS front (nginx from Debian) with a certificate this test makes.
@Suite("HTTPS backends: CA bundle, TLS failures, certificate expiry")
struct TLSBackendTests {
    static func openssl(_ arguments: [String], in directory: URL) throws {
        let result = try Harness.run("/usr/bin/env", ["openssl"] + arguments)
        if result.status != 0 { throw HarnessError("openssl \(arguments.first ?? ""): \(result.stderr)") }
    }

    @Test func probingWorksWithTheCABundleFailsClearlyWithoutAndExportsTheExpiry() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("tls")
        func path(_ name: String) -> String { work.appendingPathComponent(name).path }
        try Self.openssl(
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", "/CN=s3-canary test CA",
                "-keyout", path("ca.key"), "-out", path("ca.pem"),
            ], in: work)
        try Self.openssl(
            [
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", path("server.key"), "-out",
                path("server.csr"),
            ], in: work)
        try Data("subjectAltName=DNS:localhost,IP:127.0.0.1\n".utf8).write(to: work.appendingPathComponent("san.ext"))
        try Self.openssl(
            [
                "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                "-CAcreateserial",
                "-days", "30", "-extfile", path("san.ext"), "-out", path("server.pem"),
            ], in: work)
        let endDate = try Harness.run(
            "/usr/bin/env", ["openssl", "x509", "-enddate", "-noout", "-in", path("server.pem")]
        ).stdout
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy zzz"
        let notAfterText = endDate.replacingOccurrences(of: "notAfter=", with: "").trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        .replacingOccurrences(of: "  ", with: " ")
        let notAfter = try #require(formatter.date(from: notAfterText), "cannot parse \(notAfterText)")

        let rgwPort = rgw.port
        let tlsPort = try Harness.freePort()
        try Data(
            """
            daemon off;
            user root;
            worker_processes 1;
            pid \(path("nginx.pid"));
            error_log \(path("nginx-error.log"));
            events { worker_connections 256; }
            http {
              access_log off;
              client_body_temp_path \(path("body"));
              proxy_temp_path \(path("proxy"));
              server {
                listen 127.0.0.1:\(tlsPort) ssl;
                ssl_certificate \(path("server.pem"));
                ssl_certificate_key \(path("server.key"));
                location / {
                  proxy_pass http://127.0.0.1:\(rgwPort);
                  proxy_set_header Host $http_host;
                  proxy_http_version 1.1;
                  proxy_request_buffering off;
                }
              }
            }
            """.utf8
        ).write(to: work.appendingPathComponent("nginx.conf"))
        let nginx = try Daemon(
            "/usr/sbin/nginx", ["-c", path("nginx.conf"), "-p", work.path],
            log: work.appendingPathComponent("nginx.out"))
        defer { nginx.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(10), "nginx listening") {
            guard nginx.isRunning else {
                throw HarnessError(
                    """
                    nginx exited: \(nginx.log) \
                    \((try? String(contentsOfFile: path("nginx-error.log"), encoding: .utf8)) ?? "")
                    """
                )
            }
            return try Harness.http("https://localhost:\(tlsPort)/", headers: [], timeout: 1).status != nil
                || (try Harness.run(
                    "/usr/bin/env",
                    ["curl", "-s", "-o", "/dev/null", "--cacert", path("ca.pem"), "https://localhost:\(tlsPort)/"]
                ).status == 0)
        }

        let (canary, _) = try await RunningCanary.start(name: "tls") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: tls
            probe: {interval: 1s, timeout: 900ms, key_prefix: .s3-canary-tls/}
            metrics: {time_to_first_byte: true}
            backends:
              - name: tls-trusted
                endpoint: https://localhost:\(tlsPort)
                bucket: \(RGWEnvironment.miscBucket)
                tls: {ca_bundle: \(path("ca.pem"))}
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: tls-untrusted
                endpoint: https://localhost:\(tlsPort)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(20), "both backends probed") {
            let samples = try canary.metrics()
            return (samples[#"s3canary_probes_total{backend="tls-trusted",result="success"}"#] ?? 0) >= 1
                && (samples[#"s3canary_operation_errors_total{backend="tls-untrusted",operation="put",reason="tls"}"#]
                    ?? 0) >= 1
        }
        let samples = try canary.metrics()
        #expect(samples[#"s3canary_probe_success{backend="tls-trusted"}"#] == 1)
        #expect(samples[#"s3canary_probe_success{backend="tls-untrusted"}"#] == 0)
        // Time to first byte is measured per operation, and never above the whole operation's duration.
        let ttfbCount = samples[#"s3canary_operation_ttfb_seconds_count{backend="tls-trusted",operation="get"}"#] ?? 0
        #expect(ttfbCount >= 1)
        let ttfbSum = samples[#"s3canary_operation_ttfb_seconds_sum{backend="tls-trusted",operation="get"}"#] ?? 0
        let getSum = samples[#"s3canary_operation_duration_seconds_sum{backend="tls-trusted",operation="get"}"#] ?? 0
        let getCount =
            samples[#"s3canary_operation_duration_seconds_count{backend="tls-trusted",operation="get"}"#] ?? 0
        #expect(ttfbSum / ttfbCount <= getSum / max(getCount, 1) + 0.001)
        let status = try Harness.http("\(canary.base)/status").body
        #expect(status.contains("\"reason\" : \"tls\""))
        // The expiry metric is the certificate's notAfter, for both (it reads the chain whatever its trust).
        for backend in ["tls-trusted", "tls-untrusted"] {
            let expiry = try #require(
                samples["s3canary_tls_certificate_expiry_timestamp_seconds{backend=\"\(backend)\"}"])
            #expect(
                abs(expiry - notAfter.timeIntervalSince1970) < 1,
                "\(backend): \(expiry) vs \(notAfter.timeIntervalSince1970)")
        }
        #expect(await canary.daemon.stop() == 0)
    }
}
