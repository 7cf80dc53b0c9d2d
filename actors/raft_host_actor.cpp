#include "actors/raft_host_actor.hpp"

#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/coord_group.hpp"
#include "actors/peer_dialer.hpp"
#include "runtime/core/log.hpp"
#include "runtime/membership/strong_placement.hpp"

namespace warp::actors {

namespace rc = consensus;

namespace {

/// A group's (or another host's) answer to one attempt of a client request.
struct raft_op_result {
  std::uint64_t id = 0;
  std::uint64_t attempt = 0;
  rc::node_id from = 0;
  result<std::string> r{errc::internal};
};

/// The local group answered a request another host forwarded here.
struct raft_fwd_done {
  std::uint64_t id = 0;
  result<std::string> r{errc::internal};
};

struct raft_retry {
  std::uint64_t id = 0;
  std::uint64_t attempt = 0;
};

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

}  // namespace warp::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_op_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_fwd_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_retry)

namespace warp::actors {

// -- forward encoding -------------------------------------------------------------------

std::string encode_forward(raft_request_kind kind, std::uint32_t group, const rc::kv_command& cmd) {
  std::string out;
  out.push_back(static_cast<char>(kind));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((group >> (8 * i)) & 0xff));
  out += rc::encode(cmd);
  return out;
}

result<forward_request> decode_forward(std::string_view bytes, const rc::kv_limits& kv) {
  if (bytes.size() < 5) return error{errc::codec_error, "raft forward: truncated"};
  forward_request f;
  auto kind = static_cast<std::uint8_t>(bytes[0]);
  if (kind > static_cast<std::uint8_t>(raft_request_kind::coord_propose))
    return error{errc::codec_error, "raft forward: unknown kind"};
  f.kind = static_cast<raft_request_kind>(kind);
  for (int i = 0; i < 4; ++i)
    f.group |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[1 + i])) << (8 * i);
  // A coordination command rides in the value: room for its name, owner and header.
  auto lim = kv;
  lim.max_value_bytes += lim.max_key_bytes + (64u << 10);
  auto cmd = rc::decode_kv_command(bytes.substr(5), lim);
  if (!cmd) return cmd.err();
  f.cmd = std::move(*cmd);
  return f;
}

std::string encode_forward_answer(const result<std::string>& r) {
  std::string out;
  out.push_back(static_cast<char>(r.code()));
  out += r ? *r : r.err().message();
  return out;
}

result<std::string> decode_forward_answer(std::string_view bytes) {
  if (bytes.empty()) return error{errc::codec_error, "raft forward answer: empty"};
  auto code = static_cast<std::uint8_t>(bytes[0]);
  if (code > static_cast<std::uint8_t>(errc::internal))
    return error{errc::codec_error, "raft forward answer: unknown code"};
  std::string rest{bytes.substr(1)};
  if (code == 0) return rest;
  return error{static_cast<errc>(code), std::move(rest)};
}

// -- the host -------------------------------------------------------------------------------

namespace {

constexpr std::string_view not_leader_prefix = "not_leader";

struct raft_host_state {
  explicit raft_host_state(caf::event_based_actor* ptr) : self(ptr) {}

  caf::behavior make_behavior(std::shared_ptr<raft_host_setup> init);

  void on_tick();
  void on_tick_done();
  void on_outbound(raft_outbound& out);
  void on_batch(const std::string& frame);
  caf::result<std::string> on_forward(const std::string& bytes);
  void on_fwd_done(raft_fwd_done& d);
  void on_request(raft_request_cmd& cmd);
  void on_result(raft_op_result& res);
  void on_stop();
  raft_host_status status() const;

  void schedule_flush();
  void on_flush();
  void flush();
  void attempt(std::uint64_t id);
  void retry_later(std::uint64_t id);
  void finish(std::uint64_t id, result<std::string> r);
  void expire();
  rc::node_id pick_target(std::uint32_t group, rc::node_id avoid);
  static error final_error(const auto& o) {
    if (is_write(o.kind) && (o.in_doubt || o.outstanding) &&
        o.last.code() != errc::unknown_outcome)
      return error{errc::unknown_outcome, "strong write: " + o.last.to_string()};
    return o.last;
  }

  struct op {
    raft_request_kind kind = raft_request_kind::read;
    std::uint32_t group = 0;
    rc::kv_command cmd;
    completion<std::string> done;
    std::uint64_t deadline = 0;
    int attempts = 0;
    std::uint64_t attempt = 0;
    rc::node_id target = 0;
    /// A proposal whose fate is unknown: an attempt ended unknown_outcome / timed out, or is
    /// still out. Its end is then unknown_outcome, never timeout (which promises "not applied").
    bool in_doubt = false;
    bool outstanding = false;  ///< the current attempt has not answered
    error last{errc::unreachable, "no replica of the group answered"};
  };

  caf::event_based_actor* self;
  raft_host_setup setup;
  const detail::strong_placement* placement = nullptr;
  rc::node_id self_id = 0;
  std::optional<peer_dialer> dialer;
  std::map<std::uint32_t, caf::actor> groups;

  std::vector<std::vector<rc::batch_item>> outq;  ///< by member index
  std::size_t ticks_pending = 0;
  bool flush_scheduled = false;
  bool flush_deferred = false;
  std::uint64_t ticks = 0;

  std::map<std::uint64_t, op> ops;
  std::uint64_t next_op = 1;
  std::unordered_map<std::uint32_t, rc::node_id> leader_of;
  std::unordered_map<std::uint32_t, std::size_t> rotate;  ///< next replica to try, by group

  // Client sessions: a client id has at most one proposal in flight (the model of the
  // state machine's sessions: a lower sequence after a higher one is refused), so the host
  // keeps a pool of ids and a sequence per id.
  std::vector<std::uint64_t> free_clients;
  std::uint64_t clients_made = 0;
  std::unordered_map<std::uint64_t, std::uint64_t> seqs;

  std::map<std::uint64_t, caf::response_promise> fwd_pending;
  std::uint64_t next_fwd = 1;

  raft_host_status counters;
  bool stopping = false;

  static inline const char* name = "warp.raft_host";
};

using raft_host_actor = caf::stateful_actor<raft_host_state>;

caf::behavior raft_host_state::make_behavior(std::shared_ptr<raft_host_setup> init) {
  setup = std::move(*init);
  placement = setup.placement;
  self_id = placement->self_index() + 1;
  counters.id = self_id;
  dialer.emplace(self, raft_host_registry_name(), placement->members(), placement->self_index());
  outq.resize(placement->members().size());
  self->set_down_handler([this](caf::down_msg& dm) { dialer->down(dm.source); });
  self->set_default_handler(caf::drop);
  if (setup.dial) dialer->enable();
  self->send(self, raft_host_tick_atom::value);
  return {
      [this](raft_host_tick_atom) { on_tick(); },
      [this](raft_tick_done&) { on_tick_done(); },
      [this](raft_outbound& out) { on_outbound(out); },
      [this](raft_batch_atom, const std::string& frame) { on_batch(frame); },
      [this](raft_fwd_atom, const std::string& bytes) { return on_forward(bytes); },
      [this](raft_fwd_done& d) { on_fwd_done(d); },
      [this](raft_request_cmd& cmd) { on_request(cmd); },
      [this](raft_op_result& res) { on_result(res); },
      [this](raft_retry& r) {
        auto it = ops.find(r.id);
        if (it != ops.end() && it->second.attempt == r.attempt) attempt(r.id);
      },
      [this](raft_attach_cmd& cmd) { groups[cmd.group] = std::move(cmd.actor); },
      [this](raft_host_link_cmd& cmd) {
        if (cmd.id >= 1) dialer->link(cmd.id - 1, std::move(cmd.peer));
      },
      [this](caf::strong_actor_ptr& ptr) { dialer->found(ptr); },
      [this](raft_host_status_cmd& cmd) { cmd.done(status()); },
      [this](caf::flush_atom) { on_flush(); },
      [this](raft_host_stop_cmd&) { on_stop(); },
  };
}

// -- ticks and batches ----------------------------------------------------------------------

void raft_host_state::on_tick() {
  if (stopping) return;
  self->delayed_send(self, setup.tick_interval, raft_host_tick_atom::value);
  ++ticks;
  dialer->tick();
  // A group that did not answer the last tick (stopped, or its mailbox far behind) must not
  // hold the others' messages: whatever is queued goes now.
  if (ticks_pending > 0) flush();
  ticks_pending = groups.size();
  for (auto& [g, a] : groups) self->send(a, raft_tick_atom::value);
  expire();
  if (ticks_pending == 0) flush();
}

void raft_host_state::on_tick_done() {
  if (ticks_pending > 0 && --ticks_pending == 0) flush();
}

void raft_host_state::on_outbound(raft_outbound& out) {
  for (auto& [to, bytes] : out.msgs) {
    if (to == 0 || to > outq.size() || to == self_id) {
      ++counters.undeliverable;
      continue;
    }
    outq[to - 1].push_back(rc::batch_item{out.group, std::move(bytes)});
  }
  // During a tick round the flush waits for the last group's answer; otherwise (appends,
  // votes, answers between ticks) once the mailbox is drained.
  if (ticks_pending == 0) schedule_flush();
}

void raft_host_state::schedule_flush() {
  if (flush_scheduled) return;
  flush_scheduled = true;
  flush_deferred = false;
  self->send(self, caf::flush_atom::value);
}

void raft_host_state::on_flush() {
  if (!flush_scheduled) return;
  // Messages that arrived behind the flush (other groups' readies) share its batches: wait
  // for them once, then flush regardless (as the quorum actor does).
  if (!flush_deferred && !self->mailbox().empty()) {
    flush_deferred = true;
    self->send(self, caf::flush_atom::value);
    return;
  }
  flush();
}

void raft_host_state::flush() {
  flush_scheduled = false;
  for (std::size_t m = 0; m < outq.size(); ++m) {
    auto& q = outq[m];
    if (q.empty()) continue;
    std::vector<rc::batch_item> items;
    items.swap(q);
    const auto& hdl = dialer->handle(m);
    if (!hdl) {
      // Raft retries on its own (heartbeats, probes): a lost message is only a lost message.
      counters.undeliverable += items.size();
      continue;
    }
    std::size_t i = 0;
    while (i < items.size()) {
      rc::raft_batch b;
      b.sender = self_id;
      std::size_t bytes = rc::batch_header_bytes();
      while (i < items.size() &&
             (b.items.empty() || bytes + items[i].bytes.size() + rc::batch_item_overhead() <=
                                     setup.flush_chunk_bytes)) {
        bytes += items[i].bytes.size() + rc::batch_item_overhead();
        b.items.push_back(std::move(items[i]));
        ++i;
      }
      auto frame = rc::encode(b, setup.batch);
      if (!frame) {
        counters.undeliverable += b.items.size();
        continue;
      }
      ++counters.batches_sent;
      counters.items_sent += b.items.size();
      self->send(hdl, raft_batch_atom::value, std::move(*frame));
    }
  }
  ++counters.flushes;
}

void raft_host_state::on_batch(const std::string& frame) {
  ++counters.batches_received;
  if (frame.size() > setup.batch.max_frame_bytes) {
    ++counters.malformed;
    return;
  }
  auto b = rc::decode_batch(frame, setup.batch);
  if (!b || b->sender == self_id || b->sender > placement->members().size()) {
    ++counters.malformed;
    return;
  }
  for (auto& item : b->items) {
    auto it = groups.find(item.group);
    if (it == groups.end()) {
      ++counters.malformed;
      continue;
    }
    self->send(it->second, raft_msg_atom::value, std::move(item.bytes));
  }
}

// -- forwarded requests (this node replicates the group) -------------------------------------

caf::result<std::string> raft_host_state::on_forward(const std::string& bytes) {
  ++counters.forwards_served;
  if (stopping) return encode_forward_answer(error{errc::shutting_down, "node stopping"});
  auto req = decode_forward(bytes, setup.kv);
  if (!req) {
    ++counters.malformed;
    return encode_forward_answer(req.err());
  }
  auto g = groups.find(req->group);
  if (g == groups.end())
    return encode_forward_answer(
        error{errc::unreachable,
              "this node does not replicate raft group " + std::to_string(req->group)});
  auto rp = self->make_response_promise();
  auto fid = next_fwd++;
  fwd_pending.emplace(fid, rp);
  auto hdl = caf::actor_cast<caf::actor>(self);
  completion<std::string> done{[hdl, fid](result<std::string> r) {
    caf::anon_send(hdl, raft_fwd_done{fid, std::move(r)});
  }};
  // Forwarded requests are served here only, never forwarded again: one hop.
  if (req->kind == raft_request_kind::propose)
    self->send(g->second, raft_propose_cmd{std::move(req->cmd), std::move(done), {}});
  else if (req->kind == raft_request_kind::coord_propose)
    self->send(g->second, raft_propose_cmd{{}, std::move(done), std::move(req->cmd.value)});
  else if (req->kind == raft_request_kind::coord_read)
    self->send(g->second, raft_read_cmd{std::move(req->cmd.value), std::move(done)});
  else
    self->send(g->second, raft_read_cmd{std::move(req->cmd.key), std::move(done)});
  return rp;
}

void raft_host_state::on_fwd_done(raft_fwd_done& d) {
  auto it = fwd_pending.find(d.id);
  if (it == fwd_pending.end()) return;
  it->second.deliver(encode_forward_answer(d.r));
  fwd_pending.erase(it);
}

// -- client requests --------------------------------------------------------------------------

void raft_host_state::on_request(raft_request_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "node stopping"});
  op o;
  o.kind = cmd.kind;
  o.cmd = std::move(cmd.cmd);
  const bool coord =
      o.kind == raft_request_kind::coord_read || o.kind == raft_request_kind::coord_propose;
  o.group = coord ? coord_group_id : placement->range_of(o.cmd.key);
  o.done = std::move(cmd.done);
  o.deadline = ticks + static_cast<std::uint64_t>(setup.request_timeout_ticks);
  if (o.kind == raft_request_kind::propose) {
    std::uint64_t client;
    if (!free_clients.empty()) {
      client = free_clients.back();
      free_clients.pop_back();
    } else {
      client = splitmix64(setup.incarnation ^ (self_id << 48) ^ ++clients_made) | 1;
    }
    o.cmd.client = client;
    o.cmd.seq = ++seqs[client];
  }
  auto id = next_op++;
  ops.emplace(id, std::move(o));
  attempt(id);
}

rc::node_id raft_host_state::pick_target(std::uint32_t group, rc::node_id avoid) {
  if (auto l = leader_of.find(group); l != leader_of.end() && l->second != avoid) return l->second;
  if (avoid == 0 && groups.count(group)) return self_id;
  const auto& reps = placement->replicas(voters_range(group));
  if (reps.empty()) return 0;
  auto& r = rotate[group];
  for (std::size_t k = 0; k < reps.size(); ++k) {
    auto id = reps[(r + k) % reps.size()] + 1;
    if (id != avoid) {
      r = (r + k + 1) % reps.size();
      return id;
    }
  }
  return reps[0] + 1;
}

void raft_host_state::attempt(std::uint64_t id) {
  auto it = ops.find(id);
  if (it == ops.end()) return;
  auto& o = it->second;
  if (++o.attempts > setup.max_attempts) return finish(id, final_error(o));
  auto aid = ++o.attempt;
  if (o.target == 0) o.target = pick_target(o.group, 0);
  auto target = o.target;
  auto hdl = caf::actor_cast<caf::actor>(self);
  if (target == self_id) {
    auto g = groups.find(o.group);
    if (g == groups.end()) {
      o.target = 0;
      return finish(id, error{errc::internal, "raft group not hosted here"});
    }
    completion<std::string> done{[hdl, id, aid, target](result<std::string> r) {
      caf::anon_send(hdl, raft_op_result{id, aid, target, std::move(r)});
    }};
    o.outstanding = true;
    if (o.kind == raft_request_kind::propose) {
      self->send(g->second, raft_propose_cmd{o.cmd, std::move(done), {}});
    } else if (o.kind == raft_request_kind::coord_propose) {
      self->send(g->second, raft_propose_cmd{{}, std::move(done), o.cmd.value});
    } else if (o.kind == raft_request_kind::coord_read) {
      self->send(g->second, raft_read_cmd{o.cmd.value, std::move(done)});
    } else {
      self->send(g->second, raft_read_cmd{o.cmd.key, std::move(done)});
    }
    return;
  }
  const auto& peer =
      target >= 1 && target <= dialer->size() ? dialer->handle(target - 1) : caf::actor{};
  if (!peer) {
    self->send(self, raft_op_result{
                         id, aid, target,
                         error{errc::unreachable, "no link to member " + std::to_string(target)}});
    return;
  }
  ++counters.forwarded;
  o.outstanding = true;
  auto left = o.deadline > ticks ? o.deadline - ticks : 1;
  auto timeout = setup.tick_interval * static_cast<long>(left);
  self->request(peer, timeout, raft_fwd_atom::value, encode_forward(o.kind, o.group, o.cmd))
      .then(
          [this, id, aid, target](std::string& ans) {
            raft_op_result res{id, aid, target, decode_forward_answer(ans)};
            on_result(res);
          },
          [this, id, aid, target](caf::error& err) {
            auto it = ops.find(id);
            errc code = it != ops.end() && is_write(it->second.kind)
                            ? errc::unknown_outcome
                            : errc::unreachable;
            raft_op_result res{id, aid, target,
                               error{code, "forward to member " + std::to_string(target) + ": " +
                                               self->system().render(err)}};
            on_result(res);
          });
}

void raft_host_state::retry_later(std::uint64_t id) {
  auto it = ops.find(id);
  if (it == ops.end()) return;
  self->delayed_send(self, setup.tick_interval, raft_retry{id, it->second.attempt});
}

void raft_host_state::on_result(raft_op_result& res) {
  auto it = ops.find(res.id);
  if (it == ops.end() || it->second.attempt != res.attempt) return;  // late: already decided
  auto& o = it->second;
  o.outstanding = false;
  if (res.r) {
    leader_of[o.group] = res.from;
    return finish(res.id, std::move(res.r));
  }
  const auto& err = res.r.err();
  switch (err.code()) {
    case errc::unreachable: {
      o.last = err;
      auto hint = not_leader_hint(err);
      if (err.message().starts_with(not_leader_prefix) && hint != 0 && hint != res.from) {
        // Follow the hint at once: the common path of a request that reached a follower.
        leader_of[o.group] = hint;
        o.target = hint;
        return attempt(res.id);
      }
      if (leader_of.count(o.group) && leader_of[o.group] == res.from) leader_of.erase(o.group);
      o.target = pick_target(o.group, res.from);
      // No leader known (an election is on): give it a tick.
      return retry_later(res.id);
    }
    case errc::unknown_outcome:
    case errc::timeout:
    case errc::storage_error:
    case errc::shutting_down:
      // The same client id and sequence again: applied at most once.
      o.last = err;
      if (is_write(o.kind) && err.code() != errc::storage_error &&
          err.code() != errc::shutting_down)
        o.in_doubt = true;
      if (leader_of.count(o.group) && leader_of[o.group] == res.from) leader_of.erase(o.group);
      o.target = pick_target(o.group, res.from);
      return retry_later(res.id);
    default:
      return finish(res.id, std::move(res.r));
  }
}

void raft_host_state::finish(std::uint64_t id, result<std::string> r) {
  auto it = ops.find(id);
  if (it == ops.end()) return;
  auto o = std::move(it->second);
  ops.erase(it);
  if (o.kind == raft_request_kind::propose) free_clients.push_back(o.cmd.client);
  o.done(std::move(r));
}

void raft_host_state::expire() {
  for (auto it = ops.begin(); it != ops.end();) {
    auto& o = it->second;
    if (o.deadline > ticks) {
      ++it;
      continue;
    }
    auto id = it->first;
    ++it;
    if (is_write(o.kind) && (o.in_doubt || o.outstanding))
      finish(id, error{errc::unknown_outcome,
                       "strong write timed out: it may still apply (" + o.last.to_string() + ")"});
    else
      finish(id, error{errc::timeout, "strong request timed out: " + o.last.to_string()});
  }
}

void raft_host_state::on_stop() {
  stopping = true;
  for (auto& [id, o] : ops)
    o.done(error{is_write(o.kind) && (o.in_doubt || o.outstanding)
                     ? errc::unknown_outcome
                     : errc::shutting_down,
                 "node stopping"});
  ops.clear();
  for (auto& [fid, rp] : fwd_pending)
    rp.deliver(encode_forward_answer(error{errc::shutting_down, "node stopping"}));
  fwd_pending.clear();
  for (auto& [g, a] : groups) self->send(a, raft_stop_cmd{});
  self->quit(caf::exit_reason::user_shutdown);
}

raft_host_status raft_host_state::status() const {
  auto s = counters;
  s.peers_connected = dialer->connected();
  for (const auto& [g, a] : groups) s.groups.emplace_back(g, a);
  return s;
}

}  // namespace

// -- spawn / stop -----------------------------------------------------------------------------

result<caf::actor> spawn_raft_host_actor(caf::actor_system& sys, raft_host_setup setup) {
  if (!setup.placement || !setup.executor)
    return error{errc::invalid_argument, "raft host: placement and executor required"};
  const auto* pl = setup.placement;
  if (pl->self_index() == detail::strong_placement::npos)
    return error{errc::invalid_argument, "raft host: this node is not a strong member"};
  auto init = std::make_shared<raft_host_setup>(setup);
  bool publish = setup.dial;
  auto host = sys.spawn([init](raft_host_actor* self) { return self->state.make_behavior(init); });
  const rc::node_id self_id = pl->self_index() + 1;
  // One group actor of this host: the voters of range `voters_of`, its log under
  // <dir>/<name>; `adjust` sets what differs between key groups and the coordination group.
  auto spawn_group = [&](std::uint32_t group, std::uint32_t voters_of, const std::string& name,
                         const std::function<void(raft_group_setup&)>& adjust) -> result<void> {
    raft_group_setup gs;
    gs.raft.id = self_id;
    for (auto m : pl->replicas(voters_of)) gs.raft.voters.push_back(m + 1);
    gs.raft.election_tick = setup.election_tick;
    gs.raft.heartbeat_tick = 1;
    gs.raft.seed = splitmix64(setup.incarnation ^ (std::uint64_t{group} << 20) ^ self_id);
    gs.raft.max_entry_bytes = setup.max_entry_bytes;
    gs.dir = setup.dir + "/" + name;
    std::error_code ec;
    std::filesystem::create_directories(gs.dir, ec);
    if (ec) return error{errc::storage_error, "raft: cannot create " + gs.dir + ": " + ec.message()};
    gs.log = setup.log;
    gs.ops = setup.ops;
    gs.wire = setup.wire;
    gs.tick_interval = setup.tick_interval;
    gs.request_timeout_ticks = setup.request_timeout_ticks;
    gs.snapshot_entries = setup.snapshot_entries;
    gs.executor = setup.executor;
    gs.host = host;
    gs.group = group;
    if (adjust) adjust(gs);
    auto a = spawn_raft_group_actor(sys, std::move(gs));
    if (!a) return a.err();
    caf::anon_send(host, raft_attach_cmd{group, *a});
    return {};
  };
  for (std::uint32_t g = 0; g < pl->ranges(); ++g) {
    if (!pl->is_replica(g)) continue;
    std::function<void(raft_group_setup&)> key_sm;
    if (setup.make_key_state_machine)
      key_sm = [&setup, g](raft_group_setup& gs) {
        gs.make_state_machine = [make = setup.make_key_state_machine, g] { return make(g); };
      };
    if (auto r = spawn_group(g, g, std::to_string(g), key_sm); !r) {
      stop_raft_host_actor(sys, host);
      return error{r.code(), "raft group " + std::to_string(g) + ": " + r.err().message()};
    }
  }
  if (setup.coordination && pl->is_replica(voters_range(coord_group_id))) {
    // The coordination group: the voters of range 0, a log of its own, a coord_machine.
    auto coord = setup.coordination;
    auto r = spawn_group(coord_group_id, voters_range(coord_group_id), "coord",
                         [coord](raft_group_setup& gs) {
                           // Not compacted yet: the lease countdown hooks are armed from
                           // applied entries, and a member that restores a snapshot would
                           // have to re-arm them from it (docs/strong.md).
                           gs.snapshot_entries = 0;
                           gs.make_state_machine = [coord] { return make_coord_machine(*coord); };
                           gs.make_hooks = [coord] { return make_coord_hooks(*coord); };
                         });
    if (!r) {
      stop_raft_host_actor(sys, host);
      return error{r.code(), "coordination group: " + r.err().message()};
    }
  }
  if (publish) sys.registry().put(raft_host_registry_name(), host);
  return host;
}

void stop_raft_host_actor(caf::actor_system& sys, const caf::actor& host) {
  if (!host) return;
  if (sys.registry().get(raft_host_registry_name()) == caf::actor_cast<caf::strong_actor_ptr>(host))
    sys.registry().erase(raft_host_registry_name());
  auto p = std::make_shared<std::promise<std::vector<caf::actor>>>();
  auto f = p->get_future();
  caf::anon_send(host,
                 raft_host_status_cmd{completion<raft_host_status>{[p](result<raft_host_status> r) {
                   std::vector<caf::actor> out;
                   if (r)
                     for (auto& [g, a] : r->groups) out.push_back(a);
                   p->set_value(std::move(out));
                 }}});
  caf::scoped_actor self{sys};
  self->send(host, raft_host_stop_cmd{});
  self->wait_for(host);
  for (auto& a : f.get())
    if (a) self->wait_for(a);
}

}  // namespace warp::actors
