#include "federation/link_state.hpp"

#include <algorithm>
#include <utility>

namespace warp::federation {

bool link_queue::push(change c, clock_point now) {
  if (depth() >= limit_) {
    ++n_.dropped;
    if (repair_.size() < max_repair_keys)
      repair_.insert(c.key);
    else
      repair_all_ = true;  // too many to list: the next pass compares everything
    return false;
  }
  ++n_.queued;
  q_.push_back({std::move(c), now});
  return true;
}

bool link_queue::due(clock_point now) const {
  if (flight_ || q_.empty()) return false;
  return q_.size() >= batch_size_ || now - q_.front().at >= max_delay_;
}

batch link_queue::take(std::string sender, clock_point now) {
  batch b;
  b.sender = std::move(sender);
  b.seq = next_seq_++;
  std::vector<entry> taken;
  auto n = std::min(batch_size_, q_.size());
  taken.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    b.changes.push_back(q_.front().c);
    taken.push_back(std::move(q_.front()));
    q_.pop_front();
  }
  flight_ = std::move(taken);
  flight_seq_ = b.seq;
  flight_since_ = now;
  return b;
}

void link_queue::acked(std::uint64_t seq) {
  if (!flight_ || seq != flight_seq_) return;
  n_.shipped += flight_->size();
  ++n_.batches;
  flight_.reset();
}

void link_queue::failed(std::uint64_t seq) {
  if (!flight_ || seq != flight_seq_) return;
  // Back to the front in their order: per-key order is kept, and the receiver's LWW and
  // dedup make a batch that did arrive after all harmless.
  for (auto it = flight_->rbegin(); it != flight_->rend(); ++it) q_.push_front(std::move(*it));
  ++n_.resent;
  flight_.reset();
}

std::size_t link_queue::depth() const noexcept {
  return q_.size() + (flight_ ? flight_->size() : 0);
}

double link_queue::lag_seconds(clock_point now) const {
  std::optional<clock_point> oldest;
  if (flight_ && !flight_->empty()) oldest = flight_->front().at;
  if (!q_.empty() && (!oldest || q_.front().at < *oldest)) oldest = q_.front().at;
  if (!oldest) return 0;
  return std::chrono::duration<double>(now - *oldest).count();
}

std::set<std::string> link_queue::take_repairs() {
  repair_all_ = false;
  return std::exchange(repair_, {});
}

std::vector<std::string> forward_targets(const change& c, const std::string& self,
                                         const std::vector<std::string>& linked) {
  std::vector<std::string> out;
  for (const auto& r : linked) {
    if (r == self || r == c.origin) continue;
    if (std::find(c.path.begin(), c.path.end(), r) != c.path.end()) continue;
    if (std::find(out.begin(), out.end(), r) != out.end()) continue;
    out.push_back(r);
  }
  return out;
}

std::string seen_set::id_of(const change& c) {
  std::string id = c.origin;
  id.push_back('\0');
  id += c.key;
  id.push_back('\0');
  id += std::to_string(c.ver.hlc) + ":" + std::to_string(c.ver.node) +
        (c.what == change::op::erase ? "d" : "p");
  return id;
}

void seen_set::forget(const change& c) {
  // Left in the order list: it ages out from there harmlessly (erasing a missing id).
  set_.erase(id_of(c));
}

bool seen_set::first_time(const change& c) {
  auto id = id_of(c);
  if (!set_.insert(id).second) return false;
  order_.push_back(std::move(id));
  if (order_.size() > cap_) {
    set_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

void tombstones::record(const std::string& key, version ver) {
  std::lock_guard<std::mutex> g{mtx_};
  auto [it, fresh] = map_.try_emplace(key, ver);
  if (!fresh) {
    it->second = std::max(it->second, ver);
    return;
  }
  order_.push_back(key);
  while (order_.size() > cap_) {
    map_.erase(order_.front());
    order_.pop_front();
  }
}

version tombstones::floor(const std::string& key) const {
  std::lock_guard<std::mutex> g{mtx_};
  auto it = map_.find(key);
  return it == map_.end() ? version{} : it->second;
}

void tombstones::forget(const std::string& key) {
  std::lock_guard<std::mutex> g{mtx_};
  map_.erase(key);
}

std::vector<std::uint32_t> region_gateway::observe(const std::vector<member_seen>& members,
                                                   clock_point now) {
  std::set<std::uint32_t> live;
  const member_seen* gw = nullptr;
  for (const auto& m : members) {
    if (!m.live && !m.self) continue;
    live.insert(m.id);
    if (!gw || m.name < gw->name) gw = &m;
  }
  for (auto id : live_)
    if (!live.count(id)) gone_.emplace(id, now);
  // A member that comes back (same id) delivers its own queue again.
  for (auto it = gone_.begin(); it != gone_.end();) {
    if (live.count(it->first) || now - it->second > remember_)
      it = gone_.erase(it);
    else
      ++it;
  }
  live_ = std::move(live);
  gateway_ = gw ? gw->name : std::string{};
  self_gateway_ = gw && gw->self;
  std::vector<std::uint32_t> out;
  if (!self_gateway_) return out;
  for (auto& [id, at] : gone_) out.push_back(id);
  gone_.clear();
  return out;
}

}  // namespace warp::federation
