#!/usr/bin/env bash
# Long differential fuzzing run of the RESP sidecar against redis-server (the same test CI
# runs for ~25 s, test/sidecar/diff_fuzz_test.cpp), for as long as you like.
#
#   scripts/fuzz-resp-diff.sh [SECONDS] [FIRST_SEED]
#     SECONDS     how long to run (default 600)
#     FIRST_SEED  first case seed (default: random); case i uses FIRST_SEED + i
#   WARP_DIFF_SEED=N WARP_DIFF_CASES=1 scripts/fuzz-resp-diff.sh   replays case N
#
# Needs a build (scripts/build.sh; WARP_BUILD_DIR picks another build dir, e.g. an ASan
# one) and redis-server on PATH. A failing case prints its seed, a shrunk command list and
# the bytes to replay; the exit status is non-zero.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WARP_BUILD_DIR:-$root/build}
bin=$build/test/warp_test_sidecar
if [[ ! -x $bin ]]; then
  echo "fuzz-resp-diff: $bin not found: run scripts/build.sh first" >&2
  exit 2
fi
seconds=${1:-600}
if [[ -z ${WARP_DIFF_SEED:-} ]]; then
  WARP_DIFF_SEED=${2:-$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ^ $(date +%s) ))}
fi
export WARP_DIFF_SEED WARP_DIFF_SECONDS=$seconds
export WARP_DIFF_CASES=${WARP_DIFF_CASES:-1000000000}
export WARP_BINARY_DIR=$build
echo "fuzz-resp-diff: first seed $WARP_DIFF_SEED, up to $seconds s, up to $WARP_DIFF_CASES cases"
exec "$bin" "differential: random pipelines answer like redis-server"
