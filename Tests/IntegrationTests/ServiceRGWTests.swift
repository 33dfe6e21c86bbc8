import Foundation
import ObjectStorage
import SidecarConfig
import SidecarServer
import TestSupport
import Testing

/// `s3-canary run` as a subprocess against the real RGW, scraped by a real Prometheus.
@Suite("s3-canary run against RGW and Prometheus", .serialized)
struct ServiceRGWTests {
    static func config(
        port: Int, prefix: String, instance: String, pathEndpoint: String, rgw: RGWEnvironment, secretFile: URL
    ) -> String {
        """
        listen: 127.0.0.1:\(port)
        instance: \(instance)
        probe: {interval: 1s, timeout: 500ms, key_prefix: \(prefix)}
        breaker: {failure_threshold: 2, open_timeout: 2s}
        metrics: {time_to_first_byte: true, request_phases: true}
        backends:
          - name: rgw-path
            endpoint: \(pathEndpoint)
            bucket: \(RGWEnvironment.pathBucket)
            path_style: true
            credentials: {access_key_id: "${S3CANARY_TEST_RGW_ACCESS_KEY}", secret_access_key_file: \(secretFile.path)}
          - name: rgw-vhost
            endpoint: http://localhost:\(rgw.port)
            bucket: \(RGWEnvironment.virtualHostBucket)
            path_style: false
            credentials: \(RGWEnvironment.credentialsFromEnvironment)

        """
    }

    @Test func probesScrapesSurvivesAnOutageAndCleansUpOnSIGTERM() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("outage")
        let secretFile = work.appendingPathComponent("rgw-secret")
        try Data("\(rgw.secretKey)\n".utf8).write(to: secretFile)
        let proxy = try FaultProxy(target: rgw.port, directory: work)
        try await proxy.up()
        let prefix = ".s3-canary-it-\(UUID().uuidString.prefix(6).lowercased())/"
        let (canary, startup) = try await RunningCanary.start(name: "outage") { port in
            Self.config(
                port: port, prefix: prefix, instance: "it", pathEndpoint: "http://127.0.0.1:\(proxy.port)", rgw: rgw,
                secretFile: secretFile)
        }
        defer { canary.daemon.signal(SIGKILL) }
        var figures = [
            "start-up to a listening /healthz: \(String(format: "%.0f", startup.seconds * 1000)) ms (debug build)"
        ]

        try await Harness.waitUntil(.seconds(20), "/readyz 200") {
            try Harness.http("\(canary.base)/readyz").status == 200
        }
        let firstCycle = ContinuousClock.now

        // promtool must find nothing to say about our exposition.
        let exposition = try Harness.http("\(canary.base)/metrics").body
        let lint = try Harness.run("/usr/bin/env", ["promtool", "check", "metrics"], stdin: Data(exposition.utf8))
        #expect(lint.status == 0, "promtool: \(lint.stderr)")
        #expect(lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool printed: \(lint.stdout)\(lint.stderr)")
        // The totals exist for every backend × operation before any failure (rates and alerts work from the start);
        // an error reason is a series from its first occurrence (the series budget).
        let samples0 = Samples(exposition)
        #expect(samples0[#"s3canary_operations_total{backend="rgw-path",operation="get_range",result="error"}"#] == 0)
        #expect(
            samples0[#"s3canary_operation_errors_total{backend="rgw-path",operation="get_range",reason="timeout"}"#]
                == nil)

        let prometheus = try await PrometheusServer.start(scraping: "127.0.0.1:\(canary.port)", directory: work)
        defer { prometheus.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(30), "Prometheus sees both backends succeed") {
            let series = try prometheus.query("s3canary_probe_success")
            return series.count == 2 && series.allSatisfy { $0.value == 1 }
        }

        // Footprint while healthy: RSS, and CPU per 1,000 cycles over a 10 s window.
        let before = try canary.metrics()
        try await Task.sleep(for: .seconds(10))
        let after = try canary.metrics()
        func cycles(_ samples: Samples) -> Double {
            samples.values.filter { $0.key.hasPrefix("s3canary_probes_total{") }.values.reduce(0, +)
        }
        let cpu = (after["process_cpu_seconds_total"] ?? 0) - (before["process_cpu_seconds_total"] ?? 0)
        let cycleCount = cycles(after) - cycles(before)
        #expect(cycleCount >= 10)
        figures.append(
            """
            idle RSS with two backends: \
            \(String(format: "%.1f", (after["process_resident_memory_bytes"] ?? 0) / 1_048_576)) MiB (debug build)
            """
        )
        figures.append(
            """
            CPU per 1,000 cycles against RGW: \(String(format: "%.2f", cpu / max(cycleCount, 1) * 1000)) s \
            (\(Int(cycleCount)) cycles of 5 operations, debug build)
            """
        )

        // Outage: the proxy in front of rgw-path goes away; its breaker must open within the threshold.
        let failuresBefore = after[#"s3canary_probes_total{backend="rgw-path",result="failure"}"#] ?? 0
        let vhostBefore = after[#"s3canary_probes_total{backend="rgw-vhost",result="success"}"#] ?? 0
        await proxy.down()
        try await Harness.waitUntil(.seconds(20), "breaker of rgw-path open") {
            try canary.metrics()[#"s3canary_circuit_breaker_state{backend="rgw-path"}"#] == 1
        }
        let opened = try canary.metrics()
        let failingCycles =
            (opened[#"s3canary_probes_total{backend="rgw-path",result="failure"}"#] ?? 0) - failuresBefore
        #expect(failingCycles <= 2, "the breaker needed \(failingCycles) failing cycles; the threshold is 2")
        #expect(opened[#"s3canary_circuit_breaker_transitions_total{backend="rgw-path",from="closed",to="open"}"#] == 1)
        #expect(
            (opened[#"s3canary_operation_errors_total{backend="rgw-path",operation="put",reason="connect"}"#] ?? 0)
                >= 1)
        try await Harness.waitUntil(.seconds(15), "Prometheus sees the breaker open") {
            try prometheus.query(#"max_over_time(s3canary_circuit_breaker_state{backend="rgw-path"}[5m])"#).first?.value
                == 1
        }
        try await Task.sleep(for: .seconds(3))
        let during = try canary.metrics()
        // The healthy backend kept its schedule and stayed green.
        #expect((during[#"s3canary_probes_total{backend="rgw-vhost",result="success"}"#] ?? 0) - vhostBefore >= 4)
        #expect(during[#"s3canary_probe_success{backend="rgw-vhost"}"#] == 1)
        #expect(
            (during[#"s3canary_probes_total{backend="rgw-path",result="skipped"}"#] ?? 0) >= 1,
            "an open breaker skips cycles")
        let status = try Harness.http("\(canary.base)/status").body
        #expect(status.contains("\"state\" : \"open\""))

        // Recovery: back through half-open to closed.
        try await proxy.up()
        try await Harness.waitUntil(.seconds(30), "breaker of rgw-path closed again") {
            try canary.metrics()[#"s3canary_circuit_breaker_state{backend="rgw-path"}"#] == 0
        }
        let recovered = try canary.metrics()
        #expect(
            (recovered[#"s3canary_circuit_breaker_transitions_total{backend="rgw-path",from="open",to="half_open"}"#]
                ?? 0) >= 1)
        #expect(
            recovered[#"s3canary_circuit_breaker_transitions_total{backend="rgw-path",from="half_open",to="closed"}"#]
                == 1)
        try await Harness.waitUntil(.seconds(15), "Prometheus sees the breaker closed and probes succeed") {
            let state = try prometheus.query(#"s3canary_circuit_breaker_state{backend="rgw-path"}"#).first?.value
            let closes = try prometheus.query(
                #"s3canary_circuit_breaker_transitions_total{backend="rgw-path",from="half_open",to="closed"}"#
            ).first?.value
            return state == 0 && closes == 1
        }
        // Every dashboard expression parses and, after a minute of scraping this run, returns data for the
        // overview, latency, error and breaker panels.
        try await Task.sleep(until: firstCycle + .seconds(60))
        let empty = try Dashboard.emptyPanels(in: ["Overview", "Latency", "Errors", "Circuit breaker"], of: prometheus)
        #expect(empty.isEmpty, "dashboard panels without data (classic histograms): \(empty)")

        // SIGTERM: a clean exit, and nothing left under the canary prefix (checked with boto3).
        let exit = await canary.daemon.stop(SIGTERM, timeout: .seconds(30))
        #expect(exit == 0, "s3-canary exited with \(exit): \(canary.daemon.log.suffix(2000))")
        for bucket in [RGWEnvironment.pathBucket, RGWEnvironment.virtualHostBucket] {
            let left = try listKeysIndependently(rgw, bucket: bucket, prefix: prefix)
            #expect(left.isEmpty, "left in \(bucket): \(left)")
        }
        #expect(canary.daemon.log.contains("circuit breaker closed -> open"))
        let report = "# s3-canary service figures (same run)\n\n" + figures.map { "- \($0)\n" }.joined()
        try Data(report.utf8).write(to: Harness.outputDirectory.appendingPathComponent("service-figures.md"))
        print(report)
    }
}
