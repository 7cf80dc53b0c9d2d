#include "runtime/modes/strong_raft.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/coord_group.hpp"
#include "actors/raft_host_actor.hpp"
#include "actors/raft_writethrough.hpp"
#include "actors/watch_hub_actor.hpp"
#include "runtime/core/log.hpp"
#include "runtime/modes/node_state.hpp"
#include "warp/storage_fence.hpp"
#include "warp/watch.hpp"

namespace warp::detail {

namespace {

namespace rc = consensus;
using actors::raft_request_kind;

/// Ends the node's watch hub (its watches get `canceled`) and waits until it is gone.
void stop_watch_hub(caf::actor_system& sys, caf::actor& hub) {
  if (!hub) return;
  caf::scoped_actor self{sys};
  self->send(hub, actors::watch_hub_stop_cmd{});
  self->wait_for(hub);
  hub = caf::actor{};
}

constexpr char value_format = 1;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool expired(const strong_raft::stored& s) {
  return s.expires_at_ms != 0 && s.expires_at_ms <= wall_ms();
}

rc::kv_command kv(rc::kv_op op, std::string_view key, std::string value = {},
                  std::string expected = {}, bool expect_absent = false) {
  rc::kv_command c;
  c.op = op;
  c.key.assign(key);
  c.value = std::move(value);
  c.expected = std::move(expected);
  c.expect_absent = expect_absent;
  return c;
}

/// A read's answer as the node API gives it: the value, or not_found (also when expired).
result<buffer> read_outcome(result<std::string> raw) {
  if (!raw) return raw.err();
  auto s = strong_raft::decode_value(*raw);
  if (!s) return s.err();
  if (expired(*s)) return error{errc::not_found};
  return make_buffer(std::move(s->value));
}

result<void> write_outcome(const result<std::string>& r) {
  if (!r) return r.err();
  return {};
}

}  // namespace

/// What every read-modify-write of the node shares: the host to ask, the value bound, and
/// the turns. A completion may outlive strong_raft (a message dropped at stop completes it
/// with shutting_down), so the steps hold this, never the object.
struct strong_raft::rmw_shared {
  caf::actor host;
  warp::limits lim;
  std::mutex mtx;  // held for a map operation only, never across a request
  /// Per key with a read-modify-write in progress: the ones waiting for their turn, in
  /// submission order. One at a time per key: otherwise N of them on one counter would
  /// lose N-1 compare-and-sets of every N attempts, and a pipeline's later command could
  /// read before its earlier one committed.
  std::unordered_map<std::string, std::deque<std::shared_ptr<rmw_op>>> turns;
};

struct strong_raft::rmw_op {
  std::shared_ptr<rmw_shared> sh;
  std::string key;
  rmw_fn fn;
  rmw_callback done;
  int attempt = 0;
};

result<strong_raft::status_report> strong_raft::status(std::chrono::milliseconds timeout) const {
  if (!host_) return error{errc::shutting_down, "the raft host is not running"};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto host_answer = std::make_shared<std::promise<result<actors::raft_host_status>>>();
  auto host_future = host_answer->get_future();
  caf::anon_send(host_, actors::raft_host_status_cmd{actors::completion<actors::raft_host_status>{
                            [host_answer](result<actors::raft_host_status> r) {
                              host_answer->set_value(std::move(r));
                            }}});
  if (host_future.wait_until(deadline) != std::future_status::ready)
    return error{errc::timeout, "the raft host did not answer its status in time"};
  auto host_status = host_future.get();
  if (!host_status) return host_status.err();
  status_report out;
  out.host = std::move(*host_status);
  // Ask every group at once, then collect: one slow group costs the timeout once, not once
  // per group.
  std::vector<std::pair<std::uint32_t, std::future<result<actors::raft_status>>>> asked;
  for (const auto& [group, actor] : out.host.groups) {
    auto p = std::make_shared<std::promise<result<actors::raft_status>>>();
    asked.emplace_back(group, p->get_future());
    caf::anon_send(actor, actors::raft_status_cmd{actors::completion<actors::raft_status>{
                              [p](result<actors::raft_status> r) { p->set_value(std::move(r)); }}});
  }
  for (auto& [group, f] : asked) {
    if (f.wait_until(deadline) != std::future_status::ready) {
      out.missing.push_back(group);
      continue;
    }
    auto r = f.get();
    if (!r) {
      out.missing.push_back(group);
      continue;
    }
    out.groups.push_back(std::move(*r));
  }
  out.host.groups.clear();  // actor handles: not for the caller
  return out;
}

std::size_t raft_group_count(const strong_options& opts, std::size_t members) {
  if (opts.groups != 0) return opts.groups;
  return std::max<std::size_t>(1, members) * 4;
}

std::string strong_raft::encode_value(std::string_view value, std::int64_t expires_at_ms) {
  std::string out;
  out.reserve(9 + value.size());
  out.push_back(value_format);
  auto e = static_cast<std::uint64_t>(expires_at_ms);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((e >> (8 * i)) & 0xff));
  out.append(value);
  return out;
}

result<strong_raft::stored> strong_raft::decode_value(std::string_view raw) {
  if (raw.size() < 9 || raw[0] != value_format)
    return error{errc::codec_error, "strong value: unknown format"};
  std::uint64_t e = 0;
  for (int i = 0; i < 8; ++i) e |= std::uint64_t{static_cast<unsigned char>(raw[1 + i])} << (8 * i);
  return stored{std::string{raw.substr(9)}, static_cast<std::int64_t>(e)};
}

namespace {
std::vector<std::string> raft_members(std::vector<std::string> m) {
  std::sort(m.begin(), m.end());
  m.erase(std::unique(m.begin(), m.end()), m.end());
  return m;
}
}  // namespace

strong_raft::strong_raft(node_state& st, std::vector<std::string> members,
                         const std::string& self_address)
    : st_(st),
      sys_(*st.system),
      opts_(st.config.strong),
      incarnation_([] {
        std::random_device rd;
        return (static_cast<std::uint64_t>(rd()) << 32) | rd();
      }()),
      // Every member replicates every group up to the replication factor; the groups are
      // the placement's ranges, so the same rendezvous hashing picks each group's voters
      // on every node.
      self_address_(self_address),
      placement_(raft_members(members), self_address, st.config.strong.replication_factor,
                 raft_group_count(st.config.strong, raft_members(members).size())) {}

strong_raft::~strong_raft() {
  stop();
}

result<void> strong_raft::start() {
  // A node outside the initial list runs only with --strong-join: it is added to the groups
  // while they serve (docs/strong.md, "Membership"); resolve_member_id says so otherwise.
  actors::raft_host_setup s;
  s.placement = &placement_;
  s.join = opts_.join;
  s.self_address = self_address_;
  s.dir = st_.config.data_dir + "/raft";
  // Two nodes on one log directory (a copied config, two embedded nodes without their own
  // data_dir) would interleave their writes to the same segments: refuse the second.
  std::error_code ec;
  std::filesystem::create_directories(s.dir, ec);
  if (ec) return error{errc::storage_error, "raft: cannot create " + s.dir + ": " + ec.message()};
  const auto lock_path = s.dir + "/LOCK";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    return error{errc::storage_error,
                 "raft: cannot open " + lock_path + ": " + std::strerror(errno)};
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    return error{errc::storage_error,
                 "raft: " + s.dir +
                     " is in use by another node (its LOCK is held); give each "
                     "node its own data_dir"};
  auto* pool = st_.executor.get();
  s.executor = [pool](std::function<void()> job) { return pool->post(std::move(job)); };
  s.tick_interval = opts_.raft_tick;
  s.snapshot_entries = opts_.raft_snapshot_entries;
  s.election_tick = 10;
  // The request bound in ticks: strong.timeout, at least two election timeouts so a
  // request survives one failover.
  auto ticks = std::max<long>(opts_.timeout / opts_.raft_tick, 1);
  s.request_timeout_ticks = static_cast<int>(std::clamp<long>(ticks, 1, 100000));
  s.incarnation = incarnation_;
  const auto& lim = st_.config.limits;
  const std::size_t entry = 2 * lim.max_value_size + lim.max_key_size + 4096;
  const std::size_t message = std::max(st_.config.transport.max_message_size, entry + 4096);
  s.max_entry_bytes = entry;
  s.log.max_entry_bytes = entry;
  s.log.max_segment_bytes = std::max<std::size_t>(s.log.max_segment_bytes, entry + 4096);
  s.wire.max_entry_bytes = entry;
  s.wire.max_message_bytes = message;
  s.kv.max_key_bytes = lim.max_key_size;
  s.kv.max_value_bytes = lim.max_value_size + 64;
  // A transaction's batch carries up to two values' worth: it must fit the entry bound.
  s.kv.max_batch_bytes = max_batch_bytes();
  s.batch.max_frame_bytes = message;
  s.batch.max_item_bytes = message;
  {
    auto co = std::make_shared<actors::coord_group_options>();
    co->limits.max_value_bytes = lim.max_value_size;
    co->limits.max_name_bytes = std::max<std::size_t>(lim.max_key_size, 1024);
    auto* st = &st_;
    // On the leader's group actor: the deletes go through the node's delete path, which
    // may wait on storage or a quorum, so they run on the executor.
    co->on_lease_ended = [st, pool](std::uint64_t lease, std::vector<std::string> keys, bool,
                                    actors::coord_group_options::deletes_done done) {
      auto posted = pool->post([st, lease, keys = std::move(keys), done] {
        done(st->on_lease_ended ? st->on_lease_ended(lease, keys) : false);
      });
      if (!posted) done(false);  // shutting down: the next leader runs them
    };
    // Every replica: the node's waiting lock() calls wake on their grant (a short lock).
    co->on_lock_granted = [grants = grants_](const std::string& name, std::uint64_t lease,
                                             const std::string& owner, std::uint64_t token) {
      grants->post(name, lease, owner, token);
    };
    s.coordination = std::move(co);
  }
  // The storage write-through (docs/strong.md, "Storage write-through") runs on an adapter
  // with fenced writes, i.e. one that several processes may share (SQLite, PostgreSQL);
  // memory storage is this process's alone, nobody outside reads it.
  const bool write_through = st_.store && fenced_writes_of(*st_.store) != nullptr;
  {
    // The watch hub first: the key groups report to it from their first restore on.
    std::vector<std::uint32_t> local;
    for (std::uint32_t g = 0; g < placement_.ranges(); ++g)
      if (placement_.is_replica(g)) local.push_back(g);
    const auto& ws = opts_.watch;
    actors::watch_hub_options wo;
    wo.ring_entries = ws.ring_entries;
    wo.ring_bytes = ws.ring_bytes;
    wo.max_watchers = ws.max_watchers;
    wo.max_queue = ws.max_queue;
    wo.progress_interval = ws.progress_interval;
    bool all = local.size() == placement_.ranges();
    // The placement outlives the hub: stop() ends the hub before this object goes.
    const auto* pl = &placement_;
    auto hub = actors::spawn_watch_hub_actor(
        sys_, wo, std::move(local), all,
        [pl](std::string_view key) { return static_cast<std::uint32_t>(pl->range_of(key)); });
    watch_hub_ = hub;
    auto on_change = actors::watch_change_sink(hub);
    auto on_restore = actors::watch_restore_sink(hub);
    s.make_key_state_machine = [kv = s.kv, on_change, on_restore,
                                track = write_through](std::uint32_t g) {
      return std::make_unique<actors::watched_kv_state_machine>(g, kv, on_change, on_restore,
                                                                track);
    };
  }
  if (write_through) {
    actors::writethrough_options wo;
    wo.store = st_.store;
    wo.executor = s.executor;
    auto* st = &st_;
    // The node state outlives the host (stop() ends the host first).
    wo.next_version = [st] { return st->writes.next_version(); };
    // A quarter of the executor at most (at least one): the rest stays for the logs' fsyncs.
    wo.max_jobs = static_cast<int>(std::max<std::size_t>(1, pool->size() / 4));
    s.make_key_hooks = [wo](std::uint32_t g) { return actors::make_writethrough_hooks(g, wo); };
  }
  auto host = actors::spawn_raft_host_actor(sys_, std::move(s));
  if (!host) {
    stop_watch_hub(sys_, watch_hub_);
    return host.err();
  }
  host_ = *host;
  rmw_ = std::make_shared<rmw_shared>();
  rmw_->host = host_;
  rmw_->lim = st_.config.limits;
  std::size_t local = 0;
  for (std::uint32_t g = 0; g < placement_.ranges(); ++g) local += placement_.is_replica(g);
  log()->info("strong: raft engine, {} members, {} groups ({} here), logs under {}/raft",
              placement_.members().size(), placement_.ranges(), local, st_.config.data_dir);
  return {};
}

void strong_raft::stop() {
  {
    std::lock_guard<std::mutex> g{stop_mtx_};
    if (stopped_) return;
    stopped_ = true;
  }
  if (host_) actors::stop_raft_host_actor(sys_, host_);
  stop_watch_hub(sys_, watch_hub_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  lock_fd_ = -1;
}

void strong_raft::request(raft_request_kind kind, rc::kv_command cmd,
                          actors::completion<std::string> done) {
  if (!host_) return done(error{errc::shutting_down, "the strong mode is not started"});
  caf::anon_send(host_, actors::raft_request_cmd{kind, std::move(cmd), std::move(done)});
}

result<std::string> strong_raft::request_blocking(raft_request_kind kind, rc::kv_command cmd) {
  auto p = std::make_shared<std::promise<result<std::string>>>();
  auto f = p->get_future();
  request(kind, std::move(cmd), actors::completion<std::string>{[p](result<std::string> r) {
            p->set_value(std::move(r));
          }});
  // The host decides every request by its deadline (strong.timeout): this is a backstop.
  if (f.wait_for(opts_.timeout * 2 + std::chrono::seconds{5}) != std::future_status::ready)
    return error{kind == raft_request_kind::propose ? errc::unknown_outcome : errc::timeout,
                 "the raft host did not answer in time"};
  return f.get();
}

result<std::string> strong_raft::members(std::string_view op, std::string_view target) {
  if (!host_) return error{errc::unsupported, "members: the raft engine is not running"};
  actors::raft_members_op o;
  if (op == "list")
    o = actors::raft_members_op::list;
  else if (op == "add")
    o = actors::raft_members_op::add;
  else if (op == "remove")
    o = actors::raft_members_op::remove;
  else
    return error{errc::invalid_argument, "members: op must be list, add or remove"};
  if (o != actors::raft_members_op::list && target.empty())
    return error{errc::invalid_argument, "members: HOST:PORT or a raft id required"};
  auto p = std::make_shared<std::promise<result<std::string>>>();
  auto f = p->get_future();
  caf::anon_send(
      host_, actors::raft_members_cmd{o, std::string{target},
                                      actors::completion<std::string>{[p](result<std::string> r) {
                                        p->set_value(std::move(r));
                                      }}});
  // One change per group, each bounded by the request timeout (its retries included).
  auto bound =
      opts_.timeout * static_cast<long>(2 * placement_.ranges() + 4) + std::chrono::seconds{10};
  if (f.wait_for(bound) != std::future_status::ready)
    return error{errc::timeout,
                 "members: the raft host did not finish in time; run it again "
                 "(it is idempotent)"};
  return f.get();
}

bool strong_raft::coord_replica() const noexcept {
  // As placed at start; a member added or removed later may change it (then a waiter only
  // polls more or less often than it needs to).
  return placement_.is_replica(actors::voters_range(actors::coord_group_id));
}

void strong_raft::coord_async(bool write, std::string bytes,
                              std::function<void(result<std::string>)> done) {
  rc::kv_command c;
  c.value = std::move(bytes);
  request(write ? raft_request_kind::coord_propose : raft_request_kind::coord_read, std::move(c),
          actors::completion<std::string>{std::move(done)});
}

result<std::string> strong_raft::coord(bool write, std::string bytes) {
  rc::kv_command c;
  c.value = std::move(bytes);
  return request_blocking(write ? raft_request_kind::coord_propose : raft_request_kind::coord_read,
                          std::move(c));
}

void strong_raft::get_async(std::string_view key, get_callback done) {
  request(raft_request_kind::read, kv(rc::kv_op::put, key),
          actors::completion<std::string>{[done = std::move(done)](result<std::string> r) {
            done(read_outcome(std::move(r)));
          }});
}

void strong_raft::set_async(std::string_view key, std::string_view value,
                            std::int64_t expires_at_ms, write_callback done) {
  request(raft_request_kind::propose, kv(rc::kv_op::put, key, encode_value(value, expires_at_ms)),
          actors::completion<std::string>{
              [done = std::move(done)](result<std::string> r) { done(write_outcome(r)); }});
}

void strong_raft::remove_async(std::string_view key, write_callback done) {
  request(raft_request_kind::propose, kv(rc::kv_op::del, key),
          actors::completion<std::string>{
              [done = std::move(done)](result<std::string> r) { done(write_outcome(r)); }});
}

std::size_t strong_raft::max_batch_bytes() const noexcept {
  return 2 * st_.config.limits.max_value_size;
}

result<std::vector<rc::kv_versioned>> strong_raft::read_versioned(
    std::span<const std::string> keys) {
  std::vector<std::future<result<std::string>>> answers;
  answers.reserve(keys.size());
  for (const auto& key : keys) {
    auto p = std::make_shared<std::promise<result<std::string>>>();
    answers.push_back(p->get_future());
    request(raft_request_kind::read_versioned, kv(rc::kv_op::put, key),
            actors::completion<std::string>{
                [p](result<std::string> r) { p->set_value(std::move(r)); }});
  }
  std::vector<rc::kv_versioned> out;
  out.reserve(keys.size());
  rc::kv_limits lim;
  lim.max_value_bytes = st_.config.limits.max_value_size + 64;
  const auto deadline =
      std::chrono::steady_clock::now() + opts_.timeout * 2 + std::chrono::seconds{5};
  std::optional<error> failed;
  for (auto& f : answers) {
    // Every answer is awaited (the completions hold the promises), then the first error wins.
    if (f.wait_until(deadline) != std::future_status::ready) {
      if (!failed) failed = error{errc::timeout, "the raft host did not answer in time"};
      continue;
    }
    auto r = f.get();
    if (!r) {
      if (!failed) failed = r.err();
      continue;
    }
    auto v = rc::decode_kv_versioned(*r, lim);
    if (v)
      out.push_back(std::move(*v));
    else if (!failed)
      failed = v.err();
  }
  if (failed) return *failed;
  return out;
}

result<void> strong_raft::propose_batch(const consensus::kv_batch& batch) {
  rc::kv_command c;
  c.op = rc::kv_op::batch;
  if (!batch.writes.empty())
    c.key = batch.writes.front().key;
  else if (!batch.conditions.empty())
    c.key = batch.conditions.front().key;
  else
    return {};
  c.value = rc::encode(batch);
  if (c.value.size() > max_batch_bytes())
    return error{errc::value_too_large,
                 "the transaction's writes and conditions take " + std::to_string(c.value.size()) +
                     " bytes, above the bound of one log entry (" +
                     std::to_string(max_batch_bytes()) + ", 2 x limits.max_value_size)"};
  return write_outcome(request_blocking(raft_request_kind::propose, std::move(c)));
}

result<buffer> strong_raft::get(std::string_view key) {
  return read_outcome(request_blocking(raft_request_kind::read, kv(rc::kv_op::put, key)));
}

result<void> strong_raft::set(std::string_view key, std::string_view value,
                              std::int64_t expires_at_ms) {
  return write_outcome(request_blocking(
      raft_request_kind::propose, kv(rc::kv_op::put, key, encode_value(value, expires_at_ms))));
}

result<void> strong_raft::remove(std::string_view key) {
  return write_outcome(request_blocking(raft_request_kind::propose, kv(rc::kv_op::del, key)));
}

// -- read-modify-write -----------------------------------------------------------------------

namespace {

// Attempts before giving up with `conflict`: each lost race costs one.
constexpr int rmw_attempts = 2 * strong_raft::max_rmw_attempts;

void send_request(const caf::actor& host, raft_request_kind kind, rc::kv_command cmd,
                  actors::completion<std::string> done,
                  std::chrono::milliseconds delay = std::chrono::milliseconds{0}) {
  if (!host) return done(error{errc::shutting_down, "the strong mode is not started"});
  if (delay.count() > 0)
    caf::delayed_anon_send(host, delay,
                           actors::raft_request_cmd{kind, std::move(cmd), std::move(done)});
  else
    caf::anon_send(host, actors::raft_request_cmd{kind, std::move(cmd), std::move(done)});
}

}  // namespace

void strong_raft::write_async(std::string_view key, rmw_fn fn, bool read_current,
                              rmw_callback done) {
  const auto& lim = st_.config.limits;
  if (!read_current) {
    // A blind write: decided now, on the caller's thread, and proposed as a plain put/del.
    auto decision = fn(nullptr, 0);
    if (!decision || decision->what == mutation::kind::keep) return done(std::move(decision));
    rc::kv_command cmd;
    if (decision->what == mutation::kind::put) {
      if (auto err = lim.check_value(decision->value); !err) return done(err.err());
      cmd = kv(rc::kv_op::put, key, encode_value(decision->value, decision->expires_at_ms));
    } else {
      cmd = kv(rc::kv_op::del, key);
    }
    return request(
        raft_request_kind::propose, std::move(cmd),
        actors::completion<std::string>{
            [d = std::move(*decision), done = std::move(done)](result<std::string> r) mutable {
              if (!r) return done(r.err());
              done(std::move(d));
            }});
  }
  if (!rmw_) return done(error{errc::shutting_down, "the strong mode is not started"});
  auto op = std::make_shared<rmw_op>();
  op->sh = rmw_;
  op->key.assign(key);
  op->fn = std::move(fn);
  op->done = std::move(done);
  {
    std::lock_guard<std::mutex> g{rmw_->mtx};
    auto [it, first] = rmw_->turns.try_emplace(op->key);
    if (!first) {
      it->second.push_back(std::move(op));  // its predecessor's finish starts it
      return;
    }
  }
  rmw_attempt(std::move(op));
}

void strong_raft::rmw_attempt(std::shared_ptr<rmw_op> op) {
  rmw_read(std::move(op), std::chrono::milliseconds{0});
}

// Linearizable: the read is a ReadIndex read at the leader; the write is a compare-and-set
// on exactly the bytes read, so it applies only if nothing was committed to the key in
// between; a lost race reads again. Each attempt is its own proposal (its own client
// sequence, so a retried request applies once): a conflict is an answer, not a retry.
void strong_raft::rmw_read(std::shared_ptr<rmw_op> op, std::chrono::milliseconds delay) {
  auto host = op->sh->host;
  auto key = op->key;
  send_request(host, raft_request_kind::read, kv(rc::kv_op::put, key),
               actors::completion<std::string>{[op = std::move(op)](result<std::string> raw) {
                 if (!raw && raw.code() != errc::not_found) return rmw_finish(op, raw.err());
                 std::optional<std::string> bytes;
                 if (raw) bytes = std::move(*raw);
                 rmw_decide(op, std::move(bytes));
               }},
               delay);
}

void strong_raft::rmw_decide(std::shared_ptr<rmw_op> op, std::optional<std::string> raw) {
  std::optional<buffer> current;
  std::int64_t current_expiry = 0;
  if (raw) {
    auto s = decode_value(*raw);
    if (!s) return rmw_finish(std::move(op), s.err());
    if (!expired(*s)) {
      current_expiry = s->expires_at_ms;
      current = make_buffer(std::move(s->value));
    }
  }
  auto decision = op->fn(current ? &*current : nullptr, current_expiry);
  if (!decision) return rmw_finish(std::move(op), std::move(decision));
  rc::kv_command cmd;
  switch (decision->what) {
    case mutation::kind::keep:
      return rmw_finish(std::move(op), std::move(decision));  // linearized at the read
    case mutation::kind::put: {
      if (auto err = op->sh->lim.check_value(decision->value); !err)
        return rmw_finish(std::move(op), err.err());
      auto bytes = encode_value(decision->value, decision->expires_at_ms);
      cmd = raw ? kv(rc::kv_op::cas, op->key, std::move(bytes), *raw)
                : kv(rc::kv_op::cas, op->key, std::move(bytes), {}, true);
      break;
    }
    case mutation::kind::erase:
      if (!raw) return rmw_finish(std::move(op), std::move(decision));  // nothing to delete
      cmd = kv(rc::kv_op::cas_del, op->key, {}, *raw);
      break;
  }
  auto host = op->sh->host;
  send_request(host, raft_request_kind::propose, std::move(cmd),
               actors::completion<std::string>{
                   [op = std::move(op), d = std::move(*decision)](result<std::string> out) mutable {
                     if (out) return rmw_finish(op, std::move(d));
                     if (out.code() != errc::conflict) return rmw_finish(op, out.err());
                     rmw_retry(op);
                   }});
}

void strong_raft::rmw_retry(std::shared_ptr<rmw_op> op) {
  if (++op->attempt >= rmw_attempts)
    return rmw_finish(std::move(op),
                      error{errc::conflict, "strong read-modify-write: the key kept changing (" +
                                                std::to_string(rmw_attempts) + " attempts)"});
  // Another node won the race: back off a little (randomized, growing), so contenders on
  // one key spread out instead of colliding again. The wait is a delayed message to the
  // host, not a sleeping thread.
  thread_local std::minstd_rand jitter{std::random_device{}()};
  auto cap = static_cast<unsigned>(std::min(1 << std::min(op->attempt - 1, 6), 32));
  rmw_read(std::move(op), std::chrono::milliseconds(static_cast<long>(jitter() % (cap + 1))));
}

void strong_raft::rmw_finish(std::shared_ptr<rmw_op> op, result<mutation> r) {
  std::shared_ptr<rmw_op> next;
  {
    auto& sh = *op->sh;
    std::lock_guard<std::mutex> g{sh.mtx};
    auto it = sh.turns.find(op->key);
    if (it != sh.turns.end()) {
      if (it->second.empty()) {
        sh.turns.erase(it);
      } else {
        next = std::move(it->second.front());
        it->second.pop_front();
      }
    }
  }
  auto done = std::move(op->done);
  op.reset();
  if (next) rmw_attempt(std::move(next));
  done(std::move(r));
}

result<mutation> strong_raft::write(std::string_view key, const rmw_fn& fn, bool read_current) {
  auto p = std::make_shared<std::promise<result<mutation>>>();
  auto f = p->get_future();
  // `fn` is the caller's: it outlives the wait, and the wait ends only once the operation
  // is over (every request is answered by the host's deadline, or completed with
  // shutting_down when dropped), so no attempt calls it afterwards.
  write_async(
      key, [&fn](const buffer* cur, std::int64_t exp) { return fn(cur, exp); }, read_current,
      [p](result<mutation> r) { p->set_value(std::move(r)); });
  return f.get();
}

}  // namespace warp::detail
