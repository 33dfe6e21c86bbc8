import Foundation
import TestSupport
import Testing

/// The status page as a person sees it: rendered by headless Chromium from a real run.
@Suite("Status page in headless Chromium")
struct StatusPageTests {
    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test func showsEveryBackendAndItsStateAndEscapesWhatBackendsSay() async throws {
        let rgw = try RGWEnvironment.load()
        let browser = try #require(Self.chromium, "chromium is not installed: run the tests through scripts/test.sh")
        let work = try Harness.temporaryDirectory("status-page")
        let fault = try await FaultS3.start(
            status: 500, code: "InternalError", message: "<script>alert(1)</script><img src=x onerror=alert(2)>",
            directory: work)
        defer { fault.daemon.signal(SIGKILL) }
        let (canary, _) = try await RunningCanary.start(name: "status-page") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: page-test
            probe: {interval: 1s, timeout: 500ms, key_prefix: .s3-canary-page/}
            breaker: {failure_threshold: 2, open_timeout: 30s}
            backends:
              - name: rgw-healthy
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: broken-store
                endpoint: http://127.0.0.1:\(fault.port)
                bucket: any
                credentials: {access_key_id: a, secret_access_key: b}

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(20), "broken-store open, healthy probed a few times") {
            let samples = try canary.metrics()
            return samples[#"s3canary_circuit_breaker_state{backend="broken-store"}"#] == 1
                && (samples[#"s3canary_probes_total{backend="rgw-healthy",result="success"}"#] ?? 0) >= 3
        }

        let dom = try Harness.run(
            browser, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "\(canary.base)/"])
        #expect(dom.status == 0, "\(dom.stderr.suffix(500))")
        let html = dom.stdout
        #expect(html.contains(#"data-backend="rgw-healthy" data-state="closed""#), "\(html.prefix(2000))")
        #expect(html.contains(#"data-backend="broken-store" data-state="open""#))
        #expect(html.contains("<li class=\"mark fail\" data-status=\"failure\""))
        #expect(html.contains("closed → open"))
        // The server's message is shown as text, never run: no script or img element made it into the DOM.
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains("<script>") && !html.contains("<img"))

        let screenshot = Harness.outputDirectory.appendingPathComponent("status-page.png")
        try? FileManager.default.removeItem(at: screenshot)
        let shot = try Harness.run(
            browser,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=430,1100",
                "--screenshot=\(screenshot.path)", "\(canary.base)/",
            ]
        )
        #expect(shot.status == 0)
        let size = (try? FileManager.default.attributesOfItem(atPath: screenshot.path)[.size] as? Int) ?? 0
        #expect(size > 10_000, "screenshot of \(size) bytes")
        #expect(await canary.daemon.stop() == 0)
    }
}
