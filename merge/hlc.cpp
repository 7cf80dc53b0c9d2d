#include "merge/hlc.hpp"

#include "warp/clock.hpp"

namespace warp {

hybrid_clock::hybrid_clock(physical_source source) noexcept
    : source_(source ? source : [] { return now_ms(); }) {}

std::uint64_t hybrid_clock::next() noexcept {
  auto physical = static_cast<std::uint64_t>(source_()) << 16;
  auto prev = last_.load(std::memory_order_relaxed);
  for (;;) {
    auto candidate = physical > prev ? physical : prev + 1;
    if (last_.compare_exchange_weak(prev, candidate, std::memory_order_acq_rel)) return candidate;
  }
}

bool hybrid_clock::observe(std::uint64_t remote) noexcept {
  auto bound = static_cast<std::uint64_t>(source_() + max_ahead_ms) << 16;
  if (remote > bound) return false;
  auto prev = last_.load(std::memory_order_relaxed);
  while (remote > prev && !last_.compare_exchange_weak(prev, remote, std::memory_order_acq_rel)) {
  }
  return true;
}

}  // namespace warp
