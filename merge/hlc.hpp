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
  /// How far ahead of this node's physical clock a reading from another node may be by
  /// default (node_config::max_clock_skew, warpd --max-clock-skew). A peer or a region
  /// with a wildly wrong clock (or a forged message) must not drag every later version on
  /// this node into the future: such readings are ignored, counted and logged. The one
  /// bound for every mode (eventual batches, strong quorum replies, federation). 5 s as
  /// Couchbase XDCR's drift alert: NTP keeps healthy hosts within milliseconds.
  static constexpr std::int64_t default_max_ahead_ms = 5'000;

  explicit hybrid_clock(physical_source source = nullptr,
                        std::int64_t max_ahead_ms = default_max_ahead_ms) noexcept;

  /// A reading larger than every earlier reading and every observed one.
  std::uint64_t next() noexcept;

  /// Advances past a reading received from another node, unless it is more than
  /// max_ahead_ms() ahead of the physical clock: then the clock stays where it is, the
  /// reading is counted (skewed()) and a warning is logged (at most one per 10 s). False
  /// when the reading was ignored.
  bool observe(std::uint64_t remote) noexcept;
  /// The last reading handed out or observed.
  std::uint64_t last() const noexcept { return last_.load(std::memory_order_acquire); }

  std::int64_t max_ahead_ms() const noexcept {
    return max_ahead_ms_.load(std::memory_order_relaxed);
  }
  /// Sets the bound (milliseconds, > 0; the node sets it from its config at start).
  void set_max_ahead_ms(std::int64_t ms) noexcept {
    max_ahead_ms_.store(ms, std::memory_order_relaxed);
  }
  /// Remote readings ignored for being too far ahead (warp_hlc_remote_skew_total).
  std::uint64_t skewed() const noexcept { return skewed_.load(std::memory_order_relaxed); }
  /// How far ahead (ms) the furthest ignored reading was.
  std::int64_t max_skew_seen_ms() const noexcept {
    return max_skew_seen_ms_.load(std::memory_order_relaxed);
  }

 private:
  void report_skew(std::uint64_t remote, std::int64_t physical) noexcept;

  physical_source source_;
  std::atomic<std::uint64_t> last_{0};
  std::atomic<std::int64_t> max_ahead_ms_;
  std::atomic<std::uint64_t> skewed_{0};
  std::atomic<std::int64_t> max_skew_seen_ms_{0};
  std::atomic<std::int64_t> last_warning_ms_{0};
};

}  // namespace warp
