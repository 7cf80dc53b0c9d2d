// Locks and leases over RESP (docs/coordination.md, "Sidecar"): WARP.LOCK, WARP.UNLOCK,
// WARP.LEASE, WARP.FENCEDSET, WARP.FENCEDGET, and SET ... LEASE (resp_commands.cpp).
// Every one waits on the coordination group (a Raft round trip), so each runs on a worker
// (on the loop thread a handler only sets ctx.defer); except WARP.LOCK, whose wait may be
// long: it holds no thread. The loop starts it as an actor (runtime/modes/strong_lock.hpp) and
// the client is blocked (busy, as for a worker's job) until its answer comes back through
// the server's inbox, named by (client id, wait id) as the strong pipeline's completions.
// Before, every waiting WARP.LOCK held one of the 4 workers for its whole wait, so five
// waiters on one node queued the holder's WARP.UNLOCK behind them until one timed out.
#include <chrono>
#include <string>

#include <unistd.h>

#include "runtime/coordination/coord_command.hpp"
#include "runtime/core/log.hpp"
#include "runtime/modes/strong_lock.hpp"
#include "runtime/modes/strong_raft.hpp"
#include "sidecar/resp_server_impl.hpp"
#include "sidecar/typed_commands.hpp"

namespace warp::sidecar::detail {

namespace {

constexpr std::string_view syntax_error = "ERR syntax error";

/// A duration argument: a plain number is seconds (as etcdctl), "<n>ms" milliseconds.
bool duration_arg(context& ctx, std::string_view text, std::chrono::milliseconds& out) {
  bool millis = false;
  if (text.size() > 2 && iequals(text.substr(text.size() - 2), "ms")) {
    millis = true;
    text.remove_suffix(2);
  } else if (text.size() > 1 && (text.back() == 's' || text.back() == 'S')) {
    text.remove_suffix(1);
  }
  std::int64_t v = 0;
  if (!parse_int64(text, v) || v < 0 || v > (std::int64_t{1} << 40)) {
    ctx.w.error("ERR invalid duration: a number of seconds or <n>ms");
    return false;
  }
  out = millis ? std::chrono::milliseconds{v} : std::chrono::milliseconds{v * 1000};
  return true;
}

bool id_arg(context& ctx, std::string_view text, std::uint64_t& out) {
  std::int64_t v = 0;
  if (!parse_int64(text, v) || v <= 0) {
    ctx.w.error("ERR invalid id: a positive integer");
    return false;
  }
  out = static_cast<std::uint64_t>(v);
  return true;
}

void coord_error(resp_writer& w, const error& e) {
  switch (e.code()) {
    case errc::conflict:
      w.error("LOCKED " + e.message());
      return;
    case errc::timeout:
      w.error("TIMEOUT " + e.message());
      return;
    case errc::not_found:
      w.error("NOLEASE " + e.message());
      return;
    default:
      reply_node_error(w, e);
  }
}

/// The sidecar's own session for locks taken without SESSION (kept alive by the server).
result<lease_id> default_session(context& ctx) {
  return ctx.srv.coord_session();
}

struct lock_args {
  std::chrono::milliseconds timeout{0};
  lease_id session = 0;
  std::string owner;
};

bool parse_lock_options(context& ctx, std::size_t from, lock_args& a, bool timeout_ok) {
  for (std::size_t i = from; i < ctx.args.size(); ++i) {
    auto opt = ctx.args[i];
    if (i + 1 >= ctx.args.size()) {
      ctx.w.error(syntax_error);
      return false;
    }
    auto val = ctx.args[++i];
    if (timeout_ok && iequals(opt, "timeout")) {
      std::int64_t ms = 0;
      if (!parse_int64(val, ms) || ms < 0 || ms > 3'600'000) {
        ctx.w.error("ERR TIMEOUT is milliseconds, 0 to 3600000");
        return false;
      }
      a.timeout = std::chrono::milliseconds{ms};
    } else if (iequals(opt, "session")) {
      if (!id_arg(ctx, val, a.session)) return false;
    } else if (iequals(opt, "owner")) {
      if (val.empty() || val.size() > 256) {
        ctx.w.error("ERR OWNER must be 1 to 256 bytes");
        return false;
      }
      a.owner.assign(val);
    } else {
      ctx.w.error(syntax_error);
      return false;
    }
  }
  if (a.session == 0 && a.owner.empty()) a.owner = "conn:" + std::to_string(ctx.c.id);
  return true;
}

}  // namespace

// WARP.LOCK name [TIMEOUT ms] [SESSION id] [OWNER o] -> the fencing token
/// WARP.LOCK without SESSION and OWNER: the lock belongs to the connection.
bool connection_owned(const context& ctx) {
  for (std::size_t i = 2; i + 1 < ctx.args.size(); i += 2)
    if (iequals(ctx.args[i], "session") || iequals(ctx.args[i], "owner")) return false;
  return true;
}

void cmd_warp_lock(context& ctx) {
  lock_args a;
  if (!parse_lock_options(ctx, 2, a, true)) return;
  const bool own = connection_owned(ctx);
  auto* raft = warp::detail::strong_raft_of(ctx.srv.the_node());
  if (!ctx.j) {
    const lease_id session = a.session != 0 ? a.session : ctx.srv.coord_keeper().current();
    if (raft && session != 0) {
      ctx.srv.start_lock_wait(ctx.c, std::string{ctx.args[1]}, session, std::move(a.owner),
                              a.timeout, own);
      ctx.waits = true;
      return;
    }
    // No engine (a worker answers the error), or the sidecar's session is not granted yet
    // (a Raft round trip): a worker gets it, then the command runs here again.
    ctx.defer = true;
    return;
  }
  if (raft && a.session == 0 && ctx.j->cmd != nullptr) {
    auto s = default_session(ctx);
    if (!s) return coord_error(ctx.w, s.err());
    ctx.j->rerun = true;
    return;
  }
  // Inside MULTI/EXEC (run on the loop thread, ctx.j an inline job; cmd unset) a lock does
  // not wait, as Redis's blocking commands in a transaction do not; or no engine: the node
  // answers its error.
  if (ctx.j->cmd == nullptr) a.timeout = std::chrono::milliseconds{0};
  struct done_guard {
    context& ctx;
    bool tracked;
    bool held = false;
    ~done_guard() {
      if (tracked) ctx.srv.coord_keeper().finished(ctx.c.id, held);
    }
  } guard{ctx, own};
  // On this thread, so before any close of this connection is seen: released at close.
  if (own) ctx.srv.coord_keeper().handing_over(ctx.c.id);
  if (a.session == 0) {
    auto s = default_session(ctx);
    if (!s) return coord_error(ctx.w, s.err());
    a.session = *s;
  }
  auto t = ctx.n.lock(ctx.args[1], a.session, a.timeout, a.owner);
  if (!t) return coord_error(ctx.w, t.err());
  guard.held = true;
  ctx.w.integer(static_cast<std::int64_t>(*t));
}

// WARP.UNLOCK name token [SESSION id] [OWNER o]
void cmd_warp_unlock(context& ctx) {
  if (!ctx.j) {
    ctx.defer = true;
    return;
  }
  std::uint64_t token = 0;
  if (!id_arg(ctx, ctx.args[2], token)) return;
  lock_args a;
  if (!parse_lock_options(ctx, 3, a, false)) return;
  if (a.session == 0) {
    auto s = default_session(ctx);
    if (!s) return coord_error(ctx.w, s.err());
    a.session = *s;
  }
  auto r = ctx.n.unlock(ctx.args[1], a.session, token, a.owner);
  if (!r) return coord_error(ctx.w, r.err());
  ctx.w.simple("OK");
}

// WARP.LEASE GRANT ttl | KEEPALIVE id | REVOKE id | TTL id | LIST
void cmd_warp_lease(context& ctx) {
  if (!ctx.j) {
    ctx.defer = true;
    return;
  }
  auto sub = ctx.args[1];
  if (iequals(sub, "list")) {
    if (ctx.args.size() != 2) return ctx.w.error(syntax_error);
    auto r = ctx.n.leases();
    if (!r) return coord_error(ctx.w, r.err());
    ctx.w.array(r->size());
    for (auto id : *r) ctx.w.integer(static_cast<std::int64_t>(id));
    return;
  }
  if (ctx.args.size() != 3)
    return ctx.w.error("ERR usage: WARP.LEASE GRANT ttl | KEEPALIVE id | REVOKE id | TTL id | LIST");
  if (iequals(sub, "grant")) {
    std::chrono::milliseconds ttl{0};
    if (!duration_arg(ctx, ctx.args[2], ttl)) return;
    auto r = ctx.n.lease_grant(ttl);
    if (!r) return coord_error(ctx.w, r.err());
    return ctx.w.integer(static_cast<std::int64_t>(*r));
  }
  std::uint64_t id = 0;
  if (!id_arg(ctx, ctx.args[2], id)) return;
  if (iequals(sub, "keepalive")) {
    auto r = ctx.n.lease_keepalive(id);
    if (!r) return coord_error(ctx.w, r.err());
    return ctx.w.integer(r->count());
  }
  if (iequals(sub, "revoke")) {
    auto r = ctx.n.lease_revoke(id);
    if (!r) return coord_error(ctx.w, r.err());
    return ctx.w.simple("OK");
  }
  if (iequals(sub, "ttl")) {
    auto r = ctx.n.lease_time_to_live(id);
    if (!r) return coord_error(ctx.w, r.err());
    ctx.w.map(4);
    ctx.w.bulk("id");
    ctx.w.integer(static_cast<std::int64_t>(r->id));
    ctx.w.bulk("ttl_ms");
    ctx.w.integer(r->ttl.count());
    ctx.w.bulk("remaining_ms");
    ctx.w.integer(r->remaining.count());
    ctx.w.bulk("keys");
    ctx.w.array(r->keys.size());
    for (const auto& k : r->keys) ctx.w.bulk(k);
    return;
  }
  ctx.w.error("ERR unknown WARP.LEASE subcommand: GRANT KEEPALIVE REVOKE TTL LIST");
}

// WARP.FENCEDSET key value lock token
void cmd_warp_fencedset(context& ctx) {
  if (!ctx.j) {
    ctx.defer = true;
    return;
  }
  std::uint64_t token = 0;
  if (!id_arg(ctx, ctx.args[4], token)) return;
  auto r = ctx.n.set_if_fence(ctx.args[1], ctx.args[2], ctx.args[3], token);
  if (!r && r.code() == errc::conflict) return ctx.w.error("FENCED " + r.err().message());
  if (!r) return coord_error(ctx.w, r.err());
  ctx.w.simple("OK");
}

// WARP.FENCEDGET key
void cmd_warp_fencedget(context& ctx) {
  if (!ctx.j) {
    ctx.defer = true;
    return;
  }
  auto r = ctx.n.get_fenced(ctx.args[1]);
  if (!r && r.code() == errc::not_found) return ctx.w.null();
  if (!r) return coord_error(ctx.w, r.err());
  ctx.w.bulk(*r);
}

// -- WARP.LOCK waits without a worker ------------------------------------------------------

void server::start_lock_wait(client& c, std::string name, lease_id session, std::string owner,
                             std::chrono::milliseconds timeout, bool connection_owned) {
  auto* raft = warp::detail::strong_raft_of(node_);  // the handler checked it
  const std::uint64_t id = next_lock_wait_++;
  // On the loop, so before any close of this connection is seen: released at close.
  if (connection_owned) coord_keeper_.handing_over(c.id);
  auto& w = lock_waits_[c.id];
  w = lock_wait{id, std::chrono::steady_clock::now(), {}, name, owner, session, connection_owned};
  c.lock_wait = id;
  c.busy = true;  // a blocked client: later commands wait in its input, in order
  set_events(c);  // not read, but a hang-up is noticed
  // On a CAF thread: render the answer and hand it to the loop. It holds the inbox only.
  auto deliver = [box = inbox_, cid = c.id, id, proto = c.proto](result<std::uint64_t> r) {
    lock_done d{cid, id, {}, 0};
    resp_writer out{d.reply, proto};
    if (r) {
      d.token = *r;
      out.integer(static_cast<std::int64_t>(*r));
    } else {
      coord_error(out, r.err());
    }
    std::lock_guard<std::mutex> guard{box->mtx};
    if (box->wake_fd < 0) return;  // the server stopped: nobody reads it
    const bool wake = box->locks.empty();
    box->locks.push_back(std::move(d));
    if (wake) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(box->wake_fd, &one, sizeof(one));
    }
  };
  auto waiter = warp::detail::lock_async(
      *raft, node_.system(),
      actors::lock_wait_spec{std::move(name), session, std::move(owner), timeout, false},
      actors::completion<std::uint64_t>{std::move(deliver)});
  w.cancel = [waiter] { actors::cancel_lock_wait(waiter); };
}

void server::finish_locks() {
  {
    std::lock_guard<std::mutex> guard{inbox_->mtx};
    scratch_locks_.swap(inbox_->locks);
  }
  static const command_def* const lock_cmd = find_command("warp.lock");
  for (auto& d : scratch_locks_) {
    auto it = lock_waits_.find(d.client_id);
    if (it == lock_waits_.end() || it->second.id != d.wait_id) continue;
    auto w = std::move(it->second);
    lock_waits_.erase(it);
    meter(lock_cmd, std::chrono::steady_clock::now() - w.started, d.reply, 0);
    // A connection's own lock granted after it closed: the keeper releases it again.
    if (w.connection_owned) coord_keeper_.finished(d.client_id, d.token != 0);
    client* c = find_client(d.client_id);
    if (!c || c->lock_wait != d.wait_id) {
      // Gone: a grant that completed the wait before its cancel arrived goes to the next
      // waiter now, not when the session ends.
      if (d.token != 0 && !w.connection_owned)
        if (auto* raft = warp::detail::strong_raft_of(node_))
          actors::release_lock(raft->host(), std::move(w.name), w.session, std::move(w.owner),
                               d.token);
      continue;
    }
    c->lock_wait = 0;
    c->out += d.reply;
    c->out += c->held;  // invalidations and messages that arrived meanwhile
    c->held.clear();
    c->busy = false;
    if (!reply_ready(*c)) continue;
    process_input(*c);  // the pipeline it sent meanwhile
    if (!c->closed && c->tls && !c->busy && !c->paused && c->tls->has_pending())
      tls_pending_.push_back(c->id);
  }
  scratch_locks_.clear();
}

// -- the sidecar's session ----------------------------------------------------------------

result<lease_id> coord_session_keeper::get() {
  std::unique_lock<std::mutex> lk{mtx_};
  if (stopping_) return error{errc::shutting_down, "sidecar stopping"};
  if (id_ != 0) return id_;
  lk.unlock();
  auto id = n_.lease_grant(ttl);  // a Raft round trip: not under the mutex
  if (!id) return id.err();
  lk.lock();
  if (id_ != 0) {  // another worker won the race: keep one session
    auto mine = *id;
    lk.unlock();
    (void)n_.lease_revoke(mine);
    lk.lock();
    return id_;
  }
  id_ = *id;
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  return id_;
}

lease_id coord_session_keeper::current() {
  std::lock_guard<std::mutex> lk{mtx_};
  return stopping_ ? 0 : id_;
}

void coord_session_keeper::handing_over(std::uint64_t conn) {
  std::lock_guard<std::mutex> lk{mtx_};
  ++tracked_[conn].in_flight;
}

void coord_session_keeper::finished(std::uint64_t conn, bool held) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lk{mtx_};
    auto it = tracked_.find(conn);
    if (it == tracked_.end()) return;
    if (it->second.in_flight > 0) --it->second.in_flight;
    if (!it->second.closed) return;
    // Closed while this lock was on its way: the release at close may have been applied
    // before the lock was, so release again (a repeat releases nothing more).
    if (held) {
      to_release_.push_back(conn);
      wake = true;
    }
    if (it->second.in_flight == 0) tracked_.erase(it);
  }
  if (wake) cv_.notify_all();
}

void coord_session_keeper::connection_closed(std::uint64_t conn) {
  {
    std::lock_guard<std::mutex> lk{mtx_};
    auto it = tracked_.find(conn);
    if (it == tracked_.end()) return;  // never took a lock of its own: nothing to do
    to_release_.push_back(conn);
    if (it->second.in_flight == 0)
      tracked_.erase(it);
    else
      it->second.closed = true;
  }
  cv_.notify_all();
}

void coord_session_keeper::release(std::uint64_t conn, lease_id session) {
  auto* raft = warp::detail::strong_raft_of(n_);
  if (!raft) return;
  coordination::coord_command c;
  c.client = 0;  // not deduplicated: a repeat releases nothing more
  c.op = coordination::coord_op::release_owner;
  c.lease = session;
  c.owner = "conn:" + std::to_string(conn);
  // The session ended meanwhile (not_found): its locks went with it.
  if (auto r = raft->coord(true, coordination::encode(c)); !r && r.code() != errc::not_found)
    warp::detail::log()->warn("sidecar: releasing the locks of closed connection {} failed: {}",
                              conn, r.err().to_string());
}

void coord_session_keeper::run() {
  std::unique_lock<std::mutex> lk{mtx_};
  auto next_keepalive = std::chrono::steady_clock::now() + ttl / 3;
  while (!stopping_) {
    cv_.wait_until(lk, next_keepalive, [this] { return stopping_ || !to_release_.empty(); });
    if (stopping_) break;
    if (!to_release_.empty()) {
      auto batch = std::exchange(to_release_, {});
      auto session = id_;  // a connection's own locks are always under the current session
      lk.unlock();
      if (session != 0)
        for (auto conn : batch) release(conn, session);
      lk.lock();
      continue;
    }
    if (std::chrono::steady_clock::now() < next_keepalive) continue;
    next_keepalive = std::chrono::steady_clock::now() + ttl / 3;
    if (id_ == 0) continue;
    auto id = id_;
    lk.unlock();
    auto r = n_.lease_keepalive(id);
    lk.lock();
    // Gone (expired while the cluster was unreachable): the next lock grants a new one;
    // its locks were released with it.
    if (!r && r.code() == errc::not_found && id_ == id) id_ = 0;
  }
}

void coord_session_keeper::stop() {
  lease_id id = 0;
  {
    std::lock_guard<std::mutex> lk{mtx_};
    if (stopping_) return;
    stopping_ = true;
    id = id_;
    id_ = 0;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (id != 0) (void)n_.lease_revoke(id);  // its locks go to the next waiters now
}

}  // namespace warp::sidecar::detail
