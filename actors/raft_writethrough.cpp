#include "actors/raft_writethrough.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "actors/watch_hub.hpp"
#include "runtime/core/log.hpp"

namespace warp::actors {

namespace rc = consensus;

std::string writethrough_fence(std::uint32_t group) {
  return "raft-group-" + std::to_string(group);
}

namespace {

/// A batch's outcome, handed from the executor back to the group actor's next tick (as the
/// coordination group's deletes are, actors/coord_group.cpp).
struct finished_write {
  std::mutex mtx;
  bool done = false;
  error err;
};

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class writethrough_hooks final : public raft_group_hooks {
 public:
  writethrough_hooks(std::uint32_t group, writethrough_options o)
      : group_(group),
        fence_(writethrough_fence(group)),
        opts_(std::move(o)),
        finished_(std::make_shared<finished_write>()) {}

  void applied(rc::raft_state_machine&, bool, bool, time_point) override {}

  void before_tick(const rc::raft_state_machine& sm, const standing& s) override {
    if (auto* w = dynamic_cast<const watched_kv_state_machine*>(&sm))
      kv_ = &w->inner();
    else
      kv_ = dynamic_cast<const rc::kv_state_machine*>(&sm);
    standing_ = s;
  }

  void tick(bool leader, time_point, const propose_fn& propose) override {
    ++ticks_;
    if (!kv_) return;
    collect(propose);
    if (!leader || !standing_.term_applied) return;
    if (standing_.term != term_) {
      // A new term (this node was elected again, or for the first time): start over from
      // the replicated mark; what this node wrote in an older term may have been
      // overwritten since, and is written again if still listed.
      term_ = standing_.term;
      written_through_ = 0;
    }
    // The mark of a stored batch got lost (it cannot commit only when leadership moves, but
    // be safe): propose it again now and then; applying it twice changes nothing.
    if (written_through_ > kv_->stored_through() && ticks_ >= mark_retry_) {
      propose(rc::encode(rc::stored_mark(written_through_)));
      mark_retry_ = ticks_ + 20;
    }
    if (in_flight_ || ticks_ < next_try_) return;
    start(propose);
  }

  void add_status(raft_status& s) const override {
    s.write_through = true;
    if (kv_) {
      s.wt_pending_keys = kv_->unstored().size();
      s.wt_stored_index = kv_->stored_through();
    }
    s.wt_batches = batches_;
    s.wt_keys = keys_;
    s.wt_failures = failures_;
    s.wt_fenced = fenced_;
  }

 private:
  /// The running batch's outcome, if it came back.
  void collect(const propose_fn& propose) {
    if (!in_flight_) return;
    error err;
    {
      std::lock_guard lk{finished_->mtx};
      if (!finished_->done) return;
      finished_->done = false;
      err = std::move(finished_->err);
    }
    in_flight_ = false;
    if (!err) {
      ++batches_;
      keys_ += batch_keys_;
      backoff_ = 0;
      next_try_ = ticks_;
      if (failing_)
        detail::log()->info("raft group {}: storage write-through works again (through index {})",
                            group_, batch_through_);
      failing_ = false;
      // Only for the term it was written in: a batch of an older term of this node is
      // stored (its fence held) but the current term starts over from the mark anyway.
      if (batch_term_ == term_ && batch_through_ > written_through_) {
        written_through_ = batch_through_;
        propose(rc::encode(rc::stored_mark(written_through_)));
        mark_retry_ = ticks_ + 20;
      }
      return;
    }
    if (err.code() == errc::conflict) {
      // A newer leader's fence: this node no longer leads (or will learn so shortly).
      ++fenced_;
      next_try_ = ticks_ + 1;
      return;
    }
    ++failures_;
    backoff_ = std::clamp(backoff_ * 2, 1, opts_.max_backoff_ticks);
    next_try_ = ticks_ + static_cast<std::uint64_t>(backoff_);
    // One line when storage starts failing, then one per 64 failures: an outage must not
    // flood the log, its end is logged once.
    if (!failing_ || failures_ % 64 == 0)
      detail::log()->warn(
          "raft group {}: storage write-through failed ({} keys pending, retry in {} ticks): {}",
          group_, kv_->unstored().size(), backoff_, err.to_string());
    failing_ = true;
  }

  void start(const propose_fn&) {
    // Keys listed after what this term already wrote, oldest change first, so a batch that
    // stops short still covers every change up to its mark.
    std::vector<std::pair<rc::index_t, const std::string*>> todo;
    for (const auto& [key, index] : kv_->unstored())
      if (index > written_through_) todo.emplace_back(index, &key);
    if (todo.empty()) return;
    // A bounded node-wide number of these jobs at once (see writethrough_options).
    if (opts_.jobs_in_flight->fetch_add(1) >= opts_.max_jobs) {
      opts_.jobs_in_flight->fetch_sub(1);
      return;
    }
    std::sort(todo.begin(), todo.end());
    rc::index_t through = standing_.applied;
    if (todo.size() > opts_.max_batch) {
      // Everything before the first key left out is in this batch. A change is never split:
      // when the first max_batch keys are all of one entry (a large transaction), the batch
      // takes every key of that entry.
      const auto cut = todo[opts_.max_batch].first;
      through = todo.front().first == cut ? cut : cut - 1;
      while (!todo.empty() && todo.back().first > through) todo.pop_back();
    }
    std::vector<fenced_change> changes;
    changes.reserve(todo.size());
    const auto now = wall_ms();
    for (const auto& [index, key] : todo) {
      fenced_change c;
      c.key = *key;
      // The current value, not the one of that change: storage only ever moves forward
      // to the newest committed state.
      auto raw = kv_->read(*key);
      if (!raw) {
        c.erase = true;
      } else {
        auto v = decode_strong_value(*raw);
        // Already expired: a delete, so a database reader sees no row at all.
        c.erase = v.expires_at_ms != 0 && v.expires_at_ms <= now;
        if (!c.erase) {
          c.rec.value = std::move(v.value);
          c.rec.expires_at_ms = v.expires_at_ms;
          if (opts_.next_version) c.rec.ver = opts_.next_version();
        }
      }
      changes.push_back(std::move(c));
    }
    in_flight_ = true;
    batch_term_ = term_;
    batch_through_ = through;
    batch_keys_ = changes.size();
    auto posted = opts_.executor([store = opts_.store, fence = fence_, token = term_,
                                  changes = std::move(changes), sink = finished_,
                                  jobs = opts_.jobs_in_flight] {
      auto* fenced = fenced_writes_of(*store);
      auto r = fenced ? fenced->write_fenced(fence, token, changes)
                      : result<void>{error{errc::unsupported, "storage has no fenced writes"}};
      jobs->fetch_sub(1);
      std::lock_guard lk{sink->mtx};
      sink->done = true;
      sink->err = r ? error{} : r.err();
    });
    if (!posted) {
      // Shutting down: the next leader writes what is still listed.
      opts_.jobs_in_flight->fetch_sub(1);
      in_flight_ = false;
    }
  }

  std::uint32_t group_;
  std::string fence_;
  writethrough_options opts_;
  std::shared_ptr<finished_write> finished_;
  const rc::kv_state_machine* kv_ = nullptr;
  standing standing_;
  std::uint64_t ticks_ = 0;
  rc::term_t term_ = 0;              ///< the term this node's writes are fenced with
  rc::index_t written_through_ = 0;  ///< stored in this term, mark maybe not applied yet
  std::uint64_t mark_retry_ = 0;
  bool in_flight_ = false;
  rc::term_t batch_term_ = 0;
  rc::index_t batch_through_ = 0;
  std::size_t batch_keys_ = 0;
  int backoff_ = 0;
  std::uint64_t next_try_ = 0;
  bool failing_ = false;
  std::uint64_t batches_ = 0;
  std::uint64_t keys_ = 0;
  std::uint64_t failures_ = 0;
  std::uint64_t fenced_ = 0;
};

}  // namespace

std::unique_ptr<raft_group_hooks> make_writethrough_hooks(std::uint32_t group,
                                                          writethrough_options opts) {
  return std::make_unique<writethrough_hooks>(group, std::move(opts));
}

}  // namespace warp::actors
