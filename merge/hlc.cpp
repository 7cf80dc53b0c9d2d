#include "merge/hlc.hpp"

#include "runtime/core/log.hpp"
#include "warp/clock.hpp"

namespace warp {

namespace {
/// At most one skew warning per this many milliseconds: a skewed region sends a reading
/// with every record, and the counter says how many there were.
constexpr std::int64_t warning_interval_ms = 10'000;
}  // namespace

hybrid_clock::hybrid_clock(physical_source source, std::int64_t max_ahead_ms) noexcept
    : source_(source ? source : [] { return now_ms(); }), max_ahead_ms_(max_ahead_ms) {}

std::uint64_t hybrid_clock::next() noexcept {
  auto physical = static_cast<std::uint64_t>(source_()) << 16;
  auto prev = last_.load(std::memory_order_relaxed);
  for (;;) {
    auto candidate = physical > prev ? physical : prev + 1;
    if (last_.compare_exchange_weak(prev, candidate, std::memory_order_acq_rel)) return candidate;
  }
}

bool hybrid_clock::observe(std::uint64_t remote) noexcept {
  auto physical = source_();
  // The bound's last logical tick is still within it: "more than max_ahead_ms ahead"
  // starts at the next millisecond.
  auto bound = (static_cast<std::uint64_t>(physical + max_ahead_ms()) << 16) | 0xffff;
  if (remote > bound) {
    report_skew(remote, physical);
    return false;
  }
  auto prev = last_.load(std::memory_order_relaxed);
  while (remote > prev && !last_.compare_exchange_weak(prev, remote, std::memory_order_acq_rel)) {
  }
  return true;
}

void hybrid_clock::report_skew(std::uint64_t remote, std::int64_t physical) noexcept {
  auto count = skewed_.fetch_add(1, std::memory_order_relaxed) + 1;
  auto ahead = static_cast<std::int64_t>(remote >> 16) - physical;
  auto seen = max_skew_seen_ms_.load(std::memory_order_relaxed);
  while (ahead > seen &&
         !max_skew_seen_ms_.compare_exchange_weak(seen, ahead, std::memory_order_relaxed)) {
  }
  auto last = last_warning_ms_.load(std::memory_order_relaxed);
  if (last != 0 && physical - last < warning_interval_ms) return;
  if (!last_warning_ms_.compare_exchange_strong(last, physical, std::memory_order_relaxed))
    return;  // another thread logs this interval's warning
  try {
    detail::log()->warn(
        "hlc: ignored a remote clock reading {} ms ahead of local time (bound {} ms, "
        "--max-clock-skew); {} such readings so far: check the sender's clock (NTP)",
        ahead, max_ahead_ms(), count);
  } catch (...) {  // logging must not throw out of the receive path
  }
}

}  // namespace warp
