// The version every stored value carries: a hybrid logical clock reading plus the writer's
// node id. Totally ordered, so "newer wins" needs no tie-breaking rules elsewhere.
#pragma once

#include <compare>
#include <cstdint>

namespace warp {

struct version {
  /// Hybrid logical clock: physical milliseconds << 16 | logical counter. 0 = unversioned.
  std::uint64_t hlc = 0;
  /// Id of the node that wrote the value (ties between nodes break on it).
  std::uint32_t node = 0;

  friend auto operator<=>(const version&, const version&) = default;
  bool empty() const noexcept { return hlc == 0 && node == 0; }
  std::uint64_t physical_ms() const noexcept { return hlc >> 16; }
};

}  // namespace warp
