#!/usr/bin/env bash
# Benchmarks: s3-canary against curl --aws-sigv4 and prometheus-blackbox-exporter on a throwaway Ceph RGW, scale,
# scrape, start-up and micro figures, every one beside a baseline of the same run. Writes every figure to
# bench/results.json (its shape: scripts/bench.py) and renders bench/REPORT.md from it, the previous results.json's
# figures in the "before" columns.
#
#   scripts/bench.sh            full run (about 8 minutes of measuring, after the release build)
#   scripts/bench.sh --quick    shorter windows, for trying the script out
#   BENCH_ONLY=features scripts/bench.sh   only section 7 (the compatibility operations), printed, files untouched
#   BENCH_ONLY=overhead scripts/bench.sh   only section 1 (per-operation overhead against curl), likewise
#   python3 scripts/bench.py render        bench/REPORT.md again from bench/results.json, nothing built or measured
#
# Needs root for apt on a fresh Debian machine; installs what is missing. Benchmarks are not tests: nothing here
# passes or fails on a figure; the report puts targets beside the figures.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '\n==> %s\n' "$*"; }
[ "${1:-}" = "--quick" ] && export BENCH_QUICK=1

log "installing what is missing"
apt_packages=()
command -v radosgw >/dev/null || apt_packages+=(radosgw ceph-mon ceph-osd)
command -v curl >/dev/null || apt_packages+=(curl)
command -v wrk >/dev/null || apt_packages+=(wrk)
command -v prometheus-blackbox-exporter >/dev/null || apt_packages+=(prometheus-blackbox-exporter)
[ -f /usr/include/zlib.h ] || apt_packages+=(zlib1g-dev)
# Protobuf scrapes are decoded with Prometheus's metrics.proto (Tests/Fixtures/decode_protobuf.py).
command -v protoc >/dev/null || apt_packages+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/timestamp.proto ] || apt_packages+=(libprotobuf-dev)
if [ ${#apt_packages[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
python3 -c 'import google.protobuf' 2>/dev/null || python3 -m pip install -q 'protobuf>=4.21,<8'
# Debian starts the exporter as a service on install. The benchmark runs its own copy on a free port and stops
# that one by PID (scripts/bench.py); it leaves every other process alone.

log "release build"
build_started=$(date +%s)
# The binary users deploy (scripts/release.sh: static Swift runtime), and the micro benchmarks.
canary=$(scripts/release.sh | tail -1)
swift build -c release --product s3-canary-bench
bin=$(swift build -c release --show-bin-path)
echo "release build took $(( $(date +%s) - build_started )) s"
# Its container image, for the image's sizes (section 8; not for one section alone).
if [ -z "${BENCH_ONLY:-}" ]; then
    scripts/image.sh "$canary" >/dev/null
    export BENCH_IMAGE_JSON="$root/.build-image/image.json"
fi

work=$(mktemp -d /tmp/s3canary-bench.XXXXXX)
cleanup() {
    scripts/rgw.sh stop "$work/rgw" || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

log "starting Ceph RGW"
RGW_PORT=$(free_port) MON_PORT=$(free_port) scripts/rgw.sh start "$work/rgw"
# shellcheck disable=SC1091
source "$work/rgw/env"

log "measuring"
BENCH_BINARY="$canary" BENCH_MICRO="$bin/s3-canary-bench" python3 scripts/bench.py
[ -n "${BENCH_ONLY:-}" ] && exit 0
log "bench/REPORT.md (from bench/results.json)"
cat bench/REPORT.md
