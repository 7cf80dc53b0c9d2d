#include "actors/quorum_actor.hpp"

#include <chrono>
#include <deque>
#include <optional>
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
#include "actors/quorum_phase.hpp"
#include "runtime/membership/strong_placement.hpp"
#include "actors/strong_context.hpp"

namespace warp::actors {

namespace {

namespace wire = detail::wire;

constexpr auto tick_interval = std::chrono::milliseconds{200};
constexpr auto connect_retry = std::chrono::milliseconds{1000};
/// Encoded bytes per message before a batch is split (keeps one message from hogging the
/// connection; the hard bound is strong_limits::max_message_bytes).
constexpr std::size_t chunk_bytes = 1024 * 1024;
constexpr std::size_t chunk_items = 4096;

using warp::detail::log;

/// HOST:PORT of a member (parse_endpoint); {addr, 0} when it is not of that form.
std::pair<std::string, std::uint16_t> split_address(const std::string& addr) {
  auto ep = parse_endpoint(addr);
  if (!ep) return {addr, 0};
  return std::move(*ep);
}

/// The quorum actor's state: everything it works on, touched by its own thread only.
struct quorum_state {
  using time_point = caf::actor_clock::time_point;

  explicit quorum_state(caf::event_based_actor* ptr) : self(ptr) {}

  caf::behavior make_behavior(quorum_setup s);

  // -- handlers, one per command ------------------------------------------------------

  void on_read(strong_read_cmd& cmd);
  void on_write(strong_write_cmd& cmd);
  void on_fanout(strong_fanout_cmd& cmd);
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
  std::string status_json() const;

  // -- protocol plumbing ----------------------------------------------------------------

  /// Starts an op registered in `ops`.
  void launch(std::uint64_t id);
  /// Sends `sends` (slots of `range`): the local replica answers at once, a replica
  /// without a link answers `unreachable`, the others are queued for the next flush.
  void dispatch(std::uint32_t range, std::vector<detail::quorum_send> sends);
  /// Hands a reply to the op or fan-out it belongs to; late and unknown ones are dropped.
  void route(wire::reply rep);
  /// Completes op `id` if it has its outcome.
  void finish_op(std::uint64_t id);
  void finish_fanout(std::uint64_t id, bool force);
  void link(std::size_t member, caf::actor hdl);
  wire::header head() const;
  template <class Batch, class Item>
  void send_chunked(const caf::actor& dest, bool requests, std::vector<Item>& items);

  caf::event_based_actor* self;
  quorum_setup setup;
  const detail::strong_placement* placement = nullptr;

  struct peer_link {
    std::string host;
    std::uint16_t port = 0;
    caf::actor handle;  ///< the peer's quorum actor, once found
    std::optional<std::chrono::steady_clock::time_point> connecting_since;
    std::vector<wire::request> queue;  ///< waiting for the next flush
  };
  std::vector<peer_link> links;  ///< by member index (this node's own entry unused)
  std::unordered_map<caf::node_id, std::size_t> by_node;  ///< CAF node -> member index
  caf::actor basp;
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

  std::uint64_t next_id = 1;
  bool stopping = false;
  detail::strong_counters counters;

  static inline const char* name = "warp.quorum";
};

using quorum_actor = caf::stateful_actor<quorum_state>;

caf::behavior quorum_state::make_behavior(quorum_setup s) {
  setup = std::move(s);
  placement = setup.placement;
  links.resize(placement->members().size());
  for (std::size_t m = 0; m < links.size(); ++m) {
    auto [host, port] = split_address(placement->members()[m]);
    links[m].host = std::move(host);
    links[m].port = port;
  }
  self->set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
  // Stray or newer-protocol messages are dropped, never a crash.
  self->set_default_handler(caf::drop);
  if (setup.dial) {
    basp = self->system().middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
    self->send(self, quorum_tick_atom::value);
  }
  return {
      [this](strong_read_cmd& cmd) { on_read(cmd); },
      [this](strong_write_cmd& cmd) { on_write(cmd); },
      [this](strong_fanout_cmd& cmd) { on_fanout(cmd); },
      [this](const strong_count_cmd& cmd) { on_count(cmd); },
      [this](const quorum_link_cmd& cmd) { on_link(cmd); },
      [this](const quorum_stop_cmd&) { on_stop(); },
      [this](quorum_request_atom, const std::string& bytes) { on_requests(bytes); },
      [this](quorum_reply_atom, const std::string& bytes) { on_replies(bytes); },
      [this](caf::strong_actor_ptr& ptr) { on_found(ptr); },
      [this](quorum_status_atom) -> std::string { return status_json(); },
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
  auto& replicas = placement->replicas(range);
  for (auto& s : sends) {
    auto m = replicas[s.slot];
    if (m == placement->self_index()) {
      immediate.push_back(detail::serve(*setup.replica, s.req));
      continue;
    }
    auto& l = links[m];
    if (!l.handle) {
      ++counters.unreachable_replies;
      wire::reply rep;
      rep.id = s.req.id;
      rep.code = wire::status::unreachable;
      immediate.push_back(std::move(rep));
      continue;
    }
    l.queue.push_back(std::move(s.req));
    // One flush for everything queued before it runs: operations arriving meanwhile
    // share the batches (the flush message queues behind them).
    if (!flush_scheduled) {
      flush_scheduled = true;
      flush_deferred = false;
      self->send(self, caf::flush_atom::value);
    }
  }
  for (auto& rep : immediate) route(std::move(rep));
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
  auto now = std::chrono::steady_clock::now();
  for (std::size_t m = 0; m < links.size(); ++m) {
    auto& l = links[m];
    if (m == placement->self_index() || l.handle) continue;
    if (l.connecting_since && now - *l.connecting_since < connect_retry) continue;
    l.connecting_since = now;
    auto mm = bus::node_middleman(self->system());
    self->request(mm, std::chrono::seconds(2), caf::connect_atom::value, l.host, l.port)
        .then(
            [this, m](const caf::node_id& nid, caf::strong_actor_ptr&,
                      const std::set<std::string>&) {
              if (nid == self->system().node()) return;
              by_node[nid] = m;
              self->send(basp, caf::forward_atom::value, nid, caf::atom("ConfigServ"),
                         caf::make_message(caf::get_atom::value, quorum_registry_name()));
            },
            [](caf::error&) { /* retried after connect_retry */ });
  }
}

void quorum_state::on_found(caf::strong_actor_ptr& ptr) {
  if (!ptr || ptr->node() == self->system().node()) return;
  auto it = by_node.find(ptr->node());
  if (it == by_node.end()) return;
  link(it->second, caf::actor_cast<caf::actor>(ptr));
}

void quorum_state::on_link(const quorum_link_cmd& cmd) {
  if (cmd.member < links.size() && cmd.member != placement->self_index() && cmd.peer)
    link(cmd.member, cmd.peer);
}

void quorum_state::link(std::size_t member, caf::actor hdl) {
  auto& l = links[member];
  if (l.handle == hdl) return;
  l.handle = std::move(hdl);
  l.connecting_since.reset();
  self->monitor(l.handle);
}

void quorum_state::on_down(const caf::down_msg& dm) {
  for (auto& l : links)
    if (l.handle && l.handle.address() == dm.source) {
      l.handle = nullptr;
      l.connecting_since.reset();
    }
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
  std::vector<wire::reply> unreachable;
  for (auto& l : links) {
    if (l.queue.empty()) continue;
    std::vector<wire::request> reqs;
    reqs.swap(l.queue);
    if (!l.handle) {  // the link went down after the requests were queued
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
    send_chunked<wire::request_batch>(l.handle, true, reqs);
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
  std::vector<wire::reply> replies;
  replies.reserve(batch->items.size());
  bool mismatch = batch->head.fingerprint != placement->fingerprint();
  if (mismatch) ++counters.fingerprint_mismatches;
  for (auto& req : batch->items) {
    if (mismatch) {
      wire::reply rep;
      rep.id = req.id;
      rep.code = wire::status::mismatch;
      replies.push_back(std::move(rep));
    } else {
      replies.push_back(detail::serve(*setup.replica, req));
    }
  }
  counters.requests_served += replies.size();
  ++counters.batches_served;
  send_chunked<wire::reply_batch>(dest, false, replies);
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

std::string quorum_state::status_json() const {
  nlohmann::json j;
  j["members"] = placement->members();
  j["self"] = placement->self_index() == detail::strong_placement::npos
                  ? -1
                  : static_cast<std::int64_t>(placement->self_index());
  j["replication_factor"] = placement->replication_factor();
  j["ranges"] = placement->ranges();
  std::size_t replicated = 0, ready = 0;
  for (std::uint32_t r = 0; r < placement->ranges(); ++r) {
    if (!placement->is_replica(r)) continue;
    ++replicated;
    ready += setup.replica->ready(r);
  }
  j["replicated_ranges"] = replicated;
  j["ready_ranges"] = ready;
  j["recovered"] = ready == replicated;
  j["keys"] = setup.replica->key_count();
  std::size_t connected = 0;
  for (auto& l : links) connected += static_cast<bool>(l.handle);
  j["peers_connected"] = connected;
  j["in_flight"] = ops.size() + fanouts.size();
  auto& c = j["counters"];
#define WARP_JSON(name) c[#name] = counters.name;
  WARP_STRONG_COUNTERS(WARP_JSON)
#undef WARP_JSON
  if (setup.status_extra) {
    auto extra = nlohmann::json::parse(setup.status_extra(), nullptr, false);
    if (extra.is_object()) j.update(extra);
  }
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
  caf::scoped_actor self{sys};
  self->send(quorum, quorum_stop_cmd{});
  self->wait_for(quorum);
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
