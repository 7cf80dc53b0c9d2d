#include "runtime/readthrough/protection.hpp"

#include <algorithm>
#include <string>

namespace warp::detail {

steady_ms steady_now() noexcept {
  return std::chrono::duration_cast<steady_ms>(std::chrono::steady_clock::now().time_since_epoch());
}

token_bucket::token_bucket(double rate_per_s, double burst) noexcept
    : rate_(rate_per_s), burst_(std::max(burst, 1.0)), tokens_(burst_) {}

bool token_bucket::try_take(steady_ms now) noexcept {
  if (rate_ <= 0) return true;
  if (!started_) {
    started_ = true;
    last_ = now;
  }
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + (now - last_).count() * rate_ / 1000.0);
    last_ = now;
  }
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "unknown";
}

void circuit_breaker::open(steady_ms now) noexcept {
  state_ = breaker_state::open;
  opened_at_ = now;
  probe_out_ = false;
  consecutive_ = 0;
  recent_.clear();
  recent_failures_ = 0;
  ++transitions_;
  ++opened_;
}

bool circuit_breaker::allow(steady_ms now) noexcept {
  switch (state_) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      if (now - opened_at_ < opts_.cooldown) return false;
      state_ = breaker_state::half_open;
      ++transitions_;
      probe_out_ = true;
      return true;
    case breaker_state::half_open:
      // One probe at a time: the rest fail fast until it reports.
      if (probe_out_) return false;
      probe_out_ = true;
      return true;
  }
  return false;
}

// The ratio window keeps at most this many outcomes (the newest), so a high fetch rate
// cannot grow it without bound.
constexpr std::size_t max_recent_outcomes = 4096;

void circuit_breaker::record(steady_ms now, bool failed) noexcept {
  if (opts_.failure_ratio <= 0) return;
  recent_.push_back({now, failed});
  recent_failures_ += failed;
  // Bounded whatever the fetch rate: the ratio is judged over the window's newest outcomes.
  while (!recent_.empty() &&
         (now - recent_.front().at > opts_.window || recent_.size() > max_recent_outcomes)) {
    recent_failures_ -= recent_.front().failed;
    recent_.pop_front();
  }
}

void circuit_breaker::on_success(steady_ms now) noexcept {
  if (state_ == breaker_state::half_open) {
    state_ = breaker_state::closed;
    ++transitions_;
    probe_out_ = false;
  }
  if (state_ != breaker_state::closed) return;  // a late answer from before it opened
  consecutive_ = 0;
  record(now, false);
}

void circuit_breaker::on_failure(steady_ms now) noexcept {
  if (state_ == breaker_state::half_open) {
    open(now);
    return;
  }
  if (state_ != breaker_state::closed) return;
  ++consecutive_;
  record(now, true);
  if (opts_.failures > 0 && consecutive_ >= opts_.failures) {
    open(now);
    return;
  }
  if (opts_.failure_ratio > 0 && recent_.size() >= opts_.min_calls &&
      static_cast<double>(recent_failures_) >= opts_.failure_ratio * recent_.size())
    open(now);
}

result<void> storage_guard::admit(steady_ms now) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!breaker_.allow(now)) {
    ++rejected_open_;
    return error{errc::storage_unavailable, "circuit open: storage failed recently"};
  }
  if (!bucket_.try_take(now)) {
    ++rate_limited_;
    // A half-open probe that was rate limited never reached storage: let another try.
    if (breaker_.state() == breaker_state::half_open) breaker_.on_success(now);
    return error{errc::rate_limited, "storage fetch rate limit of " +
                                         std::to_string(static_cast<long long>(bucket_.rate())) +
                                         "/s exceeded"};
  }
  return {};
}

void storage_guard::report(steady_ms now, errc outcome) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (outcome == errc::storage_unavailable)
    breaker_.on_failure(now);
  else
    breaker_.on_success(now);
}

breaker_state storage_guard::state() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return breaker_.state();
}
std::uint64_t storage_guard::transitions() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return breaker_.transitions();
}
std::uint64_t storage_guard::rate_limited() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return rate_limited_;
}
std::uint64_t storage_guard::rejected_open() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return rejected_open_;
}

}  // namespace warp::detail
