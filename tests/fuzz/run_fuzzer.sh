#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS over its seed corpus and fails on any crash,
# sanitizer report, leak or hang. The corpus stays as committed: what the run finds goes
# to a temp dir (FDSUP_FUZZ_KEEP=DIR keeps it there instead). A crashing input is kept
# in $FDSUP_FUZZ_ARTIFACTS (default: the current directory) as TARGET-crash-HASH.
#   usage: run_fuzzer.sh TARGET CORPUS_DIR SECONDS
set -euo pipefail
target=$1 corpus=$2 seconds=$3
found=${FDSUP_FUZZ_KEEP:-$(mktemp -d)}
[ -n "${FDSUP_FUZZ_KEEP:-}" ] || trap 'rm -rf "$found"' EXIT
mkdir -p "$found"
artifacts=${FDSUP_FUZZ_ARTIFACTS:-$PWD}
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$(basename "$target")-" "$found" "$corpus"
