#include "bus/batcher.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>

namespace warp::bus {

bool outbound_queue::push(change_record rec) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    pending_.push_back(std::move(rec));
    since_.push_back(clock::now());
  }
  pushed_.fetch_add(1, std::memory_order_relaxed);
  return !wake_pending_.exchange(true, std::memory_order_acq_rel);
}

std::size_t outbound_queue::size() const {
  std::lock_guard<std::mutex> g{mtx_};
  return pending_.size() - head_;
}

outbound_queue::drained outbound_queue::drain(std::size_t max_records, std::size_t max_bytes,
                                              bool coalesce) {
  drained out;
  std::vector<change_record> taken;
  clock::time_point oldest;
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (head_ == pending_.size()) return out;
    oldest = since_[head_];
    std::size_t bytes = 0;
    std::size_t end = head_;
    while (end < pending_.size() && end - head_ < std::max<std::size_t>(max_records, 1)) {
      auto sz = approx_size(pending_[end]);
      if (end > head_ && bytes + sz > max_bytes) break;
      bytes += sz;
      ++end;
    }
    taken.reserve(end - head_);
    for (auto i = head_; i < end; ++i) taken.push_back(std::move(pending_[i]));
    head_ = end;
    if (head_ == pending_.size() || head_ > 4096) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(head_));
      since_.erase(since_.begin(), since_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  out.oldest_wait_us =
      std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - oldest).count();
  if (!coalesce || taken.size() < 2) {
    out.records = std::move(taken);
    return out;
  }
  // Newest version per key, in the order of each key's first appearance.
  std::unordered_map<std::string_view, std::size_t> index;
  index.reserve(taken.size());
  std::vector<bool> keep(taken.size(), true);
  for (std::size_t i = 0; i < taken.size(); ++i) {
    auto [it, fresh] = index.try_emplace(taken[i].key, i);
    if (fresh) continue;
    auto& prev = it->second;
    if (taken[prev].ver < taken[i].ver) {
      keep[prev] = false;
      prev = i;
    } else {
      keep[i] = false;
    }
    ++out.coalesced;
  }
  out.records.reserve(taken.size() - out.coalesced);
  for (std::size_t i = 0; i < taken.size(); ++i)
    if (keep[i]) out.records.push_back(std::move(taken[i]));
  return out;
}

inbound_tracker::stream* inbound_tracker::find(std::uint32_t sender) {
  for (auto& [id, s] : streams_)
    if (id == sender) return &s;
  return nullptr;
}

inbound_tracker::verdict inbound_tracker::on_batch(std::uint32_t sender, std::uint64_t incarnation,
                                                   std::uint64_t seq) {
  auto* s = find(sender);
  if (!s || s->incarnation != incarnation) {
    bool restarted = s != nullptr;
    if (!s) {
      streams_.emplace_back(sender, stream{});
      s = &streams_.back().second;
    }
    s->incarnation = incarnation;
    s->last = seq;
    return seq == 1 && !restarted ? verdict::first : verdict::gap;
  }
  if (seq <= s->last) return verdict::duplicate;
  auto v = seq == s->last + 1 ? verdict::in_order : verdict::gap;
  s->last = seq;
  return v;
}

inbound_tracker::verdict inbound_tracker::on_heartbeat(std::uint32_t sender,
                                                       std::uint64_t incarnation,
                                                       std::uint64_t last_sent) {
  auto* s = find(sender);
  if (!s || s->incarnation != incarnation) {
    bool restarted = s != nullptr;
    if (!s) {
      streams_.emplace_back(sender, stream{});
      s = &streams_.back().second;
    }
    s->incarnation = incarnation;
    s->last = last_sent;
    return last_sent == 0 && !restarted ? verdict::first : verdict::gap;
  }
  if (last_sent > s->last) {
    s->last = last_sent;
    return verdict::gap;
  }
  return verdict::in_order;
}

void inbound_tracker::forget(std::uint32_t sender) {
  std::erase_if(streams_, [&](auto& p) { return p.first == sender; });
}

}  // namespace warp::bus
