#!/usr/bin/env python3
"""Writes the linker script that puts the code a running sidecar executes side by side (scripts/release.sh).

    bin=$(scripts/release.sh | tail -1)
    python3 scripts/hot_text.py "$bin" "$bin.map" > scripts/release/hot-text.lds
    scripts/release.sh        # links again with the new list

Why: Linux maps a binary's code into a process in 64 KiB windows around each page it executes ("fault-around"),
so a sidecar that runs 2 MiB of functions spread over 27 MiB of code held 17 MiB of it resident. Placed together,
at the start of `.text`, they fill a few dozen windows (docs/design.md 4.13).

How: BINARY (built by scripts/release.sh, which writes the linker's map beside it) runs under valgrind's callgrind
through what a deployed sidecar does: start with a state directory, serve /healthz and /readyz, probe a moto
server every second with the default operations, answer scrapes of /metrics in text, gzip, OpenMetrics and
protobuf, /status and the status page, stop on SIGTERM. Every executed instruction address is looked up in the
map, which names the input section holding it; the script lists those sections by object file (exactly the
copy that ran: several objects define local helpers of the same name, and a symbol list could not say which).

The list names objects by path below their module's build folder and toolchain objects by library and member, so
it holds for any checkout. A section it misses (new code, a renamed function) still links, in `.text`, and costs
a window when it runs: regenerate after changing what runs at start or every cycle; bench/REPORT.md's idle RSS is
the check. Needs valgrind (apt) and moto (pip install 'moto[server]').
"""
import bisect
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SCRAPES = (("/healthz", {}), ("/readyz", {}), ("/metrics", {}), ("/metrics", {"Accept-Encoding": "gzip"}),
           ("/metrics", {"Accept": "application/openmetrics-text;version=1.0.0"}),
           ("/metrics", {"Accept": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                   "encoding=delimited", "Accept-Encoding": "gzip"}),
           ("/status", {}), ("/", {}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None, timeout=30):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
        return response.status, response.read()


def wait_for(url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(url, timeout=2)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"hot_text: {url} did not answer 200 within {timeout} s")


def profile(binary, work):
    """Runs a stripped copy of BINARY under callgrind through a sidecar's day; returns the executed addresses."""
    # valgrind 3.19 cannot read the DWARF 5 Swift's clang writes: it runs a copy without debug information (the same
    # code at the same addresses).
    toolchain = os.path.dirname(os.path.realpath(subprocess.check_output(["which", "swift"], text=True).strip()))
    stripped = os.path.join(work, "s3-canary")
    subprocess.run([os.path.join(toolchain, "llvm-objcopy"), "--strip-debug", binary, stripped], check=True)
    moto_port, port = free_port(), free_port()
    processes = [subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    output = os.path.join(work, "callgrind.out")
    try:
        wait_for(f"http://127.0.0.1:{moto_port}/moto-api/", 30)
        bucket = urllib.request.Request(f"http://127.0.0.1:{moto_port}/hot", method="PUT")
        urllib.request.urlopen(bucket).read()
        config = os.path.join(work, "config.yaml")
        with open(config, "w") as f:
            f.write(f"listen: 127.0.0.1:{port}\ninstance: hot\nstate_dir: {work}/state\n"
                    "probe: {interval: 1s, timeout: 800ms}\n"
                    f"backends:\n  - name: moto\n    endpoint: http://127.0.0.1:{moto_port}\n    bucket: hot\n"
                    "    credentials: {access_key_id: hot-text, secret_access_key: hot-text-secret}\n")
        canary = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}",
                                   "--dump-instr=yes", "--compress-strings=no", "--compress-pos=no",
                                   stripped, "run", "--config", config, "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "valgrind.log"), "w"))
        processes.append(canary)
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/healthz", 120)
        deadline, cycles = time.monotonic() + 120, 0
        while cycles < 10 and time.monotonic() < deadline:
            for path, headers in SCRAPES:
                try:
                    get(base + path, headers)
                except urllib.error.HTTPError:
                    pass  # /readyz answers 503 until the first cycle: the code that says so ran all the same
            text = get(base + "/metrics")[1].decode()
            cycles = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                         if line.startswith("s3canary_probes_total{") and 'result="success"' in line)
            time.sleep(1)
        if cycles < 10:
            sys.exit(f"hot_text: {cycles:.0f} successful cycles in 120 s, 10 needed (see {work})")
        canary.send_signal(signal.SIGTERM)
        canary.wait(timeout=120)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    # Cost lines begin with the instruction's address (in the binary's own address space: callgrind writes
    # addresses relative to the object's load address).
    addresses, in_binary = set(), False
    with open(output) as f:
        for line in f:
            if line.startswith("ob="):
                in_binary = line[3:].strip() == stripped
            elif in_binary and line.startswith("0x"):
                addresses.add(int(line.split(" ", 1)[0], 16))
    if not addresses:
        sys.exit(f"hot_text: no instruction of {stripped} in {output}")
    return addresses


def text_sections(link_map):
    """The input sections of `.text` in lld's map: (start, end, object, section)."""
    sections, in_text, column = [], False, 49  # VMA, LMA, Size, Align, then the indented name
    with open(link_map) as f:
        for line in f:
            if len(line) <= column:
                continue
            head, rest = line[:column], line[column:].rstrip("\n")
            indent = len(rest) - len(rest.lstrip())
            if indent == 0:
                in_text = rest.strip() == ".text"
            elif in_text and indent == 8 and ":(" in rest:  # not the script's own `symbol = .` lines
                vma, _, size, _ = head.split()
                source, section = rest.strip().rsplit(":(", 1)
                sections.append((int(vma, 16), int(vma, 16) + int(size, 16), source, section[:-1]))
    sections.sort()
    return sections


def pattern(source):
    """An object's name that holds in any checkout: `*/Module.build/File.swift.o`, `*libswiftCore.a:Swift.o`."""
    member = re.search(r"/lib([^/]+)\.a\((.+)\)$", source)
    built = re.search(r"/([^/]+\.build/.+)$", source)
    name = f"*lib{member.group(1)}.a:{member.group(2)}" if member else f"*/{built.group(1)}" if built else None
    # A bare word in a linker script ends at a space or parenthesis (a quoted one would not be a pattern): `?`
    # matches any one character.
    return re.sub(r"[^A-Za-z0-9_.+/:*-]", "?", name) if name else None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, link_map = os.path.abspath(sys.argv[1]), sys.argv[2]
    for tool, fix in (("valgrind", "apt-get install valgrind"), ("moto_server", "pip install 'moto[server]'")):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"hot_text: {tool} is missing ({fix})")
    work = tempfile.mkdtemp(prefix="s3canary-hot.")
    addresses = sorted(profile(binary, work))
    shutil.rmtree(work)  # a stripped copy of the binary and the profile: over 100 MB (kept when a step failed)
    sections = text_sections(link_map)
    starts = [section[0] for section in sections]
    hot = {}
    for address in addresses:
        index = bisect.bisect_right(starts, address) - 1
        if index >= 0 and address < sections[index][1]:
            start, end, source, section = sections[index]
            name = pattern(source)
            if name:  # the C runtime's start files stay where the linker puts them
                hot.setdefault(name, {})[section] = end - start
    # Objects whose functions have sections of their own first; then objects from the toolchain's static libraries,
    # which are not built with function sections: a function there moves its whole object's `.text`, after the
    # others, so those objects cannot spread the precise part apart.
    ordered = sorted(hot.items(), key=lambda item: (".text" in item[1], item[0]))
    functions = sum(len(found) - (".text" in found) for _, found in ordered)
    precise = sum(size for _, found in ordered for section, size in found.items() if section != ".text")
    objects = sum(".text" in found for _, found in ordered)
    whole = sum(found.get(".text", 0) for _, found in ordered)
    print(f"/* Code a running sidecar executes, at the start of .text: scripts/hot_text.py, "
          f"{time.strftime('%Y-%m-%d')}.\n"
          f"   {functions} functions ({precise / 2**20:.2f} MiB), then the .text of {objects} toolchain objects "
          f"({whole / 2**20:.2f} MiB). */")
    # One `.text` as lld lays it out by default (input order), the hot code first, between two symbols that
    # scripts/release.sh checks. (A separate output section ahead of `.text` works as well, but valgrind 3.19 then
    # cannot find the binary's code, and this script could not profile the binary it helped to build.)
    print("SECTIONS {\n  .text : {\n    __s3canary_hot_text_start = .;")
    for name, found in ordered:
        print(f"    {name}({' '.join(sorted(found))})")
    print("    __s3canary_hot_text_end = .;\n"
          "    *(.text .stub .text.* .gnu.linkonce.t.*)\n"
          "  }\n}\nINSERT BEFORE .init;")

if __name__ == "__main__":
    main()
