#!/usr/bin/env bash
# The generated docs, checked: each is made again from its declaration and compared with the committed copy.
#   scripts/check-docs.sh           exit 1 naming every committed file that differs from what is generated
#   scripts/check-docs.sh --write   write the generated files instead (then commit them)
# Uses $S3CANARY_BINARY when set (scripts/test.sh sets it), otherwise builds the debug binary.
set -euo pipefail
cd "$(dirname "$0")/.."

write=false
[ "${1:-}" = "--write" ] && write=true

bin=${S3CANARY_BINARY:-}
if [ -z "$bin" ]; then
    swift build --product s3-canary >/dev/null
    bin="$(swift build --show-bin-path)/s3-canary"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# file, then the command that generates it
generated=(
    "docs/configuration.md" "$bin config-docs"
    "Config/s3-canary.schema.json" "$bin config-schema"
    "bench/REPORT.md" "python3 scripts/bench.py render --output -"
)
# docs/compatibility.md comes from a run of the server matrix (scripts/test.sh's matrix phase, which checks it
# itself); here only when a run left its results.
if [ -f test-output/compat-matrix.json ]; then
    generated+=("docs/compatibility.md" "python3 scripts/compat_matrix.py --output -")
else
    echo "docs/compatibility.md: not checked here (no test-output/compat-matrix.json; the matrix phase checks it)"
fi

# file, then the command that generates the block between its `<!-- begin generated: ... -->` and
# `<!-- end generated -->` lines (the rest of the file is written by hand)
blocks=(
    "docs/development.md" "python3 scripts/check-imports.py --graph"
)

splice() {  # FILE BLOCK-FILE: the file with its generated block replaced
    python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = open(sys.argv[2]).read()
pattern = re.compile(r"(<!-- begin generated: [^\n]*-->\n).*?(<!-- end generated -->)", re.S)
if not pattern.search(text):
    sys.exit(f"{sys.argv[1]} has no <!-- begin generated: ... --> ... <!-- end generated --> block")
sys.stdout.write(pattern.sub(lambda m: m.group(1) + block + m.group(2), text, count=1))
PY
}

status=0
# Writes $work/out over FILE, or compares them and reports what generated the difference.
settle() {
    local file=$1 what=$2
    if $write; then
        cp "$work/out" "$file"
        echo "wrote $what"
    elif ! diff -u "$file" "$work/out" >"$work/diff" 2>&1; then
        echo "FAILED: $what differs from \`${3/$bin/s3-canary}\`; run scripts/check-docs.sh --write and commit it" >&2
        head -40 "$work/diff" >&2
        status=1
    fi
}
for ((i = 0; i < ${#blocks[@]}; i += 2)); do
    ${blocks[i + 1]} >"$work/block"
    splice "${blocks[i]}" "$work/block" >"$work/out"
    settle "${blocks[i]}" "the generated block of ${blocks[i]}" "${blocks[i + 1]}"
done
for ((i = 0; i < ${#generated[@]}; i += 2)); do
    ${generated[i + 1]} >"$work/out"
    settle "${generated[i]}" "${generated[i]}" "${generated[i + 1]}"
done
[ "$status" -eq 0 ] && ! $write && echo "generated docs are up to date ($(( ${#generated[@]} / 2 )) files, $(( ${#blocks[@]} / 2 )) blocks)"
exit "$status"
