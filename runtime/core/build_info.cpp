#include "warp/build_info.hpp"

// Defined for this file only (runtime/core/CMakeLists.txt), so a new commit recompiles one
// translation unit rather than the tree.
#ifndef WARP_BUILD_VERSION
#define WARP_BUILD_VERSION "0.0.0"
#endif
#ifndef WARP_BUILD_COMMIT
#define WARP_BUILD_COMMIT "unknown"
#endif
#ifndef WARP_BUILD_COMPILER
#define WARP_BUILD_COMPILER "unknown"
#endif

namespace warp {

build_info build() noexcept {
  return {WARP_BUILD_VERSION, WARP_BUILD_COMMIT, WARP_BUILD_COMPILER};
}

std::string version_line(std::string_view program) {
  auto b = build();
  std::string out{program};
  out.append(" ").append(b.version).append(" (commit ").append(b.commit);
  out.append(", ").append(b.compiler).append(")");
  return out;
}

}  // namespace warp
