#include "actors/quorum_actor.hpp"

#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/basp_broker.hpp>
#include <nlohmann/json.hpp>

#include "runtime/core/log.hpp"
#include "warp/endpoint.hpp"
#include "bus/node_transport.hpp"
#include "actors/peer_dialer.hpp"
#include "actors/quorum_phase.hpp"
#include "runtime/membership/strong_placement.hpp"
#include "actors/strong_context.hpp"
#include "actors/strong_range_actor.hpp"

namespace warp::actors {

namespace {

namespace wire = detail::wire;

constexpr auto tick_interval = std::chrono::milliseconds{200};
constexpr auto connect_retry = std::chrono::milliseconds{1000};
/// Catch-up passes while a range is not ready (docs/strong.md, "Crash recovery").
constexpr auto catchup_interval = std::chrono::milliseconds{100};
/// How often a node still catching up says so in the log.
constexpr auto catchup_report_interval = std::chrono::seconds{5};
/// Encoded bytes per message before a batch is split (keeps one message from hogging the
/// connection; the hard bound is strong_limits::max_message_bytes).
constexpr std::size_t chunk_bytes = 1024 * 1024;
constexpr std::size_t chunk_items = 4096;

using warp::detail::log;

/// The quorum actor's state: everything it works on, touched by its own thread only.
struct quorum_state {
  using time_point = caf::actor_clock::time_point;

  explicit quorum_state(caf::event_based_actor* ptr) : self(ptr) {}

  caf::behavior make_behavior(quorum_setup s);

  // -- handlers, one per command ------------------------------------------------------

  void on_read(strong_read_cmd& cmd);
  void on_write(strong_write_cmd& cmd);
  void on_fanout(strong_fanout_cmd& cmd);
  caf::result<fanout_result> on_range_fanout(range_fanout_cmd& cmd);
  void on_served(range_served& msg);
  void on_progress(const range_progress& msg);
  void on_catchup_tick();
  void on_sync_tick();
  void arm_sync();
  caf::result<std::string> on_status();
  void on_count(const strong_count_cmd& cmd);
  void on_link(const quorum_link_cmd& cmd);
  void on_stop();
  void on_requests(const std::string& bytes);
  void on_replies(const std::string& bytes);
  void on_found(caf::strong_actor_ptr& ptr);
  void on_down(const caf::down_msg& dm);
  void tick();
  void flush();
  /// Flushes now if a flush is pending (see its definition).
  void flush_now();
  void on_flush();
  void sweep();
  void on_deadline(std::uint64_t id);
  struct range_totals {
    std::size_t replicated = 0;
    std::size_t ready = 0;
    std::uint64_t keys = 0;
  };
  std::string status_json(const range_totals& totals) const;

  // -- protocol plumbing ----------------------------------------------------------------

  /// Starts an op registered in `ops`.
  void launch(std::uint64_t id);
  /// Sends `sends` (slots of `range`): the local replica answers at once, a replica
  /// without a link answers `unreachable`, the others are queued for the next flush.
  void dispatch(std::uint32_t range, std::vector<detail::quorum_send> sends);
  /// Queues this node's part of a quorum (`reqs`, all of `range`) for the range's group
  /// actor; the next flush sends each group its queue in one range_serve_cmd, whose
  /// range_served comes back to route().
  void serve_local(std::uint32_t range, std::vector<wire::request> reqs);
  void schedule_flush();
  /// Hands a reply to the op or fan-out it belongs to; late and unknown ones are dropped.
  void route(wire::reply rep);
  /// Completes op `id` if it has its outcome.
  void finish_op(std::uint64_t id);
  void finish_fanout(std::uint64_t id, bool force);
  wire::header head() const;
  template <class Batch, class Item>
  void send_chunked(const caf::actor& dest, bool requests, std::vector<Item>& items);

  caf::event_based_actor* self;
  quorum_setup setup;
  const detail::strong_placement* placement = nullptr;

  /// The peers' quorum actors (actors/peer_dialer.hpp), by member index.
  std::optional<peer_dialer> dialer;
  /// Requests waiting for the next flush, by member index (this node's own entry unused).
  std::vector<std::vector<wire::request>> queues;
  bool flush_scheduled = false;
  bool flush_deferred = false;  ///< the pending flush message was re-queued once

  struct live_op {
    detail::quorum_op op;
    completion<detail::strong_record> done;
  };
  std::unordered_map<std::uint64_t, live_op> ops;
  /// Deadlines of ops in start order: every op has the same timeout, so this is also
  /// deadline order and one timer (the sweep) serves all of them.
  std::deque<std::pair<time_point, std::uint64_t>> deadlines;
  bool sweep_armed = false;

  struct live_fanout {
    detail::quorum_call call;
    completion<fanout_result> done;
  };
  std::unordered_map<std::uint64_t, live_fanout> fanouts;

  // -- the range-group actors and their ranges' catch-up ---------------------------------

  /// The range-group actors.
  std::vector<caf::actor> groups;
  /// This node's own requests per group, waiting for the next flush.
  std::vector<std::vector<wire::request>> local_queue;
  /// By range: its group's index, or no_group where this node is not a replica.
  static constexpr std::uint32_t no_group = ~std::uint32_t{0};
  std::vector<std::uint32_t> group_of;
  /// By range: its group's actor, null where this node is not a replica (what
  /// quorum_ranges_cmd answers).
  std::vector<caf::actor> range_actors;
  /// Readiness as the range actors last reported it (for pacing and progress; the status
  /// asks the actors themselves).
  std::vector<bool> range_ready;
  /// Members each not-ready range could not use in its last pass.
  std::vector<std::vector<std::size_t>> range_waiting;
  std::size_t replicated = 0;
  std::size_t ready_count = 0;
  std::chrono::steady_clock::time_point started_at;
  std::chrono::steady_clock::time_point next_report;
  std::int64_t catch_up_ms = -1;  ///< start to every range ready; -1 = not yet
  std::mt19937_64 rng;

  /// A peer's request batch whose parts are being served by range-group actors.
  struct gathering {
    caf::actor dest;
    std::size_t parts = 0;  ///< range_served still to come
    std::vector<wire::reply> replies;
  };
  std::unordered_map<std::uint64_t, gathering> serving;

  std::uint64_t next_id = 1;
  bool stopping = false;
  detail::strong_counters counters;

  static inline const char* name = "warp.quorum";
};

using quorum_actor = caf::stateful_actor<quorum_state>;

caf::behavior quorum_state::make_behavior(quorum_setup s) {
  setup = std::move(s);
  placement = setup.placement;
  dialer.emplace(self, quorum_registry_name(), placement->members(), placement->self_index(),
                 connect_retry);
  queues.resize(placement->members().size());
  self->set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
  rng.seed(setup.incarnation);
  started_at = std::chrono::steady_clock::now();
  next_report = started_at + catchup_report_interval;
  auto nranges = placement->ranges();
  range_actors.resize(nranges);
  group_of.resize(nranges, no_group);
  range_ready.resize(nranges, true);
  range_waiting.resize(nranges);
  // A range with a single copy has nothing to catch up from.
  bool ready = setup.ranges_ready || placement->recovery_quorum() == 0;
  std::vector<std::uint32_t> mine;
  for (std::uint32_t r = 0; r < nranges; ++r)
    if (placement->is_replica(r)) mine.push_back(r);
  replicated = mine.size();
  // Dealt round-robin, so the groups hold equal shares whatever ranges this node has.
  auto ngroups = std::min(std::max<std::size_t>(setup.range_groups, 1), mine.size());
  std::vector<std::vector<std::uint32_t>> shares(ngroups);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    auto g = static_cast<std::uint32_t>(i % ngroups);
    shares[g].push_back(mine[i]);
    group_of[mine[i]] = g;
    range_ready[mine[i]] = ready;
  }
  ready_count = ready ? replicated : 0;
  auto me = caf::actor_cast<caf::actor>(self);
  local_queue.resize(ngroups);
  for (std::uint32_t g = 0; g < ngroups; ++g) {
    strong_range_setup rs;
    rs.group = g;
    rs.ranges = shares[g];
    rs.placement = placement;
    rs.quorum = me;
    rs.timeout = setup.timeout;
    rs.ready = ready;
    groups.push_back(spawn_strong_range_actor(self, std::move(rs)));
    for (auto r : shares[g]) range_actors[r] = groups.back();
  }
  if (ready_count == replicated)
    catch_up_ms = 0;
  else
    self->delayed_send(self, catchup_interval, quorum_catchup_atom::value);
  arm_sync();
  // Stray or newer-protocol messages are dropped, never a crash.
  self->set_default_handler(caf::drop);
  if (setup.dial) {
    dialer->enable();
    self->send(self, quorum_tick_atom::value);
  }
  return {
      [this](strong_read_cmd& cmd) { on_read(cmd); },
      [this](strong_write_cmd& cmd) { on_write(cmd); },
      [this](strong_fanout_cmd& cmd) { on_fanout(cmd); },
      [this](range_fanout_cmd& cmd) { return on_range_fanout(cmd); },
      [this](range_served& msg) { on_served(msg); },
      [this](const range_progress& msg) { on_progress(msg); },
      [this](quorum_ranges_cmd& cmd) { cmd.done(range_actors); },
      [this](quorum_catchup_atom) { on_catchup_tick(); },
      [this](quorum_sync_atom) { on_sync_tick(); },
      [this](const strong_count_cmd& cmd) { on_count(cmd); },
      [this](const quorum_link_cmd& cmd) { on_link(cmd); },
      [this](const quorum_stop_cmd&) { on_stop(); },
      [this](quorum_request_atom, const std::string& bytes) { on_requests(bytes); },
      [this](quorum_reply_atom, const std::string& bytes) { on_replies(bytes); },
      [this](caf::strong_actor_ptr& ptr) { on_found(ptr); },
      [this](quorum_status_atom) { return on_status(); },
      [this](quorum_tick_atom) {
        tick();
        self->delayed_send(self, tick_interval, quorum_tick_atom::value);
      },
      [this](caf::flush_atom) { on_flush(); },
      [this](quorum_sweep_atom) { sweep(); },
      [this](quorum_deadline_atom, std::uint64_t id) { on_deadline(id); },
  };
}

// -- operations ---------------------------------------------------------------------------

void quorum_state::on_read(strong_read_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "node is stopping"});
  ++counters.gets;
  auto id = next_id++;
  auto range = placement->range_of(cmd.key);
  detail::quorum_op::shape shape{range, placement->replication_factor(), placement->majority()};
  ops.emplace(id, live_op{detail::quorum_op::read(id, shape, cmd.key), std::move(cmd.done)});
  launch(id);
}

void quorum_state::on_write(strong_write_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "node is stopping"});
  if (cmd.rec.tombstone)
    ++counters.deletes;
  else
    ++counters.sets;
  auto id = next_id++;
  auto range = placement->range_of(cmd.key);
  detail::quorum_op::shape shape{range, placement->replication_factor(), placement->majority()};
  ops.emplace(id, live_op{detail::quorum_op::write(id, shape, cmd.key, std::move(cmd.rec),
                                                   setup.pick_version),
                          std::move(cmd.done)});
  launch(id);
}

void quorum_state::launch(std::uint64_t id) {
  auto now = self->clock().now();
  deadlines.emplace_back(now + setup.timeout, id);
  if (!sweep_armed) {
    sweep_armed = true;
    self->delayed_send(self, setup.timeout, quorum_sweep_atom::value);
  }
  auto& op = ops.at(id).op;
  auto range = op.range();
  dispatch(range, op.start());
  finish_op(id);
  flush_now();
}

void quorum_state::sweep() {
  sweep_armed = false;
  auto now = self->clock().now();
  while (!deadlines.empty() && deadlines.front().first <= now) {
    auto id = deadlines.front().second;
    deadlines.pop_front();
    if (auto it = ops.find(id); it != ops.end()) {
      it->second.op.on_timeout();
      finish_op(id);
    }
  }
  // Entries of ops that finished in time are skipped here rather than searched for when
  // they finish.
  while (!deadlines.empty() && !ops.count(deadlines.front().second)) deadlines.pop_front();
  if (!deadlines.empty()) {
    sweep_armed = true;
    self->delayed_send(self, deadlines.front().first - now, quorum_sweep_atom::value);
  }
}

void quorum_state::finish_op(std::uint64_t id) {
  auto it = ops.find(id);
  if (it == ops.end() || !it->second.op.done()) return;
  auto live = std::move(it->second);
  ops.erase(it);
  auto& op = live.op;
  if (op.repaired()) ++counters.read_repairs;
  auto code = op.outcome().code();
  if (code == errc::timeout) ++counters.quorum_timeouts;
  if (code == errc::unknown_outcome) ++counters.unknown_outcomes;
  if (code != errc::ok && op.saw_mismatch())
    log()->warn(
        "strong: a replica has a different member list / replication factor; every node must "
        "be configured with the same members");
  live.done(std::move(op.outcome()));
}

void quorum_state::on_fanout(strong_fanout_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "node is stopping"});
  auto id = next_id++;
  auto rf = placement->replication_factor();
  std::vector<std::size_t> slots;
  for (auto s : cmd.slots)
    if (s < rf) slots.push_back(s);
  detail::quorum_call call{(id << 8) | (1u << 4), rf, std::move(slots), cmd.need};
  auto sends = call.requests(cmd.req);
  for (auto& s : sends) s.req.range = cmd.range;
  fanouts.emplace(id, live_fanout{std::move(call), std::move(cmd.done)});
  self->delayed_send(self, cmd.timeout, quorum_deadline_atom::value, id);
  dispatch(cmd.range, std::move(sends));
  finish_fanout(id, false);
  flush_now();
}

void quorum_state::on_deadline(std::uint64_t id) {
  finish_fanout(id, true);
}

void quorum_state::finish_fanout(std::uint64_t id, bool force) {
  auto it = fanouts.find(id);
  if (it == fanouts.end() || (!force && !it->second.call.complete())) return;
  auto live = std::move(it->second);
  fanouts.erase(it);
  fanout_result out;
  out.ok = live.call.ok();
  out.replies = std::move(live.call.replies());
  live.done(std::move(out));
}

void quorum_state::dispatch(std::uint32_t range, std::vector<detail::quorum_send> sends) {
  std::vector<wire::reply> immediate;
  std::vector<wire::request> local;
  auto& replicas = placement->replicas(range);
  for (auto& s : sends) {
    auto m = replicas[s.slot];
    if (m == placement->self_index()) {
      local.push_back(std::move(s.req));
      continue;
    }
    if (!dialer->handle(m)) {
      ++counters.unreachable_replies;
      wire::reply rep;
      rep.id = s.req.id;
      rep.code = wire::status::unreachable;
      immediate.push_back(std::move(rep));
      continue;
    }
    queues[m].push_back(std::move(s.req));
    schedule_flush();
  }
  if (!local.empty()) serve_local(range, std::move(local));
  for (auto& rep : immediate) route(std::move(rep));
}

void quorum_state::schedule_flush() {
  // One flush for everything queued before it runs: operations arriving meanwhile share
  // the batches (the flush message queues behind them).
  if (!flush_scheduled) {
    flush_scheduled = true;
    flush_deferred = false;
    self->send(self, caf::flush_atom::value);
  }
}

void quorum_state::serve_local(std::uint32_t range, std::vector<wire::request> reqs) {
  if (range < group_of.size() && group_of[range] != no_group) {
    auto& q = local_queue[group_of[range]];
    for (auto& r : reqs) q.push_back(std::move(r));
    schedule_flush();
    return;
  }
  // Not possible with one placement (a slot of ours means we replicate the range); kept
  // an answer rather than a silent drop.
  for (auto& r : reqs) {
    wire::reply rep;
    rep.id = r.id;
    rep.code = wire::status::bad_request;
    route(std::move(rep));
  }
}

void quorum_state::on_served(range_served& msg) {
  if (msg.batch == 0) {
    for (auto& rep : msg.replies) route(std::move(rep));
    flush_now();
    return;
  }
  auto it = serving.find(msg.batch);
  if (it == serving.end()) return;
  auto& g = it->second;
  for (auto& rep : msg.replies) g.replies.push_back(std::move(rep));
  if (--g.parts > 0) return;
  auto done = std::move(g);
  serving.erase(it);
  send_chunked<wire::reply_batch>(done.dest, false, done.replies);
  flush_now();
}

void quorum_state::route(wire::reply rep) {
  auto id = detail::quorum_op::op_of(rep.id);
  if (auto it = ops.find(id); it != ops.end()) {
    auto range = it->second.op.range();
    auto next = it->second.op.on_reply(std::move(rep));
    if (!next.empty()) dispatch(range, std::move(next));
    finish_op(id);
    return;
  }
  if (auto it = fanouts.find(id); it != fanouts.end()) {
    if (it->second.call.on_reply(std::move(rep))) finish_fanout(id, false);
  }
  // Else late: its operation finished without it.
}

void quorum_state::on_stop() {
  stopping = true;
  std::vector<std::uint64_t> ids;
  for (auto& [id, live] : ops) ids.push_back(id);
  for (auto id : ids) {
    ops.at(id).op.on_shutdown();
    finish_op(id);
  }
  ids.clear();
  for (auto& [id, live] : fanouts) ids.push_back(id);
  for (auto id : ids) {
    auto live = std::move(fanouts.at(id));
    fanouts.erase(id);
    live.done(error{errc::shutting_down, "node is stopping"});
  }
  serving.clear();
  for (auto& q : local_queue) q.clear();
  for (auto& g : groups) self->send_exit(g, caf::exit_reason::user_shutdown);
  self->quit();
}

void quorum_state::on_count(const strong_count_cmd& cmd) {
  counters.ranges_recovered += cmd.ranges_recovered;
  counters.ranges_bootstrapped += cmd.ranges_bootstrapped;
  counters.anti_entropy_rounds += cmd.anti_entropy_rounds;
  counters.anti_entropy_pulls += cmd.anti_entropy_pulls;
  counters.records_merged += cmd.records_merged;
}

// -- peers ------------------------------------------------------------------------------------

void quorum_state::tick() {
  dialer->tick();
}

void quorum_state::on_found(caf::strong_actor_ptr& ptr) {
  dialer->found(ptr);
}

void quorum_state::on_link(const quorum_link_cmd& cmd) {
  dialer->link(cmd.member, cmd.peer);
}

void quorum_state::on_down(const caf::down_msg& dm) {
  dialer->down(dm.source);
}

wire::header quorum_state::head() const {
  wire::header h;
  h.fingerprint = placement->fingerprint();
  h.incarnation = setup.incarnation;
  h.hlc_now = setup.clock_now ? setup.clock_now() : 0;
  return h;
}

template <class Batch, class Item>
void quorum_state::send_chunked(const caf::actor& dest, bool requests, std::vector<Item>& items) {
  std::size_t i = 0;
  while (i < items.size()) {
    Batch batch;
    batch.head = head();
    std::size_t bytes = 0;
    while (i < items.size() &&
           (batch.items.empty() || (bytes + wire::approx_size(items[i]) <= chunk_bytes &&
                                    batch.items.size() < chunk_items))) {
      bytes += wire::approx_size(items[i]);
      batch.items.push_back(std::move(items[i]));
      ++i;
    }
    auto enc = wire::encode(batch, setup.limits);
    if (!enc) {
      log()->error("quorum: cannot encode a batch: {}", enc.err().to_string());
      continue;
    }
    if (requests)
      self->send(dest, quorum_request_atom::value, std::move(*enc));
    else
      self->send(dest, quorum_reply_atom::value, std::move(*enc));
  }
}

void quorum_state::flush_now() {
  // Nothing else waiting in the mailbox: send what is queued at once (no extra hop through
  // the flush message). Otherwise the next messages may queue more requests for the same
  // batches: the flush message (or the next idle moment) sends them.
  if (flush_scheduled && self->mailbox().empty()) flush();
}

void quorum_state::on_flush() {
  // The flush message came back through the mailbox. Commands that arrived while it was
  // queued sit behind it; when there are any, wait for them once (re-queue the flush), so
  // they share these batches instead of going out in batches of their own: batches, not
  // operations, are what the links pay for. The second time, flush regardless.
  if (!flush_scheduled) return;
  if (!flush_deferred && !self->mailbox().empty()) {
    flush_deferred = true;
    self->send(self, caf::flush_atom::value);
    return;
  }
  flush();
}

void quorum_state::flush() {
  flush_scheduled = false;
  // This node's own part first: its replies come back while the peers' are on the wire.
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (local_queue[g].empty()) continue;
    std::vector<wire::request> reqs;
    reqs.swap(local_queue[g]);
    ++counters.group_messages;
    self->send(groups[g], range_serve_cmd{0, std::move(reqs)});
  }
  std::vector<wire::reply> unreachable;
  for (std::size_t m = 0; m < queues.size(); ++m) {
    if (queues[m].empty()) continue;
    std::vector<wire::request> reqs;
    reqs.swap(queues[m]);
    const auto& hdl = dialer->handle(m);
    if (!hdl) {  // the link went down after the requests were queued
      for (auto& r : reqs) {
        ++counters.unreachable_replies;
        wire::reply rep;
        rep.id = r.id;
        rep.code = wire::status::unreachable;
        unreachable.push_back(std::move(rep));
      }
      continue;
    }
    counters.requests_sent += reqs.size();
    ++counters.batches_sent;
    send_chunked<wire::request_batch>(hdl, true, reqs);
  }
  for (auto& rep : unreachable) route(std::move(rep));
}

void quorum_state::on_requests(const std::string& bytes) {
  auto batch = wire::decode_requests(bytes, setup.limits);
  if (!batch) {
    ++counters.decode_errors;
    return;
  }
  auto dest = caf::actor_cast<caf::actor>(self->current_sender());
  if (!dest) return;
  counters.requests_served += batch->items.size();
  ++counters.batches_served;
  std::vector<wire::reply> replies;
  bool mismatch = batch->head.fingerprint != placement->fingerprint();
  if (mismatch) ++counters.fingerprint_mismatches;
  // Split by group: each part goes to the actor that owns those ranges' replicas (at
  // most one part per group); the answers are gathered into one reply batch (on_served).
  std::map<std::uint32_t, std::vector<wire::request>> parts;
  for (auto& req : batch->items) {
    if (!mismatch && req.range < group_of.size() && group_of[req.range] != no_group) {
      parts[group_of[req.range]].push_back(std::move(req));
      continue;
    }
    wire::reply rep;
    rep.id = req.id;
    if (mismatch)
      rep.code = wire::status::mismatch;
    else if (req.range >= placement->ranges())
      rep.code = wire::status::bad_request;
    // else a range this node does not replicate: an empty, ready replica's answer (a
    // coordinator with the same placement never asks; the fingerprint makes that so).
    replies.push_back(std::move(rep));
  }
  if (parts.empty()) {
    send_chunked<wire::reply_batch>(dest, false, replies);
    flush_now();
    return;
  }
  auto id = next_id++;
  auto& g = serving[id];
  g.dest = std::move(dest);
  g.parts = parts.size();
  g.replies = std::move(replies);
  counters.group_messages += parts.size();
  for (auto& [g, reqs] : parts) self->send(groups[g], range_serve_cmd{id, std::move(reqs)});
  flush_now();
}

void quorum_state::on_replies(const std::string& bytes) {
  auto batch = wire::decode_replies(bytes, setup.limits);
  if (!batch) {
    ++counters.decode_errors;
    return;
  }
  for (auto& rep : batch->items) route(std::move(rep));
  flush_now();
}

caf::result<fanout_result> quorum_state::on_range_fanout(range_fanout_cmd& cmd) {
  auto rp = self->make_response_promise<fanout_result>();
  strong_fanout_cmd f;
  f.range = cmd.range;
  f.slots = std::move(cmd.slots);
  f.req = std::move(cmd.req);
  f.need = cmd.need;
  f.timeout = cmd.timeout;
  // A failed fan-out (stopping) is one nobody answered.
  f.done = completion<fanout_result>{
      [rp](result<fanout_result> r) mutable { rp.deliver(r ? std::move(*r) : fanout_result{}); }};
  on_fanout(f);
  return rp;
}

// -- recovery and anti-entropy pacing -------------------------------------------------------

void quorum_state::on_catchup_tick() {
  if (stopping || ready_count == replicated) return;
  // Every range not ready yet starts a pass at once (a range still in its last pass
  // skips this one): their probes share the batches, and a silent replica costs one probe
  // deadline per pass for all of them together. One message per group with such a range.
  std::vector<bool> pending(groups.size(), false);
  for (std::uint32_t r = 0; r < group_of.size(); ++r)
    if (group_of[r] != no_group && !range_ready[r]) pending[group_of[r]] = true;
  for (std::size_t g = 0; g < groups.size(); ++g)
    if (pending[g]) self->send(groups[g], range_recover_atom::value);
  auto now = std::chrono::steady_clock::now();
  if (now >= next_report) {
    next_report = now + catchup_report_interval;
    std::set<std::size_t> silent;
    for (std::uint32_t r = 0; r < range_waiting.size(); ++r)
      if (!range_ready[r]) silent.insert(range_waiting[r].begin(), range_waiting[r].end());
    std::string waiting;
    for (auto m : silent)
      if (m < placement->members().size())
        waiting += (waiting.empty() ? "" : ", ") + placement->members()[m];
    log()->warn(
        "strong: still catching up: {} of {} ranges ready; replicas not answering or not "
        "copied in the last pass: {}",
        ready_count, replicated, waiting.empty() ? "none (waiting for ready replicas)" : waiting);
  }
  self->delayed_send(self, catchup_interval, quorum_catchup_atom::value);
}

void quorum_state::on_progress(const range_progress& msg) {
  if (msg.range >= group_of.size() || group_of[msg.range] == no_group) return;
  range_waiting[msg.range] = msg.waiting_on;
  if (!msg.ready || range_ready[msg.range]) return;
  range_ready[msg.range] = true;
  range_waiting[msg.range].clear();
  if (++ready_count == replicated && catch_up_ms < 0) {
    catch_up_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started_at)
                      .count();
    log()->info("strong: every replicated range caught up, {} ms after start", catch_up_ms);
  }
}

void quorum_state::arm_sync() {
  auto base = setup.anti_entropy_interval.count();
  if (base <= 0) return;
  // Jitter, so replicas do not all compare at the same instant.
  std::chrono::milliseconds next{
      base / 2 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(base))};
  self->delayed_send(self, next, quorum_sync_atom::value);
}

void quorum_state::on_sync_tick() {
  if (stopping) return;
  ++counters.anti_entropy_rounds;
  // Every ready range compares its digest with its other replicas, all in one wave (one
  // deadline each, running together); a range not ready or still in its last round skips
  // this one (the group actor knows which).
  for (auto& g : groups) self->send(g, range_sync_atom::value);
  arm_sync();
}

// -- status ---------------------------------------------------------------------------------

caf::result<std::string> quorum_state::on_status() {
  // Readiness and key counts are the range-group actors' own: ask each of them (bounded),
  // answer when all did.
  auto rp = self->make_response_promise<std::string>();
  struct fan_in {
    std::size_t pending = 0;
    range_totals totals;
  };
  auto st = std::make_shared<fan_in>();
  st->totals.replicated = replicated;
  st->pending = groups.size();
  if (st->pending == 0) {
    rp.deliver(status_json(st->totals));
    return rp;
  }
  auto one_done = [this, st, rp]() mutable {
    if (--st->pending == 0) rp.deliver(status_json(st->totals));
  };
  for (auto& g : groups) {
    self->request(g, std::chrono::seconds{2}, range_info_atom::value)
        .then(
            [st, one_done](const range_info& info) mutable {
              st->totals.ready += info.ready;
              st->totals.keys += info.keys;
              one_done();
            },
            [one_done](caf::error&) mutable { one_done(); });
  }
  return rp;
}

std::string quorum_state::status_json(const range_totals& totals) const {
  nlohmann::json j;
  j["members"] = placement->members();
  j["self"] = placement->self_index() == detail::strong_placement::npos
                  ? -1
                  : static_cast<std::int64_t>(placement->self_index());
  j["replication_factor"] = placement->replication_factor();
  j["ranges"] = placement->ranges();
  j["range_groups"] = groups.size();
  j["replicated_ranges"] = totals.replicated;
  j["ready_ranges"] = totals.ready;
  j["recovered"] = totals.ready == totals.replicated;
  j["keys"] = totals.keys;
  std::size_t connected = dialer->connected();
  j["peers_connected"] = connected;
  j["in_flight"] = ops.size() + fanouts.size();
  auto& c = j["counters"];
#define WARP_JSON(name) c[#name] = counters.name;
  WARP_STRONG_COUNTERS(WARP_JSON)
#undef WARP_JSON
  j["catch_up_ms"] = catch_up_ms;
  std::set<std::size_t> silent;
  if (catch_up_ms < 0)
    for (std::uint32_t r = 0; r < range_waiting.size(); ++r)
      if (!range_ready[r]) silent.insert(range_waiting[r].begin(), range_waiting[r].end());
  std::vector<std::string> waiting_on;
  for (auto m : silent)
    if (m < placement->members().size()) waiting_on.push_back(placement->members()[m]);
  j["waiting_on"] = waiting_on;
  return j.dump();
}

}  // namespace

caf::actor spawn_quorum_actor(caf::actor_system& sys, quorum_setup setup) {
  bool publish = setup.dial;
  // Not detached: CAF 0.17 can hang in ~actor_system() waiting for detached actors' threads
  // (CAF issue #1196; seen in test/cluster). The actor never blocks, so the scheduler is fine.
  auto a = sys.spawn([setup = std::move(setup)](quorum_actor* self) mutable {
    return self->state.make_behavior(std::move(setup));
  });
  if (publish) sys.registry().put(quorum_registry_name(), a);
  return a;
}

void stop_quorum_actor(caf::actor_system& sys, const caf::actor& quorum) {
  if (!quorum) return;
  if (sys.registry().get(quorum_registry_name()) == caf::actor_cast<caf::strong_actor_ptr>(quorum))
    sys.registry().erase(quorum_registry_name());
  // The range-group actors go with it (an exit message), but they use the placement the
  // caller destroys next: wait for them too, not only for the quorum actor.
  auto names = std::make_shared<std::promise<std::vector<caf::actor>>>();
  auto ranges = names->get_future();
  caf::anon_send(quorum, quorum_ranges_cmd{completion<std::vector<caf::actor>>{
                             [names](result<std::vector<caf::actor>> r) {
                               names->set_value(r ? std::move(*r) : std::vector<caf::actor>{});
                             }}});
  caf::scoped_actor self{sys};
  self->send(quorum, quorum_stop_cmd{});
  self->wait_for(quorum);
  // Answered (or dropped, which answers too) before the stop command was handled.
  std::set<caf::actor> seen;
  for (auto& r : ranges.get())
    if (r && seen.insert(r).second) self->wait_for(r);
}

warp::result<std::string> fetch_strong_status(caf::actor_system& sys, const std::string& host,
                                              std::uint16_t port,
                                              std::chrono::milliseconds timeout) {
  // Every step is bounded by `timeout` (middleman().remote_lookup() may wait minutes for a
  // reply that a restarted or paused peer never sends), and every step has a scoped_actor
  // of its own. With one actor for all three, CAF 0.17 leaks it: the connect request's
  // timeout stays armed after its answer, fires while a later step still waits (the lookup
  // of a paused node waits out its full `timeout`), and that later receive skips it into
  // the mailbox's cache. The message's sender is the actor itself and
  // blocking_actor::cleanup() does not drain the cache, so the actor keeps itself alive
  // (LeakSanitizer at warp-nemesis's exit; docs/security.md, "Sanitizers"). A fresh actor
  // per request has no later receive to skip into, and a timeout that fires after it is
  // gone is dropped by its closed mailbox.
  caf::node_id nid;
  {
    caf::scoped_actor self{sys};
    self->request(bus::node_middleman(sys), timeout, caf::connect_atom::value, host, port)
        .receive([&](const caf::node_id& n, caf::strong_actor_ptr&,
                     const std::set<std::string>&) { nid = n; },
                 [](caf::error&) {});
  }
  if (!nid)
    return error{errc::unreachable, "cannot connect to " + host + ":" + std::to_string(port)};
  caf::strong_actor_ptr ptr;
  if (nid == sys.node()) {  // our own node (a node asking itself)
    ptr = sys.registry().get(quorum_registry_name());
  } else {
    caf::scoped_actor self{sys};
    auto basp = sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
    self->send(basp, caf::forward_atom::value, nid, caf::atom("ConfigServ"),
               caf::make_message(caf::get_atom::value, quorum_registry_name()));
    self->receive([&](caf::strong_actor_ptr& p) { ptr = std::move(p); },
                  caf::after(timeout) >> [] {});
  }
  if (!ptr) return error{errc::unsupported, "the node at " + host + " runs no quorum actor"};
  warp::result<std::string> out{errc::timeout, "no answer"};
  caf::scoped_actor self{sys};
  self->request(caf::actor_cast<caf::actor>(ptr), timeout, quorum_status_atom::value)
      .receive([&](std::string& json) { out = std::move(json); },
               [&](caf::error& err) {
                 out = error{errc::unreachable, sys.render(err)};
               });
  return out;
}

warp::result<std::string> fetch_strong_status_fresh(const std::string& host, std::uint16_t port,
                                                    std::chrono::milliseconds timeout) {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", 1);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  return fetch_strong_status(sys, host, port, timeout);
}

}  // namespace warp::actors
