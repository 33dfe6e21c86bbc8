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

    python3 scripts/hot_text.py coverage --lds scripts/release/hot-text.lds --objects DIR|FILE|@LIST ...

says how much of a list still holds (scripts/release.sh runs it after every link): the share of the input sections
it places (a function's `.text.NAME`, or a toolchain object's whole `.text`) that exist in the objects being linked,
found with nm (`--nm`; `nm`, else `llvm-nm`). Objects: directories (searched for `.o` and `.a`), object files,
archives, and `@LIST`, a file naming one object a line (SwiftPM's `PRODUCT.product/Objects.LinkFileList`). One line
on stdout; exit 0 at or above the threshold (`--threshold`, 80 % by default), 1 below it, 2 when the list is missing
or not in the shape this script writes, or nm failed. Without --objects it only checks that shape. `--missing`
lists on stderr what is no longer there.
"""
import argparse
import bisect
import collections
import fnmatch
import os
import re
import shlex
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

# The linker script around the list, as main writes it and `coverage` reads it back: one `.text` as lld lays it out
# by default (input order), the hot code first, between two symbols that scripts/release.sh reads.
OPENING = ("SECTIONS {", "  .text : {", "    __s3canary_hot_text_start = .;")
CLOSING = ("    __s3canary_hot_text_end = .;", "    *(.text .stub .text.* .gnu.linkonce.t.*)", "  }", "}",
           "INSERT BEFORE .init;")


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
    # OPENING and CLOSING around the list. (A separate output section ahead of `.text` works as well, but valgrind
    # 3.19 then cannot find the binary's code, and this script could not profile the binary it helped to build.)
    print("\n".join(OPENING))
    for name, found in ordered:
        print(f"    {name}({' '.join(sorted(found))})")
    print("\n".join(CLOSING))


# --- coverage: how much of a list the objects being linked still hold ---------------------------------------------

# scripts/release.sh keeps the order when at least this share of what it places is still there, and links without it
# below. Why 80 %: routine work moves little of a list (a changed signature renames a function, a closure added ahead
# of others renumbers them, an edit changes which specialisations exist): each list generated so far named 99.5-99.7 %
# of what the one before it named (git log scripts/release/hot-text.lds). A fifth or more goes when what is compiled
# changes, not a few functions: another toolchain (other mangling, other specialisations in the standard library),
# another optimisation mode, a module renamed or split; the committed list measured against this checkout's debug
# objects (-Onone) holds 74 %. Such a list was made for another program, and the layout it gives is one nobody
# measured; a bar below 80 % would keep it, one near 100 % would drop the order on routine edits that still leave it
# nearly all its effect. (Coverage counts what the list still places, not the hot code it lacks: new functions in the
# cold part each cost a 64 KiB window when they run, which bench/REPORT.md's idle RSS shows and this figure does not.)
MIN_COVERAGE = 80.0

ENTRY = re.compile(r"^([^\s()]+)\(([^()]+)\)$")  # `*/Module.build/File.swift.o(.text.a .text.b)`
SECTION = re.compile(r"^\.text(\.[^\s()*?\[\]]+)?$")  # one named section, no wildcard


class Malformed(Exception):
    """The list cannot be used."""


class Unreadable(Exception):
    """The objects cannot be read."""


def read_list(path):
    """The (object pattern, section) pairs a linker script written by main places, in order; Malformed when the file
    is missing or not in that shape (a list lld might read differently from this function is not trusted)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise Malformed(f"{path} cannot be read ({error.strerror if isinstance(error, OSError) else error})")
    lines = [line.strip() for line in re.sub(r"/\*.*?\*/", "", text, flags=re.S).splitlines() if line.strip()]
    opening, closing = [line.strip() for line in OPENING], [line.strip() for line in CLOSING]
    if lines[:len(opening)] != opening or lines[-len(closing):] != closing or len(lines) < len(opening + closing):
        raise Malformed(f"{path} is not a hot-text linker script (no `{opening[-1]}` ... `{closing[-1]}` frame)")
    entries = []
    for line in lines[len(opening):-len(closing)]:
        match = ENTRY.match(line)
        sections = match.group(2).split() if match else []
        if not match or not all(SECTION.match(section) for section in sections):
            raise Malformed(f"{path}: not an `object(sections)` line: {line[:120]}")
        entries += [(match.group(1), section) for section in sections]
    if not entries:
        raise Malformed(f"{path} lists no section")
    return list(dict.fromkeys(entries))


def tail(name):
    """A file's or archive member's own name: what follows the last `/` or `:`."""
    return re.split(r"[/:]", name)[-1]


class Patterns:
    """Object patterns of a list, matched as lld matches them: the whole path of an object as the link names it,
    `ARCHIVE:MEMBER` for a member of an archive. Indexed by the name's tail, which is literal in every pattern main
    writes but a few (`?` for characters a script cannot hold): those are tried on every name."""

    def __init__(self, patterns):
        self.by_tail, self.wild = collections.defaultdict(list), []
        for pattern in set(patterns):
            key = tail(pattern)
            (self.wild if any(c in key for c in "*?[") else self.by_tail[key]).append(pattern)

    def matching(self, name):
        return [p for p in self.by_tail.get(tail(name), []) + self.wild if fnmatch.fnmatchcase(name, p)]


def object_files(arguments):
    """Absolute paths of the object files and archives ARGUMENTS name (see the module's help)."""
    files = []
    for argument in arguments:
        if argument.startswith("@"):
            with open(argument[1:], encoding="utf-8") as f:  # one path a line, quoted as a shell would read it
                files += [path for line in f if line.strip() for path in shlex.split(line)]
        elif os.path.isdir(argument):
            for folder, _, names in os.walk(argument):
                files += [os.path.join(folder, name) for name in sorted(names) if name.endswith((".o", ".a"))]
        else:
            files.append(argument)
    return [os.path.abspath(path) for path in dict.fromkeys(files)]


def default_nm():
    for tool in ("nm", "llvm-nm"):
        if shutil.which(tool):
            return tool
    swift = shutil.which("swift")
    return os.path.join(os.path.dirname(os.path.realpath(swift)), "llvm-nm") if swift else "nm"


def defined_names(nm, files):
    """{object or `ARCHIVE:MEMBER`: names it defines}: symbols, and with -a the section symbols (`.text.NAME`), the
    only name a function without a symbol of its own has (Swift's `.L__unnamed_1`, `.Lobjectdestroy`)."""
    names = collections.defaultdict(set)
    for start in range(0, len(files), 200):
        batch = files[start:start + 200]
        try:
            run = subprocess.run([nm, "-A", "-a", "--defined-only"] + batch, capture_output=True, text=True,
                                 errors="replace")
        except OSError as error:
            raise Unreadable(f"{nm} cannot run ({error.strerror})")
        if run.returncode != 0 and not run.stdout:
            raise Unreadable(f"{nm} failed: {(run.stderr.strip().splitlines() or ['no output'])[0]}")
        for line in run.stdout.splitlines():
            # GNU: `FILE:ADDRESS TYPE NAME`, llvm-nm: `FILE: ADDRESS TYPE NAME`; FILE is `ARCHIVE:MEMBER` in archives.
            parts = line.rsplit(None, 2)
            where = re.match(r"^(.*):\s*[0-9a-fA-F]+$", parts[0]) if len(parts) == 3 else None
            if where:
                names[where.group(1)].add(parts[2])
    return names


def coverage(argv):
    parser = argparse.ArgumentParser(prog="hot_text.py coverage",
                                     description="How much of a hot-text linker script the objects being linked hold.")
    parser.add_argument("--lds", required=True, help="the linker script (scripts/release/hot-text.lds)")
    parser.add_argument("--objects", nargs="+", action="extend", default=[], metavar="DIR|FILE|@LIST",
                        help="folders searched for .o and .a, object files, archives, @file listing objects")
    parser.add_argument("--threshold", type=float, default=MIN_COVERAGE, help="percent (default %(default)s)")
    parser.add_argument("--nm", default=None, help="nm or llvm-nm (default: nm, else llvm-nm)")
    parser.add_argument("--missing", action="store_true", help="list on stderr what is no longer there")
    args = parser.parse_args(argv)
    try:
        entries = read_list(args.lds)
        objects = {pattern for pattern, _ in entries}
        if not args.objects:
            print(f"{args.lds}: {len(entries)} sections of {len(objects)} objects")
            return 0
        patterns = Patterns(objects)
        # Only files a pattern can name go to nm: object files by path, archives by the part before the member.
        archives = Patterns(pattern.rsplit(":", 1)[0] for pattern in objects if ":" in pattern)
        try:
            files = [path for path in object_files(args.objects)
                     if (archives if path.endswith(".a") else patterns).matching(path)]
        except OSError as error:
            raise Unreadable(f"{error.filename}: {error.strerror}")
        names = defined_names(args.nm or default_nm(), files)
        by_pattern = collections.defaultdict(list)
        for name in names:
            for pattern in patterns.matching(name):
                by_pattern[pattern].append(names[name])
    except Malformed as error:
        print(f"hot-text list unusable: {error}")
        return 2
    except Unreadable as error:
        print(f"hot-text coverage unknown: {error}")
        return 2
    found, missing = 0, []
    for pattern, section in entries:
        held = by_pattern.get(pattern, [])
        # `.text.NAME` holds the function NAME (or is named by its section symbol); a whole `.text` needs its object.
        wanted = section[len(".text."):]
        if held if section == ".text" else any(wanted in defined or section in defined for defined in held):
            found += 1
        else:
            missing.append(f"{pattern}({section})")
    share = 100.0 * found / len(entries)
    print(f"hot-text coverage {share:.1f} % (threshold {args.threshold:g} %): {found} of the {len(entries)} "
          f"sections {args.lds} places are in the objects linked ({len(by_pattern)} of its {len(objects)} objects)")
    if args.missing:
        print("\n".join(missing), file=sys.stderr)
    return 0 if share >= args.threshold else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["coverage"]:
        sys.exit(coverage(sys.argv[2:]))
    main()
