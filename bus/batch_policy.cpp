#include "bus/batch_policy.hpp"

#include <algorithm>

#include "warp/config.hpp"

namespace warp::bus {

batch_policy_options batch_policy_options::from(const cluster_options& o) {
  batch_policy_options p;
  p.batching = o.batching;
  p.max_delay = o.batch_max_delay;
  p.busy_rate = o.batch_busy_rate;
  p.target_records = o.batch_target_records;
  p.max_records = std::max<std::size_t>(o.batch_max_records, 1);
  p.max_bytes = o.batch_max_bytes;
  return p;
}

batch_policy::micros batch_policy::delay(time_point now, std::uint64_t pushed) {
  if (!o_.batching || o_.max_delay.count() <= 0) return current_ = micros{0};
  auto window = now - rate_since_;
  if (window >= std::chrono::milliseconds{1}) {
    double secs = std::chrono::duration<double>(window).count();
    double sample = static_cast<double>(pushed - rate_pushed_) / secs;
    // A long quiet window (> 10 ms) resets the estimate: an idle node sends at once.
    rate_ = window > std::chrono::milliseconds{10} ? sample : (rate_ + sample) / 2;
    rate_pushed_ = pushed;
    rate_since_ = now;
  }
  micros d{0};
  if (o_.busy_rate <= 0) {
    d = o_.max_delay;  // always busy: the fixed-delay policy
  } else if (rate_ >= o_.busy_rate) {
    auto fill_us = static_cast<double>(std::max<std::size_t>(o_.target_records, 1)) / rate_ * 1e6;
    d = std::min(o_.max_delay, micros{static_cast<std::int64_t>(fill_us)});
  }
  return current_ = d;
}

batch_policy::decision batch_policy::on_wake(time_point now, std::uint64_t pushed,
                                             std::size_t queued) {
  auto d = delay(now, pushed);
  auto since = now - last_flush_;
  if (o_.batching && d.count() > 0 && since < d && queued < o_.max_records)
    return {false, std::chrono::duration_cast<micros>(d - since)};
  return {true, micros{0}};
}

}  // namespace warp::bus
