import Foundation
import TestSupport
import Testing

/// Every secret set to its own marker; a run with failures, breaker transitions, reloads (good and bad) and
/// webhooks; then no marker may appear in logs (text and JSON), `/metrics`, `/status`, `/`, `/probe?debug=true`
/// or any webhook payload.
@Suite("Secrets never leak", .serialized)
struct SecretsTests {
    @Test func noMarkerAppearsAnywhereAfterAFullRun() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("secrets")
        let receiver = try WebhookReceiver(directory: work)
        try await receiver.start()
        defer { receiver.stop() }
        let proxy = try FaultProxy(target: rgw.port, directory: work)
        try await proxy.up()

        let markers = [
            "ak": "AKIAMARKERACCESS7Q2Z", "sk": "MARKERsecretKEY9f3b1c", "st": "MARKERsessionTOKEN77a",
            "url": "MARKERurlTOKEN51c0", "header": "MARKERheaderVALUE02d", "bearer": "MARKERbearerTOKEN6e4a1",
            "password": "MARKERpasswordX81", "envurl": "MARKERenvURL33",
        ]
        let rgwSecrets = [rgw.accessKey, rgw.secretKey]
        let secretFile = work.appendingPathComponent("webhook-secret")
        try Data(receiver.secret.utf8).write(to: secretFile)
        let skFile = work.appendingPathComponent("sk")
        try Data((markers["sk"] ?? "").utf8).write(to: skFile)
        let htpasswd = try Harness.run("/usr/bin/env", ["htpasswd", "-nbBC", "5", "ops", markers["password"] ?? ""])
        let hash = try #require(htpasswd.stdout.split(separator: ":", maxSplits: 1).last).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let bearer = "Authorization: Bearer \(markers["bearer"] ?? "")"
        func config(_ port: Int, interval: String) -> String {
            """
            listen: 127.0.0.1:\(port)
            instance: secrets
            server:
              bearer_token: \(markers["bearer"] ?? "")
              basic_auth_users: {ops: "\(hash)"}
            probe: {interval: \(interval), timeout: 400ms, key_prefix: .s3-canary-secrets/}
            breaker: {failure_threshold: 2, open_timeout: 2s}
            backends:
              - name: rgw-good
                endpoint: http://127.0.0.1:\(proxy.port)
                bucket: \(RGWEnvironment.pathBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: rgw-marker
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.pathBucket)
                credentials:
                  access_key_id: \(markers["ak"] ?? "")
                  secret_access_key_file: \(skFile.path)
                  session_token: \(markers["st"] ?? "")
            webhooks:
              - name: ce
                url: "\(receiver.base)/ok/ce?token=\(markers["url"] ?? "")"
                secret_file: \(secretFile.path)
                headers: {X-Api-Key: \(markers["header"] ?? "")}
                events: ["*"]
              - name: slack
                url_env: SECRETS_TEST_SLACK_URL
                format: slack
                events: ["*"]

            """
        }
        let environment = ProcessInfo.processInfo.environment.merging(
            ["SECRETS_TEST_SLACK_URL": "\(receiver.base)/ok/slack/\(markers["envurl"] ?? "")"]
        ) { $1 }
        // Two instances on the same backends: one logs text, the other JSON, both at debug.
        var daemons: [(Daemon, Int, URL)] = []
        for format in ["text", "json"] {
            let port = try Harness.freePort()
            let path = work.appendingPathComponent("s3-canary-\(format).yaml")
            try Data(config(port, interval: "1s").utf8).write(to: path)
            let daemon = try Daemon(
                Harness.binary, ["run", "--config", path.path, "--log-level", "trace", "--log-format", format],
                log: work.appendingPathComponent("s3-canary-\(format).log"), environment: environment
            )
            daemons.append((daemon, port, path))
        }
        defer { for (daemon, _, _) in daemons { daemon.signal(SIGKILL) } }
        var pages: [String] = []
        for (daemon, port, _) in daemons {
            let base = "http://127.0.0.1:\(port)"
            try await Harness.waitUntil(.seconds(30), "rgw-marker open") {
                guard daemon.isRunning else { throw HarnessError("s3-canary exited: \(daemon.log)") }
                let metrics = try Harness.http("\(base)/metrics", headers: [bearer])
                return metrics.body.contains(#"s3canary_circuit_breaker_state{backend="rgw-marker"} 1"#)
            }
        }
        // An outage of the good backend, a good reload (SIGHUP and POST) and a failed one, then recovery.
        await proxy.down()
        for (daemon, port, path) in daemons {
            let base = "http://127.0.0.1:\(port)"
            try await Harness.waitUntil(.seconds(20), "rgw-good open") {
                try Harness.http("\(base)/metrics", headers: [bearer]).body.contains(
                    #"s3canary_circuit_breaker_state{backend="rgw-good"} 1"#)
            }
            try Data(config(port, interval: "1500ms").utf8).write(to: path)
            daemon.signal(SIGHUP)
            try await Task.sleep(for: .milliseconds(500))
            #expect(try Harness.http("\(base)/-/reload", method: "POST", headers: [bearer]).status == 200)
            try Data((config(port, interval: "1s") + "bogus_key: \(markers["sk"] ?? "")\n").utf8).write(to: path)
            #expect(try Harness.http("\(base)/-/reload", method: "POST", headers: [bearer]).status == 400)
            try Data(config(port, interval: "1s").utf8).write(to: path)
        }
        try await proxy.up()
        for (_, port, _) in daemons {
            let base = "http://127.0.0.1:\(port)"
            try await Harness.waitUntil(.seconds(30), "rgw-good closed") {
                try Harness.http("\(base)/metrics", headers: [bearer]).body.contains(
                    #"s3canary_circuit_breaker_state{backend="rgw-good"} 0"#)
            }
            for path in [
                "/metrics", "/status", "/", "/probe?backend=rgw-marker&debug=true",
                "/probe?backend=rgw-good&debug=true",
                "/probe?backend=rgw-marker",
            ] {
                let page = try Harness.http("\(base)\(path)", headers: [bearer])
                #expect(page.status == 200, "\(path)")
                pages.append(page.body)
            }
            // OpenMetrics and gzip variants say the same.
            pages.append(
                try Harness.http(
                    "\(base)/metrics", headers: [bearer, "Accept: application/openmetrics-text; version=1.0.0"]
                ).body)
        }
        try await Harness.waitUntil(.seconds(15), "the closed events") {
            receiver.deliveries.filter { eventKind($0) == "backend.circuit.closed" }.count >= 4
        }
        for (daemon, _, _) in daemons { #expect(await daemon.stop() == 0) }
        await proxy.down()

        let logs = daemons.map { $0.0.log }
        #expect(logs[1].split(separator: "\n").allSatisfy { $0.hasPrefix("{") }, "the JSON log is JSON lines")
        let payloads = receiver.deliveries.map(\.body)
        let kinds = Set(receiver.deliveries.map(eventKind))
        #expect(
            kinds.isSuperset(of: ["backend.circuit.opened", "backend.circuit.closed", "service.stopping"]), "\(kinds)")
        #expect(
            payloads.contains { $0.contains("config.reload_failed") || $0.contains("reload failed") },
            "a failed reload was announced")
        #expect(logs[0].contains("rgw-marker") && logs[0].contains("auth"), "the marker backend's failures were logged")
        let places: [(String, String)] =
            [("text log", logs[0]), ("JSON log", logs[1])]
            + pages.enumerated().map { ("page \($0.offset)", $0.element) }
            + payloads.enumerated().map { ("webhook payload \($0.offset)", $0.element) }
        for (name, marker) in markers {
            for (place, text) in places {
                #expect(!text.contains(marker), "marker \(name) appears in \(place)")
            }
        }
        for secret in rgwSecrets {
            for (place, text) in places { #expect(!text.contains(secret), "an RGW key appears in \(place)") }
        }
    }
}
