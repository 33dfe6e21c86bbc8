"""Runs every benchmark of scripts/bench.sh, writes what it measured to bench/results.json and renders bench/REPORT.md
from that file.

    BENCH_BINARY=BIN BENCH_MICRO=BIN python3 scripts/bench.py   measure (scripts/bench.sh sets the environment)
    python3 scripts/bench.py render [--results FILE] [--output FILE|-]
                                   bench/REPORT.md again from bench/results.json alone, nothing measured

Each figure is measured beside its baseline in the same run and reported as a ratio, with the target next to it.
Inputs come from the environment bench.sh sets: the release binaries, the RGW endpoint and keys; BENCH_QUICK=1 for
shorter windows, BENCH_ONLY=features (section 7) or BENCH_ONLY=overhead (section 1) alone, printed (results.json and
REPORT.md untouched). The report's "before" figures are the previous run's: read from bench/results.json before it is
overwritten, and kept in the new file beside each figure, so the report renders from one file.

bench/results.json, format 1 (a change of meaning gets a new number; new figures and fields do not):

    {"format": 1,
     "date": "2026-11-26T15:38:00Z",        when the run ended, UTC
     "minutes": 10.0,                       minutes of measuring
     "quick": false,                        BENCH_QUICK: shorter windows
     "commit": "c636d0f...",                git HEAD of the checkout measured (null outside git)
     "dirty": true,                         whether tracked files differed from it (null: not known)
     "machine": {"cpus": 2, "cpu": "AMD EPYC", "memory_gib": 23, "kernel": "6.18.44-fc-v669",
                 "swift": "Swift version 6.3.1 (swift-6.3.1-RELEASE)", "ceph": "16.2.15"},
     "parameters": {"footprint_seconds": 40, ...},   the settings the report's text states (PARAMETERS below)
     "previous": {"date": "...", "commit": "..."},   the results these replaced (null: none)
     "note": "...",                         optional: what a reader of the figures must know
     "figures": [{"name": "footprint.idle_rss", "value": 17.8, "unit": "MiB",
                  "baseline": "blackbox_exporter.idle_rss", "baseline_value": 13.4, "ratio": 1.33,
                  "previous": {"value": 33.8, "baseline_value": 13.2, "ratio": 2.56}}, ...]}

A figure: `name` (unique, stable from run to run), `value` (a number; null when the run could not measure it),
`unit` (ms, s, ns, MiB, MB = 10^6 bytes, "% of a core", series, cycles, requests, operations, probes, "boolean" =
1 or 0); for a figure measured against a baseline, `baseline` (the baseline's name), `baseline_value` and `ratio`
(value / baseline_value as measured, kept rather than recomputed from rounded figures); `labels` where the name does
not say all (a step's operation); `previous`: the same figure's value, baseline_value and ratio in the results these
replaced, when they had it. The names, in measuring order (OP: put head get get_range delete):

    series_per_backend.MODE.text | .protobuf_stored      MODE: classic_only default native_only default_ttfb
        default_phases addresses_all_3
    overhead.cycles, overhead.curl_requests, overhead.OP.p50 | .p99   (baselines curl.OP.p50 | .p99)
    overhead_fresh.cycles, overhead_fresh.curl_requests, overhead_fresh.OP.p50 | .p99
        (baselines curl_fresh.OP.p50 | .p99)
    footprint.idle_rss | .load_rss | .idle_pss_of_three | .idle_private_of_three   (baselines blackbox_exporter.*)
    footprint.cpu_per_1000_operations (baseline blackbox_exporter.cpu_per_1000_probes), footprint.operations,
        footprint.blackbox_probes
    scale.KIND_COUNT.cpu_share | .rss | .drift_p99 | .cycles   KIND: memory rgw; drift null above every bucket
    scrape.series, scrape.protobuf_stored_series, scrape.size.FORMAT (text_plain text_gzip openmetrics_plain
        protobuf_plain protobuf_gzip), scrape.render.FORMAT (text text_gzip protobuf),
        scrape.wrk.cCONNECTIONS.FORMAT.p50 | .p99 | .requests | .errors   (FORMAT text_plain text_gzip protobuf_gzip)
    startup.healthz (baseline blackbox_exporter.healthy), startup.first_cycle
    micro.NAME (baseline micro.BASELINE: Benchmarks/Micro's own pairs)
    features.VARIANT.cycles | .failures | .cpu_per_cycle | .operation_time | .feature_step   VARIANT: basic compat
        multipart; cpu_per_cycle against features.basic.cpu_per_cycle
    image.compressed | .unpacked   (MB; scripts/image.sh's image of the binary measured, no baseline)
"""
import argparse
import base64
import gzip
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results.json")
REPORT = os.path.join(ROOT, "bench", "REPORT.md")
FORMAT = 1
# What a run needs, set by measure() from the environment (render needs none of it).
BINARY = MICRO = RGW = ACCESS = SECRET = WORK = None
BUCKET = "canary-misc"
TICKS = os.sysconf("SC_CLK_TCK")
QUICK = os.environ.get("BENCH_QUICK") == "1"
FIGURES = []  # what this run measured, in order: the "figures" of results.json
PARAMETERS = {}  # the settings the report's text states: footprint_seconds, footprint_backends,
#                  footprint_interval_s, scale_window_s, scale_interval_s, scrape_wrk_seconds, startup_starts


def figure(name, value, unit, baseline=None, baseline_value=None, ratio=None, labels=None):
    """Records one measured figure; with a baseline, the ratio to it (value / baseline_value unless given)."""
    entry = {"name": name, "value": finite(value), "unit": unit}
    if baseline is not None:
        if ratio is None and value is not None and baseline_value:
            ratio = value / baseline_value
        entry.update(baseline=baseline, baseline_value=finite(baseline_value), ratio=finite(ratio))
    if labels:
        entry["labels"] = labels
    FIGURES.append(entry)


def finite(value):
    """JSON has no NaN or infinity: a figure the run could not measure is null."""
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get(url, headers=None, timeout=5):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def wait_for(url, timeout=60, status=200, poll=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(url, timeout=1)[0] == status:
                return True
        except Exception:
            pass
        time.sleep(poll)
    raise RuntimeError(f"{url} did not answer {status} within {timeout} s")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def samples(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def histogram_quantile(values, name, q):
    """Upper bound of the bucket holding quantile q of a label-less histogram."""
    buckets = sorted(
        (float(re.search(r'le="([^"]+)"', key).group(1)), value)
        for key, value in values.items() if key.startswith(name + "_bucket")
    )
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return float("inf")


class Canary:
    """An s3-canary process with a generated configuration."""

    def __init__(self, name, backends, interval="1s", timeout="800ms", log_level="warning", extra=None, demo=None,
                 metrics=None, probe="", endpoint=None, backend_yaml="", jitter=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(WORK, f"{name}.log"), "w")
        if demo is not None:
            args = [BINARY, "demo", "--listen", f"127.0.0.1:{self.port}", "--load-backends", str(demo),
                    "--interval", interval, "--log-level", log_level]
        else:
            path = os.path.join(WORK, f"{name}.yaml")
            with open(path, "w") as f:
                f.write(f"listen: 127.0.0.1:{self.port}\ninstance: bench\n")
                f.write(f"probe: {{interval: {interval}, timeout: {timeout}, key_prefix: .s3-canary-bench/{probe}"
                        + (f", jitter: {jitter}" if jitter is not None else "") + "}\n")
                if metrics:
                    f.write(f"metrics: {metrics}\n")
                f.write("backends:\n")
                for index in range(backends):
                    f.write(f"  - name: rgw-{index + 1}\n    endpoint: {endpoint or RGW}\n    bucket: {BUCKET}\n"
                            "    credentials: {access_key_id_env: S3CANARY_TEST_RGW_ACCESS_KEY, "
                            "secret_access_key_env: S3CANARY_TEST_RGW_SECRET_KEY}\n" + backend_yaml)
            args = [BINARY, "run", "--config", path, "--log-level", log_level] + (extra or [])
        self.started = time.monotonic()
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def metrics(self):
        return samples(get(self.base + "/metrics", timeout=30)[1].decode())

    def cycles(self):
        return sum(v for k, v in self.metrics().items() if k.startswith("s3canary_probes_total{"))

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    memory = next((int(line.split()[1]) // 1024 // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    ceph = subprocess.run(["radosgw", "--version"], capture_output=True, text=True).stdout.split()[2]
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gib": memory, "kernel": platform.release(), "swift": swift,
            "ceph": ceph}


def git_state():
    """The commit measured, and whether tracked files differed from it; (None, None) outside git."""
    try:
        def git(*args):
            return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True,
                                  check=True).stdout.strip()
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return None, None


# 1. Overhead ------------------------------------------------------------------------------------------------------

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def curl_series(method_args, urls, per_url_args=None, payload_hash=EMPTY_SHA256, fresh=False):
    """One curl process, one kept-alive connection, one request per URL: time_total of each (ms). Paced at ten a
    second, as the canary sends each operation once per 100 ms cycle: both wait between requests alike. With `fresh`,
    every request asks for `Connection: close`, so each opens a new connection (its connect is in time_total), as
    the canary's `connection: fresh` does.

    Signed like s3-canary signs over plain HTTP: the payload's SHA-256 in x-amz-content-sha256 (the empty body's for
    reads and deletes), so the ratio compares two clients of one protocol, not signed against unsigned payloads."""
    args = ["curl", "-s", "--rate", "10/s", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{ACCESS}:{SECRET}",
            "-H", f"x-amz-content-sha256: {payload_hash}", "-w", "%{http_code} %{time_total}\\n"] + method_args
    if fresh:
        args += ["-H", "Connection: close"]
    for index, url in enumerate(urls):
        args += (per_url_args(index) if per_url_args else []) + ["-o", "/dev/null", url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    codes, times = [], []
    for line in out.splitlines():
        code, seconds = line.split()
        codes.append(int(code))
        times.append(float(seconds) * 1000)
    return codes, times


def bench_overhead(mode="pooled"):
    """Per-operation times of the canary's cycles against curl's. `pooled` (the default `connection`) against one
    kept-alive curl connection; `fresh` against curl opening a connection per request. Figures `overhead.*` and
    `overhead_fresh.*`."""
    fresh = mode == "fresh"
    prefix, base = ("overhead_fresh", "curl_fresh") if fresh else ("overhead", "curl")
    log(f"overhead ({mode}): s3-canary cycles against curl --aws-sigv4")
    cycles = 120 if QUICK else 250
    canary = Canary(f"overhead-{mode}", 1, interval="100ms", timeout="40ms", log_level="debug",
                    backend_yaml="    connection: fresh\n" if fresh else "")
    wait_for(canary.base + "/readyz")
    deadline = time.monotonic() + 120
    while canary.cycles() < cycles + 20 and time.monotonic() < deadline:
        time.sleep(0.5)
    canary.stop()
    ours = {"put": [], "head": [], "get": [], "get_range": [], "delete": []}
    pattern = re.compile(r"\] (put|head|get|get_range|delete): ok in ([0-9.]+) ms")
    for line in open(canary.log.name):
        match = pattern.search(line)
        if match:
            ours[match.group(1)].append(float(match.group(2)))
    for op in ours:
        ours[op] = ours[op][20:]  # the first cycles warm the pool and the allocator
    body = os.path.join(WORK, "object")
    with open(body, "wb") as f:
        f.write(os.urandom(1024))
    n = cycles
    urls = [f"{RGW}/{BUCKET}/bench-curl/{index:05d}" for index in range(n + 20)]
    curl = {}
    # PUT as s3-canary sends it: the body's SHA-256 signed, its Content-MD5 for the server to check, its content type
    # and the metadata that marks a canary (which the server stores, at a cost).
    with open(body, "rb") as f:
        content = f.read()
    md5 = base64.b64encode(hashlib.md5(content).digest()).decode()
    put_headers = ["-H", f"Content-MD5: {md5}", "-H", "Content-Type: application/octet-stream", "-H",
                   "x-amz-meta-s3-canary: 1"]
    codes, curl["put"] = curl_series(put_headers, urls, lambda i: ["-T", body],
                                     payload_hash=hashlib.sha256(content).hexdigest(), fresh=fresh)
    assert set(codes) == {200}, codes[:5]
    # The three reads run side by side (three processes, three connections, ten requests a second each).
    reads = {"head": (["-I"], 200), "get": ([], 200), "get_range": (["-r", "0-99"], 206)}
    with ThreadPoolExecutor(3) as pool:
        futures = {op: pool.submit(curl_series, args, urls, fresh=fresh) for op, (args, _) in reads.items()}
        for op, (_, expected) in reads.items():
            codes, curl[op] = futures[op].result()
            assert set(codes) == {expected}, (op, codes[:5])
    codes, curl["delete"] = curl_series(["-X", "DELETE"], urls, fresh=fresh)
    assert set(codes) == {204}, codes[:5]
    for op in curl:
        curl[op] = curl[op][20:]
    figure(f"{prefix}.cycles", len(ours["head"]), "cycles")
    figure(f"{prefix}.curl_requests", n, "requests")
    for op in OPERATIONS:
        figure(f"{prefix}.{op}.p50", statistics.median(ours[op]), "ms", f"{base}.{op}.p50", statistics.median(curl[op]))
        figure(f"{prefix}.{op}.p99", percentile(ours[op], 0.99), "ms", f"{base}.{op}.p99", percentile(curl[op], 0.99))


# 2. Footprint against blackbox_exporter ---------------------------------------------------------------------------

def smaps_mib(pid):
    """Pss and private (clean + dirty) memory of `pid` in MiB, from /proc/PID/smaps_rollup."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                values[parts[0][:-1]] = int(parts[1]) / 1024
    return values.get("Pss", 0), values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)


def three_idle(start):
    """Starts three idle copies at once (as three pods on one node share one image's page cache) and returns the
    mean Pss and private memory of one, in MiB."""
    processes = [start(index) for index in range(3)]
    time.sleep(3)
    figures = [smaps_mib(pid) for pid, _ in processes]
    for _, stop in processes:
        stop()
    return sum(f[0] for f in figures) / 3, sum(f[1] for f in figures) / 3


def bench_footprint():
    log("footprint: s3-canary against prometheus-blackbox-exporter")
    seconds = 20 if QUICK else 40
    backends, interval = 10, 1.0  # 10 cycles/s = 50 operations/s
    rate = backends * 5 / interval
    config = os.path.join(WORK, "blackbox.yml")
    with open(config, "w") as f:
        f.write("modules:\n  s3_get:\n    prober: http\n    timeout: 2s\n    http:\n"
                "      valid_status_codes: [200, 403, 404]\n      method: GET\n")
    port = free_port()
    blackbox = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={config}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_for(base + "/-/healthy")
    time.sleep(2)
    blackbox_idle = rss_mib(blackbox.pid)
    target = urllib.request.quote(f"{RGW}/{BUCKET}/blackbox-probe", safe="")
    stop = threading.Event()
    done = [0]

    def driver():
        # `rate` probes a second, spread evenly, each a new /probe request (as Prometheus would send them).
        with ThreadPoolExecutor(8) as pool:
            start = time.monotonic()
            index = 0
            while not stop.is_set():
                due = start + index / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(lambda: (get(f"{base}/probe?module=s3_get&target={target}", timeout=10), done.__setitem__(0, done[0] + 1)))
                index += 1

    cpu0 = cpu_seconds(blackbox.pid)
    thread = threading.Thread(target=driver)
    thread.start()
    peak = 0.0
    for _ in range(seconds * 2):
        time.sleep(0.5)
        peak = max(peak, rss_mib(blackbox.pid))
    stop.set()
    thread.join()
    blackbox_cpu = cpu_seconds(blackbox.pid) - cpu0
    blackbox_probes = done[0]
    blackbox.terminate()
    blackbox.wait()

    # Idle: started and serving, its first cycle not yet due (the first start is staggered within the hour).
    idle = Canary("idle", 1, interval="1h", timeout="5s")
    wait_for(idle.base + "/healthz")
    time.sleep(2)
    ours_idle = rss_mib(idle.process.pid)
    idle.stop()

    # What one more sidecar costs on a node: three idle copies of each at once; Pss shares the clean code pages
    # among them, private memory is what no other copy can share.
    def blackbox_copy(index):
        copy_port = free_port()
        process = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={config}",
                                    f"--web.listen-address=127.0.0.1:{copy_port}", "--log.level=warn"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(f"http://127.0.0.1:{copy_port}/-/healthy")
        return process.pid, lambda: (process.terminate(), process.wait())

    def canary_copy(index):
        copy = Canary(f"idle-{index}", 1, interval="1h", timeout="5s")
        wait_for(copy.base + "/healthz")
        return copy.process.pid, copy.stop

    blackbox_pss, blackbox_private = three_idle(blackbox_copy)
    ours_pss, ours_private = three_idle(canary_copy)
    canary = Canary("footprint", backends, interval=f"{interval}s", timeout="800ms")
    wait_for(canary.base + "/readyz")
    time.sleep(2)
    operations0 = sum(v for k, v in canary.metrics().items() if k.startswith("s3canary_operations_total{"))
    cpu0 = cpu_seconds(canary.process.pid)
    ours_peak = 0.0
    for _ in range(seconds * 2):
        time.sleep(0.5)
        ours_peak = max(ours_peak, rss_mib(canary.process.pid))
    ours_cpu = cpu_seconds(canary.process.pid) - cpu0
    operations = sum(v for k, v in canary.metrics().items() if k.startswith("s3canary_operations_total{")) - operations0
    canary.stop()
    ours_per_1000 = ours_cpu / operations * 1000
    theirs_per_1000 = blackbox_cpu / blackbox_probes * 1000
    PARAMETERS.update(footprint_seconds=seconds, footprint_backends=backends, footprint_interval_s=interval)
    for name, ours, theirs in (("idle_rss", ours_idle, blackbox_idle), ("load_rss", ours_peak, peak),
                               ("idle_pss_of_three", ours_pss, blackbox_pss),
                               ("idle_private_of_three", ours_private, blackbox_private)):
        figure(f"footprint.{name}", ours, "MiB", f"blackbox_exporter.{name}", theirs)
    figure("footprint.cpu_per_1000_operations", ours_per_1000, "s", "blackbox_exporter.cpu_per_1000_probes",
           theirs_per_1000)
    figure("footprint.operations", int(operations), "operations")
    figure("footprint.blackbox_probes", blackbox_probes, "probes")


# 3. Scale and 4. scrape --------------------------------------------------------------------------------------------

def wrk(url, connections, seconds, headers=None):
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for header in headers or []:
        args += ["-H", header]
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout

    def find(label):
        match = re.search(rf"^\s+{label}\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    requests = re.search(r"([0-9]+) requests in", out)
    errors = "Socket errors" in out or "Non-2xx" in out
    return {"p50": find("50%"), "p99": find("99%"), "requests": int(requests.group(1)) if requests else 0, "errors": errors}


def bench_scale():
    window = 20 if QUICK else 40
    PARAMETERS.update(scale_window_s=window, scale_interval_s=15)
    runs = [(10, "memory"), (100, "memory"), (1000, "memory"), (100, "RGW")]
    for count, kind in runs:
        log(f"scale: {count} {kind} backends")
        if kind == "memory":
            canary = Canary(f"scale-{count}", 0, interval="15s", demo=count - 3)
        else:
            canary = Canary(f"scale-rgw-{count}", count, interval="15s", timeout="5s")
        wait_for(canary.base + "/healthz")
        time.sleep(16)  # every backend through its first (staggered) cycle
        before = canary.metrics()
        cpu0, t0 = cpu_seconds(canary.process.pid), time.monotonic()
        time.sleep(window)
        cpu = cpu_seconds(canary.process.pid) - cpu0
        wall = time.monotonic() - t0
        after = canary.metrics()
        cycles = sum(v for k, v in after.items() if k.startswith("s3canary_probes_total{")) - \
            sum(v for k, v in before.items() if k.startswith("s3canary_probes_total{"))
        drift = {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith("s3canary_schedule_drift_seconds")}
        p99 = histogram_quantile(drift, "s3canary_schedule_drift_seconds", 0.99)
        share = cpu / wall
        rss = rss_mib(canary.process.pid)
        run = f"scale.{kind.lower()}_{count}"
        figure(f"{run}.cpu_share", share * 100, "% of a core")
        figure(f"{run}.rss", rss, "MiB")
        figure(f"{run}.drift_p99", p99 * 1000, "ms")  # the upper bound of the bucket holding p99
        figure(f"{run}.cycles", int(cycles), "cycles")
        if count == 1000:
            bench_scrape(canary)
        canary.stop()


PROTOBUF = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
OPENMETRICS = "application/openmetrics-text;version=1.0.0"


def decode_protobuf(body):
    """The families of a protobuf scrape, through Tests/Fixtures/decode_protobuf.py (Prometheus's metrics.proto)."""
    path = os.path.join(WORK, "scrape.bin")
    with open(path, "wb") as f:
        f.write(body)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "Tests/Fixtures/decode_protobuf.py"), path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def stored_series(families, label):
    """Series a protobuf scrape makes in Prometheus 2.42 with native histograms on, for metrics carrying `label`:
    a native histogram is one series (its classic buckets are not stored), a classic one a series per bucket,
    +Inf, sum and count."""
    total = 0
    for family in families:
        for metric in family.get("metric", []):
            if not any(pair.get("name") == label for pair in metric.get("label", [])):
                continue
            histogram = metric.get("histogram")
            if histogram is None:
                total += 1
            elif "schema" in histogram:
                total += 1
            else:
                total += len(histogram.get("bucket", [])) + 3
    return total


SERIES_MODES = [("classic_only", "classic only `{native_histograms: false}`", "{native_histograms: false}"),
                ("default", "default: native + classic", None),
                ("native_only", "native only `{classic_histograms: false}`", "{classic_histograms: false}"),
                ("default_ttfb", "default + `time_to_first_byte: true`", "{time_to_first_byte: true}"),
                ("default_phases", "default + `request_phases: true`", "{request_phases: true}")]
# Series with `addresses: all`: the name (localhost, RGW's dns name) resolves through Tests/Fixtures/dns_server.py to
# three loopback aliases, each a plain TCP front (Tests/Fixtures/address_front.py) before RGW.
ADDRESS_COUNT = 3


def bench_series_budget():
    """Series per backend in each histogram mode: one RGW backend, default five operations, after its first cycle."""
    log("series per backend in each metrics mode")
    for key, _, metrics in SERIES_MODES:
        canary = Canary("series", 1, interval="1s", timeout="800ms", metrics=metrics)
        wait_for(canary.base + "/readyz")
        text = get(canary.base + "/metrics", timeout=30)[1].decode()
        per_backend_text = sum(1 for line in text.splitlines()
                               if line.startswith("s3canary_") and 'backend="rgw-1"' in line)
        families = decode_protobuf(get(canary.base + "/metrics", {"Accept": PROTOBUF}, timeout=30)[1])
        canary.stop()
        figure(f"series_per_backend.{key}.text", per_backend_text, "series")
        figure(f"series_per_backend.{key}.protobuf_stored", stored_series(families, "backend"), "series")
    bench_series_addresses()


def bench_series_addresses():
    """Series of one backend with `addresses: all` and three addresses, after every address's first cycle."""
    log(f"series per backend with addresses: all and {ADDRESS_COUNT} addresses")
    fixtures = os.path.join(ROOT, "Tests", "Fixtures")
    addresses = [f"127.0.0.{2 + index}" for index in range(ADDRESS_COUNT)]
    zone = os.path.join(WORK, "zone.json")
    with open(zone, "w") as f:
        json.dump({"names": {"localhost": {"a": addresses, "ttl": 30}}}, f)
    dns_port, front_port, control = free_port(), free_port(), free_port()
    upstream = RGW.split("//", 1)[1]
    servers = [subprocess.Popen([sys.executable, "-u", os.path.join(fixtures, "dns_server.py"), zone, "127.0.0.1",
                                 str(dns_port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True),
               subprocess.Popen([sys.executable, "-u", os.path.join(fixtures, "address_front.py"), "--upstream",
                                 upstream, "--port", str(front_port), "--control", str(control)] + addresses,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)]
    try:
        for server in servers:
            if server.stdout.readline().strip() != "ready":
                sys.exit("bench: dns_server.py or address_front.py did not start")
        canary = Canary("series-addresses", 1, interval="1s", timeout="800ms",
                        endpoint=f"http://localhost:{front_port}",
                        backend_yaml=f"    addresses: all\n    dns: {{servers: [\"127.0.0.1:{dns_port}\"]}}\n")
        wait_for(canary.base + "/readyz")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            values = canary.metrics()
            if sum(1 for k, v in values.items() if k.startswith("s3canary_address_up{") and v == 1) == ADDRESS_COUNT:
                break
            time.sleep(0.2)
        text = get(canary.base + "/metrics", timeout=30)[1].decode()
        per_backend_text = sum(1 for line in text.splitlines()
                               if line.startswith("s3canary_") and 'backend="rgw-1"' in line)
        families = decode_protobuf(get(canary.base + "/metrics", {"Accept": PROTOBUF}, timeout=30)[1])
        canary.stop()
        figure("series_per_backend.addresses_all_3.text", per_backend_text, "series")
        figure("series_per_backend.addresses_all_3.protobuf_stored", stored_series(families, "backend"), "series")
    finally:
        for server in servers:
            server.kill()


def bench_scrape(canary):
    log("scrape: /metrics with 1,000 backends under wrk")
    seconds = 5 if QUICK else 10
    PARAMETERS["scrape_wrk_seconds"] = seconds
    url = canary.base + "/metrics"
    plain = len(get(url, timeout=30)[1])
    zipped = len(get(url, {"Accept-Encoding": "gzip"}, timeout=30)[1])
    openmetrics = len(get(url, {"Accept": OPENMETRICS}, timeout=30)[1])
    protobuf_body = get(url, {"Accept": PROTOBUF}, timeout=30)[1]
    protobuf_zipped = len(get(url, {"Accept": PROTOBUF, "Accept-Encoding": "gzip"}, timeout=30)[1])
    series = sum(1 for line in gzip.decompress(get(url, {"Accept-Encoding": "gzip"}, timeout=30)[1]).decode().splitlines()
                 if line and not line.startswith("#"))
    stored = stored_series(decode_protobuf(protobuf_body), "backend")
    # A scrape that renders (the cache is at most a second old): wait past its age each time.
    fresh = {}
    for name, headers in (("text", {}), ("protobuf", {"Accept": PROTOBUF}),
                          ("text_gzip", {"Accept-Encoding": "gzip"})):
        times = []
        for _ in range(5):
            time.sleep(1.1)
            started = time.monotonic()
            get(url, headers, timeout=30)
            times.append((time.monotonic() - started) * 1000)
        fresh[name] = statistics.median(times)
    figure("scrape.series", series, "series")
    figure("scrape.protobuf_stored_series", stored, "series")
    for name, size in (("text_plain", plain), ("text_gzip", zipped), ("openmetrics_plain", openmetrics),
                       ("protobuf_plain", len(protobuf_body)), ("protobuf_gzip", protobuf_zipped)):
        figure(f"scrape.size.{name}", size / 1e6, "MB")
    for name in ("text", "text_gzip", "protobuf"):
        figure(f"scrape.render.{name}", fresh[name], "ms")
    for connections in (10, 50):
        for encoding, headers in (("text_plain", []), ("text_gzip", ["Accept-Encoding: gzip"]),
                                  ("protobuf_gzip", [f"Accept: {PROTOBUF}", "Accept-Encoding: gzip"])):
            result = wrk(url, connections, seconds, headers)
            row = f"scrape.wrk.c{connections}.{encoding}"
            figure(f"{row}.p50", result["p50"], "ms")
            figure(f"{row}.p99", result["p99"], "ms")
            figure(f"{row}.requests", result["requests"], "requests")
            figure(f"{row}.errors", int(result["errors"]), "boolean")


# 5. Start-up ------------------------------------------------------------------------------------------------------

def bench_startup():
    log("start-up")
    healthz, ready, blackbox = [], [], []
    starts = 3 if QUICK else 11
    PARAMETERS["startup_starts"] = starts
    # Polled every millisecond: both start in 8-20 ms, where a 5 ms poll was a third of the figure.
    for _ in range(starts):
        # No jitter: with it the first cycle waits up to 10 % of the interval at random (1.5 s here), which is the
        # schedule's spread, not start-up.
        canary = Canary("startup", 1, interval="15s", timeout="5s", jitter="0%")
        wait_for(canary.base + "/healthz", poll=0.001)
        healthz.append((time.monotonic() - canary.started) * 1000)
        wait_for(canary.base + "/readyz")
        ready.append((time.monotonic() - canary.started) * 1000)
        canary.stop()
        config = os.path.join(WORK, "blackbox.yml")
        port = free_port()
        started = time.monotonic()
        process = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={config}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(f"http://127.0.0.1:{port}/-/healthy", poll=0.001)
        blackbox.append((time.monotonic() - started) * 1000)
        process.terminate()
        process.wait()
    figure("startup.healthz", statistics.median(healthz), "ms", "blackbox_exporter.healthy",
           statistics.median(blackbox))
    figure("startup.first_cycle", statistics.median(ready), "ms")


# 8. The container image -------------------------------------------------------------------------------------------

def bench_image():
    """Sizes of the image scripts/image.sh built from the binary measured (bench.sh builds it): no baseline, a target."""
    path = os.environ.get("BENCH_IMAGE_JSON")
    if not path:
        log("image: BENCH_IMAGE_JSON not set, not measured")
        return
    with open(path, encoding="utf-8") as f:
        image = json.load(f)
    figure("image.compressed", round(image["compressed_bytes"] / 1e6, 1), "MB")
    figure("image.unpacked", round(image["unpacked_bytes"] / 1e6, 1), "MB")


# 6. Micro ---------------------------------------------------------------------------------------------------------

def bench_micro():
    log("micro benchmarks")
    out = subprocess.run([MICRO], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        item = json.loads(line)
        figure(f"micro.{item['name']}", item["ns"], "ns", f"micro.{item['baseline']}", item["baseline_ns"],
               item["ratio"])


# 7. Compatibility operations --------------------------------------------------------------------------------------

FEATURE_VARIANTS = [("basic", "basic five operations (baseline)"), ("compat", "+ conditional, presign, checksum"),
                    ("multipart", "+ multipart 10 MiB (5 MiB + 5 MiB)")]


def bench_features():
    """CPU and time per cycle with the compatibility operations, against the five basic operations in the same run.

    aws_chunked is left out: RGW 16.2 refuses it, so its cycles would fail and the breaker would skip them.
    """
    basic = "put, head, get, get_range, delete"
    variants = [
        ("basic", "1s", "800ms", f", operations: [{basic}]"),
        ("compat", "1s", "800ms", f", operations: [{basic}, conditional, presign, checksum]"),
        ("multipart", "3s", "2900ms",
         f", operations: [{basic}, multipart], multipart: {{part_size: 5MiB, last_part_size: 5MiB}}"),
    ]
    baseline = None
    for key, interval, timeout, probe in variants:
        canary = Canary("features", 1, interval=interval, timeout=timeout, probe=probe)
        wait_for(canary.base + "/healthz")
        target = 6 if QUICK else 15
        deadline = time.monotonic() + 120
        while canary.cycles() < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu0, cycles0, metrics0 = cpu_seconds(canary.process.pid), canary.cycles(), canary.metrics()
        while canary.cycles() < cycles0 + target and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu1, metrics1 = cpu_seconds(canary.process.pid), canary.metrics()
        cycles = canary.cycles() - cycles0
        failures = metrics1.get('s3canary_probes_total{backend="rgw-1",result="failure"}', 0)
        canary.stop()
        def total(metrics, suffix):
            return sum(v for k, v in metrics.items() if k.startswith("s3canary_operation_duration_seconds" + suffix))
        per_cycle_cpu = (cpu1 - cpu0) / max(cycles, 1) * 1000
        per_cycle_ops = (total(metrics1, "_sum{") - total(metrics0, "_sum{")) / max(cycles, 1) * 1000
        feature = [k for k in metrics1 if k.startswith("s3canary_operation_duration_seconds_sum{")
                   and any(f'operation="{name}"' in k for name in ("multipart", "checksum"))]
        baseline = baseline or per_cycle_cpu
        figure(f"features.{key}.cycles", int(cycles), "cycles")
        figure(f"features.{key}.failures", int(failures), "cycles")
        figure(f"features.{key}.cpu_per_cycle", per_cycle_cpu, "ms", "features.basic.cpu_per_cycle", baseline)
        figure(f"features.{key}.operation_time", per_cycle_ops, "ms")
        if feature:
            name = feature[0]
            count_key = name.replace("_sum{", "_count{")
            delta_count = metrics1.get(count_key, 0) - metrics0.get(count_key, 0)
            if delta_count:
                figure(f"features.{key}.feature_step", (metrics1[name] - metrics0.get(name, 0)) / delta_count * 1000,
                       "ms", labels={"operation": re.search(r'operation="([^"]*)"', name).group(1)})


# Results and the report ---------------------------------------------------------------------------------------------

def load_results(path):
    """results.json as a dict; None when there is none. A file of another format is refused (ValueError)."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    if not isinstance(results, dict) or results.get("format") != FORMAT or not isinstance(results.get("figures"), list):
        raise ValueError(f"{path} is not bench results of format {FORMAT}")
    return results


def dumps(results):
    """results.json's text: the metadata indented, then one figure a line (a re-run's diff shows what moved)."""
    head = json.dumps({k: v for k, v in results.items() if k != "figures"}, indent=2, ensure_ascii=False)
    figures = ",\n    ".join(json.dumps(entry, ensure_ascii=False) for entry in results["figures"])
    return f'{head[:-2]},\n  "figures": [\n    {figures}\n  ]\n}}\n'


def with_previous(figures, previous):
    """Each figure with its value, baseline value and ratio in the results these replace, where those had it."""
    before = {entry["name"]: entry for entry in (previous or {}).get("figures", [])}
    for entry in figures:
        kept = {key: before.get(entry["name"], {}).get(key) for key in ("value", "baseline_value", "ratio")}
        kept = {key: value for key, value in kept.items() if value is not None}
        if kept:
            entry["previous"] = kept
    return figures


class Results:
    """Figures by name, for rendering; a figure that is not there reads as an empty one."""

    def __init__(self, data):
        self.data = data
        self.figures = data.get("figures", [])
        self.by_name = {entry["name"]: entry for entry in self.figures}

    def __call__(self, name, key="value"):
        return self.by_name.get(name, {}).get(key)

    def before(self, name, key="value"):
        return self.by_name.get(name, {}).get("previous", {}).get(key)

    def under(self, prefix):
        """The distinct middle parts of the names `prefix.MIDDLE.last`, in measuring order."""
        return list(dict.fromkeys(entry["name"][len(prefix) + 1:].rsplit(".", 1)[0] for entry in self.figures
                                  if entry["name"].startswith(prefix + ".") and entry["name"].count(".") >= 2))

    def parameter(self, name):
        return self.data.get("parameters", {}).get(name)


def fmt(value, spec):
    """A figure as the report prints it; – where there is none."""
    return "–" if value is None else format(value, spec)


def bold(text):
    return text if text == "–" else f"**{text}**"


OPERATIONS = ["put", "head", "get", "get_range", "delete"]


def overhead_rows(r, prefix):
    """The overhead table of `prefix` (overhead, overhead_fresh), and its worst p50 ratio."""
    rows = ["| operation | s3-canary p50 ms | curl p50 ms | ratio p50 | s3-canary p99 ms | curl p99 ms | ratio p99 |",
            "|---|---|---|---|---|---|---|"]
    worst = ("", 0)
    for op in OPERATIONS:
        p50, p99 = f"{prefix}.{op}.p50", f"{prefix}.{op}.p99"
        if r(p50, "ratio") is not None and r(p50, "ratio") > worst[1]:
            worst = (op, r(p50, "ratio"))
        rows.append(f"| {op} | {fmt(r(p50), '.3f')} | {fmt(r(p50, 'baseline_value'), '.3f')} | "
                    f"{bold(fmt(r(p50, 'ratio'), '.2f'))} | {fmt(r(p99), '.3f')} | "
                    f"{fmt(r(p99, 'baseline_value'), '.3f')} | {fmt(r(p99, 'ratio'), '.2f')} |")
    return "\n".join(rows), worst


def render_overhead(r):
    pooled, worst = overhead_rows(r, "overhead")
    fresh, worst_fresh = overhead_rows(r, "overhead_fresh")
    text = (f"{fmt(r('overhead.cycles'), '.0f')} cycles of s3-canary (1 KiB object, its own per-operation times from "
            f"the debug log, one backend every 100 ms) against {fmt(r('overhead.curl_requests'), '.0f')} requests "
            "per operation of `curl --aws-sigv4` (`time_total`, paced at ten a second like the canary's cycles), "
            "same RGW, same run.\n\n"
            "**Pooled against kept-alive**: the default `connection: pooled` (which opens one new connection per cycle "
            "once the put has its answer, for the head) against one kept-alive curl connection.\n\n" + pooled)
    if r("overhead_fresh.put.p50") is not None:
        text += ("\n\n**Fresh against fresh**: `connection: fresh` (a new connection for every request) against curl "
                 f"asking `Connection: close` on every request; {fmt(r('overhead_fresh.cycles'), '.0f')} cycles.\n\n"
                 + fresh)
    summary = f"Overhead: worst p50 ratio {worst[1]:.2f} ({worst[0]}) pooled"
    if r("overhead_fresh.put.p50") is not None:
        summary += f", {worst_fresh[1]:.2f} ({worst_fresh[0]}) fresh"
    return (("1. Overhead per operation against RGW (target: ratio ≤ 1.10 at p50)", text), summary + "; target ≤ 1.10")


FOOTPRINT_ROWS = [("idle RSS (MiB)", "idle_rss", "≤ 1.50", True, 1),
                  ("RSS under load (MiB)", "load_rss", "≤ 1.50", False, 1),
                  ("idle Pss, one of three copies (MiB)", "idle_pss_of_three", "", False, 1),
                  ("idle private memory, one of three copies (MiB)", "idle_private_of_three", "", False, 1),
                  ("CPU s per 1,000 operations / probes", "cpu_per_1000_operations", "≤ 1.00", True, 3)]


def render_footprint(r):
    rows = ["| figure | s3-canary | blackbox_exporter | ratio | target | s3-canary before | ratio before |",
            "|---|---|---|---|---|---|---|"]
    for label, name, target, emphasis, digits in FOOTPRINT_ROWS:
        name = f"footprint.{name}"
        ratio = fmt(r(name, "ratio"), ".2f")
        rows.append(f"| {label} | {fmt(r(name), f'.{digits}f')} | {fmt(r(name, 'baseline_value'), f'.{digits}f')} | "
                    f"{bold(ratio) if emphasis else ratio} | {target} | {fmt(r.before(name), f'.{digits}f')} | "
                    f"{fmt(r.before(name, 'ratio'), '.2f')} |")
    seconds, backends = r.parameter("footprint_seconds"), r.parameter("footprint_backends")
    interval = r.parameter("footprint_interval_s")
    rows.append(f"| work done in {seconds} s | {fmt(r('footprint.operations'), '.0f')} signed S3 operations | "
                f"{fmt(r('footprint.blackbox_probes'), '.0f')} HTTP GET probes | | | | |")
    rate = backends * 5 / interval if backends and interval else None
    return (("2. Footprint against prometheus-blackbox-exporter",
             f"Both probe the same RGW at {fmt(rate, '.0f')} requests a second for {seconds} s: s3-canary with "
             f"{backends} backends every {fmt(interval, '.0f')} s (5 signed operations a cycle), blackbox_exporter "
             "driven through `/probe` (module `http`, a GET of an object URL, no signing). CPU from "
             "`/proc/PID/stat` (utime + stime), RSS from `/proc/PID/status`; Pss and private memory "
             "(`Private_Clean + Private_Dirty`) from `/proc/PID/smaps_rollup` with three idle copies of each "
             "running at once, as three pods of one image on a node: what one more sidecar costs.\n\n"
             + "\n".join(rows)),
            f"Footprint: CPU per operation {fmt(r('footprint.cpu_per_1000_operations', 'ratio'), '.2f')}× "
            f"blackbox_exporter's per probe; idle RSS {fmt(r('footprint.idle_rss'), '.1f')} MiB, "
            f"{fmt(r('footprint.idle_rss', 'ratio'), '.2f')}× (before "
            f"{fmt(r.before('footprint.idle_rss', 'ratio'), '.2f')}×; target ≤ 1.50); under load "
            f"{fmt(r('footprint.load_rss', 'ratio'), '.2f')}× (before "
            f"{fmt(r.before('footprint.load_rss', 'ratio'), '.2f')}×); private memory of one more idle sidecar "
            f"{fmt(r('footprint.idle_private_of_three'), '.1f')} MiB against "
            f"{fmt(r('footprint.idle_private_of_three', 'baseline_value'), '.1f')}")


def render_scale(r):
    rows = ["| backends | kind | interval | CPU share of one core | RSS MiB | drift p99 | cycles measured |",
            "|---|---|---|---|---|---|---|"]
    for run in r.under("scale"):
        kind, count = run.rsplit("_", 1)
        drift = r(f"scale.{run}.drift_p99")
        rows.append(f"| {count} | {'RGW' if kind == 'rgw' else kind} | {r.parameter('scale_interval_s')} s | "
                    f"{fmt(r(f'scale.{run}.cpu_share'), '.2f')} % | {fmt(r(f'scale.{run}.rss'), '.1f')} | "
                    f"{'above every bucket' if drift is None else f'≤ {drift:.0f} ms'} | "
                    f"{fmt(r(f'scale.{run}.cycles'), '.0f')} |")
    summary = None
    if r("scale.memory_1000.cpu_share") is not None:
        summary = (f"Scale: 1,000 backends use {fmt(r('scale.memory_1000.cpu_share'), '.2f')} % of a core, drift p99 ≤ "
                   f"{fmt(r('scale.memory_1000.drift_p99'), '.0f')} ms, RSS {fmt(r('scale.memory_1000.rss'), '.1f')} "
                   f"MiB (target < 80; before {fmt(r.before('scale.memory_1000.rss'), '.1f')})")
    return (("3. Scale (target at 1,000 backends: under 10 % of a core, drift p99 under 50 ms)",
             f"Steady state after every backend's first cycle, over {r.parameter('scale_window_s')} s. In-memory "
             "backends (`s3-canary demo --load-backends`) load the scheduler, breaker, metrics and HTTP path without "
             "a network; the RGW row signs and sends every operation. Drift is how late a cycle started against its "
             "plan (`s3canary_schedule_drift_seconds`, the upper bound of the bucket holding p99).\n\n"
             + "\n".join(rows)), summary)


SCRAPE_ROWS = [("series in a text scrape", "series", ".0f", False),
               ("series Prometheus 2.42 stores from a protobuf scrape (backend series)", "protobuf_stored_series", ".0f",
                False),
               ("text, plain (MB)", "size.text_plain", ".2f", False),
               ("text, gzip (MB)", "size.text_gzip", ".2f", False),
               ("OpenMetrics with exemplars, plain (MB)", "size.openmetrics_plain", ".2f", False),
               ("protobuf, plain (MB)", "size.protobuf_plain", ".2f", False),
               ("protobuf, gzip (MB)", "size.protobuf_gzip", ".2f", False),
               ("a rendering scrape, text (ms)", "render.text", ".0f", True),
               ("a rendering scrape, text with gzip (ms)", "render.text_gzip", ".0f", False),
               ("a rendering scrape, protobuf (ms)", "render.protobuf", ".0f", False)]


def render_scrape(r):
    figures = ["| figure | now | before |", "|---|---|---|"]
    for label, name, spec, emphasis in SCRAPE_ROWS:
        now = fmt(r(f"scrape.{name}"), spec)
        figures.append(f"| {label} | {bold(now) if emphasis else now} | {fmt(r.before(f'scrape.{name}'), spec)} |")
    rows = ["| connections | format, encoding | p50 ms | p99 ms | before: p99 ms | requests | errors |",
            "|---|---|---|---|---|---|---|"]
    gzip_p99 = []
    for row in r.under("scrape.wrk"):
        connections, encoding = row.split(".")
        name = f"scrape.wrk.{row}"
        if "gzip" in encoding and r(f"{name}.p99") is not None:
            gzip_p99.append(r(f"{name}.p99"))
        rows.append(f"| {connections[1:]} | {encoding.replace('_', ', ')} | {fmt(r(f'{name}.p50'), '.1f')} | "
                    f"{bold(fmt(r(f'{name}.p99'), '.1f'))} | {fmt(r.before(f'{name}.p99'), '.1f')} | "
                    f"{fmt(r(f'{name}.requests'), '.0f')} | {'yes' if r(f'{name}.errors') else 'none'} |")
    return (("4. Scrape of /metrics with 1,000 backends (targets: gzip p99 and a rendering scrape under 50 ms)",
             f"wrk for {r.parameter('scrape_wrk_seconds')} s per row. `/metrics` renders at most once a second per "
             "format and encoding and concurrent scrapers share the rendering, so wrk mostly measures serving; a "
             "rendering scrape is the median of 5 single-client scrapes each past the cache's age. \"Before\" is the "
             "report this one replaced.\n\n" + "\n".join(figures) + "\n\n" + "\n".join(rows)),
            f"Scrape: gzip p99 at most {max(gzip_p99, default=0.0):.1f} ms under wrk with 1,000 backends at 10 and 50 "
            f"connections (target < 50 ms); a rendering scrape takes {fmt(r('scrape.render.text'), '.0f')} ms "
            f"(target < 50 ms; before {fmt(r.before('scrape.render.text'), '.0f')} ms); "
            f"{fmt(r('scrape.series'), '.0f')} series (before {fmt(r.before('scrape.series'), '.0f')})")


def render_series_budget(r):
    rows = ["| mode (`metrics:`) | text / OpenMetrics scrape | protobuf scrape as Prometheus 2.42 stores it |",
            "|---|---|---|"]
    for key, title, _ in SERIES_MODES:
        rows.append(f"| {title} | {bold(fmt(r(f'series_per_backend.{key}.text'), '.0f'))} | "
                    f"{fmt(r(f'series_per_backend.{key}.protobuf_stored'), '.0f')} |")
    if r("series_per_backend.addresses_all_3.text") is not None:
        rows.append(f"| default, `addresses: all` with {ADDRESS_COUNT} addresses (target ≤ 60 + 4 per address) | "
                    f"{bold(fmt(r('series_per_backend.addresses_all_3.text'), '.0f'))} | "
                    f"{fmt(r('series_per_backend.addresses_all_3.protobuf_stored'), '.0f')} |")
    return ("4a. Series per backend (target: at most 60 in text with classic histograms)",
            "One RGW backend over http with static keys and the default five operations, counted after its first "
            "cycle (error reasons appear when they first happen). Before this change a backend cost about 300 series "
            "(430 with all seven operations). With `addresses: all` each address adds its `s3canary_address_up` and "
            "`s3canary_address_last_success_timestamp_seconds` (and `s3canary_tls_info` over https); "
            "`request_phases` adds a histogram per phase.\n\n" + "\n".join(rows))


def render_startup(r):
    rows = ["| figure | median ms | before |", "|---|---|---|",
            f"| s3-canary: process start → `/healthz` 200 | {fmt(r('startup.healthz'), '.0f')} | "
            f"{fmt(r.before('startup.healthz'), '.0f')} |",
            f"| s3-canary: process start → first cycle done (`/readyz` 200), RGW | "
            f"{fmt(r('startup.first_cycle'), '.0f')} | {fmt(r.before('startup.first_cycle'), '.0f')} |",
            f"| blackbox_exporter: process start → `/-/healthy` 200 | "
            f"{fmt(r('startup.healthz', 'baseline_value'), '.0f')} | "
            f"{fmt(r.before('startup.healthz', 'baseline_value'), '.0f')} |",
            f"| ratio (to `/healthz`; target ≤ 2.00) | {bold(fmt(r('startup.healthz', 'ratio'), '.2f'))} | "
            f"{fmt(r.before('startup.healthz', 'ratio'), '.2f')} |"]
    return (("5. Start-up",
             f"Medians of {r.parameter('startup_starts')} starts of each, polled every millisecond.\n\n"
             + "\n".join(rows)),
            f"Start-up: /healthz after {fmt(r('startup.healthz'), '.0f')} ms "
            f"({fmt(r('startup.healthz', 'ratio'), '.2f')}× blackbox_exporter), first cycle after "
            f"{fmt(r('startup.first_cycle'), '.0f')} ms")


def render_micro(r):
    rows = ["| benchmark | ns per call | baseline | baseline ns | ratio |", "|---|---|---|---|---|"]
    for entry in r.figures:
        if entry["name"].startswith("micro."):
            rows.append(f"| {entry['name'][len('micro.'):]} | {fmt(entry['value'], '.1f')} | "
                        f"{(entry.get('baseline') or '–').removeprefix('micro.')} | "
                        f"{fmt(entry.get('baseline_value'), '.1f')} | {fmt(entry.get('ratio'), '.2f')} |")
    return ("6. Micro benchmarks (`Benchmarks/Micro`, release)",
            "Medians of 7 batches. Allocations are not counted (no allocation counter in this build).\n\n"
            + "\n".join(rows))


def render_features(r):
    rows = ["| cycle | cycles | CPU ms per cycle | ratio | operation time per cycle, ms | feature step, mean ms |",
            "|---|---|---|---|---|---|"]
    for key, title in FEATURE_VARIANTS:
        name = f"features.{key}"
        if r(f"{name}.cycles") is None:
            continue
        failures = r(f"{name}.failures")
        step = r(f"{name}.feature_step")
        operation = (r(f"{name}.feature_step", "labels") or {}).get("operation")
        step = "–" if step is None else f'{step:.1f} ("{operation}")'
        rows.append(f"| {title} | {fmt(r(f'{name}.cycles'), '.0f')}"
                    f"{f' ({failures:.0f} failed in all)' if failures else ''} | "
                    f"{fmt(r(f'{name}.cpu_per_cycle'), '.1f')} | {fmt(r(f'{name}.cpu_per_cycle', 'ratio'), '.2f')}× | "
                    f"{fmt(r(f'{name}.operation_time'), '.1f')} | "
                    f"{step} |")
    return ("7. Compatibility operations: cost per cycle against RGW",
            "One backend, release build, CPU of the s3-canary process per cycle (utime + stime) and the sum of its "
            "operations' durations per cycle; the ratio is against the basic cycle of the same run.\n\n"
            + "\n".join(rows))


def render_image(r):
    rows = ["| | now | before |", "|---|---|---|",
            f"| compressed (the layer a registry stores and a node pulls; target < 40 MB) | "
            f"{bold(fmt(r('image.compressed'), '.1f'))} MB | {fmt(r.before('image.compressed'), '.1f')} MB |",
            f"| unpacked (the files on the node) | {fmt(r('image.unpacked'), '.1f')} MB | "
            f"{fmt(r.before('image.unpacked'), '.1f')} MB |"]
    return (("8. The container image",
             "`scripts/image.sh` on the binary measured: FROM scratch, the stripped binary (34 MB of its 76 are the ICU data "
             "Foundation links in), the libraries ldd lists, CA certificates and tzdata; one gzip layer.\n\n"
             + "\n".join(rows)),
            f"Image: {fmt(r('image.compressed'), '.1f')} MB compressed (target < 40), "
            f"{fmt(r('image.unpacked'), '.1f')} MB unpacked")


def render(results):
    """bench/REPORT.md from results.json's content alone."""
    r = Results(results)
    (overhead, overhead_summary), (footprint, footprint_summary) = render_overhead(r), render_footprint(r)
    (scale, scale_summary), (scrape, scrape_summary) = render_scale(r), render_scrape(r)
    startup, startup_summary = render_startup(r)
    image, image_summary = render_image(r)
    summary = [overhead_summary, footprint_summary, scrape_summary, scale_summary, startup_summary, image_summary]
    sections = [overhead, footprint, scale, scrape, render_series_budget(r), startup, render_micro(r),
                render_features(r), image]
    m = results["machine"]
    date = results["date"]
    text = ("# s3-canary benchmark report\n\n"
            f"Written by `scripts/bench.sh` on {date[:10]} {date[11:16]} UTC in {results['minutes']:.1f} minutes of "
            f"measuring{' (quick mode)' if results.get('quick') else ''}.\n\n"
            f"Machine: {m['cpus']} × {m['cpu']}, {m['memory_gib']} GiB, Linux {m['kernel']}, {m['swift']}, release "
            f"build; RGW: Ceph {m['ceph']} memstore, beast frontend with tcp_nodelay=1, on the same machine.\n\n"
            + (f"Note: {results['note']}\n\n" if results.get("note") else "")
            + "## Summary\n\n" + "".join(f"- {line}\n" for line in summary if line) + "\n")
    return text + "".join(f"## {title}\n\n{body}\n\n" for title, body in sections)


# Measuring and rendering --------------------------------------------------------------------------------------------

def measure():
    global BINARY, MICRO, RGW, ACCESS, SECRET, WORK
    needed = ["BENCH_BINARY", "BENCH_MICRO", "S3CANARY_TEST_RGW_ENDPOINT", "S3CANARY_TEST_RGW_ACCESS_KEY",
              "S3CANARY_TEST_RGW_SECRET_KEY"]
    if any(name not in os.environ for name in needed):
        sys.exit(f"bench: {', '.join(n for n in needed if n not in os.environ)} not set: scripts/bench.sh measures; "
                 "`python3 scripts/bench.py render` renders bench/REPORT.md from bench/results.json")
    BINARY, MICRO, RGW, ACCESS, SECRET = (os.environ[name] for name in needed)
    WORK = tempfile.mkdtemp(prefix="s3canary-bench-")
    only = {"features": (lambda: bench_features(), render_features),
            "overhead": (lambda: (bench_overhead(), bench_overhead("fresh")), lambda r: render_overhead(r)[0])}
    if os.environ.get("BENCH_ONLY") in only:
        run, render_section = only[os.environ["BENCH_ONLY"]]
        run()
        title, body = render_section(Results({"figures": FIGURES}))
        print(f"## {title}\n\n{body}\n")
        shutil.rmtree(WORK, ignore_errors=True)
        return
    # The results this run replaces, read before anything is measured or written: their figures are the "before".
    try:
        previous = load_results(RESULTS)
    except ValueError as error:
        log(f"{error}: no previous figures")
        previous = None
    started = time.monotonic()
    bench_series_budget()
    bench_overhead()
    bench_overhead("fresh")
    bench_footprint()
    bench_scale()
    bench_startup()
    bench_micro()
    bench_features()
    bench_image()
    minutes = (time.monotonic() - started) / 60
    commit, dirty = git_state()
    results = {"format": FORMAT, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "minutes": round(minutes, 2), "quick": QUICK, "commit": commit, "dirty": dirty, "machine": machine(),
               "parameters": PARAMETERS,
               "previous": {"date": previous["date"], "commit": previous.get("commit")} if previous else None,
               "figures": with_previous(FIGURES, previous)}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS + ".tmp", "w", encoding="utf-8") as f:
        f.write(dumps(results))
    os.replace(RESULTS + ".tmp", RESULTS)
    # The report from the file just written, exactly as `render` makes it.
    with open(REPORT, "w", encoding="utf-8") as f:
        f.write(render(load_results(RESULTS)))
    shutil.rmtree(WORK, ignore_errors=True)
    log(f"wrote bench/results.json and bench/REPORT.md in {minutes:.1f} minutes")


def main():
    if sys.argv[1:2] == ["render"]:
        parser = argparse.ArgumentParser(prog="bench.py render",
                                         description="bench/REPORT.md from bench/results.json, nothing measured.")
        parser.add_argument("--results", default=RESULTS, help="default: %(default)s")
        parser.add_argument("--output", default=REPORT, help="a file, or - for stdout (default: %(default)s)")
        args = parser.parse_args(sys.argv[2:])
        try:
            results = load_results(args.results)
        except (ValueError, OSError) as error:
            sys.exit(f"bench: {error}")
        if results is None:
            sys.exit(f"bench: no {args.results}: scripts/bench.sh writes it")
        text = render(results)
        if args.output == "-":
            sys.stdout.write(text)
        else:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        return
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    measure()


if __name__ == "__main__":
    main()
