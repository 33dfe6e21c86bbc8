import Foundation
import TestSupport
import Testing

/// RGW behind a TLS front (nginx from Debian) with a certificate this test makes.
@Suite("HTTPS backends: CA bundle, TLS failures, certificate expiry")
struct TLSBackendTests {
    @Test func probingWorksWithTheCABundleFailsClearlyWithoutAndExportsTheExpiry() async throws {
        let rgw = try RGWEnvironment.load()
        let front = try await TLSFront.start("tls", upstreams: [rgw.port])
        defer { front.stop() }
        let tlsPort = front.ports[0]
        func path(_ name: String) -> String { front.work.appendingPathComponent(name).path }
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
