#!/usr/bin/env bash
# Setup command 1: installs what is missing, builds, and starts a warpd node on its
# embedded defaults (SQLite storage in ./warp-data, node port 127.0.0.1:4700,
# HTTP 127.0.0.1:4780, RESP 127.0.0.1:6380). Extra args go to warpd.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
exec "${WARP_BUILD_DIR:-$root/build}/apps/warpd/warpd" "$@"
