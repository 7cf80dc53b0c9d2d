#include "actors/coord_group.hpp"

#include "runtime/coordination/coord_machine.hpp"
#include "runtime/coordination/lease_clock.hpp"
#include "runtime/core/log.hpp"

namespace warp::actors {

namespace co = coordination;

namespace {

class coord_hooks final : public raft_group_hooks {
 public:
  explicit coord_hooks(const coord_group_options& o) : opts_(o), clock_(o.expire_retry) {}

  void applied(consensus::raft_state_machine& sm, bool leader, bool restored,
               time_point now) override {
    auto* m = dynamic_cast<co::coord_machine*>(&sm);
    if (!m) return;
    if (restored) {
      // A snapshot carries each lease's last checkpointed remaining TTL: count from there.
      clock_.clear();
      auto ids = sm.read(co::encode(co::coord_query{co::coord_query_kind::leases, 0, {}}));
      if (ids)
        if (auto list = co::decode_ids(*ids, opts_.limits))
          for (auto id : *list) {
            auto info = sm.read(co::encode(co::coord_query{co::coord_query_kind::lease, id, {}}));
            if (!info) continue;
            if (auto l = co::decode_lease_info(*info, opts_.limits))
              clock_.arm(id, l->epoch, l->remaining_ms, now);
          }
    }
    for (auto& e : m->take_events()) {
      switch (e.what) {
        case co::coord_event::kind::lease_timer:
          clock_.arm(e.lease, e.epoch, e.remaining_ms, now);
          break;
        case co::coord_event::kind::lease_ended:
          clock_.forget(e.lease);
          // Only the leader deletes: one delete per key, not one per replica. A leader that
          // dies before its deletes ran leaves them undone (docs/coordination.md).
          if (leader && opts_.on_lease_ended && !e.keys.empty())
            opts_.on_lease_ended(e.lease, std::move(e.keys), e.expired);
          break;
        case co::coord_event::kind::lock_granted:
          break;  // waiters learn it by reading the lock (docs/coordination.md, "Waiting")
      }
    }
  }

  void tick(bool leader, time_point now, const propose_fn& propose) override {
    if (!leader) {
      was_leader_ = false;
      return;
    }
    if (!was_leader_) {
      // Just elected: the first checkpoint waits a full interval, expiries start now.
      was_leader_ = true;
      next_checkpoint_ = now + opts_.checkpoint_interval;
    }
    for (const auto& d : clock_.due(now)) {
      co::coord_command c;
      c.op = co::coord_op::expire;
      c.lease = d.lease;
      c.number = d.epoch;
      propose(co::encode(c));
    }
    if (now >= next_checkpoint_ && clock_.size() > 0) {
      next_checkpoint_ = now + opts_.checkpoint_interval;
      co::coord_command c;
      c.op = co::coord_op::checkpoint;
      c.checkpoints = clock_.checkpoint(now, opts_.limits.max_checkpoints);
      if (!c.checkpoints.empty()) propose(co::encode(c));
    }
  }

 private:
  coord_group_options opts_;
  co::lease_clock clock_;
  bool was_leader_ = false;
  time_point next_checkpoint_{};
};

}  // namespace

std::unique_ptr<consensus::raft_state_machine> make_coord_machine(const coord_group_options& o) {
  return std::make_unique<co::coord_machine>(o.limits);
}

std::unique_ptr<raft_group_hooks> make_coord_hooks(const coord_group_options& o) {
  return std::make_unique<coord_hooks>(o);
}

}  // namespace warp::actors
