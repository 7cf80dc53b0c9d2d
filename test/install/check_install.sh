#!/usr/bin/env bash
# Installs the built tree into a temporary prefix and builds the embedding example against
# it with find_package(warp), as an embedding service would. Then runs it twice: the second
# run must see the first run's write (SQLite durability through the public API).
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d /tmp/warp-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
# The Apache-2.0 text is part of the package, byte for byte the repository's.
lic=$(find "$tmp/prefix" -path '*/doc/warp/LICENSE' | head -n1)
[[ -n $lic ]] || { echo "install check: LICENSE not installed under share/doc/warp" >&2; exit 1; }
cmp "$lic" "$src/LICENSE"
grep -q "Apache License" "$lic"
mkdir -p "$tmp/app"
cp "$src/examples/embedded_cache.cpp" "$tmp/app/"
cat > "$tmp/app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
# No flags of its own: warp::warp carries its C++20 requirement.
find_package(warp 0.1 REQUIRED)
add_executable(app embedded_cache.cpp)
target_link_libraries(app PRIVATE warp::warp)
CMAKE
cmake -S "$tmp/app" -B "$tmp/app/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/app/build" >/dev/null
"$tmp/app/build/app" "$tmp/data" | tee "$tmp/out1"
"$tmp/app/build/app" "$tmp/data" | tee "$tmp/out2"
grep -q "visited 1 times" "$tmp/out1"
grep -q "visited 2 times" "$tmp/out2"
echo "install check passed"
