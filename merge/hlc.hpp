// Hybrid logical clock: physical milliseconds in the high 48 bits, a logical counter in the
// low 16. Monotonic per node, and never behind any version it has seen, so a causally later
// write always gets a larger version even when wall clocks disagree across nodes.
#pragma once

#include <atomic>
#include <cstdint>

#include "warp/version.hpp"

namespace warp {

class hybrid_clock {
 public:
  /// `physical_ms` is injectable for tests; by default the system clock.
  using physical_source = std::int64_t (*)();
  explicit hybrid_clock(physical_source source = nullptr) noexcept;

  /// A reading larger than every earlier reading and every observed one.
  std::uint64_t next() noexcept;
  /// How far ahead of this node's physical clock a reading from another node may be. A
  /// peer with a wildly wrong clock (or a forged message) must not drag every later
  /// version on this node into the future: such readings are ignored. The one bound for
  /// every mode (eventual batches, strong quorum replies).
  static constexpr std::int64_t max_ahead_ms = 60'000;

  /// Advances past a reading received from another node, unless it is more than
  /// `max_ahead_ms` ahead of the physical clock. False when the reading was ignored.
  bool observe(std::uint64_t remote) noexcept;
  /// The last reading handed out or observed.
  std::uint64_t last() const noexcept { return last_.load(std::memory_order_acquire); }

 private:
  physical_source source_;
  std::atomic<std::uint64_t> last_{0};
};

}  // namespace warp
