#!/usr/bin/env bash
# The release binary the README's quick start and the Kubernetes examples use: optimised for size (-Osize), dead code
# stripped (SwiftPM's default), with the Swift standard library and Foundation linked in (--static-swift-stdlib), so
# the image needs only glibc, libstdc++ and zlib, no Swift runtime. Prints the binary's path; copy it into the image.
#
#   scripts/release.sh                       build (about 5.5 minutes cold on a 2-core machine, 3 warm)
#   python3 scripts/hot_text.py BIN BIN.map > scripts/release/hot-text.lds   after changes to what runs every cycle
#                                                (or when this script warns that the order is stale)
#   S3CANARY_OPTIMIZE=speed scripts/release.sh   -O instead of -Osize, for a dedicated fleet with hundreds of
#                                                backends per process (bench/REPORT.md: -Osize costs CPU there)
#
# What it saves and costs is measured in bench/REPORT.md (footprint and start-up, against the dynamically linked
# build): the figures there come from this same command.
set -euo pipefail
cd "$(dirname "$0")/.."
# -Osize (the default, for a sidecar): 5 MiB less resident code per process, at about the same CPU per S3 operation;
# Swift-heavy work (rendering 1,000 backends' metrics, scheduling them) costs more, hence `speed` for big fleets.
case "${S3CANARY_OPTIMIZE:-size}" in
    size) flags=(-Xswiftc -Osize); scratch=.build-release ;;
    speed) flags=(); scratch=.build-release-speed ;;
    *) echo "release: S3CANARY_OPTIMIZE must be size or speed, not ${S3CANARY_OPTIMIZE}" >&2; exit 2 ;;
esac
# What makes the binary small in memory (docs/design.md 4.13 measures each step):
# - every function in a section of its own (Swift and C), so the linker can move them one by one;
# - lld, with scripts/release/hot-text.lds (written by scripts/hot_text.py): the code a running sidecar executes
#   goes together at the start of `.text`, so the kernel maps a few dozen 64 KiB windows of code instead of hundreds;
# - packed relative relocations (DT_RELR): 3 MiB of relocation records the loader reads at every start become 20 KiB
#   (needs glibc 2.36 or later where the binary runs: Debian 12, Ubuntu 24.04, RHEL 10);
# - no exported symbols: a sidecar is not a library, and the loader would search them on every symbol lookup.
# The linker's map goes beside the binary (`s3-canary.map`), for scripts/hot_text.py.
hot_text="$PWD/scripts/release/hot-text.lds"
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/s3-canary
flags+=(-Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xcc -fdata-sections
    -Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic
    -Xlinker "-Map=$bin.map")
link() {
    # SwiftPM does not know the linker script is an input: the binary is linked again every time (about 15 s).
    rm -f "$bin"
    # Each variant in its own build folder: the debug build and the benchmarks keep theirs.
    swift build -c release --static-swift-stdlib "${flags[@]}" "$@" --scratch-path "$scratch" --product s3-canary
}
# The hot-text order is only as good as what it still covers (scripts/hot_text.py coverage): the share of the
# sections it places that the objects linked now still hold, read with nm after linking with it (the objects exist
# only then; -Xlinker options reach only the link command, so linking again compiles nothing). Below the threshold
# (80 %, justified at MIN_COVERAGE in scripts/hot_text.py), or when the list is missing or not in hot_text.py's
# shape, or the check cannot run, the binary is linked again without the script and one warning line says so: a
# stale list never fails the build nor ships a layout nobody measured.
stale=""
fall_back() {
    stale="warning: hot-text order is stale, linked without it: $1; regenerate: python3 scripts/hot_text.py $bin"
    stale+=" $bin.map > scripts/release/hot-text.lds, then scripts/release.sh"
    link
}
first_line() { printf '%s' "${1%%$'\n'*}"; }
if checked=$(python3 scripts/hot_text.py coverage --lds scripts/release/hot-text.lds 2>&1); then
    link -Xlinker -T -Xlinker "$hot_text"
    # The objects exactly as SwiftPM links them (a folder would also hold objects of deleted files), and the
    # toolchain's static libraries (--static-swift-stdlib), where the list's `*libNAME.a:MEMBER` objects come from.
    objects="$(dirname "$bin")/s3-canary.product/Objects.LinkFileList"
    if [ -f "$objects" ]; then objects="@$objects"; else objects=$(dirname "$bin"); fi
    toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
    if coverage=$(python3 scripts/hot_text.py coverage --lds scripts/release/hot-text.lds --objects "$objects" \
        "$toolchain/../lib/swift_static/linux" 2>&1); then
        # nm sees symbols, not sections: the markers say whether lld placed anything at all.
        read -r hot_start hot_end < <(nm "$bin" | awk '$3 == "__s3canary_hot_text_start" { start = $1 }
            $3 == "__s3canary_hot_text_end" { end = $1 }
            END { print (start == "" ? 0 : start), (end == "" ? 0 : end) }')
        hot_bytes=$((16#${hot_end:-0} - 16#${hot_start:-0}))
        if [ "$hot_bytes" -le 0 ]; then
            fall_back "lld placed nothing between the hot-text markers, although $(first_line "$coverage")"
        fi
    else
        fall_back "$(first_line "$coverage")"
    fi
else
    fall_back "$(first_line "$checked")"
fi
# Refuse a binary that still needs the Swift runtime: that is what the static link is for.
if ldd "$bin" | grep -q 'libswift\|libFoundation'; then
    echo "release: $bin still links the Swift runtime dynamically" >&2
    ldd "$bin" >&2
    exit 1
fi
# The commit and toolchain, written into the linked file (scripts/stamp.py; `s3-canary --version` shows them).
python3 scripts/stamp.py "$bin" >/dev/null
"$bin" --version >/dev/null
# One line about the order, on stderr (stdout's last line is the binary's path, for scripts/bench.sh).
if [ -n "$stale" ]; then
    echo "$stale" >&2
else
    mib=$(awk -v bytes="$hot_bytes" 'BEGIN { printf "%.2f", bytes / 1048576 }')
    echo "release: $(first_line "$coverage"); $mib MiB of hot code at the start of .text" >&2
fi
echo "$bin"
