#!/usr/bin/env bash
# The Kubernetes files, checked offline: every Kustomize overlay of Config/kubernetes/overlays/ and the Helm chart
# Config/helm/s3-canary (its default values and ci/*-values.yaml) are rendered, and each render must
#   - pass `kubernetes-validate --strict -k 1.30.0` (built-in kinds: unknown fields, types, required fields);
#   - have its ServiceMonitor and PrometheusRule validate against the Prometheus Operator's types (kubernetes-validate
#     has no schema for CRDs and only warns about them), and each PrometheusRule's groups pass `promtool check rules`;
#   - keep the s3-canary container's probes, securityContext, resources and state/config/keys volumes;
#   - carry an s3-canary.yaml that passes `$S3CANARY_BINARY check-config` (sharded ones as the StatefulSet's last pod).
# The chart is linted (helm-sdkpy, and helm-python-sdk --strict for 1.30), and the copies Kustomize and Helm need
# of Config/prometheus/ and Dashboards/ must equal their sources (scripts/deploy-copies.py).
#
#   S3CANARY_BINARY=.build/debug/s3-canary scripts/check-deploy.sh
#
# Installs nothing: a missing tool fails the run, naming it. Tools:
#   kubectl (kustomize v5, for Components), promtool, unshare (util-linux; as root, for a pod's host name)
#   DEPLOY_PYTHON (default .build-deploy/venv/bin/python): a Python >= 3.12 with the PyPI packages
#     kubernetes-validate, helm-sdkpy, helm-python-sdk, cloudcoil-models-prometheus-operator (pins: scripts/test.sh)
# Exits 1 naming each file and problem.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${DEPLOY_PYTHON:-.build-deploy/venv/bin/python}
kubectl=${KUBECTL:-kubectl}

missing=()
[ -n "${S3CANARY_BINARY:-}" ] && [ -x "$S3CANARY_BINARY" ] \
    || missing+=("S3CANARY_BINARY (the s3-canary binary, for check-config; now '${S3CANARY_BINARY:-}')")
command -v "$kubectl" >/dev/null || missing+=("kubectl (with kustomize v5)")
command -v promtool >/dev/null || missing+=("promtool (Debian package prometheus)")
command -v unshare >/dev/null || missing+=("unshare (util-linux)")
if ! "$python" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
    missing+=("DEPLOY_PYTHON: a Python >= 3.12 at '$python'")
else
    for module in yaml kubernetes_validate helm_sdkpy helm_python cloudcoil.models.prometheus_operator; do
        "$python" -c "import $module" 2>/dev/null || missing+=("python module $module in $python")
    done
fi
if [ ${#missing[@]} -gt 0 ]; then
    for tool in "${missing[@]}"; do echo "FAILED: missing $tool" >&2; done
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "FAILED: $*" >&2; failed=1; }

echo "== copies of Config/prometheus/ and Dashboards/"
"$python" scripts/deploy-copies.py check || fail "a copy differs from its source (above)"

# label, then the render's file
renders=()
for overlay in Config/kubernetes/overlays/*/; do
    overlay=${overlay%/}
    out="$work/$(basename "$overlay").yaml"
    if "$kubectl" kustomize "$overlay" >"$out" 2>"$work/err"; then
        renders+=("$overlay" "$out")
    else
        fail "$overlay: kubectl kustomize: $(cat "$work/err")"
    fi
done
chart=Config/helm/s3-canary
echo "== $chart: lint"
"$python" scripts/deploy_check.py lint-chart "$chart" || fail "$chart: helm-sdkpy lint (above)"
"$python" scripts/deploy_check.py lint-chart-strict "$chart" || fail "$chart: helm lint --strict (above)"
for values in "" "$chart"/ci/*-values.yaml; do
    label="$chart (${values:-default values})"
    out="$work/chart-$(basename "${values:-default}" .yaml).yaml"
    if "$python" scripts/deploy_check.py render-chart "$chart" "$out" ${values:+"$values"} 2>"$work/err"; then
        renders+=("$label" "$out")
    else
        fail "$label: render: $(cat "$work/err")"
    fi
done

for ((i = 0; i < ${#renders[@]}; i += 2)); do
    label=${renders[i]} file=${renders[i + 1]}
    echo "== $label"
    # kubernetes-validate exits 0 on a kind it has no schema for (a WARN line): the monitoring.coreos.com kinds are
    # checked by `crds` below; any other unknown kind fails here.
    if "$python" -m kubernetes_validate --strict -k 1.30.0 "$file" >"$work/kv" 2>&1; then
        echo "kubernetes-validate --strict -k 1.30.0: $(grep -c '^INFO.* passed ' "$work/kv") resources passed"
    else
        fail "$label: kubernetes-validate --strict -k 1.30.0: $(grep -v -E '^(WARN|INFO)' "$work/kv" | sed "s|$file|render|")"
    fi
    unknown=$(grep '^WARN' "$work/kv" | grep -v -E 'kind (ServiceMonitor|PrometheusRule) with api version monitoring\.coreos\.com/v1 ' || true)
    [ -z "$unknown" ] || fail "$label: not validated: ${unknown//$file/render}"
    "$python" scripts/deploy_check.py crds "$label" "$file" || failed=1
    mkdir -p "$work/rules"
    for rules in $("$python" scripts/deploy_check.py rules "$label" "$file" "$work/rules"); do
        promtool check rules "$rules" >"$work/promtool" 2>&1 \
            || fail "$label: PrometheusRule groups fail promtool check rules: $(cat "$work/promtool")"
    done
    "$python" scripts/deploy_check.py pods "$label" "$file" || failed=1
    "$python" scripts/deploy_check.py configs "$label" "$file" "$work" "$S3CANARY_BINARY" || failed=1
done

if [ $failed -ne 0 ]; then
    echo "check-deploy: FAILED (problems above)" >&2
    exit 1
fi
echo "check-deploy: $((${#renders[@]} / 2)) renders valid (Kubernetes 1.30, strict), chart linted, copies current"
