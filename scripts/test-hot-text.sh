#!/usr/bin/env bash
# `scripts/hot_text.py coverage` on synthetic inputs: two C objects built with function sections, one archive, and
# linker scripts in hot-text.lds's shape that the objects hold fully, in part, or not at all (garbage, truncated,
# missing). Then, where lld is at hand, the full script is linked, to show that lld places what `coverage` counts.
#
#   scripts/test-hot-text.sh        needs gcc, ar, nm (llvm-nm and ld.lld are used when present); about a second
#
# Runs every check, then exits non-zero if any failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/s3canary-hot-text-test.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cd "$work"
failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }

# What SwiftPM's build folder looks like (objects below `Module.build/`), and a toolchain archive.
mkdir -p "build/Demo.build" "build/dir with space/Other.build" toolchain
cat > build/Demo.build/a.c <<'EOF'
static int helper(int x) { return x * 3; }
int (*pick(void))(int) { return helper; }   /* helper: a local symbol, its own section */
int alpha(int x) { return pick()(x) + 1; }
int beta(int x) { return alpha(x) * 2; }
EOF
cat > build/Demo.build/b.c <<'EOF'
int gamma_(int x) { return x - 1; }
EOF
cat > "build/dir with space/Other.build/d.c" <<'EOF'
int delta(int x) { return x + 4; }
EOF
cat > toolchain/c.c <<'EOF'
int from_archive(int x) { return x ^ 5; }
EOF
cat > main.c <<'EOF'
int alpha(int), beta(int), gamma_(int), delta(int), from_archive(int);
int main(int argc, char **argv) {
    (void)argv;
    return beta(argc) + gamma_(argc) + delta(argc) + from_archive(argc) > 1000;
}
EOF
for source in build/Demo.build/a.c build/Demo.build/b.c "build/dir with space/Other.build/d.c" main.c; do
    gcc -c -O1 -ffunction-sections -fno-inline -o "$source.o" "$source"
done
# The toolchain's static libraries are not built with function sections: the list names a member's whole `.text`.
gcc -c -O1 -o toolchain/c.c.o toolchain/c.c
ar rcs toolchain/libdemo.a toolchain/c.c.o
# An object list as SwiftPM writes it (Objects.LinkFileList): one path a line, quoted when it holds a space.
printf '%s\n' "$work/build/Demo.build/a.c.o" "$work/build/Demo.build/b.c.o" \
    "'$work/build/dir with space/Other.build/d.c.o'" > Objects.LinkFileList

# A script in the shape scripts/hot_text.py writes (its OPENING and CLOSING around the entries).
lds() {
    printf '/* Code a running sidecar executes, at the start of .text: scripts/hot_text.py, test.\n   synthetic. */\n'
    printf 'SECTIONS {\n  .text : {\n    __s3canary_hot_text_start = .;\n'
    printf '    %s\n' "$@"
    printf '    __s3canary_hot_text_end = .;\n    *(.text .stub .text.* .gnu.linkonce.t.*)\n'
    printf '  }\n}\nINSERT BEFORE .init;\n'
}
full=("*/Demo.build/a.c.o(.text.alpha .text.beta .text.helper)" "*/Demo.build/b.c.o(.text.gamma_)"
      "*/Other.build/d.c.o(.text.delta)" "*libdemo.a:c.c.o(.text)")
lds "${full[@]}" > full.lds
# Six of twelve still there: renamed functions, a deleted file, archive members that are gone.
lds "${full[@]}" "*/Demo.build/a.c.o(.text.alpha_renamed .text.old_helper)" "*/Demo.build/b.c.o(.text.zeta)" \
    "*/Demo.build/gone.c.o(.text.epsilon)" "*libdemo.a:removed.c.o(.text)" "*libother.a:c.c.o(.text.from_archive)" \
    > partial.lds
printf 'SECTIONS { .text : { *(.text) } }\nthis is not a linker script (\n' > garbage.lds
head -n -1 full.lds > truncated.lds
lds "${full[@]}" "*/Demo.build/b.c.o(.text.gamma_" > bad-entry.lds

# check NAME EXPECTED-STATUS EXPECTED-OUTPUT-PATTERN -- ARGUMENTS OF `coverage`
check() {
    local name=$1 expected=$2 pattern=$3 output status
    shift 4
    status=0
    output=$(python3 "$root/scripts/hot_text.py" coverage "$@" 2>&1) || status=$?
    if [ "$status" -ne "$expected" ]; then
        fail "$name: exit $status, expected $expected: $output"
    elif [ "$(printf '%s\n' "$output" | wc -l)" -ne 1 ]; then
        fail "$name: more than one line: $output"
    elif ! grep -qE -- "$pattern" <<<"$output"; then
        fail "$name: output does not match /$pattern/: $output"
    else
        pass "$name (exit $status): $output"
    fi
}

check "full coverage, objects from folders" 0 '^hot-text coverage 100\.0 % \(threshold 80 %\): 6 of the 6 sections' \
    -- --lds full.lds --objects build toolchain
check "full coverage, objects from a SwiftPM list and an archive" 0 'coverage 100\.0 %.*\(4 of its 4 objects\)' \
    -- --lds full.lds --objects @Objects.LinkFileList toolchain/libdemo.a
check "partial coverage is stale" 1 '^hot-text coverage 50\.0 % \(threshold 80 %\): 6 of the 12 sections' \
    -- --lds partial.lds --objects build toolchain
check "partial coverage above a lower threshold" 0 'coverage 50\.0 % \(threshold 40 %\)' \
    -- --lds partial.lds --objects build toolchain --threshold 40
check "objects missing: the archive alone" 1 'coverage 16\.7 % \(threshold 80 %\): 1 of the 6' \
    -- --lds full.lds --objects toolchain
check "garbage script" 2 '^hot-text list unusable: garbage\.lds is not a hot-text linker script' \
    -- --lds garbage.lds --objects build toolchain
check "truncated script" 2 '^hot-text list unusable: truncated\.lds is not a hot-text linker script' \
    -- --lds truncated.lds --objects build toolchain
# shellcheck disable=SC2016  # the backquotes are the message's own, not a command
check "an entry that is not object(sections)" 2 'unusable: bad-entry\.lds: not an `object\(sections\)` line' \
    -- --lds bad-entry.lds --objects build toolchain
check "missing script" 2 '^hot-text list unusable: nowhere\.lds cannot be read' \
    -- --lds nowhere.lds --objects build toolchain
check "an nm that cannot run" 2 '^hot-text coverage unknown: \./no-such-nm cannot run' \
    -- --lds full.lds --objects build toolchain --nm ./no-such-nm
check "shape only, without objects" 0 '^full\.lds: 6 sections of 4 objects$' -- --lds full.lds
check "garbage script, shape only" 2 'not a hot-text linker script' -- --lds garbage.lds
check "the committed list is well-formed" 0 'sections of [0-9]+ objects$' \
    -- --lds "$root/scripts/release/hot-text.lds"

# What is missing, listed on stderr with --missing.
missing=$(python3 "$root/scripts/hot_text.py" coverage --lds partial.lds --objects build toolchain --missing 2>&1 \
    >/dev/null || true)
expected_missing='*/Demo.build/a.c.o(.text.alpha_renamed)
*/Demo.build/a.c.o(.text.old_helper)
*/Demo.build/b.c.o(.text.zeta)
*/Demo.build/gone.c.o(.text.epsilon)
*libdemo.a:removed.c.o(.text)
*libother.a:c.c.o(.text.from_archive)'
if [ "$(sort <<<"$missing")" = "$(sort <<<"$expected_missing")" ]; then
    pass "--missing names the 6 stale sections"
else
    fail "--missing printed: $missing"
fi

if command -v llvm-nm >/dev/null; then
    check "full coverage read with llvm-nm" 0 'coverage 100\.0 %' -- --lds full.lds --objects build toolchain \
        --nm llvm-nm
    check "partial coverage read with llvm-nm" 1 'coverage 50\.0 %' -- --lds partial.lds --objects build toolchain \
        --nm llvm-nm
else
    echo "skipped: llvm-nm is not installed"
fi

# lld places what coverage counts: linked with full.lds, every listed function lies between the two markers.
if command -v ld.lld >/dev/null; then
    gcc -fuse-ld=lld -o demo main.c.o build/Demo.build/a.c.o build/Demo.build/b.c.o \
        "build/dir with space/Other.build/d.c.o" toolchain/libdemo.a -Wl,-T,full.lds
    read -r start end < <(nm demo | awk '$3 == "__s3canary_hot_text_start" { s = $1 }
        $3 == "__s3canary_hot_text_end" { e = $1 } END { print s, e }')
    inside=0
    while read -r address _ name; do
        case $name in alpha | beta | helper | gamma_ | delta | from_archive)
            if [ $((16#$address)) -ge $((16#$start)) ] && [ $((16#$address)) -lt $((16#$end)) ]; then
                inside=$((inside + 1))
            fi ;;
        esac
    done < <(nm demo)
    if [ "$inside" -eq 6 ] && ./demo; then
        pass "lld placed all 6 listed functions between the markers, and the binary runs"
    else
        fail "lld placed $inside of 6 listed functions between the markers"
    fi
else
    echo "skipped: ld.lld is not installed (the link check)"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
