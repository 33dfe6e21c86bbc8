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

    /// An overlay of `Config/kubernetes/overlays/`, rendered as `kubectl apply -k` renders it.
    static func kustomize(_ overlay: String) async throws -> Data {
        let rendered = try await Harness.runDetached(
            "/usr/bin/env",
            ["kubectl", "kustomize", Self.config.appendingPathComponent("kubernetes/overlays/\(overlay)").path])
        #expect(rendered.status == 0, "kubectl kustomize \(overlay): \(rendered.stderr)")
        return Data(rendered.stdout.utf8)
    }

    /// The sidecar overlay: the base's patch puts the s3-canary container beside the app's, with its configuration
    /// from a ConfigMap, keys from a Secret, probes, a hardened securityContext and the state emptyDir.
    @Test func theKubernetesSidecarOverlayCarriesAValidConfiguration() async throws {
        let script = """
            import json, sys, yaml
            docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
            kinds = [d["kind"] for d in docs]
            cm = next(d for d in docs if d["kind"] == "ConfigMap")
            deploy = next(d for d in docs if d["kind"] == "Deployment")
            pod = deploy["spec"]["template"]["spec"]
            sidecar = next(c for c in pod["containers"] if c["name"] == "s3-canary")
            volumes = {v["name"]: v for v in pod["volumes"]}
            mounts = {m["mountPath"]: sorted(volumes[m["name"]]) for m in sidecar["volumeMounts"]}
            monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
            print(json.dumps({
                "kinds": kinds, "config": cm["data"]["s3-canary.yaml"],
                "containers": sorted(c["name"] for c in pod["containers"]),
                "liveness": sidecar["livenessProbe"]["httpGet"]["path"],
                "readiness": sidecar["readinessProbe"]["httpGet"]["path"],
                "memory": sidecar["resources"]["limits"]["memory"], "mounts": mounts,
                "security": sidecar["securityContext"], "grace": pod.get("terminationGracePeriodSeconds", 0),
                "monitorPort": monitor["spec"]["endpoints"][0]["port"]}))
            """
        let rendered = try await Self.kustomize("sidecar")
        let parsed = try await Harness.runDetached("/usr/bin/env", ["python3", "-c", script], stdin: rendered)
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        #expect(facts["kinds"] as? [String] == ["ConfigMap", "Service", "Deployment", "ServiceMonitor"])
        #expect(facts["containers"] as? [String] == ["app", "s3-canary"])
        #expect(facts["liveness"] as? String == "/healthz" && facts["readiness"] as? String == "/readyz")
        let mounts = try #require(facts["mounts"] as? [String: [String]])
        #expect(mounts["/run/secrets/s3-canary"]?.contains("secret") == true)
        #expect(mounts["/etc/s3-canary"]?.contains("configMap") == true)
        #expect(mounts["/var/lib/s3-canary"]?.contains("emptyDir") == true)
        let security = try #require(facts["security"] as? [String: Any])
        #expect(security["runAsNonRoot"] as? Bool == true && security["readOnlyRootFilesystem"] as? Bool == true)
        #expect(security["runAsUser"] as? Int == 65532 && security["allowPrivilegeEscalation"] as? Bool == false)
        #expect((facts["grace"] as? Int ?? 0) >= 45)
        #expect(facts["monitorPort"] as? String == "canary-metrics")
        // The embedded configuration itself, with its secret files provided in a temporary directory.
        let file = try Self.embeddedConfiguration(facts["config"] as? String ?? "", name: "k8s-secrets")
        let check = try await Harness.runDetached(
            Harness.binary, ["check-config", "--config", file.path],
            environment: Self.environment(["POD_NAME": "photo-service-7d9f-abcde"]))
        #expect(check.status == 0, "\(check.stderr)")
    }

    /// The fleet overlay: a StatefulSet whose replica count matches the shard count, its embedded configuration
    /// valid for a pod named like the StatefulSet's, the PrometheusRule carrying exactly the groups of
    /// Config/prometheus/, and the dashboard ConfigMap exactly Dashboards/s3-canary.json with Grafana's label.
    @Test func theKubernetesFleetOverlayShardsByPodOrdinal() async throws {
        let script = """
            import json, sys, yaml
            docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
            cm = next(d for d in docs if d["kind"] == "ConfigMap" and "s3-canary.yaml" in d["data"])
            board = next(d for d in docs if d["kind"] == "ConfigMap" and "s3-canary.json" in d["data"])
            sts = next(d for d in docs if d["kind"] == "StatefulSet")
            rule = next(d for d in docs if d["kind"] == "PrometheusRule")
            config = yaml.safe_load(cm["data"]["s3-canary.yaml"])
            sources = [yaml.safe_load(open(path))["groups"] for path in sys.argv[1:3]]
            print(json.dumps({
                "kinds": sorted(d["kind"] for d in docs), "config": cm["data"]["s3-canary.yaml"],
                "replicas": sts["spec"]["replicas"], "shards": config["sharding"]["shards"],
                "rulesMatch": rule["spec"]["groups"] == sources[0] + sources[1],
                "dashboardMatch": json.loads(board["data"]["s3-canary.json"]) == json.load(open(sys.argv[3])),
                "grafanaLabel": board["metadata"]["labels"].get("grafana_dashboard")}))
            """
        let rendered = try await Self.kustomize("fleet")
        let parsed = try await Harness.runDetached(
            "/usr/bin/env",
            [
                "python3", "-c", script, Self.config.appendingPathComponent("prometheus/alerts.yaml").path,
                Self.config.appendingPathComponent("prometheus/slo.yaml").path,
                Harness.root.appendingPathComponent("Dashboards/s3-canary.json").path,
            ], stdin: rendered)
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        #expect(
            facts["kinds"] as? [String]
                == ["ConfigMap", "ConfigMap", "PrometheusRule", "Service", "ServiceMonitor", "StatefulSet"])
        #expect(facts["replicas"] as? Int == facts["shards"] as? Int)
        #expect(facts["rulesMatch"] as? Bool == true, "the PrometheusRule differs from Config/prometheus/")
        #expect(facts["dashboardMatch"] as? Bool == true && facts["grafanaLabel"] as? String == "1")
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
        #expect(prometheus.stdout.contains("SUCCESS: 27 rules found"), "alerts.yaml: \(prometheus.stdout)")
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
            // `CapabilityBoundingSet=` (empty: no capability) is a line with an empty value.
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            #expect(parts.count == 2, "malformed line \(line)")
            sections[current, default: [:]][parts[0]] = parts.count == 2 ? parts[1] : ""
        }
        #expect(Set(sections.keys) == ["[Unit]", "[Service]", "[Install]"])
        #expect(sections["[Service]"]?["ExecStart"]?.hasSuffix("s3-canary run --log-format json") == true)
        #expect(sections["[Service]"]?["ExecReload"] == "/bin/kill -HUP $MAINPID")
        #expect(sections["[Service]"]?["RestartPreventExitStatus"] == "2")
        #expect(sections["[Install]"]?["WantedBy"] == "multi-user.target")
        #expect(sections["[Service]"]?["User"] == "s3-canary" && sections["[Service]"]?["NoNewPrivileges"] == "true")
        #expect(sections["[Service]"]?["StateDirectory"] == "s3-canary")
    }

    /// The exposure score the unit's comment states is the one `systemd-analyze security` gives it today.
    @Test func theSystemdUnitsSecurityScoreIsTheOneItsCommentStates() async throws {
        let path = Self.config.appendingPathComponent("systemd/s3-canary.service").path
        let unit = try String(contentsOfFile: path, encoding: .utf8)
        let stated = try #require(
            unit.firstMatch(of: /rates this unit (\d+\.\d) (OK|MEDIUM|EXPOSED|UNSAFE)/), "the comment states no score")
        let analysis = try await Harness.runDetached(
            "/usr/bin/env", ["systemd-analyze", "security", "--offline=true", "--no-pager", path])
        let measured = try #require(
            analysis.stdout.firstMatch(of: /Overall exposure level for s3-canary\.service: (\d+\.\d) (\w+)/),
            "\(analysis.stdout.suffix(400))\(analysis.stderr)")
        #expect(measured.1 == stated.1 && measured.2 == stated.2, "systemd-analyze: \(measured.0)")
        // A sandboxed unit: anything but OK means a directive was lost.
        #expect(measured.2 == "OK")
    }
}
