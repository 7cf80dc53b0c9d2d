#include "actors/raft_host_actor.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <deque>

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

/// One group's step of a `members add|remove` finished.
struct raft_members_step {
  std::uint64_t job = 0;
  result<std::string> r{errc::internal};
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
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_members_step)

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
  if (kind > static_cast<std::uint8_t>(raft_request_kind::read_versioned))
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

// -- hello and member ids -------------------------------------------------------------------

std::string encode_hello(rc::node_id self, std::string_view self_address,
                         const std::map<rc::node_id, std::string>& book) {
  std::string out = "WRH1\n";
  out += std::to_string(self) + " " + std::string{self_address} + "\n";
  for (const auto& [id, addr] : book) {
    if (id == self || addr.empty()) continue;
    if (out.size() + addr.size() + 24 > max_hello_bytes) break;
    out += std::to_string(id) + " " + addr + "\n";
  }
  return out;
}

result<std::vector<std::pair<rc::node_id, std::string>>> decode_hello(std::string_view bytes) {
  if (bytes.size() > max_hello_bytes) return error{errc::codec_error, "raft hello: too large"};
  if (!bytes.starts_with("WRH1\n")) return error{errc::codec_error, "raft hello: bad version"};
  bytes.remove_prefix(5);
  std::vector<std::pair<rc::node_id, std::string>> out;
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) return error{errc::codec_error, "raft hello: truncated"};
    auto line = bytes.substr(0, nl);
    bytes.remove_prefix(nl + 1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || line.size() - sp - 1 > 255)
      return error{errc::codec_error, "raft hello: bad line"};
    rc::node_id id = 0;
    auto num = line.substr(0, sp);
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), id);
    if (ec != std::errc{} || ptr != num.data() + num.size() || id == 0)
      return error{errc::codec_error, "raft hello: bad id"};
    if (out.size() >= max_hello_entries) return error{errc::codec_error, "raft hello: too many"};
    out.emplace_back(id, std::string{line.substr(sp + 1)});
  }
  // The sender's own entry comes first; its address may be empty (a node that does not know
  // how it is reached) but its id may not be missing.
  if (out.empty()) return error{errc::codec_error, "raft hello: no sender"};
  return out;
}

namespace {

constexpr rc::node_id first_joined_id = rc::node_id{1} << 32;

result<void> write_member_file(const std::filesystem::path& dir, rc::node_id id) {
  auto tmp = dir / "member.tmp";
  auto fin = dir / "member";
  auto text = std::to_string(id) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return error{errc::storage_error, "raft: cannot write " + tmp.string()};
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), fin.c_str()) != 0)
    return error{errc::storage_error, "raft: cannot write " + fin.string()};
  // The rename itself must survive a crash, or a restart could pick a second fresh id.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

bool has_group_logs(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_directory(ec)) return true;
  return false;
}

}  // namespace

result<rc::node_id> resolve_member_id(const std::string& dir_s, const detail::strong_placement& pl,
                                      bool join) {
  namespace fs = std::filesystem;
  fs::path dir{dir_s};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return error{errc::storage_error, "raft: cannot create " + dir_s + ": " + ec.message()};
  auto file = dir / "member";
  if (fs::exists(file, ec)) {
    std::ifstream in(file);
    std::string text;
    std::getline(in, text);
    rc::node_id id = 0;
    auto [ptr, err] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (err != std::errc{} || id == 0)
      return error{errc::storage_error,
                   "raft: " + file.string() + " is not a member id; refusing to guess one"};
    return id;
  }
  const bool logs = has_group_logs(dir);
  if (join) {
    if (logs)
      return error{errc::invalid_argument,
                   "raft: " + dir_s +
                       " holds group logs but no member file: --strong-join takes "
                       "a fresh id for an EMPTY data dir; remove the logs or start without it"};
    std::random_device rd;
    std::uint64_t r = (std::uint64_t{rd()} << 32) ^ rd();
    rc::node_id id = first_joined_id + r % ((rc::node_id{1} << 62) - first_joined_id);
    if (auto w = write_member_file(dir, id); !w) return w.err();
    return id;
  }
  if (pl.self_index() == detail::strong_placement::npos)
    return error{errc::invalid_argument,
                 "raft: this node is not in --strong-members: start it with --strong-join to "
                 "join a running cluster (then `warpctl members add` it)"};
  rc::node_id id = pl.self_index() + 1;
  // An initial member (or one upgraded from before member files): the bootstrap id.
  if (auto w = write_member_file(dir, id); !w) return w.err();
  return id;
}

// -- the host -------------------------------------------------------------------------------

namespace {

constexpr std::string_view not_leader_prefix = "not_leader";

struct raft_host_state {
  explicit raft_host_state(caf::event_based_actor* ptr) : self(ptr) {}

  caf::behavior make_behavior(std::shared_ptr<raft_host_setup> init);

  void on_tick();
  void on_tick_done(raft_tick_done& d);
  void on_outbound(raft_outbound& out);
  void on_batch(const std::string& frame);
  caf::result<std::string> on_forward(const std::string& bytes);
  void on_fwd_done(raft_fwd_done& d);
  void on_request(raft_request_cmd& cmd);
  void on_result(raft_op_result& res);
  void on_stop();
  raft_host_status status() const;

  // -- membership (docs/strong.md, "Membership") --
  void on_hello(const std::string& bytes);
  void send_hello(const caf::actor& to);
  void on_down(const caf::actor_addr& source);
  /// A leader contacted this host for a group it does not run: open its log on the executor
  /// and spawn it (it learns its voters from the leader's log or snapshot).
  void create_group(std::uint32_t group);
  bool creatable(std::uint32_t group) const;
  void on_members(raft_members_cmd& cmd);
  void run_members_job();
  void on_members_step(raft_members_step& st);
  std::string list_members() const;
  caf::actor link_of(rc::node_id id) const {
    auto it = links.find(id);
    return it == links.end() ? caf::actor{} : it->second;
  }
  void start_op(raft_request_kind kind, std::uint32_t group, rc::kv_command cmd,
                completion<std::string> done);

  void schedule_flush();
  void on_flush();
  void flush();
  void attempt(std::uint64_t id);
  void retry_later(std::uint64_t id);
  void finish(std::uint64_t id, result<std::string> r);
  void expire();
  rc::node_id pick_target(std::uint32_t group, rc::node_id avoid);

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
  std::set<std::uint32_t> creating;  ///< groups being opened on the executor
  /// Groups spawn_raft_host_actor opens and attaches itself. A leader's batch may reach this
  /// host before their attach does: create_group must not open the same log a second time
  /// (two stores writing one segment corrupted it: docs/strong.md, "Log format and recovery").
  std::set<std::uint32_t> starting;

  /// Raft id -> the peer's host: set by hello (network) or raft_host_link_cmd (tests).
  std::map<rc::node_id, caf::actor> links;
  /// Raft id -> HOST:PORT of every member this host heard of (hellos carry it around).
  std::map<rc::node_id, std::string> book;
  /// Each local group's voters as of its last tick (routing and `members list`).
  std::unordered_map<std::uint32_t, std::vector<rc::node_id>> voters_of;

  struct members_job {
    raft_members_op op = raft_members_op::add;
    std::vector<std::pair<std::uint32_t, rc::node_id>> steps;  ///< (group, member)
    std::size_t next = 0;
    std::string report;
    bool failed = false;
    completion<std::string> done;
  };
  std::deque<members_job> members_jobs;  ///< one at a time, in order
  std::uint64_t members_job_id = 0;

  std::map<rc::node_id, std::vector<rc::batch_item>> outq;  ///< by raft id
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
  self_id = setup.member_id;
  counters.id = self_id;
  if (setup.self_address.empty() && placement->self_index() != detail::strong_placement::npos)
    setup.self_address = placement->members()[placement->self_index()];
  dialer.emplace(self, raft_host_registry_name(), placement->members(), placement->self_index());
  self->set_down_handler([this](caf::down_msg& dm) { on_down(dm.source); });
  self->set_default_handler(caf::drop);
  if (setup.dial) dialer->enable();
  self->send(self, raft_host_tick_atom::value);
  return {
      [this](raft_host_tick_atom) { on_tick(); },
      [this](raft_tick_done& d) { on_tick_done(d); },
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
      [this](raft_attach_cmd& cmd) {
        starting.erase(cmd.group);
        if (creating.erase(cmd.group) && cmd.actor) ++counters.groups_created;
        if (!cmd.actor) return;
        if (stopping) return self->send(cmd.actor, raft_stop_cmd{});
        groups[cmd.group] = std::move(cmd.actor);
      },
      [this](raft_host_link_cmd& cmd) {
        if (cmd.id >= 1 && cmd.id != self_id) links[cmd.id] = std::move(cmd.peer);
      },
      [this](caf::strong_actor_ptr& ptr) {
        if (auto m = dialer->found(ptr)) send_hello(dialer->handle(*m));
      },
      [this](raft_hello_atom, const std::string& bytes) { on_hello(bytes); },
      [this](raft_conf_cmd& cmd) {
        // Only from tests or a local caller: route to the local replica.
        auto g = groups.find(0);
        if (g == groups.end()) return cmd.done(error{errc::unreachable, "no local group"});
        self->send(g->second, std::move(cmd));
      },
      [this](raft_members_cmd& cmd) { on_members(cmd); },
      [this](raft_members_step& st) { on_members_step(st); },
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

void raft_host_state::on_tick_done(raft_tick_done& d) {
  voters_of[d.group] = std::move(d.voters);
  // The local replica's view is the freshest: a leader it does not know any more (an
  // election is on) is not worth a forward that may wait for its whole timeout.
  if (d.leader != 0)
    leader_of[d.group] = d.leader;
  else
    leader_of.erase(d.group);
  if (ticks_pending > 0 && --ticks_pending == 0) flush();
}

void raft_host_state::on_outbound(raft_outbound& out) {
  for (auto& [to, bytes] : out.msgs) {
    if (to == 0 || to == self_id) {
      ++counters.undeliverable;
      continue;
    }
    outq[to].push_back(rc::batch_item{out.group, std::move(bytes)});
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
  for (auto& [to, q] : outq) {
    if (q.empty()) continue;
    std::vector<rc::batch_item> items;
    items.swap(q);
    auto hdl = link_of(to);
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
  if (!b || b->sender == self_id || b->sender == 0) {
    ++counters.malformed;
    return;
  }
  for (auto& item : b->items) {
    auto it = groups.find(item.group);
    if (it == groups.end()) {
      // A leader that made this node a voter of a group it does not run yet: join it. The
      // message is lost meanwhile; the leader probes again.
      if (creatable(item.group))
        create_group(item.group);
      else
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
    self->send(g->second, raft_read_cmd{std::move(req->cmd.value), std::move(done), false});
  else if (req->kind == raft_request_kind::conf_add || req->kind == raft_request_kind::conf_remove)
    self->send(
        g->second,
        raft_conf_cmd{req->kind == raft_request_kind::conf_add ? rc::conf_change_type::add_voter
                                                               : rc::conf_change_type::remove_voter,
                      std::strtoull(req->cmd.value.c_str(), nullptr, 10), std::move(done)});
  else
    self->send(g->second, raft_read_cmd{std::move(req->cmd.key), std::move(done),
                                        req->kind == raft_request_kind::read_versioned});
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
  if (cmd.kind == raft_request_kind::conf_add || cmd.kind == raft_request_kind::conf_remove)
    return cmd.done(error{errc::invalid_argument, "configuration changes: raft_members_cmd"});
  const bool coord =
      cmd.kind == raft_request_kind::coord_read || cmd.kind == raft_request_kind::coord_propose;
  auto group = coord ? coord_group_id : placement->range_of(cmd.cmd.key);
  start_op(cmd.kind, group, std::move(cmd.cmd), std::move(cmd.done));
}

void raft_host_state::start_op(raft_request_kind kind, std::uint32_t group, rc::kv_command cmd,
                               completion<std::string> done) {
  op o;
  o.kind = kind;
  o.cmd = std::move(cmd);
  o.group = group;
  o.done = std::move(done);
  o.deadline = ticks + static_cast<std::uint64_t>(setup.request_timeout_ticks);
  if (o.kind == raft_request_kind::propose) {
    std::uint64_t client;
    if (!free_clients.empty()) {
      client = free_clients.back();
      free_clients.pop_back();
    } else {
      client = splitmix64(setup.incarnation ^ splitmix64(self_id) ^ ++clients_made) | 1;
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
  // The group's current voters when this host runs it (they change by `members add|remove`),
  // else the initial placement: its not-the-leader hints lead on from there.
  std::vector<rc::node_id> reps;
  if (auto v = voters_of.find(group); v != voters_of.end() && !v->second.empty())
    reps = v->second;
  else
    for (auto m : placement->replicas(voters_range(group))) reps.push_back(m + 1);
  if (reps.empty()) return 0;
  auto& r = rotate[group];
  for (std::size_t k = 0; k < reps.size(); ++k) {
    auto id = reps[(r + k) % reps.size()];
    if (id != avoid) {
      r = (r + k + 1) % reps.size();
      return id;
    }
  }
  return reps[0];
}

void raft_host_state::attempt(std::uint64_t id) {
  auto it = ops.find(id);
  if (it == ops.end()) return;
  auto& o = it->second;
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
      self->send(g->second, raft_read_cmd{o.cmd.value, std::move(done), false});
    } else if (o.kind == raft_request_kind::conf_add || o.kind == raft_request_kind::conf_remove) {
      self->send(
          g->second,
          raft_conf_cmd{o.kind == raft_request_kind::conf_add ? rc::conf_change_type::add_voter
                                                              : rc::conf_change_type::remove_voter,
                        std::strtoull(o.cmd.value.c_str(), nullptr, 10), std::move(done)});
    } else {
      self->send(g->second, raft_read_cmd{o.cmd.key, std::move(done),
                                          o.kind == raft_request_kind::read_versioned});
    }
    return;
  }
  auto peer = link_of(target);
  if (!peer) {
    self->send(self, raft_op_result{
                         id, aid, target,
                         error{errc::unreachable, "no link to member " + std::to_string(target)}});
    return;
  }
  ++counters.forwarded;
  o.outstanding = true;
  // One attempt waits at most an election timeout: a member that stopped answering (a
  // partition, a stopped process whose link has not dropped yet) is then tried elsewhere
  // (a retried proposal keeps its client id and sequence: applied at most once).
  auto left = o.deadline > ticks ? o.deadline - ticks : 1;
  left =
      std::min<std::uint64_t>(left, static_cast<std::uint64_t>(std::max(setup.election_tick, 1)));
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
        // Follow the hint at once: the common path of a request that reached a follower. A
        // few times only: hints that chase each other (an election on, a dead leader's
        // followers naming it) are followed a tick apart, until the request's deadline.
        leader_of[o.group] = hint;
        o.target = hint;
        if (++o.attempts <= setup.max_attempts) return attempt(res.id);
        return retry_later(res.id);
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
  for (auto& job : members_jobs) job.done(error{errc::shutting_down, "node stopping"});
  members_jobs.clear();
  for (auto& [g, a] : groups) self->send(a, raft_stop_cmd{});
  self->quit(caf::exit_reason::user_shutdown);
}

raft_host_status raft_host_state::status() const {
  auto s = counters;
  s.peers_connected = links.size();
  for (const auto& [g, a] : groups) s.groups.emplace_back(g, a);
  s.addresses = book;
  return s;
}

}  // namespace

// -- spawn / stop -----------------------------------------------------------------------------

namespace {

/// One group actor's setup on a host: `voters` the initial configuration (empty for a group
/// joined later: the log or snapshot the leader sends holds it), its log under
/// <dir>/<g> (<dir>/coord for the coordination group). Creates the directory (blocking).
result<raft_group_setup> group_setup(const raft_host_setup& setup, rc::node_id self_id,
                                     std::uint32_t group, std::vector<rc::node_id> voters,
                                     const caf::actor& host) {
  raft_group_setup gs;
  gs.raft.id = self_id;
  gs.raft.voters = std::move(voters);
  gs.raft.election_tick = setup.election_tick;
  gs.raft.heartbeat_tick = 1;
  gs.raft.seed = splitmix64(setup.incarnation ^ (std::uint64_t{group} << 20) ^ self_id);
  gs.raft.max_entry_bytes = setup.max_entry_bytes;
  gs.dir =
      setup.dir + "/" + (group == coord_group_id ? std::string{"coord"} : std::to_string(group));
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
  if (group == coord_group_id && setup.coordination) {
    auto coord = setup.coordination;
    // Compacted like the key groups: a member that restores a snapshot (at start, or one
    // sent by the leader) re-arms its lease countdowns from the snapshot's last
    // checkpointed remaining TTLs and takes its pending deletes (coord_group.cpp).
    gs.make_state_machine = [coord] { return make_coord_machine(*coord); };
    gs.make_hooks = [coord] { return make_coord_hooks(*coord); };
  } else if (group != coord_group_id && setup.make_key_state_machine) {
    gs.make_state_machine = [make = setup.make_key_state_machine, group] { return make(group); };
  }
  if (group != coord_group_id && setup.make_key_hooks)
    gs.make_hooks = [make = setup.make_key_hooks, group] { return make(group); };
  return gs;
}

/// The groups whose logs are on disk under `dir` (a member added to them while running).
std::vector<std::uint32_t> groups_on_disk(const std::string& dir, std::uint32_t ranges,
                                          bool coordination) {
  std::vector<std::uint32_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_directory(ec)) continue;
    auto name = e.path().filename().string();
    if (name == "coord") {
      if (coordination) out.push_back(coord_group_id);
      continue;
    }
    std::uint32_t g = 0;
    auto [ptr, err] = std::from_chars(name.data(), name.data() + name.size(), g);
    if (err == std::errc{} && ptr == name.data() + name.size() && g < ranges) out.push_back(g);
  }
  return out;
}

}  // namespace

// -- membership on the host ------------------------------------------------------------------

namespace {

bool raft_host_state::creatable(std::uint32_t group) const {
  return group < placement->ranges() || (group == coord_group_id && setup.coordination);
}

void raft_host_state::create_group(std::uint32_t group) {
  if (stopping || starting.count(group) || creating.count(group) || groups.count(group)) return;
  creating.insert(group);
  detail::log()->info("raft: member {} joins group {} (its leader contacted this node)", self_id,
                      group);
  auto hdl = caf::actor_cast<caf::actor>(self);
  auto* sys = &self->system();
  // The directory and the log are file I/O: on the executor, never on this actor.
  auto posted = setup.executor([sys, hdl, group, id = self_id,
                                hs = std::make_shared<const raft_host_setup>(setup)] {
    auto gs = group_setup(*hs, id, group, {}, hdl);
    result<caf::actor> a =
        gs ? spawn_raft_group_actor(*sys, std::move(*gs)) : result<caf::actor>{gs.err()};
    if (!a)
      detail::log()->error("raft: cannot open the log of group {}: {}", group, a.err().to_string());
    caf::anon_send(hdl, raft_attach_cmd{group, a ? *a : caf::actor{}});
  });
  if (!posted) creating.erase(group);
}

void raft_host_state::send_hello(const caf::actor& to) {
  if (to) self->send(to, raft_hello_atom::value, encode_hello(self_id, setup.self_address, book));
}

void raft_host_state::on_hello(const std::string& bytes) {
  auto sender = caf::actor_cast<caf::actor>(self->current_sender());
  auto h = decode_hello(bytes);
  if (!sender || !h || h->front().first == self_id) {
    ++counters.malformed;
    return;
  }
  auto sid = h->front().first;
  bool reply = false;
  auto& link = links[sid];
  if (link != sender) {
    link = sender;
    self->monitor(sender);
    reply = true;  // it may not know us yet
  }
  bool learned = false;
  for (auto& [id, addr] : *h) {
    if (id == self_id || addr.empty()) continue;
    auto& known = book[id];
    if (known == addr) continue;
    known = addr;
    learned = true;
    if (dialer->enabled() && addr != setup.self_address) dialer->add(addr);
    // A fresh id at this node's own address: this node replaced that member.
    if (addr == setup.self_address)
      detail::log()->warn(
          "raft: member {} was this node's address before (an earlier data "
          "dir); if it is still a voter run: warpctl members remove {}",
          id, id);
  }
  if (learned) {
    // Gossip: every linked host learns the new members too (and dials them).
    for (auto& [id, hdl] : links) send_hello(hdl);
  } else if (reply) {
    send_hello(sender);
  }
}

void raft_host_state::on_down(const caf::actor_addr& source) {
  dialer->down(source);
  for (auto it = links.begin(); it != links.end();)
    it = it->second.address() == source ? links.erase(it) : std::next(it);
}

std::string raft_host_state::list_members() const {
  std::set<rc::node_id> ids{self_id};
  for (auto& [id, a] : book) ids.insert(id);
  for (auto& [g, vs] : voters_of) ids.insert(vs.begin(), vs.end());
  std::string out;
  for (auto id : ids) {
    std::size_t voter = 0;
    for (auto& [g, vs] : voters_of) voter += std::count(vs.begin(), vs.end(), id);
    std::string addr = id == self_id ? setup.self_address : "";
    if (auto b = book.find(id); b != book.end()) addr = b->second;
    out += std::to_string(id) + " " + (addr.empty() ? std::string{"?"} : addr) +
           (id == self_id     ? " self"
            : links.count(id) ? " linked"
                              : " unlinked") +
           " voter_of=" + std::to_string(voter) + "/" + std::to_string(voters_of.size()) + "\n";
  }
  return out;
}

void raft_host_state::on_members(raft_members_cmd& cmd) {
  if (stopping) return cmd.done(error{errc::shutting_down, "node stopping"});
  if (cmd.op == raft_members_op::list) return cmd.done(list_members());
  // The target: a raft id, or HOST:PORT (for add: the id linked at that address, i.e. the
  // running process there; for remove: every id ever seen at it).
  std::vector<rc::node_id> ids;
  rc::node_id num = 0;
  auto [ptr, ec] = std::from_chars(cmd.target.data(), cmd.target.data() + cmd.target.size(), num);
  if (ec == std::errc{} && ptr == cmd.target.data() + cmd.target.size() && num != 0) {
    ids.push_back(num);
  } else {
    for (auto& [id, addr] : book)
      if (addr == cmd.target && (cmd.op == raft_members_op::remove || links.count(id)))
        ids.push_back(id);
    if (cmd.target == setup.self_address) ids.push_back(self_id);
    if (cmd.op == raft_members_op::add && ids.size() > 1) ids.erase(ids.begin(), ids.end() - 1);
  }
  if (ids.empty())
    return cmd.done(error{errc::not_found,
                          cmd.op == raft_members_op::add
                              ? "no member is connected from " + cmd.target +
                                    ": start it with --strong-join (and these --strong-members) "
                                    "and retry once it has connected"
                              : "no member known at " + cmd.target});
  members_job job;
  job.op = cmd.op;
  job.done = std::move(cmd.done);
  std::vector<std::uint32_t> all;
  for (std::uint32_t g = 0; g < placement->ranges(); ++g) all.push_back(g);
  if (setup.coordination) all.push_back(coord_group_id);
  for (auto id : ids)
    for (auto g : all) job.steps.emplace_back(g, id);
  members_jobs.push_back(std::move(job));
  if (members_jobs.size() == 1) run_members_job();
}

void raft_host_state::run_members_job() {
  while (!members_jobs.empty()) {
    auto& job = members_jobs.front();
    if (job.next < job.steps.size()) {
      auto [g, id] = job.steps[job.next];
      rc::kv_command c;
      c.value = std::to_string(id);
      auto hdl = caf::actor_cast<caf::actor>(self);
      auto jid = members_job_id;
      start_op(job.op == raft_members_op::add ? raft_request_kind::conf_add
                                              : raft_request_kind::conf_remove,
               g, std::move(c), completion<std::string>{[hdl, jid](result<std::string> r) {
                 caf::anon_send(hdl, raft_members_step{jid, std::move(r)});
               }});
      return;  // one change at a time: the next step once this one is committed
    }
    auto done = std::move(job.done);
    auto report = std::move(job.report);
    bool failed = job.failed;
    members_jobs.pop_front();
    ++members_job_id;
    if (failed)
      done(error{errc::unreachable, report + "some groups failed: run the command again "
                                             "(it is idempotent)"});
    else
      done(std::move(report));
  }
}

void raft_host_state::on_members_step(raft_members_step& st) {
  if (members_jobs.empty() || st.job != members_job_id) return;
  auto& job = members_jobs.front();
  auto [g, id] = job.steps[job.next++];
  job.report += "member " + std::to_string(id) + " group " +
                (g == coord_group_id ? std::string{"coord"} : std::to_string(g)) + ": " +
                (st.r ? *st.r : "FAILED " + st.r.err().to_string()) + "\n";
  if (!st.r) job.failed = true;
  run_members_job();
}

}  // namespace

// -- spawn / stop -----------------------------------------------------------------------------

result<caf::actor> spawn_raft_host_actor(caf::actor_system& sys, raft_host_setup setup) {
  if (!setup.placement || !setup.executor)
    return error{errc::invalid_argument, "raft host: placement and executor required"};
  const auto* pl = setup.placement;
  if (setup.member_id == 0) {
    auto id = resolve_member_id(setup.dir, *pl, setup.join);
    if (!id) return id.err();
    setup.member_id = *id;
  }
  const rc::node_id self_id = setup.member_id;
  // An initial member with its bootstrap id runs the groups of its ranges from the start;
  // any other (joined, or a wiped initial member back with a fresh id) only the groups it
  // was added to, whose logs are on disk (the rest it joins when their leader calls).
  const bool bootstrap =
      pl->self_index() != detail::strong_placement::npos && self_id == pl->self_index() + 1;
  if (!bootstrap)
    detail::log()->warn(
        "raft: member id {} is not an initial member's: this node votes in no "
        "group until `warpctl members add {}` (docs/strong.md, Membership)",
        self_id, setup.self_address.empty() ? std::to_string(self_id) : setup.self_address);
  // Every group this function opens, known to the host before it can receive a batch.
  std::set<std::uint32_t> starting;
  if (bootstrap) {
    for (std::uint32_t g = 0; g < pl->ranges(); ++g)
      if (pl->is_replica(g)) starting.insert(g);
    if (setup.coordination && pl->is_replica(voters_range(coord_group_id)))
      starting.insert(coord_group_id);
  }
  for (auto g : groups_on_disk(setup.dir, static_cast<std::uint32_t>(pl->ranges()),
                               static_cast<bool>(setup.coordination)))
    starting.insert(g);
  auto init = std::make_shared<raft_host_setup>(setup);
  bool publish = setup.dial;
  auto host = sys.spawn([init, starting](raft_host_actor* self) {
    self->state.starting = starting;
    return self->state.make_behavior(init);
  });
  std::set<std::uint32_t> started;
  auto spawn_group = [&](std::uint32_t group, std::vector<rc::node_id> voters) -> result<void> {
    auto gs = group_setup(setup, self_id, group, std::move(voters), host);
    if (!gs) return gs.err();
    auto a = spawn_raft_group_actor(sys, std::move(*gs));
    if (!a) return a.err();
    caf::anon_send(host, raft_attach_cmd{group, *a});
    started.insert(group);
    return {};
  };
  auto initial_voters = [&](std::uint32_t range) {
    std::vector<rc::node_id> v;
    for (auto m : pl->replicas(range)) v.push_back(m + 1);
    return v;
  };
  auto fail = [&](std::uint32_t g, const error& e) {
    stop_raft_host_actor(sys, host);
    return error{e.code(), (g == coord_group_id ? std::string{"coordination group"}
                                                : "raft group " + std::to_string(g)) +
                               ": " + e.message()};
  };
  if (bootstrap) {
    for (std::uint32_t g = 0; g < pl->ranges(); ++g) {
      if (!pl->is_replica(g)) continue;
      if (auto r = spawn_group(g, initial_voters(g)); !r) return fail(g, r.err());
    }
    // The coordination group: the voters of range 0, a log of its own, a coord_machine.
    if (setup.coordination && pl->is_replica(voters_range(coord_group_id)))
      if (auto r = spawn_group(coord_group_id, initial_voters(voters_range(coord_group_id))); !r)
        return fail(coord_group_id, r.err());
  }
  // Not listed again: a directory create_group made meanwhile is that group's, not ours.
  for (auto g : starting) {
    if (started.count(g)) continue;
    if (auto r = spawn_group(g, {}); !r) return fail(g, r.err());
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
