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

status=0
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
[ "$status" -eq 0 ] && ! $write && echo "generated docs are up to date ($(( ${#generated[@]} / 2 )) files)"
exit "$status"
