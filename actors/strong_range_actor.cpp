#include "actors/strong_range_actor.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include <caf/all.hpp>

#include "actors/strong_context.hpp"
#include "runtime/membership/strong_placement.hpp"

namespace warp::actors {

namespace wire = detail::wire;
using steady = std::chrono::steady_clock;

caf::behavior strong_range_state::make_behavior(strong_range_setup s) {
  setup = std::move(s);
  slots.resize(setup.ranges.size());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    slots[i].range = setup.ranges[i];
    slots[i].replica.set_ready(setup.ready);
    slot_of.emplace(setup.ranges[i], i);
  }
  // Stray messages are dropped, never a crash.
  self->set_default_handler(caf::drop);
  return {
      [this](range_serve_cmd& cmd) { on_serve(cmd); },
      [this](range_recover_atom) { on_recover(); },
      [this](range_sync_atom) { on_sync(); },
      [this](range_info_atom) { return on_info(); },
  };
}

detail::strong_replica* strong_range_state::replica_of(std::uint32_t range) {
  auto it = slot_of.find(range);
  return it == slot_of.end() ? nullptr : &slots[it->second].replica;
}

range_info strong_range_state::on_info() const {
  range_info info;
  info.group = setup.group;
  info.ranges = static_cast<std::uint32_t>(slots.size());
  for (auto& sl : slots) {
    info.ready += sl.replica.ready();
    info.keys += sl.replica.key_count();
  }
  return info;
}

void strong_range_state::on_serve(range_serve_cmd& cmd) {
  range_served out;
  out.batch = cmd.batch;
  out.replies.reserve(cmd.reqs.size());
  for (auto& req : cmd.reqs) {
    if (auto* rep = replica_of(req.range)) {
      out.replies.push_back(detail::serve(*rep, req));
      continue;
    }
    // Not possible with one placement (the quorum actor routes by the same group map);
    // kept an answer rather than a silent drop.
    wire::reply bad;
    bad.id = req.id;
    bad.code = wire::status::bad_request;
    out.replies.push_back(std::move(bad));
  }
  self->send(setup.quorum, std::move(out));
}

std::vector<std::size_t> strong_range_state::other_slots(std::uint32_t range) const {
  auto& replicas = setup.placement->replicas(range);
  std::vector<std::size_t> others;
  for (std::size_t s = 0; s < replicas.size(); ++s)
    if (replicas[s] != setup.placement->self_index()) others.push_back(s);
  return others;
}

void strong_range_state::fanout(std::uint32_t range, std::vector<std::size_t> slots_,
                                wire::request req, std::size_t need,
                                std::chrono::milliseconds timeout,
                                std::function<void(fanout_result&)> then) {
  req.range = range;
  range_fanout_cmd cmd{range, std::move(slots_), std::move(req), need, timeout};
  auto rf = setup.placement->replication_factor();
  // The quorum actor answers every fan-out by its deadline (or fails it when it stops):
  // no timeout of our own. An error (the quorum actor is gone) is a fan-out nobody answered.
  self->request(setup.quorum, caf::infinite, std::move(cmd))
      .then(
          [then, rf](fanout_result& res) {
            res.replies.resize(rf);
            then(res);
          },
          [then, rf](caf::error&) {
            fanout_result res;
            res.replies.resize(rf);
            then(res);
          });
}

void strong_range_state::pull(std::size_t i, std::size_t slot, std::string after, bool first,
                              steady::time_point deadline, std::function<void(bool)> done) {
  wire::request req;
  req.what = wire::op::dump;
  req.key = std::move(after);
  req.first = first;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - self->clock().now());
  fanout(slots[i].range, {slot}, std::move(req), 1, std::max(left, std::chrono::milliseconds{1}),
         [this, i, slot, deadline, done = std::move(done)](fanout_result& res) {
           auto& rep = res.replies[slot];
           if (!rep || rep->code != wire::status::ok) return done(false);
           strong_count_cmd counts;
           for (auto& [k, rec] : rep->records)
             counts.records_merged += slots[i].replica.apply(k, rec);
           report(counts);
           if (!rep->more || rep->records.empty()) return done(true);
           pull(i, slot, rep->records.back().first, false, deadline, done);
         });
}

// -- crash recovery (docs/strong.md, "Crash recovery") -----------------------------------------

void strong_range_state::on_recover() {
  for (std::size_t i = 0; i < slots.size(); ++i)
    if (!slots[i].replica.ready() && !slots[i].recovering) recover(i);
}

void strong_range_state::recover(std::size_t i) {
  auto& sl = slots[i];
  auto need = setup.placement->recovery_quorum();
  if (need == 0) {  // a single copy: nothing to copy from
    sl.replica.set_ready(true);
    self->send(setup.quorum, range_progress{sl.range, true, {}});
    return;
  }
  sl.recovering = true;
  // Probe the other replicas (a digest: a tiny reply whose status says whether that
  // replica is ready); done when every one answered, enough answered ready for rule 1, or
  // the deadline passed. Every pending range probes in the same wave (the quorum actor's
  // pacing tick), each with its own deadline: a silent replica costs one timeout per pass
  // for all of them together, not one per range.
  wire::request probe;
  probe.what = wire::op::digest;
  fanout(sl.range, other_slots(sl.range), std::move(probe), need,
         std::max(setup.timeout, std::chrono::milliseconds{500}),
         [this, i](fanout_result& res) { on_probed(i, res); });
}

void strong_range_state::on_probed(std::size_t i, fanout_result& res) {
  auto need = setup.placement->recovery_quorum();
  auto others = other_slots(slots[i].range);
  std::vector<std::size_t> ready_slots, unusable;
  std::size_t not_ready = 0;
  for (auto s : others) {
    auto& rep = res.replies[s];
    if (rep && rep->code == wire::status::ok)
      ready_slots.push_back(s);
    else if (rep && rep->code == wire::status::not_ready)
      ++not_ready;
    else
      unusable.push_back(s);
  }
  bool census = ready_slots.size() + not_ready == others.size();
  // Copy the range completely from every replica that answered ready, if one of the rules
  // can hold with these answers (else try again next pass).
  if (ready_slots.empty() || !(ready_slots.size() >= need || census))
    return finish_pass(i, 0, ready_slots.size(), census, std::move(unusable));
  struct fan_in {
    std::size_t pending = 0;
    std::size_t copied = 0;
    std::size_t ready = 0;
    bool census = false;
    std::vector<std::size_t> unusable;
  };
  auto st = std::make_shared<fan_in>();
  st->pending = ready_slots.size();
  st->ready = ready_slots.size();
  st->census = census;
  st->unusable = std::move(unusable);
  auto deadline = self->clock().now() + setup.timeout;
  for (auto s : ready_slots)
    pull(i, s, {}, true, deadline, [this, i, st, s](bool ok) {
      if (ok)
        ++st->copied;
      else
        st->unusable.push_back(s);
      if (--st->pending == 0)
        finish_pass(i, st->copied, st->ready, st->census, std::move(st->unusable));
    });
}

void strong_range_state::finish_pass(std::size_t i, std::size_t copied, std::size_t ready_slots,
                                     bool census, std::vector<std::size_t> unusable) {
  auto& sl = slots[i];
  sl.recovering = false;
  auto need = setup.placement->recovery_quorum();
  // Ready when (1) a recovery quorum of ready replicas was copied completely, or (2) every
  // other replica answered, and every one of them that is ready was copied: then this
  // replica holds everything any ready replica holds. (2) with no ready replica at all is
  // the bootstrap of a fresh cluster.
  if (copied >= need || (census && copied == ready_slots)) {
    sl.replica.set_ready(true);
    strong_count_cmd counts;
    if (copied == 0)
      counts.ranges_bootstrapped = 1;
    else
      counts.ranges_recovered = 1;
    report(counts);
    self->send(setup.quorum, range_progress{sl.range, true, {}});
    return;
  }
  std::vector<std::size_t> waiting;
  auto& replicas = setup.placement->replicas(sl.range);
  for (auto s : unusable) waiting.push_back(replicas[s]);
  self->send(setup.quorum, range_progress{sl.range, false, std::move(waiting)});
}

// -- anti-entropy -----------------------------------------------------------------------------

void strong_range_state::on_sync() {
  for (std::size_t i = 0; i < slots.size(); ++i)
    if (slots[i].replica.ready() && !slots[i].syncing) sync(i);
}

void strong_range_state::sync(std::size_t i) {
  auto others = other_slots(slots[i].range);
  if (others.empty()) return;
  slots[i].syncing = true;
  wire::request req;
  req.what = wire::op::digest;
  auto n = others.size();
  fanout(slots[i].range, std::move(others), std::move(req), n, setup.timeout,
         [this, i](fanout_result& res) {
           auto& sl = slots[i];
           // Compared with the digest as it is now, when the answers are in.
           auto mine = sl.replica.digest();
           std::vector<std::size_t> differ;
           for (auto s : other_slots(sl.range)) {
             auto& rep = res.replies[s];
             if (rep && rep->code == wire::status::ok && !(rep->digest == mine))
               differ.push_back(s);
           }
           if (differ.empty()) {
             sl.syncing = false;
             return;
           }
           // Pull theirs (they pull ours in their own round); the merge keeps the newest.
           strong_count_cmd counts;
           counts.anti_entropy_pulls = differ.size();
           report(counts);
           auto pending = std::make_shared<std::size_t>(differ.size());
           auto deadline = self->clock().now() + setup.timeout;
           for (auto s : differ)
             pull(i, s, {}, true, deadline, [this, i, pending](bool) {
               if (--*pending == 0) slots[i].syncing = false;
             });
         });
}

void strong_range_state::report(const strong_count_cmd& counts) {
  if (counts.ranges_recovered + counts.ranges_bootstrapped + counts.anti_entropy_rounds +
          counts.anti_entropy_pulls + counts.records_merged >
      0)
    self->send(setup.quorum, counts);
}

caf::actor spawn_strong_range_actor(caf::event_based_actor* parent, strong_range_setup setup) {
  return parent->spawn<caf::linked>([setup = std::move(setup)](strong_range_actor* self) mutable {
    return self->state.make_behavior(std::move(setup));
  });
}

caf::actor spawn_strong_range_actor(caf::actor_system& sys, strong_range_setup setup) {
  return sys.spawn([setup = std::move(setup)](strong_range_actor* self) mutable {
    return self->state.make_behavior(std::move(setup));
  });
}

}  // namespace warp::actors
