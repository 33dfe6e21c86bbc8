#!/usr/bin/env python3
"""The suites a test phase runs, from their Swift Testing tags (Tests/TestSupport/Tags.swift).

`swift test --filter tag:NAME` does not select by tag with this toolchain (Swift 6.3.1 runs 0 tests for it), so
scripts/test.sh asks this script for the suites that carry a tag and passes them to --filter / --skip:

    scripts/test-phase.py faults     FaultMatrixTests|CrashRecoveryTests|...   (the suites tagged .faults)
    scripts/test-phase.py --tagged   every suite that carries any phase tag    (what the main phase skips)

Exits 1 when a tag names no suite, or a suite uses a tag Tags.swift does not declare: a phase never runs empty.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUITE = re.compile(r"@Suite\((?P<args>(?:[^()]|\([^()]*\))*)\)\s*(?:@\w+(?:\([^)]*\))?\s*)*struct\s+(?P<name>\w+)", re.S)


def declared_tags():
    text = (ROOT / "Tests/TestSupport/Tags.swift").read_text()
    return set(re.findall(r"@Tag\s+package\s+static\s+var\s+(\w+)", text))


def suites_by_tag():
    found = {}
    for path in sorted((ROOT / "Tests").rglob("*.swift")):
        for match in SUITE.finditer(path.read_text()):
            tags = re.search(r"\.tags\(([^)]*)\)", match.group("args"))
            for tag in re.findall(r"\.(\w+)", tags.group(1)) if tags else []:
                found.setdefault(tag, []).append(match.group("name"))
    return found


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    declared = declared_tags()
    found = suites_by_tag()
    unknown = sorted(set(found) - declared)
    if unknown:
        print(f"suites use undeclared tags: {', '.join(unknown)} (declare them in Tests/TestSupport/Tags.swift)",
              file=sys.stderr)
        return 1
    if sys.argv[1] == "--tagged":
        names = sorted({name for names in found.values() for name in names})
    else:
        tag = sys.argv[1]
        if tag not in declared:
            print(f"no tag {tag} in Tests/TestSupport/Tags.swift", file=sys.stderr)
            return 1
        names = found.get(tag, [])
    if not names:
        print(f"no suite carries {sys.argv[1]}: the phase would run nothing", file=sys.stderr)
        return 1
    print("|".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
