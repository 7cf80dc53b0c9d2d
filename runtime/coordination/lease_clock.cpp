#include "runtime/coordination/lease_clock.hpp"

#include <algorithm>

namespace warp::coordination {

void lease_clock::arm(std::uint64_t lease, std::uint64_t epoch, std::uint64_t remaining_ms,
                      time_point now) {
  auto& c = leases_[lease];
  c.epoch = epoch;
  c.deadline = now + std::chrono::milliseconds{remaining_ms};
  c.next_proposal = c.deadline;
}

std::vector<lease_checkpoint> lease_clock::due(time_point now) {
  std::vector<lease_checkpoint> out;
  for (auto& [id, c] : leases_) {
    if (now < c.deadline || now < c.next_proposal) continue;
    out.push_back(lease_checkpoint{id, c.epoch, 0});
    c.next_proposal = now + retry_;
  }
  return out;
}

std::vector<lease_checkpoint> lease_clock::checkpoint(time_point now, std::size_t max) {
  std::vector<lease_checkpoint> out;
  if (leases_.empty() || max == 0) return out;
  auto it = leases_.upper_bound(checkpoint_cursor_);
  for (std::size_t seen = 0; seen < leases_.size() && out.size() < max; ++seen) {
    if (it == leases_.end()) it = leases_.begin();
    out.push_back(lease_checkpoint{it->first, it->second.epoch, remaining_ms(it->first, now)});
    checkpoint_cursor_ = it->first;
    ++it;
  }
  return out;
}

std::uint64_t lease_clock::remaining_ms(std::uint64_t lease, time_point now) const {
  auto it = leases_.find(lease);
  if (it == leases_.end() || now >= it->second.deadline) return 0;
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(it->second.deadline - now).count());
}

}  // namespace warp::coordination
