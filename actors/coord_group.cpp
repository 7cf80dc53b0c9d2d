#include "actors/coord_group.hpp"

#include <map>
#include <mutex>
#include <utility>

#include "runtime/coordination/coord_machine.hpp"
#include "runtime/coordination/lease_clock.hpp"
#include "runtime/core/log.hpp"

namespace warp::actors {

namespace co = coordination;

namespace {

/// Deletes finished on the executor, handed back to the group actor's next tick.
struct finished_deletes {
  std::mutex mtx;
  std::vector<std::pair<std::uint64_t, bool>> done;  ///< (lease, ok)
};

class coord_hooks final : public raft_group_hooks {
 public:
  explicit coord_hooks(const coord_group_options& o)
      : opts_(o), clock_(o.expire_retry), finished_(std::make_shared<finished_deletes>()) {}

  void applied(consensus::raft_state_machine& sm, bool leader, bool restored,
               time_point now) override {
    auto* m = dynamic_cast<co::coord_machine*>(&sm);
    if (!m) return;
    if (restored) {
      // A snapshot carries each lease's last checkpointed remaining TTL: count from there.
      clock_.clear();
      pending_ = m->pending_deletes();
      attempts_.clear();
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
          // Every replica remembers the pending deletes (as the machine does); only the
          // leader runs them, on its next tick: one delete per key, not one per replica.
          if (!e.keys.empty())
            pending_.insert_or_assign(
                e.lease, co::coord_machine::pending_delete{std::move(e.keys), e.expired});
          break;
        case co::coord_event::kind::keys_deleted:
          pending_.erase(e.lease);
          attempts_.erase(e.lease);
          break;
        case co::coord_event::kind::lock_granted:
          if (opts_.on_lock_granted) opts_.on_lock_granted(e.name, e.lease, e.owner, e.token);
          break;
      }
    }
    (void)leader;
  }

  void tick(bool leader, time_point now, const propose_fn& propose) override {
    if (!leader) {
      was_leader_ = false;
      // A deposed leader's deletes in flight may still finish; the next leader repeats
      // whatever is pending anyway, so their outcome is dropped.
      attempts_.clear();
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
    run_deletes(now, propose);
    if (now >= next_checkpoint_ && clock_.size() > 0) {
      next_checkpoint_ = now + opts_.checkpoint_interval;
      co::coord_command c;
      c.op = co::coord_op::checkpoint;
      c.checkpoints = clock_.checkpoint(now, opts_.limits.max_checkpoints);
      if (!c.checkpoints.empty()) propose(co::encode(c));
    }
  }

 private:
  /// The leader's side of pending deletes: start those not in flight, and for those whose
  /// deletes finished, propose keys_deleted (or retry later when a delete failed).
  void run_deletes(time_point now, const propose_fn& propose) {
    std::vector<std::pair<std::uint64_t, bool>> finished;
    {
      std::lock_guard lk{finished_->mtx};
      finished.swap(finished_->done);
    }
    for (auto [lease, ok] : finished) {
      auto a = attempts_.find(lease);
      if (a == attempts_.end() || !pending_.contains(lease)) continue;  // from an older term
      a->second.in_flight = false;
      a->second.next = now + opts_.delete_retry;
      if (ok) {
        // Cleared once it commits; if it is lost, the deletes run again after delete_retry.
        co::coord_command c;
        c.op = co::coord_op::keys_deleted;
        c.lease = lease;
        propose(co::encode(c));
      }
    }
    if (!opts_.on_lease_ended) return;
    for (auto& [lease, p] : pending_) {
      auto& a = attempts_[lease];
      if (a.in_flight || now < a.next) continue;
      a.in_flight = true;
      std::weak_ptr<finished_deletes> sink = finished_;
      opts_.on_lease_ended(lease, p.keys, p.expired, [sink, lease = lease](bool ok) {
        if (auto f = sink.lock()) {
          std::lock_guard lk{f->mtx};
          f->done.emplace_back(lease, ok);
        }
      });
    }
  }

  struct attempt {
    bool in_flight = false;
    time_point next{};  ///< no new run before this
  };

  coord_group_options opts_;
  co::lease_clock clock_;
  std::map<std::uint64_t, co::coord_machine::pending_delete> pending_;
  std::map<std::uint64_t, attempt> attempts_;  ///< this leader's runs, by lease
  std::shared_ptr<finished_deletes> finished_;
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
