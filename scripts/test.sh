#!/usr/bin/env bash
# Setup command 2: installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WARP_BUILD_DIR:-$root/build}
"$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j "${WARP_TEST_JOBS:-2}" --timeout 600
