#!/usr/bin/env bash
# The release binary the README's quick start and the Kubernetes examples use: optimised for size (-Osize), dead code
# stripped (SwiftPM's default), with the Swift standard library and Foundation linked in (--static-swift-stdlib), so
# the image needs only glibc, libstdc++ and zlib, no Swift runtime. Prints the binary's path; copy it into the image.
#
#   scripts/release.sh                       build (about 5.5 minutes cold on a 2-core machine, 3 warm)
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
# Each variant in its own build folder: the debug build and the benchmarks keep theirs.
swift build -c release --static-swift-stdlib "${flags[@]}" --scratch-path "$scratch" --product s3-canary
bin="$(swift build -c release --static-swift-stdlib "${flags[@]}" --scratch-path "$scratch" --show-bin-path)/s3-canary"
# Refuse a binary that still needs the Swift runtime: that is what the static link is for.
if ldd "$bin" | grep -q 'libswift\|libFoundation'; then
    echo "release: $bin still links the Swift runtime dynamically" >&2
    ldd "$bin" >&2
    exit 1
fi
"$bin" --version >/dev/null
echo "$bin"
