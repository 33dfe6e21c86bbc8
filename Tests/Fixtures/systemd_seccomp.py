"""Turns the system-call filter of a systemd unit into a seccomp profile podman can run a container under.

    python3 systemd_seccomp.py UNIT OUT.json

Reads the unit's `SystemCallFilter=` lines (an allow list, then `~` deny lists, as systemd applies them) and
`SystemCallErrorNumber=`, expands every `@group` with `systemd-analyze syscall-filter` (groups nest), and writes an
OCI seccomp profile: the allowed calls, everything else failing with that errno. ImageTests run the service under it,
so Config/systemd/s3-canary.service's filter is known to let the canary run. Prints the number of allowed calls.
"""
import errno
import json
import re
import subprocess
import sys


def groups():
    """Every group systemd knows: name -> members (calls and nested groups)."""
    text = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], check=True, capture_output=True,
                          text=True).stdout
    table, current = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            current = line.strip()
            table[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            table[current].append(line.strip())
    return table


def expand(names, table, seen=None):
    seen = set() if seen is None else seen
    calls = set()
    for name in names:
        if name.startswith("@"):
            if name in seen:
                continue
            seen.add(name)
            if name not in table:
                sys.exit(f"systemd_seccomp: unknown group {name}")
            calls |= expand(table[name], table, seen)
        else:
            calls.add(name)
    return calls


def main(unit_path, out_path):
    allow, deny, error_number = None, set(), "EPERM"
    table = groups()
    for line in open(unit_path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("SystemCallFilter="):
            value = line.split("=", 1)[1]
            if value.startswith("~"):
                deny |= expand(value[1:].split(), table)
            else:
                allow = (allow or set()) | expand(value.split(), table)
        elif line.startswith("SystemCallErrorNumber="):
            error_number = line.split("=", 1)[1]
    if allow is None:
        sys.exit(f"systemd_seccomp: {unit_path} has no SystemCallFilter allow list")
    calls = sorted(c for c in allow - deny if re.fullmatch(r"[a-z0-9_]+", c))
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": getattr(errno, error_number),
               "syscalls": [{"names": calls, "action": "SCMP_ACT_ALLOW"}]}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(profile, f, indent=1)
    print(len(calls))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
