// Storage protection for the read-through path: a token-bucket rate limiter and a circuit
// breaker. Both are pure (time is passed in, no clock, no thread), so their behaviour is
// tested deterministically; storage_guard puts them together behind one mutex for the
// read path, where a storage fetch costs far more than the lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>

#include "warp/error.hpp"

namespace warp::detail {

using steady_ms = std::chrono::milliseconds;  // a point on a monotonic clock, as a duration

/// Tokens refill continuously at `rate` per second up to `burst`; each fetch takes one.
class token_bucket {
 public:
  /// rate <= 0 = unlimited.
  token_bucket(double rate_per_s, double burst) noexcept;
  /// Takes a token if one is there at `now`.
  bool try_take(steady_ms now) noexcept;
  double rate() const noexcept { return rate_; }

 private:
  double rate_;
  double burst_;
  double tokens_;
  steady_ms last_{0};
  bool started_ = false;
};

struct breaker_options {
  /// Consecutive failures that open the breaker; 0 = the breaker never opens.
  std::uint32_t failures = 5;
  /// Failure ratio over the last `window` outcomes that opens it (0 = off); judged only
  /// once the window holds `min_calls` outcomes, so two early failures do not open it.
  double failure_ratio = 0.0;
  steady_ms window{10'000};
  std::uint32_t min_calls = 20;
  /// How long an open breaker refuses before it lets one probe through (half-open).
  steady_ms cooldown{5'000};
};

enum class breaker_state : std::uint8_t { closed = 0, open = 1, half_open = 2 };
std::string_view to_string(breaker_state s) noexcept;

class circuit_breaker {
 public:
  explicit circuit_breaker(breaker_options opts = {}) : opts_(opts) {}

  /// May a storage call go ahead at `now`? An open breaker past its cool-down turns
  /// half-open and admits exactly one probe; the others are refused until it reports.
  bool allow(steady_ms now) noexcept;
  void on_success(steady_ms now) noexcept;
  void on_failure(steady_ms now) noexcept;

  breaker_state state() const noexcept { return state_; }
  /// Transitions so far (closed->open, open->half_open, half_open->closed/open).
  std::uint64_t transitions() const noexcept { return transitions_; }
  std::uint64_t opened() const noexcept { return opened_; }

 private:
  void open(steady_ms now) noexcept;
  void record(steady_ms now, bool failed) noexcept;

  breaker_options opts_;
  breaker_state state_ = breaker_state::closed;
  std::uint32_t consecutive_ = 0;
  steady_ms opened_at_{0};
  bool probe_out_ = false;
  struct outcome {
    steady_ms at;
    bool failed;
  };
  std::deque<outcome> recent_;  // within the ratio window; empty when the ratio is off
  std::uint32_t recent_failures_ = 0;
  std::uint64_t transitions_ = 0;
  std::uint64_t opened_ = 0;
};

/// The limiter and the breaker of one pattern (or the node default), shared by every
/// storage fetch of its keys.
class storage_guard {
 public:
  storage_guard(double rate_per_s, double burst, breaker_options b)
      : bucket_(rate_per_s, burst), breaker_(b) {}

  /// Before a fetch: errc::rate_limited or storage_unavailable "circuit open", else ok.
  result<void> admit(steady_ms now);
  /// After the fetch: only storage_unavailable counts as a failure (storage answered
  /// otherwise, so it is reachable).
  void report(steady_ms now, errc outcome);

  breaker_state state() const;
  std::uint64_t transitions() const;
  std::uint64_t rate_limited() const;
  std::uint64_t rejected_open() const;

 private:
  mutable std::mutex mtx_;
  token_bucket bucket_;
  circuit_breaker breaker_;
  std::uint64_t rate_limited_ = 0;
  std::uint64_t rejected_open_ = 0;
};

/// The monotonic clock the node passes in.
steady_ms steady_now() noexcept;

}  // namespace warp::detail
