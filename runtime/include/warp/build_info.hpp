// What this binary was built from, for `--version` and the `warp_build_info` metric: an
// operator comparing nodes (or a bug report) needs the exact commit, not just the release.
#pragma once

#include <string>
#include <string_view>

namespace warp {

struct build_info {
  std::string_view version;   ///< the project's version (CMake `project(VERSION)`)
  std::string_view commit;    ///< `git rev-parse --short=12 HEAD` at configure time, or "unknown"
  std::string_view compiler;  ///< compiler id and version, e.g. "GNU 12.2.0"
};

/// The facts above; fixed at configure time (re-run cmake to refresh the commit).
build_info build() noexcept;

/// One line for `--version`: "<program> <version> (commit <commit>, <compiler>)".
std::string version_line(std::string_view program);

}  // namespace warp
