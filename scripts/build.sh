#!/usr/bin/env bash
# Configures and builds Warp in build/ (or $WARP_BUILD_DIR). Extra args go to cmake.
# $WARP_TARGETS (space-separated) builds only those targets instead of everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WARP_BUILD_DIR:-$root/build}
"$root/scripts/deps.sh"
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths relative to the checkout, so a fresh clone elsewhere reuses the cache.
  # Sloppiness for the precompiled CAF/Catch2 headers, which ccache otherwise refuses.
  export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=true \
    CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${WARP_BUILD_TYPE:-RelWithDebInfo} \
  "${launcher[@]}" "$@" >/dev/null
targets=()
for t in ${WARP_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "${WARP_JOBS:-$(nproc)}" "${targets[@]}"
