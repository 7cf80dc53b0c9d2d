#!/usr/bin/env bash
# Builds Warp with a sanitizer and runs the cluster, strong and node-port suites under it.
#
#   scripts/sanitize.sh address [ctest-regex]   ASan + UBSan, against Debian's CAF
#   scripts/sanitize.sh thread  [ctest-regex]   TSan, against CAF 0.17.6 built with
#                                               -fsanitize=thread (built once, cached)
#
# Not part of scripts/test.sh: a sanitizer build plus these suites takes far longer than
# the main test command may (see docs/security.md, "Sanitizers", for timings).
#
# Knobs (environment):
#   WARP_BUILD_DIR       build dir (default build-asan / build-tsan in the checkout)
#   WARP_JOBS            parallel compile jobs (default 2)
#   WARP_TEST_JOBS       parallel ctest jobs (default 1: the suites start real clusters,
#                        and the sanitizers slow them 2-15x, so timing-sensitive tests
#                        get their CPU)
#   WARP_SANITIZE_TARGETS with a regex: the targets it needs (default: all)
#   (with no regex only the targets the three suites need are built)
#   WARP_CAF_TSAN_PREFIX where the instrumented CAF goes (default /opt/warp-caf-tsan)
#   WARP_TEST_TIME_SCALE how much the tests stretch their own timing windows (default 3
#                        for address, 10 for thread; test/support/time_scale.hpp)
#
# Every sanitizer report, from the test binaries and from every process they start
# (warpd, ...), goes to a file under $build/sanitizer-logs/; the script fails when any
# exists, so a report in a child process whose exit the test does not check is not lost.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-}
regex=${2:-'^(cluster|strong|node_port):'}
# Only what those suites run (the test binaries and the programs they start), unless
# another regex asks for more: a sanitizer build of everything doubles the build time.
# WARP_SANITIZE_TARGETS names the targets a custom regex needs (default: all).
targets="warp_test_cluster warp_test_strong warp_test_node_port warpd warpctl warp-nemesis"
[[ -n ${2:-} ]] && targets="${WARP_SANITIZE_TARGETS:-}"
jobs=${WARP_JOBS:-2}
supp=$root/scripts/sanitizers

case $mode in
  address) build=${WARP_BUILD_DIR:-$root/build-asan} ;;
  thread) build=${WARP_BUILD_DIR:-$root/build-tsan} ;;
  *)
    echo "usage: $0 address|thread [ctest-regex]" >&2
    exit 2
    ;;
esac

# CAF 0.17.6 from Debian's own source package (actor-framework), built with
# -fsanitize=thread: Debian's libcaf_core/libcaf_io are not instrumented, so TSan cannot
# see the atomics and locks of CAF's mailboxes and scheduler and reports every message
# hand-off between threads as a race. Core, io and openssl only; no examples or tests.
caf_tsan() {
  local prefix=${WARP_CAF_TSAN_PREFIX:-/opt/warp-caf-tsan}
  local stamp=$prefix/.warp-caf-tsan
  local want="actor-framework 0.17.6 -fsanitize=thread v1"
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    CAF_TSAN_PREFIX=$prefix
    return
  fi
  local work=$prefix.build
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo mkdir -p "$prefix" "$work"
  $sudo chown "$(id -u):$(id -g)" "$prefix" "$work"

  # Debian's source package, fetched with a private apt configuration (a deb-src line
  # for bookworm main, its own lists dir) so the system's apt setup is left alone. apt
  # checks the tarballs against the signed .dsc.
  local src=$work/src
  if [[ ! -f $src/actor-framework_0.17.6.orig.tar.gz ]]; then
    mkdir -p "$work/apt/lists/partial" "$src"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
      "http://deb.debian.org/debian bookworm main" >"$work/apt/sources.list"
    local apt=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/apt/lists" -o APT::Sandbox::User=root)
    apt-get "${apt[@]}" update -qq
    # The .debian.tar.xz (packaging and patches) may be missing from a mirror; the
    # upstream tarball is what gets built, so a missing one is only reported.
    (cd "$src" && apt-get "${apt[@]}" source --download-only actor-framework=0.17.6-2.1) ||
      echo "sanitize: apt-get source reported an error; checking the upstream tarball" >&2
    local sum
    sum=$(awk '/^Checksums-Sha256:/{f=1;next} /^[^ ]/{f=0} f && / actor-framework_0.17.6.orig.tar.gz$/{print $1}' \
      "$src/actor-framework_0.17.6-2.1.dsc")
    if [[ -z $sum ]]; then
      echo "sanitize: no checksum for the upstream tarball in the .dsc" >&2
      exit 1
    fi
    echo "$sum  $src/actor-framework_0.17.6.orig.tar.gz" | sha256sum -c --quiet
  fi
  # Extracted once: re-extracting would touch every file and make ninja rebuild it all.
  if [[ ! -f $work/actor-framework-0.17.6/.warp-extracted ]]; then
    rm -rf "$work/actor-framework-0.17.6"
    tar -xzf "$src/actor-framework_0.17.6.orig.tar.gz" -C "$work"
    if [[ -f $src/actor-framework_0.17.6-2.1.debian.tar.xz ]]; then
      tar -xJf "$src/actor-framework_0.17.6-2.1.debian.tar.xz" -C "$work/actor-framework-0.17.6"
      if [[ -f $work/actor-framework-0.17.6/debian/patches/series ]]; then
        while read -r p; do
          [[ -z $p || $p == \#* ]] && continue
          patch -d "$work/actor-framework-0.17.6" -p1 -s <"$work/actor-framework-0.17.6/debian/patches/$p"
        done <"$work/actor-framework-0.17.6/debian/patches/series"
      fi
    fi
    touch "$work/actor-framework-0.17.6/.warp-extracted"
  fi

  # Debian's packaging adds `#include <limits>` to receive_buffer.hpp (g++ 12 no longer
  # pulls it in transitively); the installed /usr/include/caf headers differ from the
  # upstream tarball in that line only. Applied here when the .debian.tar.xz was missing.
  local rb=$work/actor-framework-0.17.6/libcaf_io/caf/io/network/receive_buffer.hpp
  grep -q '#include <limits>' "$rb" || sed -i '22a #include <limits>' "$rb"

  local launcher=()
  command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Same configuration as Debian's build (C++11, log level QUIET, memory management and
  # exceptions on: see /usr/include/caf/detail/build_config.hpp) plus the sanitizer.
  cmake -S "$work/actor-framework-0.17.6" -B "$work/build" -G Ninja "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_CXX_FLAGS="-std=c++11 -Wall -Wextra -fsanitize=thread -fno-omit-frame-pointer" \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
    -DCAF_NO_EXAMPLES=yes -DCAF_NO_UNIT_TESTS=yes -DCAF_NO_TOOLS=yes -DCAF_NO_PYTHON=yes \
    -DCAF_NO_OPENCL=yes -DCAF_NO_SUMMARY=yes -DCAF_LOG_LEVEL=QUIET >/dev/null
  nice -n 15 cmake --build "$work/build" -j "$jobs"
  cmake --install "$work/build" >/dev/null
  echo "$want" >"$stamp"
  CAF_TSAN_PREFIX=$prefix
}

start=$SECONDS
cmake_args=(-DWARP_SANITIZE="$mode")
if [[ $mode == thread ]]; then
  caf_tsan
  cmake_args+=(-DCAF_ROOT="$CAF_TSAN_PREFIX")
fi
WARP_BUILD_DIR=$build WARP_JOBS=$jobs WARP_TARGETS=$targets nice -n 15 "$root/scripts/build.sh" "${cmake_args[@]}"
built=$SECONDS

logs=$build/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# halt_on_error: the first report ends the process, so a test cannot pass over one.
# Suppression files list third-party locations only, each with its reason.
common="halt_on_error=1:print_stacktrace=1"
if [[ $mode == thread ]]; then
  # A TSan run against an uninstrumented CAF is noise (a report per message hand-off):
  # make sure the binaries load the instrumented one.
  for lib in caf_core caf_io; do
    nm -D "$CAF_TSAN_PREFIX/lib/lib$lib.so" | grep -q __tsan_func_entry || {
      echo "sanitize: $CAF_TSAN_PREFIX/lib/lib$lib.so is not built with -fsanitize=thread" >&2
      exit 1
    }
  done
  if ! LD_LIBRARY_PATH=$CAF_TSAN_PREFIX/lib ldd "$build/test/warp_test_cluster" |
    grep -q "libcaf_core.so.* => $CAF_TSAN_PREFIX/lib/"; then
    echo "sanitize: warp_test_cluster does not load CAF from $CAF_TSAN_PREFIX" >&2
    exit 1
  fi
fi
if [[ $mode == address ]]; then
  export ASAN_OPTIONS="$common:detect_leaks=1:strict_init_order=1:log_path=$logs/asan"
  export UBSAN_OPTIONS="$common:suppressions=$supp/ubsan.supp:log_path=$logs/ubsan"
else
  export TSAN_OPTIONS="$common:second_deadlock_stack=1:suppressions=$supp/tsan.supp:log_path=$logs/tsan"
  export LD_LIBRARY_PATH=$CAF_TSAN_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

# Tests stretch their own timing windows by this factor (test/support/time_scale.hpp):
# under TSan a thread starts 100x+ slower and the code runs 5-15x slower, so a window
# such as "every reader joins before the owner fetch times out" needs more room.
if [[ $mode == address ]]; then
  export WARP_TEST_TIME_SCALE=${WARP_TEST_TIME_SCALE:-3}
else
  export WARP_TEST_TIME_SCALE=${WARP_TEST_TIME_SCALE:-10}
fi

status=0
(cd "$build" && ctest -R "$regex" --no-tests=error -j "${WARP_TEST_JOBS:-1}" --timeout 900 --output-on-failure) ||
  status=$?
shopt -s nullglob
reports=("$logs"/*)
if ((${#reports[@]})); then
  echo "sanitize: ${#reports[@]} sanitizer report file(s) in $logs:" >&2
  for f in "${reports[@]}"; do
    echo "==== $f" >&2
    head -n 60 "$f" >&2
  done
  status=1
fi
echo "sanitize: $mode build ${built}s (after start), tests $((SECONDS - built))s, status $status"
exit $status
