#!/usr/bin/env bash
# docs/compatibility.md from the server matrix's last run (test-output/compat-matrix.json, written by the matrix
# phase of scripts/test.sh). With --write it regenerates the file; without, it checks the committed file equals
# what the run generates and fails naming it. Needs a run: the servers are those scripts/servers.sh starts.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    --write) exec python3 scripts/compat_matrix.py ;;
    "" | --check) exec python3 scripts/compat_matrix.py --check ;;
    *) echo "usage: scripts/compat-matrix.sh [--check | --write]" >&2; exit 2 ;;
esac
