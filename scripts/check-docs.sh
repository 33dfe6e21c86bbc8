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
    "bench/REPORT.md" "python3 scripts/bench.py render --output -"
)

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
for ((i = 0; i < ${#blocks[@]}; i += 2)); do
    file=${blocks[i]}
    command=${blocks[i + 1]}
    $command >"$work/block"
    splice "$file" "$work/block" >"$work/out"
    if $write; then
        cp "$work/out" "$file"
        echo "wrote the generated block of $file"
    elif ! diff -u "$file" "$work/out" >"$work/diff" 2>&1; then
        echo "FAILED: the generated block of $file differs from \`$command\`; run scripts/check-docs.sh --write and commit it" >&2
        head -40 "$work/diff" >&2
        status=1
    fi
done
for ((i = 0; i < ${#generated[@]}; i += 2)); do
    file=${generated[i]}
    command=${generated[i + 1]}
    $command >"$work/out"
    if $write; then
        cp "$work/out" "$file"
        echo "wrote $file"
    elif ! diff -u "$file" "$work/out" >"$work/diff" 2>&1; then
        echo "FAILED: $file differs from \`${command/$bin/s3-canary}\`; run scripts/check-docs.sh --write and commit it" >&2
        head -40 "$work/diff" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] && ! $write && echo "generated docs are up to date ($(( ${#generated[@]} / 2 )) files, $(( ${#blocks[@]} / 2 )) blocks)"
exit "$status"
