#include "actors/raft_group_actor.hpp"

#include <algorithm>
#include <utility>

#include <caf/all.hpp>

#include "runtime/core/log.hpp"

namespace warp::actors {

namespace rc = consensus;

namespace {

/// The executor's report that a ready's durable part is on disk (or why not).
struct raft_persisted {
  std::uint64_t gen = 0;
  error err;
};

/// The executor's report that a snapshot is saved and the log below it dropped.
struct raft_compacted {
  std::uint64_t gen = 0;
  error err;
};

constexpr std::string_view not_leader_prefix = "not_leader; leader hint: ";

/// Feeds what arrived while the core was busy, in arrival order. Moved out first: the input
/// may queue again (a persist it starts makes the actor busy).
void run_queued(std::deque<std::function<void()>>& queued) {
  auto q = std::move(queued);
  queued.clear();
  for (auto& f : q) f();
}

bool needs_log(const rc::ready& rd, const rc::hard_state& saved) {
  // A commit-only change of the hard state is volatile in Raft: no fsync for it.
  return rd.snap || !rd.entries.empty() ||
         (rd.hard && (rd.hard->term != saved.term || rd.hard->vote != saved.vote));
}

}  // namespace

}  // namespace warp::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_persisted)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_compacted)

namespace warp::actors {

rc::node_id not_leader_hint(const error& e) {
  if (e.code() != errc::unreachable || !e.message().starts_with(not_leader_prefix)) return 0;
  try {
    return std::stoull(e.message().substr(not_leader_prefix.size()));
  } catch (const std::exception&) {
    return 0;
  }
}

caf::behavior raft_group_state::make_behavior(std::shared_ptr<opened> init) {
  setup = std::move(init->setup);
  store = std::move(init->store);
  sm = setup.make_state_machine ? setup.make_state_machine()
                                : std::make_unique<rc::kv_state_machine>();
  if (setup.make_hooks) hooks = setup.make_hooks();
  auto recovered = store->take_recovered();
  saved = recovered.hard;
  result<void> restored;
  if (recovered.snap) restored = sm->restore(recovered.snap->data);
  applied = recovered.snap ? recovered.snap->index : 0;
  const bool had_snapshot = static_cast<bool>(recovered.snap);
  core.emplace(setup.raft, std::move(recovered));
  if (hooks && had_snapshot && restored) hooks->applied(*sm, false, true, self->clock().now());
  if (!restored)
    fail_log(error{errc::storage_error,
                   "raft: snapshot does not restore: " + restored.err().to_string()});
  self->set_default_handler(caf::drop);
  if (!setup.host) self->delayed_send(self, setup.tick_interval, raft_tick_atom::value);
  if (setup.host) {
    // A group the host spawned while running (a member added later) may outlive a host
    // that stopped meanwhile: it goes with its host.
    self->monitor(setup.host);
    self->set_down_handler([this](caf::down_msg& dm) {
      if (dm.source == setup.host.address()) on_stop();
    });
  }
  return {
      [this](raft_tick_atom) { on_tick(); },
      [this](raft_msg_atom, const std::string& bytes) { on_raft_message(bytes); },
      [this](raft_propose_cmd& cmd) { on_propose(cmd); },
      [this](raft_read_cmd& cmd) { on_read(cmd); },
      [this](raft_conf_cmd& cmd) { on_conf(cmd); },
      [this](raft_link_cmd& cmd) { peers[cmd.id] = std::move(cmd.peer); },
      [this](raft_persisted& p) { on_persisted(p.gen, p.err); },
      [this](raft_compacted& p) { on_compacted(p.gen, p.err); },
      [this](raft_status_cmd& cmd) { cmd.done(status()); },
      [this](raft_stop_cmd) { on_stop(); },
  };
}

// -- handlers -------------------------------------------------------------------------------

void raft_group_state::on_tick() {
  // The host waits for every group's answer before it flushes (a stopped or failed group
  // answers too, else the host would wait for its fallback). Sent after this handler's own
  // messages, so the host has them when it counts this one.
  struct tick_done_guard {
    raft_group_state* st;
    ~tick_done_guard() {
      if (st->setup.host)
        st->self->send(st->setup.host,
                       raft_tick_done{st->setup.group, st->core->voters(), st->core->leader()});
    }
  } guard{this};
  // A failed log ends the group's clock too: no heartbeat, no campaign, so the others
  // replace a failed leader by their election timeout.
  if (stopping || log_failed) return;
  if (!setup.host) self->delayed_send(self, setup.tick_interval, raft_tick_atom::value);
  ++ticks;
  expire(ticks);
  if (persisting) {
    queued.push_back([this] {
      if (!log_failed) core->tick();
    });
  } else {
    core->tick();
    retry_conf_waiting();
    drive();
  }
  if (hooks && !stopping && !log_failed) {
    raft_group_hooks::standing now;
    now.term = core->term();
    now.applied = applied;
    if (core->current_role() == rc::role::leader)
      if (auto t = core->term_at(applied)) now.term_applied = *t == core->term();
    hooks->before_tick(*sm, now);
  }
  if (hooks && !stopping && !log_failed)
    hooks->tick(core->current_role() == rc::role::leader, self->clock().now(),
                [this](std::string bytes) {
                  raft_propose_cmd c{{}, completion<std::string>{[](result<std::string>) {}},
                                     std::move(bytes)};
                  on_propose(c);
                });
}

void raft_group_state::on_raft_message(const std::string& bytes) {
  if (stopping || log_failed) return;
  // decode() bounds every count and size too; this only saves decoding a message that is
  // too large as a whole.
  if (bytes.size() > setup.wire.max_message_bytes) {
    ++malformed;
    return;
  }
  auto m = rc::decode(bytes, setup.wire);
  if (!m || m->to != core->id() || m->from == 0 || m->from == core->id()) {
    ++malformed;
    return;
  }
  if (persisting) {
    queued.push_back([this, msg = std::move(*m)] {
      if (!log_failed) core->step(msg);
    });
    return;
  }
  core->step(*m);
  drive();
}

void raft_group_state::on_propose(raft_propose_cmd& cmd) {
  if (persisting) {
    queued.push_back([this, cmd]() mutable { propose_now(cmd); });
    return;
  }
  propose_now(cmd);
  drive();
}

void raft_group_state::on_read(raft_read_cmd& cmd) {
  if (persisting) {
    queued.push_back([this, cmd]() mutable { read_now(cmd); });
    return;
  }
  read_now(cmd);
  drive();
}

void raft_group_state::on_conf(raft_conf_cmd& cmd) {
  if (persisting) {
    queued.push_back([this, cmd]() mutable { conf_now(cmd); });
    return;
  }
  conf_now(cmd);
  drive();
}

void raft_group_state::conf_now(raft_conf_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "raft group stopping"});
  if (log_failed)
    return cmd.done(error{errc::storage_error, "raft log failed on this node: not accepting"});
  if (core->current_role() != rc::role::leader) return cmd.done(not_leader());
  // Idempotent: a retried or repeated command finds the change already made (the voter set
  // takes a change when it is appended, so an uncommitted one counts as made).
  const auto& v = core->voters();
  const bool voter = std::find(v.begin(), v.end(), cmd.node) != v.end();
  if (cmd.type == rc::conf_change_type::add_voter && voter)
    return cmd.done(std::string{"already a voter"});
  if (cmd.type == rc::conf_change_type::remove_voter && !voter)
    return cmd.done(std::string{"not a voter"});
  auto index = core->propose_conf_change(cmd.type, cmd.node);
  if (!index) {
    // The previous change (or the leader's first entry of its term) is not committed yet:
    // one change at a time, so this one waits for it (retried every tick, bounded by the
    // request timeout).
    if (index.code() == errc::conflict) {
      conf_waiting.push_back(
          {ticks + static_cast<std::uint64_t>(setup.request_timeout_ticks), std::move(cmd)});
      return;
    }
    return cmd.done(index.code() == errc::unreachable ? not_leader() : index.err());
  }
  detail::log()->info("raft group {}: proposed {} of member {} at index {}", setup.group,
                      cmd.type == rc::conf_change_type::add_voter ? "addition" : "removal",
                      cmd.node, *index);
  auto what = cmd.type == rc::conf_change_type::add_voter ? "added" : "removed";
  proposals[*index] = pending_proposal{
      core->term(), ticks + static_cast<std::uint64_t>(setup.request_timeout_ticks),
      completion<std::string>{[done = std::move(cmd.done), what](result<std::string> r) mutable {
        if (r) r = std::string{what};
        done(std::move(r));
      }}};
}

void raft_group_state::retry_conf_waiting() {
  if (conf_waiting.empty()) return;
  auto waiting = std::move(conf_waiting);
  conf_waiting.clear();
  for (auto& w : waiting) {
    if (w.deadline <= ticks) {
      w.cmd.done(error{errc::timeout,
                       "configuration change: the previous one did not commit "
                       "in time; nothing was proposed"});
      continue;
    }
    auto deadline = w.deadline;
    auto before = conf_waiting.size();
    conf_now(w.cmd);
    // Still waiting: keep its original deadline.
    if (conf_waiting.size() > before) conf_waiting.back().deadline = deadline;
  }
}

void raft_group_state::propose_now(raft_propose_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "raft group stopping"});
  if (log_failed)
    return cmd.done(error{errc::storage_error, "raft log failed on this node: not accepting"});
  if (core->current_role() != rc::role::leader) return cmd.done(not_leader());
  auto index = core->propose(cmd.raw.empty() ? rc::encode(cmd.cmd) : std::move(cmd.raw));
  if (!index) return cmd.done(index.code() == errc::unreachable ? not_leader() : index.err());
  proposals[*index] = pending_proposal{
      core->term(), ticks + static_cast<std::uint64_t>(setup.request_timeout_ticks),
      std::move(cmd.done)};
}

void raft_group_state::read_now(raft_read_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "raft group stopping"});
  if (log_failed)
    return cmd.done(error{errc::storage_error, "raft log failed on this node: not serving"});
  if (core->current_role() != rc::role::leader) return cmd.done(not_leader());
  auto ctx = next_read_context++;
  auto& rd = reads[ctx];
  rd.key = std::move(cmd.key);
  rd.versioned = cmd.versioned;
  rd.deadline = ticks + static_cast<std::uint64_t>(setup.request_timeout_ticks);
  rd.done = std::move(cmd.done);
  // Refused while the new leader has not committed an entry of its term (it does not know
  // the commit index yet): retry_deferred_reads() starts it once it has.
  rd.started = static_cast<bool>(core->read_index(ctx));
}

void raft_group_state::on_persisted(std::uint64_t gen, const error& err) {
  if (gen != persist_gen || !persisting || stopping) return;
  persisting = false;
  auto rd = std::move(in_flight);
  if (err) {
    fail_log(err);
    return;
  }
  ++persists;
  if (rd->hard) {
    saved.term = rd->hard->term;
    saved.vote = rd->hard->vote;
  }
  complete(*rd);
  // What arrived meanwhile, in arrival order; none of it takes a ready (drive() does).
  run_queued(queued);
  drive();
}

void raft_group_state::maybe_snapshot() {
  if (setup.snapshot_entries == 0 || busy() || stopping) return;
  if (applied < core->last_snapshot().index + setup.snapshot_entries) return;
  auto term = core->term_at(applied);
  if (!term) return;  // cannot happen for an applied entry above the snapshot; never guess
  rc::snapshot snap;
  snap.index = applied;
  snap.term = *term;
  snap.voters = core->voters();
  // On the actor: the state machine is the actor's alone. A copy of the map, so this costs
  // time in proportion to the state, once per snapshot_entries entries.
  snap.data = sm->snapshot();
  persisting = true;  // the core takes no input until the log is compacted (busy())
  compacting = std::make_shared<const rc::snapshot>(std::move(snap));
  auto gen = ++persist_gen;
  auto posted =
      setup.executor([st = store, job = compacting, hdl = caf::actor_cast<caf::actor>(self), gen] {
        auto r = st->compact(*job);
        caf::anon_send(hdl, raft_compacted{gen, r ? error{} : r.err()});
      });
  if (!posted) {
    persisting = false;
    compacting.reset();
    on_stop();
  }
}

void raft_group_state::on_compacted(std::uint64_t gen, const error& err) {
  if (gen != persist_gen || !persisting || stopping || !compacting) return;
  persisting = false;
  auto snap = std::move(compacting);
  if (err) {
    // The store marks itself failed on an I/O error: the same stop as a failed persist.
    fail_log(err);
    return;
  }
  if (auto r = core->compact(snap->index, snap->data); !r) {
    detail::log()->warn("raft group {}: compacting the core at {} failed: {}", setup.group, snap->index,
              r.err().to_string());
  } else {
    ++snapshots;
  }
  run_queued(queued);
  drive();
}

void raft_group_state::on_stop() {
  stopping = true;
  fail_all(errc::shutting_down, "raft group stopping");
  self->quit(caf::exit_reason::user_shutdown);
}

raft_status raft_group_state::status() const {
  raft_status s;
  s.group = setup.group;
  s.id = core->id();
  s.role = core->current_role();
  s.term = core->term();
  s.leader = core->leader();
  s.commit = core->commit_index();
  s.applied = applied;
  s.last_index = core->last_index();
  s.log_failed = log_failed;
  s.persists = persists;
  s.malformed = malformed;
  s.undeliverable = undeliverable;
  s.snapshots = snapshots;
  s.snapshot_index = core->last_snapshot().index;
  s.elections_started = core->elections_started();
  s.elections_won = core->elections_won();
  s.voters = core->voters().size();
  s.pending_proposals = proposals.size();
  s.pending_reads = reads.size();
  if (hooks) hooks->add_status(s);
  return s;
}

// -- the Ready cycle ------------------------------------------------------------------------

void raft_group_state::drive() {
  while (!busy() && !stopping) {
    retry_deferred_reads();
    if (!core->has_ready()) break;
    auto rd = core->take_ready();
    if (!needs_log(rd, saved)) {
      complete(rd);
      continue;
    }
    // One group commit for everything this ready carries; the core waits for it.
    persisting = true;
    in_flight = std::make_shared<const rc::ready>(std::move(rd));
    auto gen = ++persist_gen;
    auto posted =
        setup.executor([st = store, job = in_flight, hdl = caf::actor_cast<caf::actor>(self), gen] {
          auto r = st->persist(*job);
          caf::anon_send(hdl, raft_persisted{gen, r ? error{} : r.err()});
        });
    if (!posted) {
      // The executor only refuses once the node is stopping.
      persisting = false;
      on_stop();
    }
    return;
  }
  const bool leader = core->current_role() == rc::role::leader;
  if (was_leader && !leader) {
    // A deposed leader cannot confirm a read; proposals stay: their entries may still commit.
    for (auto& [ctx, rd] : reads) rd.done(not_leader());
    reads.clear();
  }
  was_leader = leader;
  maybe_snapshot();
}

void raft_group_state::complete(const rc::ready& rd) {
  if (rd.snap) {
    if (auto r = sm->restore(rd.snap->data); !r) {
      fail_log(
          error{errc::storage_error, "raft: snapshot does not restore: " + r.err().to_string()});
      return;
    }
    applied = rd.snap->index;
    if (hooks) hooks->applied(*sm, core->current_role() == rc::role::leader, true, self->clock().now());
  }
  if (setup.host && !rd.messages.empty()) {
    raft_outbound out{setup.group, {}};
    out.msgs.reserve(rd.messages.size());
    for (const auto& m : rd.messages) {
      auto bytes = rc::encode(m, setup.wire);
      if (!bytes) {
        ++undeliverable;
        continue;
      }
      out.msgs.emplace_back(m.to, std::move(*bytes));
    }
    self->send(setup.host, std::move(out));
  }
  for (const auto& m : rd.messages) {
    if (setup.host) break;
    auto peer = peers.find(m.to);
    if (peer == peers.end() || !peer->second) {
      ++undeliverable;
      continue;
    }
    auto bytes = rc::encode(m, setup.wire);
    if (!bytes) {
      ++undeliverable;
      continue;
    }
    self->send(peer->second, raft_msg_atom::value, std::move(*bytes));
  }
  for (const auto& e : rd.committed) apply(e);
  if (hooks && !rd.committed.empty())
    hooks->applied(*sm, core->current_role() == rc::role::leader, false, self->clock().now());
  for (const auto& rs : rd.reads) {
    auto it = reads.find(rs.context);
    if (it == reads.end()) continue;
    it->second.confirmed = true;
    it->second.index = rs.index;
  }
  serve_reads();
  core->advance(rd);
}

void raft_group_state::apply(const rc::entry& e) {
  applied = e.index;
  result<std::string> out = std::string{};
  // The leader's empty entry of a new term and configuration entries are the core's.
  if (e.type == rc::entry_type::normal && !e.data.empty()) out = sm->apply(e.index, e.data);
  auto it = proposals.find(e.index);
  if (it == proposals.end()) return;
  if (it->second.term == e.term)
    it->second.done(std::move(out));
  else
    // Another leader's entry took the index: ours was never committed and never will be.
    // Still unknown_outcome, not timeout: a copy retried meanwhile may have committed.
    it->second.done(error{errc::unknown_outcome, "the proposal was replaced by a new leader"});
  proposals.erase(it);
}

void raft_group_state::serve_reads() {
  for (auto it = reads.begin(); it != reads.end();) {
    if (it->second.confirmed && applied >= it->second.index) {
      auto& rd = it->second;
      rd.done(rd.versioned ? sm->read_versioned(rd.key) : sm->read(rd.key));
      it = reads.erase(it);
    } else {
      ++it;
    }
  }
}

void raft_group_state::retry_deferred_reads() {
  if (core->current_role() != rc::role::leader) return;
  for (auto& [ctx, rd] : reads) {
    if (rd.started) continue;
    if (!core->read_index(ctx)) return;  // still not committed in its term: all wait
    rd.started = true;
  }
}

void raft_group_state::expire(std::uint64_t now) {
  for (auto it = proposals.begin(); it != proposals.end();) {
    if (it->second.deadline <= now) {
      it->second.done(error{errc::unknown_outcome,
                            "proposal timed out: it may still apply; retry with the same "
                            "client id and sequence"});
      it = proposals.erase(it);
    } else {
      ++it;
    }
  }
  // A read changes nothing, so a timed-out read is known not to have happened.
  for (auto it = reads.begin(); it != reads.end();) {
    if (it->second.deadline <= now) {
      it->second.done(error{errc::timeout, "read timed out"});
      it = reads.erase(it);
    } else {
      ++it;
    }
  }
}

void raft_group_state::fail_log(const error& err) {
  // The store refuses all further work after a failed write or sync (what reached the disk
  // is unknown until it is reopened), so this member goes silent: it sends nothing more,
  // acknowledges nothing, and a leader loses its followers' check-quorum and is replaced.
  log_failed = true;
  in_flight.reset();
  detail::log()->error("raft group {}: log failed, no longer acknowledging: {}", core->id(),
                       err.to_string());
  for (auto& w : conf_waiting) w.cmd.done(error{errc::storage_error, "raft log failed"});
  conf_waiting.clear();
  for (auto& [index, p] : proposals)
    p.done(error{errc::unknown_outcome, "raft log failed: the entry may still commit elsewhere"});
  proposals.clear();
  for (auto& [ctx, rd] : reads) rd.done(error{errc::storage_error, "raft log failed"});
  reads.clear();
  run_queued(queued);  // proposals and reads among them get storage_error
}

void raft_group_state::fail_all(errc code, const std::string& why) {
  for (auto& w : conf_waiting) w.cmd.done(error{code, why});
  conf_waiting.clear();
  for (auto& [index, p] : proposals) p.done(error{code, why});
  proposals.clear();
  for (auto& [ctx, rd] : reads) rd.done(error{code, why});
  reads.clear();
  run_queued(queued);  // with stopping set, proposals and reads get shutting_down
}

error raft_group_state::not_leader() const {
  return error{errc::unreachable, std::string{not_leader_prefix} + std::to_string(core->leader())};
}

// -- spawn ----------------------------------------------------------------------------------

result<caf::actor> spawn_raft_group_actor(caf::actor_system& sys, raft_group_setup setup) {
  if (!setup.executor) return error{errc::invalid_argument, "raft group: no executor"};
  auto& ops = setup.ops ? *setup.ops : rc::posix_file_ops();
  auto opened_store = rc::raft_log_store::open(setup.dir, setup.log, ops);
  if (!opened_store) return opened_store.err();
  auto init = std::make_shared<raft_group_state::opened>();
  init->store = std::shared_ptr<rc::raft_log_store>(std::move(*opened_store));
  init->setup = std::move(setup);
  return sys.spawn([init](raft_group_actor* self) { return self->state.make_behavior(init); });
}

}  // namespace warp::actors
