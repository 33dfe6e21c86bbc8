import Foundation
import TestSupport
import Testing

/// Every example in `Config/` passes the tool that owns it.
@Suite("Example configurations")
struct ExampleConfigTests {
    static let config = Harness.root.appendingPathComponent("Config")

    static func environment(_ extra: [String: String]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(extra) { $1 }
    }

    /// A manifest's embedded configuration written to a file, its mounted key files provided beside it.
    static func embeddedConfiguration(_ text: String, name: String) throws -> URL {
        let secrets = try Harness.temporaryDirectory(name)
        for key in ["access-key-id", "secret-access-key"] {
            try Data("x\n".utf8).write(to: secrets.appendingPathComponent(key))
        }
        let file = secrets.appendingPathComponent("s3-canary.yaml")
        try Data(text.replacingOccurrences(of: "/run/secrets/s3-canary", with: secrets.path).utf8).write(to: file)
        return file
    }

    @Test func theAnnotatedExamplePassesCheckConfig() async throws {
        let secrets = try Harness.temporaryDirectory("example-secrets")
        for name in [
            "ceph-access-key", "ceph-secret-key", "pagerduty-routing-key", "slack-webhook-url", "webhook-secret",
        ] {
            let value = name == "slack-webhook-url" ? "https://hooks.slack.com/services/T0/B0/XXXX" : "value-of-\(name)"
            try Data("\(value)\n".utf8).write(to: secrets.appendingPathComponent(name))
        }
        let example = Self.config.appendingPathComponent("s3-canary.example.yaml").path
        let ok = try await Harness.runDetached(
            Harness.binary, ["check-config", "--config", example],
            environment: Self.environment(["SECRETS_DIR": secrets.path]))
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("valid: 2 backends"))
        // Without its secret files it fails, naming each missing one.
        let missing = try await Harness.runDetached(
            Harness.binary, ["check-config", "--config", example],
            environment: Self.environment(["SECRETS_DIR": "/nonexistent"]))
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("backends[0].credentials.secret_access_key_file"))
        #expect(missing.stderr.contains("webhooks[0].routing_key_file"))
        #expect(!missing.stderr.contains("hooks.slack.com"))
    }

    @Test func theKubernetesConfigMapCarriesAValidConfiguration() async throws {
        let manifest = try String(
            contentsOf: Self.config.appendingPathComponent("kubernetes/s3-canary.yaml"), encoding: .utf8)
        let script = """
            import json, sys, yaml
            docs = list(yaml.safe_load_all(open(sys.argv[1])))
            kinds = [d["kind"] for d in docs]
            cm = next(d for d in docs if d["kind"] == "ConfigMap")
            deploy = next(d for d in docs if d["kind"] == "Deployment")
            sidecar = next(c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == "s3-canary")
            print(json.dumps({"kinds": kinds, "config": cm["data"]["s3-canary.yaml"],
                              "liveness": sidecar["livenessProbe"]["httpGet"]["path"], \
            "readiness": sidecar["readinessProbe"]["httpGet"]["path"],
                              "memory": sidecar["resources"]["limits"]["memory"], \
            "mounts": [m["mountPath"] for m in sidecar["volumeMounts"]]}))
            """
        let parsed = try await Harness.runDetached(
            "/usr/bin/env",
            ["python3", "-c", script, Self.config.appendingPathComponent("kubernetes/s3-canary.yaml").path])
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        #expect(facts["kinds"] as? [String] == ["ConfigMap", "Deployment", "Service"])
        #expect(facts["liveness"] as? String == "/healthz" && facts["readiness"] as? String == "/readyz")
        #expect((facts["mounts"] as? [String])?.contains("/run/secrets/s3-canary") == true)
        #expect(manifest.contains("terminationGracePeriodSeconds"))
        // The embedded configuration itself, with its secret files provided in a temporary directory.
        let file = try Self.embeddedConfiguration(facts["config"] as? String ?? "", name: "k8s-secrets")
        let check = try await Harness.runDetached(
            Harness.binary, ["check-config", "--config", file.path],
            environment: Self.environment(["POD_NAME": "photo-service-7d9f-abcde"]))
        #expect(check.status == 0, "\(check.stderr)")

        let monitor = try String(
            contentsOf: Self.config.appendingPathComponent("kubernetes/servicemonitor.yaml"), encoding: .utf8)
        #expect(monitor.contains("kind: ServiceMonitor") && monitor.contains("port: canary-metrics"))
    }

    /// The StatefulSet fleet: its embedded configuration is valid for a pod named like a StatefulSet's, and its
    /// replica count matches the shard count.
    @Test func theKubernetesFleetShardsByPodOrdinal() async throws {
        let script = """
            import json, sys, yaml
            docs = list(yaml.safe_load_all(open(sys.argv[1])))
            cm = next(d for d in docs if d["kind"] == "ConfigMap")
            sts = next(d for d in docs if d["kind"] == "StatefulSet")
            config = yaml.safe_load(cm["data"]["s3-canary.yaml"])
            print(json.dumps({"kinds": [d["kind"] for d in docs], "config": cm["data"]["s3-canary.yaml"], \
            "replicas": sts["spec"]["replicas"], "shards": config["sharding"]["shards"]}))
            """
        let parsed = try await Harness.runDetached(
            "/usr/bin/env",
            ["python3", "-c", script, Self.config.appendingPathComponent("kubernetes/s3-canary-fleet.yaml").path])
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        #expect(facts["kinds"] as? [String] == ["ConfigMap", "StatefulSet", "Service", "ServiceMonitor"])
        #expect(facts["replicas"] as? Int == facts["shards"] as? Int)
        let file = try Self.embeddedConfiguration(facts["config"] as? String ?? "", name: "k8s-fleet-secrets")
        // In its own UTS namespace the binary runs on a host named like the StatefulSet's third pod.
        let check = try await Harness.runDetached(
            "/usr/bin/unshare",
            [
                "--uts", "sh", "-c", #"hostname s3-canary-2 && exec "$0" check-config --config "$1""#, Harness.binary,
                file.path,
            ],
            environment: Self.environment(["POD_NAME": "s3-canary-2"]))
        #expect(check.status == 0, "\(check.stderr)")
        let elsewhere = try await Harness.runDetached(
            "/usr/bin/unshare",
            [
                "--uts", "sh", "-c", #"hostname canary-host && exec "$0" check-config --config "$1""#, Harness.binary,
                file.path,
            ],
            environment: Self.environment(["POD_NAME": "canary-host"]))
        #expect(elsewhere.status == 2)
        #expect(elsewhere.stderr.contains("sharding.shard_from_hostname"), "\(elsewhere.stderr)")
    }

    @Test func prometheusAndAlertmanagerAcceptTheirExamples() async throws {
        let prometheus = try await Harness.runDetached(
            "/usr/bin/env",
            ["promtool", "check", "config", Self.config.appendingPathComponent("prometheus/prometheus.yml").path])
        #expect(prometheus.status == 0, "\(prometheus.stdout)\(prometheus.stderr)")
        #expect(prometheus.stdout.contains("SUCCESS: 25 rules found"), "alerts.yaml: \(prometheus.stdout)")
        #expect(prometheus.stdout.contains("SUCCESS: 46 rules found"), "slo.yaml: \(prometheus.stdout)")
        let amtool = try await Harness.runDetached(
            "/usr/bin/env",
            ["amtool", "check-config", Self.config.appendingPathComponent("alertmanager/alertmanager.yml").path])
        #expect(amtool.status == 0, "\(amtool.stdout)\(amtool.stderr)")
        #expect(amtool.stdout.contains("SUCCESS"))
    }

    @Test func theSystemdUnitRunsTheServiceAndReloadsOnHangup() async throws {
        let unit = try String(
            contentsOf: Self.config.appendingPathComponent("systemd/s3-canary.service"), encoding: .utf8)
        var sections: [String: [String: String]] = [:]
        var current = ""
        for line in unit.split(separator: "\n").map(String.init) where !line.hasPrefix("#") && !line.isEmpty {
            if line.hasPrefix("[") { current = line; continue }
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            #expect(parts.count == 2, "malformed line \(line)")
            sections[current, default: [:]][parts[0]] = parts.count == 2 ? parts[1] : ""
        }
        #expect(Set(sections.keys) == ["[Unit]", "[Service]", "[Install]"])
        #expect(sections["[Service]"]?["ExecStart"]?.hasSuffix("s3-canary run --log-format json") == true)
        #expect(sections["[Service]"]?["ExecReload"] == "/bin/kill -HUP $MAINPID")
        #expect(sections["[Service]"]?["RestartPreventExitStatus"] == "2")
        #expect(sections["[Install]"]?["WantedBy"] == "multi-user.target")
    }
}
