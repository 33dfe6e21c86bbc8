import Foundation
import TestSupport
import Testing

@Suite("Reload on SIGHUP and POST /-/reload")
struct ReloadTests {
    static func config(port: Int, backends: [String], rgw: RGWEnvironment, prefix: String) -> String {
        var text = """
            listen: 127.0.0.1:\(port)
            instance: reload
            probe: {interval: 1s, timeout: 500ms, key_prefix: \(prefix)}
            backends:

            """
        for name in backends {
            text += """
                  - name: \(name)
                    endpoint: \(rgw.endpoint)
                    bucket: \(RGWEnvironment.miscBucket)
                    credentials: \(RGWEnvironment.credentialsFromEnvironment)

                """
        }
        return text
    }

    @Test func addedBackendsStartRemovedOnesLoseTheirSeriesAndBadFilesAreRejected() async throws {
        let rgw = try RGWEnvironment.load()
        let prefix = ".s3-canary-reload-\(UUID().uuidString.prefix(6).lowercased())/"
        let (canary, _) = try await RunningCanary.start(name: "reload") { port in
            Self.config(port: port, backends: ["one", "two"], rgw: rgw, prefix: prefix)
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(20), "both backends probed") {
            let samples = try canary.metrics()
            return samples[#"s3canary_probe_success{backend="one"}"#] == 1
                && samples[#"s3canary_probe_success{backend="two"}"#] == 1
        }
        #expect(try canary.metrics()["s3canary_config_last_reload_successful"] == 1)
        let oneBefore = try canary.metrics()[#"s3canary_probes_total{backend="one",result="success"}"#] ?? 0

        // SIGHUP with "two" replaced by "three".
        try Data(Self.config(port: canary.port, backends: ["one", "three"], rgw: rgw, prefix: prefix).utf8).write(
            to: canary.configPath)
        canary.daemon.signal(SIGHUP)
        try await Harness.waitUntil(.seconds(20), "three probed, two gone") {
            let samples = try canary.metrics()
            return samples[#"s3canary_probe_success{backend="three"}"#] == 1
                && !samples.values.keys.contains { $0.contains(#"backend="two""#) }
        }
        let oneCycles = try canary.metrics()[#"s3canary_probes_total{backend="one",result="success"}"#] ?? 0
        #expect(oneCycles >= oneBefore && oneBefore >= 1, "an unchanged backend keeps its series and counters")

        // A broken file: the reload fails, the running configuration stays.
        try Data("backends: [{name: broken}]\n".utf8).write(to: canary.configPath)
        let (status, body) = try Harness.http("\(canary.base)/-/reload", method: "POST")
        #expect(status == 400)
        #expect(body.contains("backends[0].endpoint"))
        let afterBad = try canary.metrics()
        #expect(afterBad["s3canary_config_last_reload_successful"] == 0)
        #expect(afterBad[#"s3canary_probe_success{backend="three"}"#] == 1)
        try await Task.sleep(for: .seconds(2))
        #expect((try canary.metrics()[#"s3canary_probes_total{backend="one",result="success"}"#] ?? 0) > oneCycles)

        // A good file again via POST.
        try Data(Self.config(port: canary.port, backends: ["one"], rgw: rgw, prefix: prefix).utf8).write(
            to: canary.configPath)
        let (okStatus, okBody) = try Harness.http("\(canary.base)/-/reload", method: "POST")
        #expect(okStatus == 200, "\(okBody)")
        #expect(try canary.metrics()["s3canary_config_last_reload_successful"] == 1)
        #expect(await canary.daemon.stop() == 0)
        #expect(try listKeysIndependently(rgw, bucket: RGWEnvironment.miscBucket, prefix: prefix).isEmpty)
    }

    @Test func httpEndpointAnswersBadRequestsWith4xx() async throws {
        let rgw = try RGWEnvironment.load()
        let (canary, _) = try await RunningCanary.start(name: "http") { port in
            Self.config(port: port, backends: ["one"], rgw: rgw, prefix: ".s3-canary-http/")
        }
        defer { canary.daemon.signal(SIGKILL) }
        #expect(try Harness.http("\(canary.base)/probe").status == 400)
        #expect(try Harness.http("\(canary.base)/probe?backend=nope").status == 404)
        #expect(try Harness.http("\(canary.base)/no-such-route").status == 404)
        let debug = try Harness.http("\(canary.base)/probe?backend=one&debug=true")
        #expect(debug.status == 200)
        #expect(debug.body.contains("put: ok") && debug.body.contains("s3canary_probe_success 1"))
        let probe = try Harness.http("\(canary.base)/probe?backend=one")
        #expect(probe.status == 200 && probe.body.contains("s3canary_probe_success 1"))
        let openMetrics = try Harness.http(
            "\(canary.base)/metrics", headers: ["Accept: application/openmetrics-text; version=1.0.0"])
        #expect(openMetrics.body.hasSuffix("# EOF\n") || openMetrics.body.hasSuffix("# EOF"))
        #expect(try Harness.http("\(canary.base)/").body.contains(#"data-backend="one""#))
        #expect(await canary.daemon.stop() == 0)
    }
}
