#include "runtime/coordination/coord_machine.hpp"

#include <algorithm>
#include <utility>

#include "runtime/consensus/byte_codec.hpp"

namespace warp::coordination {

using consensus::byte_reader;
using consensus::put_str;
using consensus::put_u64;
using consensus::put_u8;

namespace {

// 2: pending deletes of ended leases' keys after the fenced registers. 1 is still read.
constexpr std::uint8_t snapshot_version = 2;

error no_lease(std::uint64_t id) {
  return error{errc::not_found, "no lease " + std::to_string(id) + " (revoked or expired)"};
}

}  // namespace

result<std::string> coord_machine::apply(index_t index, std::string_view data) {
  applied_ = std::max(applied_, index);
  auto cmd = decode_coord_command(data, lim_);
  // A malformed entry is refused the same way on every replica: no state change.
  if (!cmd) return cmd.err();
  if (auto answer = sessions_.replay(cmd->client, cmd->seq, index)) return std::move(*answer);
  auto out = execute(index, *cmd);
  sessions_.record(cmd->client, cmd->seq, index, out);
  return out;
}

result<std::string> coord_machine::execute(index_t index, const coord_command& c) {
  switch (c.op) {
    case coord_op::grant:
      return grant(index, c);
    case coord_op::keepalive:
      return keepalive(index, c);
    case coord_op::revoke:
      return end_lease(index, c.lease, false);
    case coord_op::expire: {
      auto it = leases_.find(c.lease);
      if (it == leases_.end()) return no_lease(c.lease);
      if (it->second.epoch != c.number)
        return error{errc::conflict, "lease renewed after its expiry was decided"};
      return end_lease(index, c.lease, true);
    }
    case coord_op::checkpoint:
      return checkpoint(index, c);
    case coord_op::attach:
      return attach(c);
    case coord_op::lock:
      return acquire(index, c, true);
    case coord_op::try_lock:
      return acquire(index, c, false);
    case coord_op::unlock:
      return release(index, c);
    case coord_op::cancel_wait:
      return cancel_wait(index, c);
    case coord_op::fenced_put:
      return fenced_put(c);
    case coord_op::keys_deleted:
      return keys_deleted(index, c);
    case coord_op::release_owner:
      return release_owner(index, c);
  }
  return error{errc::internal, "coordination: unknown op"};
}

void coord_machine::timer_event(index_t index, std::uint64_t id, const lease& l) {
  coord_event e;
  e.what = coord_event::kind::lease_timer;
  e.index = index;
  e.lease = id;
  e.epoch = l.epoch;
  e.remaining_ms = l.remaining_ms;
  events_.push_back(std::move(e));
}

result<std::string> coord_machine::grant(index_t index, const coord_command& c) {
  if (c.number < lim_.min_ttl_ms || c.number > lim_.max_ttl_ms)
    return error{errc::invalid_argument, "lease TTL must be between " +
                                             std::to_string(lim_.min_ttl_ms) + " and " +
                                             std::to_string(lim_.max_ttl_ms) + " ms"};
  // Ended leases whose deletes are pending count too: that bounds the pending table.
  if (leases_.size() + pending_.size() >= lim_.max_leases)
    return error{errc::invalid_argument, "too many leases"};
  // The entry's index names the lease: unique, and the same on every replica.
  auto& l = leases_[index];
  l.ttl_ms = c.number;
  l.remaining_ms = c.number;
  timer_event(index, index, l);
  return std::to_string(index);
}

result<std::string> coord_machine::keepalive(index_t index, const coord_command& c) {
  auto it = leases_.find(c.lease);
  if (it == leases_.end()) return no_lease(c.lease);
  auto& l = it->second;
  ++l.epoch;
  l.remaining_ms = l.ttl_ms;
  timer_event(index, it->first, l);
  return std::to_string(l.ttl_ms);
}

result<std::string> coord_machine::checkpoint(index_t index, const coord_command& c) {
  for (auto& cp : c.checkpoints) {
    auto it = leases_.find(cp.lease);
    // A keep-alive applied after the leader's reading wins over it.
    if (it == leases_.end() || it->second.epoch != cp.epoch) continue;
    it->second.remaining_ms = std::min(cp.remaining_ms, it->second.ttl_ms);
    timer_event(index, it->first, it->second);
  }
  return std::string{};
}

result<std::string> coord_machine::end_lease(index_t index, std::uint64_t id, bool expired) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return no_lease(id);
  auto node = leases_.extract(it);
  auto& l = node.mapped();
  for (auto& name : l.locks) {
    auto lk = locks_.find(name);
    if (lk == locks_.end()) continue;
    auto& waiters = lk->second.waiters;
    std::erase_if(waiters, [&](const waiter& w) { return w.lease == id; });
    if (lk->second.holder_lease == id) {
      lk->second.holder_lease = 0;
      lk->second.holder_owner.clear();
      lk->second.holds = 0;
      promote(index, lk);
    } else if (lk->second.holder_lease == 0 && waiters.empty()) {
      locks_.erase(lk);
    }
  }
  coord_event e;
  e.what = coord_event::kind::lease_ended;
  e.index = index;
  e.lease = id;
  e.expired = expired;
  e.keys.assign(l.keys.begin(), l.keys.end());
  // The deletes stay pending in the replicated state until a leader confirms them
  // (keys_deleted): whoever leads next repeats them if this leader dies first.
  if (!e.keys.empty()) pending_.insert_or_assign(id, pending_delete{e.keys, expired});
  events_.push_back(std::move(e));
  return std::string{};
}

result<std::string> coord_machine::keys_deleted(index_t index, const coord_command& c) {
  if (pending_.erase(c.lease) > 0) {
    coord_event e;
    e.what = coord_event::kind::keys_deleted;
    e.index = index;
    e.lease = c.lease;
    events_.push_back(std::move(e));
  }
  return std::string{};
}

result<std::string> coord_machine::release_owner(index_t index, const coord_command& c) {
  auto ls = leases_.find(c.lease);
  if (ls == leases_.end()) return no_lease(c.lease);
  std::uint64_t given_up = 0;
  // A copy: promote() and the index maintenance below change the lease's set.
  const std::vector<std::string> names(ls->second.locks.begin(), ls->second.locks.end());
  for (const auto& name : names) {
    auto it = locks_.find(name);
    if (it == locks_.end()) continue;
    auto& lk = it->second;
    const auto before = lk.waiters.size();
    std::erase_if(lk.waiters,
                  [&](const waiter& w) { return w.lease == c.lease && w.owner == c.owner; });
    given_up += before - lk.waiters.size();
    if (lk.holder_lease == c.lease && lk.holder_owner == c.owner) {
      lk.holder_lease = 0;
      lk.holder_owner.clear();
      lk.holds = 0;
      ++given_up;
      promote(index, it);  // to the next waiter, or forgets the lock
    } else if (lk.holder_lease == 0 && lk.waiters.empty()) {
      locks_.erase(it);
    }
    // Other owners of the same lease may still hold or wait for it.
    auto now = locks_.find(name);
    bool involved =
        now != locks_.end() && (now->second.holder_lease == c.lease ||
                                std::any_of(now->second.waiters.begin(), now->second.waiters.end(),
                                            [&](const waiter& w) { return w.lease == c.lease; }));
    if (!involved) ls->second.locks.erase(name);
  }
  return std::to_string(given_up);
}

result<std::string> coord_machine::attach(const coord_command& c) {
  auto it = leases_.find(c.lease);
  if (it == leases_.end()) return no_lease(c.lease);
  if (c.name.empty()) return error{errc::invalid_argument, "attach: empty key"};
  auto& keys = it->second.keys;
  if (!keys.contains(c.name) && keys.size() >= lim_.max_keys_per_lease)
    return error{errc::invalid_argument, "too many keys on lease " + std::to_string(c.lease)};
  keys.insert(c.name);
  return std::string{};
}

void coord_machine::promote(index_t index, std::map<std::string, lock, std::less<>>::iterator it) {
  auto& lk = it->second;
  if (lk.waiters.empty()) {
    locks_.erase(it);
    return;
  }
  auto next = std::move(lk.waiters.front());
  lk.waiters.pop_front();
  lk.holder_lease = next.lease;
  lk.holder_owner = std::move(next.owner);
  lk.reentrant = next.reentrant;
  lk.token = index;
  lk.holds = 1;
  coord_event e;
  e.what = coord_event::kind::lock_granted;
  e.index = index;
  e.lease = lk.holder_lease;
  e.name = it->first;
  e.owner = lk.holder_owner;
  e.token = lk.token;
  events_.push_back(std::move(e));
}

result<std::string> coord_machine::acquire(index_t index, const coord_command& c, bool queue) {
  if (c.name.empty()) return error{errc::invalid_argument, "lock: empty name"};
  if (c.owner.size() > lim_.max_owner_bytes)
    return error{errc::invalid_argument, "lock: owner too long"};
  auto ls = leases_.find(c.lease);
  if (ls == leases_.end()) return no_lease(c.lease);
  auto it = locks_.find(c.name);
  if (it == locks_.end()) {
    if (locks_.size() >= lim_.max_locks) return error{errc::invalid_argument, "too many locks"};
    it = locks_.emplace(c.name, lock{}).first;
  }
  auto& lk = it->second;
  if (lk.holder_lease == 0) {
    lk.holder_lease = c.lease;
    lk.holder_owner = c.owner;
    lk.reentrant = c.reentrant;
    lk.token = index;
    lk.holds = 1;
    ls->second.locks.insert(c.name);
    return encode(lock_answer{true, lk.token, 1, 0});
  }
  if (lk.holder_lease == c.lease && lk.holder_owner == c.owner) {
    if (!lk.reentrant || !c.reentrant)
      return error{errc::conflict, "lock already held by this owner (not reentrant)"};
    if (lk.holds >= lim_.max_reentry)
      return error{errc::conflict, "lock reentered too often"};
    ++lk.holds;
    return encode(lock_answer{true, lk.token, lk.holds, 0});
  }
  auto& waiters = lk.waiters;
  auto mine = std::find_if(waiters.begin(), waiters.end(), [&](const waiter& w) {
    return w.lease == c.lease && w.owner == c.owner;
  });
  if (mine != waiters.end())  // a second lock() while queued: the same place
    return encode(
        lock_answer{false, index, 0, static_cast<std::uint64_t>(mine - waiters.begin()) + 1});
  if (!queue) return error{errc::conflict, "lock held by another owner"};
  if (waiters.size() >= lim_.max_waiters_per_lock)
    return error{errc::conflict, "too many waiters on this lock"};
  waiters.push_back(waiter{c.lease, c.owner, c.reentrant});
  ls->second.locks.insert(c.name);
  return encode(lock_answer{false, index, 0, waiters.size()});
}

result<std::string> coord_machine::release(index_t index, const coord_command& c) {
  auto it = locks_.find(c.name);
  if (it == locks_.end() || it->second.holder_lease != c.lease ||
      it->second.holder_owner != c.owner || it->second.token != c.number)
    return error{errc::conflict, "not the holder of this lock with this token"};
  auto& lk = it->second;
  if (--lk.holds > 0) return encode(lock_answer{true, lk.token, lk.holds, 0});
  auto lease_id = lk.holder_lease;
  lk.holder_lease = 0;
  lk.holder_owner.clear();
  bool still_waiting = std::any_of(lk.waiters.begin(), lk.waiters.end(),
                                   [&](const waiter& w) { return w.lease == lease_id; });
  if (!still_waiting)
    if (auto ls = leases_.find(lease_id); ls != leases_.end()) ls->second.locks.erase(c.name);
  promote(index, it);
  return encode(lock_answer{false, 0, 0, 0});
}

result<std::string> coord_machine::cancel_wait(index_t index, const coord_command& c) {
  (void)index;
  auto it = locks_.find(c.name);
  if (it == locks_.end()) return error{errc::not_found, "no such lock"};
  auto& lk = it->second;
  if (lk.holder_lease == c.lease && lk.holder_owner == c.owner)
    return encode(lock_answer{true, lk.token, lk.holds, 0});
  auto mine = std::find_if(lk.waiters.begin(), lk.waiters.end(), [&](const waiter& w) {
    return w.lease == c.lease && w.owner == c.owner;
  });
  if (mine == lk.waiters.end()) return error{errc::not_found, "not waiting for this lock"};
  lk.waiters.erase(mine);
  bool involved = lk.holder_lease == c.lease ||
                  std::any_of(lk.waiters.begin(), lk.waiters.end(),
                              [&](const waiter& w) { return w.lease == c.lease; });
  if (!involved)
    if (auto ls = leases_.find(c.lease); ls != leases_.end()) ls->second.locks.erase(c.name);
  if (lk.holder_lease == 0 && lk.waiters.empty()) locks_.erase(it);
  return encode(lock_answer{false, 0, 0, 0});
}

result<std::string> coord_machine::fenced_put(const coord_command& c) {
  if (c.name.empty()) return error{errc::invalid_argument, "fenced write: empty key"};
  auto lk = locks_.find(c.owner);
  if (lk == locks_.end() || lk->second.holder_lease == 0 || lk->second.token != c.number)
    return error{errc::conflict, "fencing token " + std::to_string(c.number) +
                                     " is not the current holder's of lock '" + c.owner + "'"};
  auto it = fenced_.find(c.name);
  if (it != fenced_.end() && it->second.lock == c.owner && it->second.token > c.number)
    return error{errc::conflict, "a newer fencing token wrote this key"};
  if (it == fenced_.end() && fenced_.size() >= lim_.max_locks)
    return error{errc::invalid_argument, "too many fenced registers"};
  fenced_.insert_or_assign(c.name, fenced_value{c.owner, c.number, c.value});
  return std::string{};
}

result<std::string> coord_machine::read(std::string_view query) const {
  auto q = decode_coord_query(query, lim_);
  if (!q) return q.err();
  switch (q->kind) {
    case coord_query_kind::lease: {
      auto it = leases_.find(q->number);
      if (it == leases_.end()) return no_lease(q->number);
      lease_info info;
      info.id = it->first;
      info.ttl_ms = it->second.ttl_ms;
      info.remaining_ms = it->second.remaining_ms;
      info.epoch = it->second.epoch;
      info.keys.assign(it->second.keys.begin(), it->second.keys.end());
      return encode(info);
    }
    case coord_query_kind::leases: {
      std::vector<std::uint64_t> ids;
      ids.reserve(leases_.size());
      for (auto& [id, l] : leases_) ids.push_back(id);
      return encode_ids(ids);
    }
    case coord_query_kind::lock: {
      lock_info info;
      if (auto it = locks_.find(q->name); it != locks_.end()) {
        info.held = it->second.holder_lease != 0;
        info.holder_lease = it->second.holder_lease;
        info.holder_owner = it->second.holder_owner;
        info.token = it->second.token;
        info.holds = it->second.holds;
        info.waiters = it->second.waiters.size();
      }
      return encode(info);
    }
    case coord_query_kind::fenced: {
      auto it = fenced_.find(q->name);
      if (it == fenced_.end()) return error{errc::not_found, "no value"};
      return it->second.value;
    }
  }
  return error{errc::internal, "coordination: unknown query"};
}

std::string coord_machine::snapshot() const {
  std::string out;
  put_u8(out, snapshot_version);
  put_u64(out, applied_);
  put_u64(out, leases_.size());
  for (auto& [id, l] : leases_) {
    put_u64(out, id);
    put_u64(out, l.ttl_ms);
    put_u64(out, l.remaining_ms);
    put_u64(out, l.epoch);
    put_u64(out, l.keys.size());
    for (auto& k : l.keys) put_str(out, k);
  }
  put_u64(out, locks_.size());
  for (auto& [name, lk] : locks_) {
    put_str(out, name);
    put_u64(out, lk.holder_lease);
    put_str(out, lk.holder_owner);
    put_u8(out, lk.reentrant ? 1 : 0);
    put_u64(out, lk.token);
    put_u64(out, lk.holds);
    put_u64(out, lk.waiters.size());
    for (auto& w : lk.waiters) {
      put_u64(out, w.lease);
      put_str(out, w.owner);
      put_u8(out, w.reentrant ? 1 : 0);
    }
  }
  put_u64(out, fenced_.size());
  for (auto& [key, f] : fenced_) {
    put_str(out, key);
    put_str(out, f.lock);
    put_u64(out, f.token);
    put_str(out, f.value);
  }
  put_u64(out, pending_.size());
  for (auto& [id, p] : pending_) {
    put_u64(out, id);
    put_u8(out, p.expired ? 1 : 0);
    put_u64(out, p.keys.size());
    for (auto& k : p.keys) put_str(out, k);
  }
  sessions_.snapshot(out);
  return out;
}

result<void> coord_machine::restore(std::string_view data) {
  byte_reader r{data};
  const auto version = r.u8();
  if (!r.ok || version < 1 || version > snapshot_version)
    return error{errc::codec_error, "coordination snapshot: unsupported version"};
  decltype(leases_) leases;
  decltype(pending_) pending;
  decltype(locks_) locks;
  decltype(fenced_) fenced;
  auto applied = r.u64();
  auto n = r.count(lim_.max_leases);
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    auto id = r.u64();
    lease l;
    l.ttl_ms = r.u64();
    l.remaining_ms = r.u64();
    l.epoch = r.u64();
    auto k = r.count(lim_.max_keys_per_lease);
    for (std::uint64_t j = 0; r.ok && j < k; ++j) l.keys.insert(r.str(lim_.max_name_bytes));
    if (r.ok) leases.insert_or_assign(id, std::move(l));
  }
  n = r.count(lim_.max_locks);
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    auto name = r.str(lim_.max_name_bytes);
    lock lk;
    lk.holder_lease = r.u64();
    lk.holder_owner = r.str(lim_.max_owner_bytes);
    auto reentrant = r.u8();
    lk.token = r.u64();
    auto holds = r.u64();
    if (reentrant > 1 || holds > lim_.max_reentry) r.fail();
    lk.reentrant = reentrant == 1;
    lk.holds = static_cast<std::uint32_t>(holds);
    auto w = r.count(lim_.max_waiters_per_lock);
    for (std::uint64_t j = 0; r.ok && j < w; ++j) {
      waiter wt;
      wt.lease = r.u64();
      wt.owner = r.str(lim_.max_owner_bytes);
      auto re = r.u8();
      if (re > 1) r.fail();
      wt.reentrant = re == 1;
      if (r.ok) lk.waiters.push_back(std::move(wt));
    }
    if (!r.ok) break;
    // The lease -> locks index is derived, not stored: rebuilt here.
    if (auto ls = leases.find(lk.holder_lease); ls != leases.end()) ls->second.locks.insert(name);
    for (auto& wt : lk.waiters)
      if (auto ls = leases.find(wt.lease); ls != leases.end()) ls->second.locks.insert(name);
    locks.insert_or_assign(std::move(name), std::move(lk));
  }
  n = r.count(lim_.max_locks);
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    auto key = r.str(lim_.max_name_bytes);
    fenced_value f;
    f.lock = r.str(lim_.max_name_bytes);
    f.token = r.u64();
    f.value = r.str(lim_.max_value_bytes);
    if (r.ok) fenced.insert_or_assign(std::move(key), std::move(f));
  }
  if (version >= 2) {
    n = r.count(lim_.max_leases);
    for (std::uint64_t i = 0; r.ok && i < n; ++i) {
      auto id = r.u64();
      pending_delete p;
      auto expired = r.u8();
      if (expired > 1) r.fail();
      p.expired = expired == 1;
      auto k = r.count(lim_.max_keys_per_lease);
      for (std::uint64_t j = 0; r.ok && j < k; ++j) p.keys.push_back(r.str(lim_.max_name_bytes));
      if (r.ok) pending.insert_or_assign(id, std::move(p));
    }
  }
  consensus::client_sessions sessions(lim_.max_sessions);
  if (r.ok && !sessions.restore(r)) r.fail();
  if (!r.done()) return error{errc::codec_error, "coordination snapshot: malformed"};
  leases_ = std::move(leases);
  locks_ = std::move(locks);
  fenced_ = std::move(fenced);
  pending_ = std::move(pending);
  sessions_ = std::move(sessions);
  applied_ = applied;
  events_.clear();
  return {};
}

}  // namespace warp::coordination
