#!/usr/bin/env python3
"""Writes the build's identity into a linked s3-canary binary: `revision=COMMIT swift=VERSION`.

Sources/BuildStamp/stamp.c explains why the stamp is written after linking. The commit is the work tree's HEAD, with
`-dirty` when tracked files differ from it; the Swift version is what `swift --version` says (the toolchain that
built the binary, since scripts/release.sh runs this right after linking). `s3-canary --version` and the
`s3canary_build_info` metric read it back.

    scripts/stamp.py BINARY            stamp BINARY in place (exits 1 if the marker is not there exactly once)
    scripts/stamp.py --print BINARY    print BINARY's stamp ("" when unstamped)
"""
import os
import pathlib
import re
import subprocess
import sys

MARKER = b"s3-canary build stamp:"
FIELD = 128  # the C array's size, marker included
SPACE = FIELD - len(MARKER) - 1  # the stamp's bytes; one NUL at least


def locate(data):
    first = data.find(MARKER)
    if first < 0 or data.find(MARKER, first + 1) >= 0:
        raise SystemExit(f"stamp: the marker {MARKER.decode()!r} is not in the binary exactly once "
                         "(is it an s3-canary built from this tree?)")
    return first + len(MARKER)


def current(root):
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    revision = commit.stdout.strip() if commit.returncode == 0 else "unknown"
    if commit.returncode == 0:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True)
        if dirty.returncode == 0 and dirty.stdout.strip():
            revision += "-dirty"
    version = subprocess.run(["swift", "--version"], capture_output=True, text=True)
    match = re.search(r"Swift version (\S+)", version.stdout + version.stderr)
    return f"revision={revision} swift={match.group(1) if match else 'unknown'}"


def main(argv):
    if len(argv) == 3 and argv[1] == "--print":
        data = pathlib.Path(argv[2]).read_bytes()
        start = locate(data)
        print(data[start:start + SPACE + 1].split(b"\0", 1)[0].decode())
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = pathlib.Path(argv[1])
    data = bytearray(path.read_bytes())
    start = locate(data)
    stamp = current(pathlib.Path(__file__).resolve().parent.parent).encode()
    if len(stamp) > SPACE:
        raise SystemExit(f"stamp: {stamp.decode()!r} is longer than the field's {SPACE} bytes")
    data[start:start + SPACE + 1] = stamp + b"\0" * (SPACE + 1 - len(stamp))
    # A new file renamed over the old one: a running binary cannot be written in place ("text file busy").
    temporary = path.with_name(path.name + ".stamping")
    temporary.write_bytes(bytes(data))
    os.chmod(temporary, path.stat().st_mode)
    os.replace(temporary, path)
    print(stamp.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
