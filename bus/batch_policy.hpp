// The adaptive batching decision of the sync bus, as a pure class: the caller passes the
// time and the queue's counters in, so every decision is unit-tested without a clock or
// an actor (test/bus/batch_policy_test.cpp). The cluster actor (actors/cluster_actor.cpp)
// asks it on every wake-up and does what it says.
//
// Below `busy_rate` every wake-up sends at once: one message per change per peer costs
// little at that rate and any wait is pure latency. Above it, a flush is held back only
// until `target_records` should have arrived at the observed rate (never longer than
// `max_delay`), counted from when the previous batch left, not from now: a batch that
// left longer ago than the delay means the next one goes at once. So the wait shrinks as
// the load grows, and under saturation batches grow on their own while the sender is busy.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace warp {
struct cluster_options;
}

namespace warp::bus {

struct batch_policy_options {
  /// Off: one record per batch, sent at once, no coalescing.
  bool batching = true;
  std::chrono::microseconds max_delay{500};
  /// Records/s above which flushes are held back; <= 0: always busy (fixed delay).
  double busy_rate = 20'000;
  std::size_t target_records = 256;
  std::size_t max_records = 4096;
  std::size_t max_bytes = 1024 * 1024;

  static batch_policy_options from(const cluster_options& o);
};

class batch_policy {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using micros = std::chrono::microseconds;

  explicit batch_policy(batch_policy_options o) : o_(o) {}

  struct decision {
    bool send_now = true;
    /// With send_now false: how long to wait before flushing.
    micros wait{0};
  };
  /// Records are waiting: send now or later? `pushed` = records handed to the queue since
  /// start (a monotonic counter), `queued` = records waiting now. Updates the rate estimate.
  decision on_wake(time_point now, std::uint64_t pushed, std::size_t queued);
  /// A flush is starting now: the next wait is counted from here.
  void flushed(time_point now) noexcept { last_flush_ = now; }

  /// Updates the arrival-rate estimate (windows of at least 1 ms, so a burst of a few
  /// records does not look like load; a quiet window over 10 ms resets it) and returns the
  /// delay to apply now.
  micros delay(time_point now, std::uint64_t pushed);

  /// Bounds of one drained batch.
  std::size_t drain_records() const noexcept { return o_.batching ? o_.max_records : 1; }
  std::size_t drain_bytes() const noexcept { return o_.max_bytes; }
  bool coalesce() const noexcept { return o_.batching; }

  /// The smoothed arrival rate (records/s) and the delay last computed (gauges).
  double rate() const noexcept { return rate_; }
  micros current_delay() const noexcept { return current_; }
  const batch_policy_options& options() const noexcept { return o_; }

 private:
  batch_policy_options o_;
  std::uint64_t rate_pushed_ = 0;
  time_point rate_since_{};
  double rate_ = 0;
  micros current_{0};
  time_point last_flush_{};
};

}  // namespace warp::bus
