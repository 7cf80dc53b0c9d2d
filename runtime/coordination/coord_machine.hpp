// The replicated state of a coordination group: leases, fenced locks and fenced registers,
// as a Raft state machine (consensus::raft_state_machine). Pure: no I/O, no clock, no
// threads. Every replica applying the same entries ends in the same state and emits the
// same events; the group's actors act on them (the leader deletes a lease's keys, wakes a
// promoted waiter). Semantics and guarantees: docs/coordination.md.
//
// Time. The machine has no clock: a lease's TTL is counted down by its group's leader, which
// proposes `expire(lease, epoch)` when it runs out and `checkpoint` entries carrying the
// remaining TTLs. A keep-alive bumps the lease's epoch, so an expiry decided before a
// keep-alive committed is refused (conflict) instead of ending a renewed lease. A new leader
// starts each lease's countdown from the last checkpointed remaining TTL (less the time since
// it applied that checkpoint), never from the full TTL: a leader change extends a lease by
// at most the checkpoint's replication delay, never by a whole TTL (etcd #9395, #9888).
//
// Fencing. A lock's token is the log index of the entry that granted it: strictly
// increasing for every grant of one lock, also across restarts (the log keeps indexes). A
// fenced register accepts a write only from the lock's current holder with its current
// token, so a holder that paused past its lease cannot write after losing the lock.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/consensus/client_sessions.hpp"
#include "runtime/consensus/raft_kv.hpp"
#include "runtime/coordination/coord_command.hpp"

namespace warp::coordination {

/// What applying an entry did that someone outside the machine must act on.
struct coord_event {
  enum class kind : std::uint8_t {
    lock_granted,  ///< a waiter became the holder: wake it (name, lease, owner, token)
    lease_ended,   ///< revoked or expired: delete its keys (lease, keys, expired)
    lease_timer,   ///< granted, kept alive or checkpointed: (re)start its countdown
                   ///< (lease, epoch, remaining_ms)
    keys_deleted,  ///< a lease's pending deletes were cleared (lease)
  };
  kind what = kind::lock_granted;
  index_t index = 0;
  std::uint64_t lease = 0;
  std::string name;
  std::string owner;
  std::uint64_t token = 0;
  std::vector<std::string> keys;
  bool expired = false;
  std::uint64_t epoch = 0;
  std::uint64_t remaining_ms = 0;
};

class coord_machine final : public consensus::raft_state_machine {
 public:
  explicit coord_machine(coord_limits lim = {})
      : lim_(lim), sessions_(lim.max_sessions) {}

  result<std::string> apply(index_t index, std::string_view data) override;
  /// `query` is an encoded coord_query.
  result<std::string> read(std::string_view query) const override;
  std::string snapshot() const override;
  result<void> restore(std::string_view data) override;
  index_t applied() const noexcept override { return applied_; }

  /// The events of the entries applied since the last call, in apply order.
  std::vector<coord_event> take_events() { return std::exchange(events_, {}); }

  std::size_t lease_count() const noexcept { return leases_.size(); }
  std::size_t lock_count() const noexcept { return locks_.size(); }
  std::uint64_t deduplicated() const noexcept { return sessions_.deduplicated(); }

  /// The attached keys of ended leases that no leader has confirmed deleted yet: part of
  /// the replicated state (and its snapshot), so a leader that dies before its deletes ran
  /// leaves them to the next one.
  struct pending_delete {
    std::vector<std::string> keys;
    bool expired = false;
    friend bool operator==(const pending_delete&, const pending_delete&) = default;
  };
  const std::map<std::uint64_t, pending_delete>& pending_deletes() const noexcept {
    return pending_;
  }

 private:
  struct lease {
    std::uint64_t ttl_ms = 0;
    std::uint64_t remaining_ms = 0;
    std::uint64_t epoch = 0;
    std::set<std::string, std::less<>> keys;
    std::set<std::string, std::less<>> locks;  ///< held or waited for
  };
  struct waiter {
    std::uint64_t lease = 0;
    std::string owner;
    bool reentrant = false;
  };
  struct lock {
    std::uint64_t holder_lease = 0;  ///< 0: free
    std::string holder_owner;
    bool reentrant = false;
    std::uint64_t token = 0;
    std::uint32_t holds = 0;
    std::deque<waiter> waiters;
  };

  result<std::string> execute(index_t index, const coord_command& c);
  result<std::string> grant(index_t index, const coord_command& c);
  result<std::string> keepalive(index_t index, const coord_command& c);
  result<std::string> end_lease(index_t index, std::uint64_t id, bool expired);
  result<std::string> checkpoint(index_t index, const coord_command& c);
  result<std::string> attach(const coord_command& c);
  result<std::string> acquire(index_t index, const coord_command& c, bool queue);
  result<std::string> release(index_t index, const coord_command& c);
  result<std::string> cancel_wait(index_t index, const coord_command& c);
  result<std::string> fenced_put(const coord_command& c);
  result<std::string> keys_deleted(index_t index, const coord_command& c);
  result<std::string> release_owner(index_t index, const coord_command& c);

  /// The lock is free: hand it to the first waiter (whose lease is alive by construction:
  /// ending a lease removes its waiters), or forget it when nobody waits.
  void promote(index_t index, std::map<std::string, lock, std::less<>>::iterator it);
  void timer_event(index_t index, std::uint64_t id, const lease& l);

  coord_limits lim_;
  std::map<std::uint64_t, lease> leases_;
  std::map<std::string, lock, std::less<>> locks_;
  struct fenced_value {
    std::string lock;
    std::uint64_t token = 0;
    std::string value;
  };
  std::map<std::string, fenced_value, std::less<>> fenced_;
  std::map<std::uint64_t, pending_delete> pending_;  ///< by ended lease
  consensus::client_sessions sessions_;
  index_t applied_ = 0;
  std::vector<coord_event> events_;
};

}  // namespace warp::coordination
