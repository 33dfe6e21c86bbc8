#!/usr/bin/env python3
"""Every module a target's files import is one the target declares in Package.swift.

SwiftPM's `--explicit-target-dependency-import-check error` reports nothing with the native build system on this
toolchain (Swift 6.3.1: a file of SidecarNotify imported SidecarBreaker, undeclared, and the build passed), so this
reads the declarations from `swift package dump-package` and the imports from the sources, and exits 1 naming each
file that imports a module its target does not declare. It also fails when a target of ours depends on one above it in
LAYERS, the order docs/development.md ("Target graph") draws, when a library target is missing from LAYERS, and on a
dependency a target declares that none of its files imports.

    scripts/check-imports.py            (runs swift package dump-package itself)
    scripts/check-imports.py dump.json  (reads a saved dump)
    scripts/check-imports.py --graph    the target graph in Markdown, bottom layer first (docs/development.md)
"""
import json
import pathlib
import re
import subprocess
import sys

# Modules every Swift target may import: the toolchain's own.
TOOLCHAIN = {"Foundation", "FoundationEssentials", "Dispatch", "Glibc", "Musl", "Darwin", "Synchronization",
             "Testing", "XCTest", "_Concurrency", "Swift", "os"}

# Our targets from the bottom up: each may depend only on targets before it.
LAYERS = ["BuildStamp", "PrometheusExposition", "ObjectStorage", "SidecarConfig", "SidecarBreaker", "SidecarEvents", "SidecarCanary",
          "SidecarTelemetry", "SidecarState", "SidecarNotify", "SidecarServer", "CanarySidecar", "s3-canary"]

IMPORT = re.compile(r"^(?:@testable\s+|@_\w+\s+)*(?:public\s+|package\s+|internal\s+)?import\s+"
                    r"(?:(?:struct|class|enum|protocol|typealias|func|var|let)\s+)?(\w+)")


def imports(text):
    """The modules a file imports: its leading lines only (imports, comments, #if), never code or strings."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("//", "#if", "#else", "#elseif", "#endif")):
            continue
        match = IMPORT.match(stripped)
        if not match:
            return
        yield match.group(1)


def graph(package):
    """Each target of ours with what it declares: our targets first (in layer order), then other packages' products."""
    targets = {t["name"]: t for t in package["targets"]}
    names = [n for n in LAYERS if n in targets] + sorted(
        n for n, t in targets.items() if n not in LAYERS and t["type"] in ("executable", "regular"))
    names += sorted(n for n, t in targets.items() if t["type"] == "test")
    lines = []
    for name in names:
        ours, products = [], []
        for dependency in targets[name].get("dependencies", []):
            if "product" in dependency:
                products.append(dependency["product"][0])
            else:
                ours.append(dependency.get("byName", dependency.get("target", ["?"]))[0])
        ours.sort(key=lambda n: (LAYERS.index(n) if n in LAYERS else len(LAYERS), n))
        kind = {"test": "test", "executable": "executable"}.get(targets[name]["type"], "library")
        if name == "TestSupport":
            kind = "test support"
        parts = [f"`{n}`" for n in ours] + sorted(set(products))
        lines.append(f"- `{name}` ({kind}): " + (", ".join(parts) if parts else "nothing"))
    return "\n".join(lines) + "\n"


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    if len(sys.argv) > 1 and sys.argv[1] == "--graph":
        package = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                            capture_output=True, text=True).stdout)
        print(graph(package), end="")
        return 0
    if len(sys.argv) > 1:
        package = json.loads(pathlib.Path(sys.argv[1]).read_text())
    else:
        package = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                            capture_output=True, text=True).stdout)
    targets = {t["name"]: t for t in package["targets"]}
    problems = []
    for name, target in targets.items():
        declared = set()
        for dependency in target.get("dependencies", []):
            for kind in ("byName", "target", "product"):
                if kind in dependency:
                    declared.add(dependency[kind][0])
        default = {"test": "Tests", "executable": "Sources"}.get(target["type"], "Sources")
        path = root / (target.get("path") or f"{default}/{name}")
        used = set()
        for file in sorted(path.rglob("*.swift")):
            for module in imports(file.read_text()):
                used.add(module)
                if module not in declared and module not in TOOLCHAIN and module != name:
                    problems.append(f"{file.relative_to(root)}: imports {module}, which target {name} does not "
                                    f"declare; add it to {name}'s dependencies in Package.swift or drop the import")
        for module in sorted(declared - used):
            problems.append(f"target {name} declares {module}, which none of its files imports; drop it from "
                            f"Package.swift")
    for name, target in targets.items():
        if target["type"] == "regular" and name not in LAYERS and not (target.get("path") or "").startswith("Tests"):
            problems.append(f"target {name} is not in scripts/check-imports.py's LAYERS; place it in the layer order")
        if name not in LAYERS:
            continue
        for dependency in target.get("dependencies", []):
            below = dependency.get("byName", dependency.get("target", [None]))[0]
            if below in LAYERS and LAYERS.index(below) >= LAYERS.index(name):
                problems.append(f"target {name} depends on {below}, which is not below it in LAYERS")
    for problem in problems:
        print(problem)
    if problems:
        print(f"FAILED: {len(problems)} import or layer problem(s)")
        return 1
    print(f"imports checked: {len(targets)} targets import only what they declare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
