"""The per-file steps of scripts/check-deploy.sh, run under the Python 3.12 that holds its PyPI tools.

    deploy_check.py render-chart CHART OUT [VALUES.yaml]  `helm template` offline: helm-python-sdk's client-only
                                                         dry-run install (Helm SDK v4) of release "s3-canary"
    deploy_check.py lint-chart CHART                      helm-sdkpy's lint; any warning or error fails
    deploy_check.py lint-chart-strict CHART               helm-python-sdk's lint --strict for Kubernetes 1.30
    deploy_check.py crds LABEL FILE                       ServiceMonitor and PrometheusRule against the Prometheus
                                                         Operator's types (what kubernetes-validate has no schema for)
    deploy_check.py rules LABEL FILE DIR                  each PrometheusRule's groups written to DIR for promtool
    deploy_check.py pods LABEL FILE                       the s3-canary container keeps its probes, securityContext,
                                                         resources and volumes
    deploy_check.py configs LABEL FILE DIR BINARY         each embedded s3-canary.yaml passes `BINARY check-config`

Each problem is printed as `LABEL: problem` on stderr and makes the exit status 1. LABEL names the source of a render
(an overlay's directory, or the chart and its values). The two helm libraries are Go shared libraries: each runs in a
process of its own.
"""
import os
import pathlib
import subprocess
import sys
import tempfile

import yaml

problems = []


def problem(label, message):
    problems.append(f"{label}: {message}")


def documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def render_chart(chart, out, values_file=None):
    import helm_python

    values = None
    if values_file:
        with open(values_file, encoding="utf-8") as f:
            values = yaml.safe_load(f)
    # A client-only dry run renders exactly what `helm template` would: no cluster is contacted (lookup returns
    # nothing), values.schema.json is applied, NOTES.txt is rendered apart. Release storage in memory: nothing written.
    with helm_python.Config(namespace="s3-canary", storage_driver="memory") as config:
        release = config.install(chart, "s3-canary", values, dry_run="client")
    pathlib.Path(out).write_text(release["manifest"], encoding="utf-8")
    if not release.get("notes", "").strip():
        problem(chart, "NOTES.txt rendered empty")


def lint_chart(chart):
    import asyncio

    import helm_sdkpy

    report = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration(namespace="s3-canary")).run(chart))
    for message in report.get("Messages") or []:
        # Severity 1 is information ("icon is recommended"); 2 warning, 3 error. helm-sdkpy 0.1.32 serialises most
        # messages as {}: lint-chart-strict prints the same findings as text.
        if message.get("Severity", 0) >= 2:
            problem(chart, f"helm-sdkpy lint: {message.get('Path')}: {message.get('Err') or 'see lint-chart-strict'}")


def lint_chart_strict(chart):
    import helm_python

    report = helm_python.lint(chart, strict=True, kube_version="v1.30.0")
    for message in report.get("messages", []):
        if message.get("severity", 0) >= 2:
            problem(chart, f"helm lint --strict: {message.get('path')}: {message.get('error')}")


def crds(label, path):
    # Models generated from the Prometheus Operator's CRDs (v0.80.1): types, enums and the CRDs' patterns (durations,
    # label names); extra="forbid" rejects unknown fields as kubernetes-validate --strict does for built-in kinds.
    from cloudcoil.models.prometheus_operator import v1

    models = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}
    for document in documents(path):
        if document.get("apiVersion") == "monitoring.coreos.com/v1" and document.get("kind") in models:
            name = f"{document['kind']}/{document.get('metadata', {}).get('name')}"
            try:
                models[document["kind"]].model_validate(document, extra="forbid")
                print(f"INFO {label} passed for resource {name} against prometheus-operator v0.80.1 types")
            except Exception as error:  # pydantic.ValidationError: one line per field
                problem(label, f"{name} does not validate: {error}")


def rules(label, path, directory):
    count = 0
    for document in documents(path):
        if document.get("kind") == "PrometheusRule":
            count += 1
            out = pathlib.Path(directory) / f"{document['metadata']['name']}-{count}.rules.yaml"
            out.write_text(yaml.safe_dump({"groups": document["spec"]["groups"]}, sort_keys=False), encoding="utf-8")
            print(out)


def container_of(workload):
    spec = workload["spec"]["template"]["spec"]
    return spec, next((c for c in spec.get("containers", []) if c.get("name") == "s3-canary"), None)


def pods(label, path):
    workloads = [d for d in documents(path) if d.get("kind") in ("Deployment", "StatefulSet")]
    found = 0
    for workload in workloads:
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        spec, container = container_of(workload)
        if container is None:
            continue
        found += 1
        where = f"{name} container s3-canary"
        for probe, route in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != route:
                problem(label, f"{where}: {probe} is not an httpGet of {route}")
        security = container.get("securityContext", {})
        wanted = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": True,
                  "allowPrivilegeEscalation": False}
        for key, value in wanted.items():
            if security.get(key) != value:
                problem(label, f"{where}: securityContext.{key} is {security.get(key)!r}, not {value!r}")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            problem(label, f"{where}: securityContext.capabilities.drop is not [ALL]")
        if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(label, f"{where}: securityContext.seccompProfile.type is not RuntimeDefault")
        resources = container.get("resources", {})
        if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
            problem(label, f"{where}: needs cpu and memory requests and a memory limit")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in container.get("volumeMounts", [])}
        if "emptyDir" not in mounts.get("/var/lib/s3-canary", {}):
            problem(label, f"{where}: no emptyDir mounted at the state dir /var/lib/s3-canary")
        if "configMap" not in mounts.get("/etc/s3-canary", {}):
            problem(label, f"{where}: the configuration is not a ConfigMap mounted at /etc/s3-canary")
        if any("secret" in volume for volume in volumes.values()) and "secret" not in mounts.get(
                "/run/secrets/s3-canary", {}):
            problem(label, f"{where}: the keys Secret is not mounted at /run/secrets/s3-canary")
    if found == 0:
        problem(label, "no Deployment or StatefulSet has a container named s3-canary")


def configs(label, path, directory, binary):
    docs = documents(path)
    statefulsets = [d for d in docs if d.get("kind") == "StatefulSet"]
    maps = [d for d in docs if d.get("kind") == "ConfigMap" and "s3-canary.yaml" in d.get("data", {})]
    if not maps:
        problem(label, "no ConfigMap carries s3-canary.yaml")
    secrets = pathlib.Path(tempfile.mkdtemp(dir=directory))
    for key in ("access-key-id", "secret-access-key"):
        (secrets / key).write_text("x\n")
    for index, cm in enumerate(maps):
        text = cm["data"]["s3-canary.yaml"]
        config = yaml.safe_load(text) or {}
        name = f"ConfigMap/{cm['metadata']['name']}"
        file = secrets / f"config-{index}.yaml"
        # The keys Secret's files, provided in a temporary directory at the path the config reads them from.
        file.write_text(text.replace("/run/secrets/s3-canary", str(secrets)), encoding="utf-8")
        hostname = "s3-canary-example-0"
        sharding = config.get("sharding") or {}
        if sharding.get("shard_from_hostname"):
            if len(statefulsets) != 1:
                problem(label, f"{name}: shard_from_hostname needs exactly one StatefulSet, found {len(statefulsets)}")
                continue
            replicas = statefulsets[0]["spec"].get("replicas", 1)
            if replicas != sharding.get("shards"):
                problem(label, f"{name}: sharding.shards {sharding.get('shards')} is not the StatefulSet's replicas "
                               f"{replicas}")
            # The last replica's host name: its ordinal must be below shards.
            hostname = f"{statefulsets[0]['metadata']['name']}-{replicas - 1}"
        # In a UTS namespace of its own the binary sees the pod's host name (sharding reads it), and POD_NAME is set
        # as the Downward API sets it.
        command = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$1" check-config --config "$2"',
                   hostname, binary, str(file)]
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "POD_NAME": hostname})
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().replace(str(file), "s3-canary.yaml")
            detail = detail.replace(str(secrets), "/run/secrets/s3-canary")
            problem(label, f"{name} s3-canary.yaml fails check-config (host {hostname}): {detail}")
        else:
            print(f"INFO {label} {name}: {result.stdout.strip().replace(str(file), 's3-canary.yaml')}")


def main(argv):
    commands = {"render-chart": render_chart, "lint-chart": lint_chart, "lint-chart-strict": lint_chart_strict,
                "crds": crds, "rules": rules, "pods": pods, "configs": configs}
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    commands[argv[1]](*argv[2:])
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
