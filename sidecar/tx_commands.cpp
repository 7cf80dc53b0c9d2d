// MULTI/EXEC/DISCARD/WATCH/UNWATCH (docs/sidecar.md, "Transactions").
//
// EXEC runs its queued commands back to back on the loop thread: no other command of this
// sidecar's loop runs in between, which is what makes the transaction atomic for the other
// clients of the loop. Reads that miss L1 are done inline (the handler sees a job and does
// the read-through) instead of on a worker: a worker would let other clients interleave.
// strong_distributed keys (Raft engine) run on a worker instead: EXEC reads every key of
// the transaction linearizably, evaluates the queued commands with the same handlers
// against an overlay of those values (kv_access.hpp), and proposes the result as one Raft
// batch whose conditions are the revisions it read (a WATCHed key's: the one WATCH read);
// a condition that no longer holds applies nothing, and EXEC reads and evaluates again
// (or, for a WATCHed key, answers a null array). Under the ABD engine they are refused.
#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "runtime/consensus/raft_kv.hpp"
#include "runtime/modes/strong_raft.hpp"
#include "sidecar/resp_server_impl.hpp"

namespace warp::sidecar::detail {

namespace {

// Bounds of what one client may queue: the commands come from the network and are copied.
constexpr std::size_t max_queued_commands = 1'000'000;
constexpr std::size_t max_queued_bytes = 512 * 1024 * 1024;
constexpr std::size_t per_arg_overhead = sizeof(std::string);
// Bound of the keys one client may WATCH (each is a copy plus a registry entry).
constexpr std::size_t max_watched_keys = 100'000;

// Evaluations of one strong transaction before EXEC gives up (each lost a race with a
// writer of one of its keys).
constexpr int max_strong_tx_attempts = 16;

std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <class F>
void for_each_key(const command_def* cmd, const std::vector<std::string>& argv, F&& fn) {
  const auto argc = static_cast<int>(argv.size());
  const int last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
  for (int i = cmd->first_key; i > 0 && i <= last && i < argc; i += std::max(cmd->step, 1))
    fn(argv[static_cast<std::size_t>(i)]);
}

bool runs_at_once(const command_def* cmd) {
  // As in Redis: these are executed even inside MULTI, never queued.
  auto n = cmd->name;
  return n == "exec" || n == "discard" || n == "multi" || n == "watch" || n == "quit" ||
         n == "reset";
}

}  // namespace

bool server::queue_in_multi(client& c, resp_writer& w, const command_def* cmd,
                            std::span<const std::string_view> args) {
  if (runs_at_once(cmd)) return false;
  std::size_t bytes = 0;
  for (auto a : args) bytes += a.size() + per_arg_overhead;
  if (c.queued.size() >= max_queued_commands || c.queued_bytes + bytes > max_queued_bytes) {
    c.multi_error = true;
    w.error("ERR transaction too large: at most " + std::to_string(max_queued_commands) +
            " commands and " + std::to_string(max_queued_bytes >> 20) + " MB may be queued");
    return true;
  }
  client::queued_command q;
  q.cmd = cmd;
  q.argv.assign(args.begin(), args.end());
  c.queued.push_back(std::move(q));
  c.queued_bytes += bytes;
  w.simple("QUEUED");
  return true;
}

void server::watch_key(client& c, std::string_view key) {
  if (!c.watched.emplace(key).second) return;
  auto it = watched_.find(key);
  if (it == watched_.end())
    it = watched_.emplace(std::string(key), std::unordered_set<std::uint64_t>{}).first;
  it->second.insert(c.id);
  update_interest();  // changes must now reach handle_event
}

void server::unwatch_all(client& c) {
  c.watch_dirty = false;
  c.strong_watched.clear();
  if (c.watched.empty()) return;
  for (const auto& key : c.watched) {
    auto it = watched_.find(key);
    if (it == watched_.end()) continue;
    it->second.erase(c.id);
    if (it->second.empty()) watched_.erase(it);
  }
  c.watched.clear();
  update_interest();
}

void server::discard_transaction(client& c) {
  c.in_multi = false;
  c.multi_error = false;
  c.queued.clear();
  c.queued.shrink_to_fit();
  c.queued_bytes = 0;
}

void server::touch_watched(const change_event& ev) {
  auto mark = [this](const std::unordered_set<std::uint64_t>& ids) {
    for (auto id : ids)
      if (client* t = find_client(id)) t->watch_dirty = true;
  };
  switch (ev.what) {
    case change_event::kind::cleared:  // FLUSHDB: every watched key may have changed
      for (const auto& [key, ids] : watched_) mark(ids);
      return;
    case change_event::kind::distrusted:
      // Changes of eventual_distributed keys may have been missed: assume they happened.
      for (const auto& [key, ids] : watched_)
        if (node_.policy(key).consistency == mode::eventual_distributed) mark(ids);
      return;
    default:
      if (auto it = watched_.find(ev.key); it != watched_.end()) mark(it->second);
  }
}

bool server::exec_transaction(client& c, resp_writer& w) {
  // Changes announced but not yet handled (from other threads or nodes, or raised by
  // finished jobs of other clients) happened before this EXEC: apply them to the WATCH
  // flags first. Other pushes they cause go out as usual.
  if (!c.watched.empty() && !c.watch_dirty) {
    drain_remote_events();
    std::lock_guard<std::mutex> guard{done_mtx_};
    for (const auto& j : done_)
      for (const auto& e : j->events) touch_watched(e.ev);
  }
  if (c.multi_error) {
    discard_transaction(c);
    unwatch_all(c);
    w.error("EXECABORT Transaction discarded because of previous errors.");
    return true;
  }
  if (c.watch_dirty) {
    discard_transaction(c);
    unwatch_all(c);
    w.null_array();
    return true;
  }
  auto queued = std::move(c.queued);
  auto strong_watched = std::move(c.strong_watched);
  discard_transaction(c);
  unwatch_all(c);  // as in Redis: EXEC forgets the WATCHed keys whatever happens
  // Which keys are strong: a transaction is over strong keys only or over none.
  const std::string* strong_key = nullptr;
  const std::string* plain_key = nullptr;
  const command_def* keyless = nullptr;
  std::vector<std::string> keys;
  for (const auto& q : queued) {
    bool any = false;
    for_each_key(q.cmd, q.argv, [&](const std::string& key) {
      any = true;
      if (key_is_strong(key)) {
        strong_key = strong_key ? strong_key : &key;
        keys.push_back(key);
      } else {
        plain_key = plain_key ? plain_key : &key;
      }
    });
    // Commands whose effects are not the values of their keys (whole key space, locks,
    // Pub/Sub) cannot be evaluated against the overlay and re-evaluated on a retry.
    if ((!any && q.cmd->name != "ping" && q.cmd->name != "echo") ||
        q.cmd->name.starts_with("warp."))
      keyless = keyless ? keyless : q.cmd;
  }
  for (const auto& [key, rev] : strong_watched) {
    strong_key = strong_key ? strong_key : &key;
    keys.push_back(key);
  }
  if (!strong_key) {
    run_plain_transaction(c, w, queued);
    return true;
  }
  auto* raft = warp::detail::strong_raft_of(node_);
  auto refuse = [&](const std::string& why) {
    w.error("ERR EXEC refused: " + why + ". Nothing was executed.");
    return true;
  };
  auto name = [](const std::string& key) { return "'" + key.substr(0, 128) + "'"; };
  if (!raft)
    return refuse("key " + name(*strong_key) +
                  " is strong_distributed; a transaction over strong_distributed keys needs "
                  "consensus, the Raft engine (--strong-engine raft, in a cluster), which this "
                  "node does not run (ABD quorum registers cannot apply several keys "
                  "atomically)");
  if (plain_key)
    return refuse("key " + name(*strong_key) + " is strong_distributed and key " +
                  name(*plain_key) +
                  " is not; a transaction is over strong_distributed keys only or over none");
  if (keyless)
    return refuse("'" + std::string(keyless->name) +
                  "' cannot run in a transaction over strong_distributed keys (only commands "
                  "on keys, PING and ECHO)");
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const auto group = raft->placement().range_of(keys.front());
  for (const auto& key : keys) {
    auto g = raft->placement().range_of(key);
    if (g != group)
      return refuse("keys " + name(keys.front()) + " and " + name(key) +
                    " are in different strong groups (" + std::to_string(group) + " and " +
                    std::to_string(g) +
                    "); one transaction is one Raft proposal, so its keys must share a group");
  }
  auto tx = std::make_unique<strong_tx>();
  tx->queued = std::move(queued);
  tx->keys = std::move(keys);
  tx->watched = std::move(strong_watched);
  c.pending_tx = std::move(tx);
  return false;  // the handler defers: start_job hands it to a worker
}

void server::run_plain_transaction(client& c, resp_writer& w,
                                   const std::vector<client::queued_command>& queued) {
  w.array(queued.size());
  job inline_job;  // makes handlers read through on a miss here instead of deferring
  inline_job.client_id = c.id;
  std::vector<std::string_view> args;
  current_client_ = c.id;
  for (const auto& q : queued) {
    args.assign(q.argv.begin(), q.argv.end());
    context ctx{*this, c, w, args, node_, &inline_job};
    q.cmd->fn(ctx);
    if (c.caching_left > 0 && --c.caching_left == 0) c.caching = -1;
  }
  current_client_ = 0;
  keyspace_hits += inline_job.hits;
  keyspace_misses += inline_job.misses;
}

void server::run_strong_tx(job& j) {
  auto& tx = *j.tx;
  resp_writer w{j.out, j.shadow.proto};
  auto* raft = warp::detail::strong_raft_of(node_);
  if (!raft) return w.error("ERR node is stopping");
  thread_local std::minstd_rand jitter{std::random_device{}()};
  std::vector<std::string_view> args;
  for (int attempt = 0; attempt < max_strong_tx_attempts; ++attempt) {
    j.out.clear();
    auto read = raft->read_versioned(tx.keys);
    if (!read)
      return w.error("ERR EXEC failed reading its keys (" + read.err().message() +
                     "). Nothing was executed.");
    tx_overlay overlay;
    overlay.now_ms = wall_now_ms();
    consensus::kv_batch batch;
    for (std::size_t i = 0; i < tx.keys.size(); ++i) {
      const auto& key = tx.keys[i];
      const auto& got = (*read)[i];
      // A WATCHed key whose revision moved since WATCH: someone wrote it (identical bytes
      // included), or created and deleted it.
      if (auto it = tx.watched.find(key);
          it != tx.watched.end() && it->second != strong_revision{got.present, got.revision})
        return w.null_array();
      tx_overlay::entry e;
      if (got.present) {
        auto s = warp::detail::strong_raft::decode_value(got.value);
        if (!s) return w.error("ERR EXEC failed: " + s.err().message() + ". Nothing was executed.");
        if (s->expires_at_ms == 0 || s->expires_at_ms > overlay.now_ms) {
          e.value = std::move(s->value);
          e.expires_at_ms = s->expires_at_ms;
        }
      }
      overlay.keys.emplace(key, std::move(e));
      // The revision read is the condition: a write between this read and the commit
      // (for a WATCHed key: since WATCH, as its revision is the one WATCH read) fails it.
      batch.conditions.push_back({key, !got.present, got.revision, {}});
    }
    w.array(tx.queued.size());
    for (const auto& q : tx.queued) {
      args.assign(q.argv.begin(), q.argv.end());
      context ctx{*this, j.shadow, w, args, node_, &j};
      ctx.n.tx = &overlay;
      q.cmd->fn(ctx);
    }
    for (std::size_t i = 0; i < tx.keys.size(); ++i) {
      const auto& e = overlay.keys.find(tx.keys[i])->second;
      if (!e.dirty) continue;
      if (e.value)
        batch.writes.push_back(
            {tx.keys[i], false,
             warp::detail::strong_raft::encode_value(*e.value, e.expires_at_ms)});
      else if ((*read)[i].present)
        batch.writes.push_back({tx.keys[i], true, {}});
    }
    auto done = raft->propose_batch(batch);
    if (done) return;
    if (done.code() != errc::conflict) {
      j.out.clear();
      if (done.code() == errc::unknown_outcome)
        return w.error("ERR EXEC outcome unknown (" + done.err().message() +
                       "): the transaction may or may not have been applied");
      return w.error("ERR EXEC failed (" + done.err().message() + "). Nothing was executed.");
    }
    // A writer won the race for one of the keys (a WATCHed one: the next read sees it and
    // answers the null array): back off a little (randomized, growing) so two
    // transactions on one key spread out instead of colliding again.
    auto cap = std::min(1 << std::min(attempt, 5), 32);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(static_cast<long>(jitter() % static_cast<unsigned>(cap + 1))));
  }
  j.out.clear();
  w.error("ERR EXEC aborted: its keys kept changing (" + std::to_string(max_strong_tx_attempts) +
          " attempts). Nothing was executed.");
}

void server::read_strong_watch(job& j, std::span<const std::string_view> keys, resp_writer& w) {
  std::vector<std::string> strong;
  for (auto k : keys)
    if (key_is_strong(k)) strong.emplace_back(k);
  auto* raft = warp::detail::strong_raft_of(node_);
  if (!raft) return w.error("ERR node is stopping");
  auto read = raft->read_versioned(strong);
  if (!read)
    return w.error("ERR WATCH could not read its strong keys (" + read.err().message() + ")");
  for (std::size_t i = 0; i < strong.size(); ++i)
    j.watch_snapshot.emplace_back(std::move(strong[i]),
                                  strong_revision{(*read)[i].present, (*read)[i].revision});
  w.simple("OK");
}

void server::finish_strong_watch(client& c, job& j) {
  for (std::size_t i = 1; i < j.argv.size(); ++i) watch_key(c, j.argv[i]);
  // The first WATCH of a key keeps its revision: a change since then must abort.
  for (auto& [key, rev] : j.watch_snapshot) c.strong_watched.emplace(key, rev);
}

void cmd_multi(context& ctx) {
  if (ctx.c.in_multi) return ctx.w.error("ERR MULTI calls can not be nested");
  ctx.c.in_multi = true;
  ctx.c.multi_error = false;
  ctx.w.simple("OK");
}

void cmd_exec(context& ctx) {
  if (!ctx.c.in_multi) return ctx.w.error("ERR EXEC without MULTI");
  if (!ctx.srv.exec_transaction(ctx.c, ctx.w)) ctx.defer = true;
}

void cmd_discard(context& ctx) {
  if (!ctx.c.in_multi) return ctx.w.error("ERR DISCARD without MULTI");
  ctx.srv.discard_transaction(ctx.c);
  ctx.srv.unwatch_all(ctx.c);
  ctx.w.simple("OK");
}

void cmd_watch(context& ctx) {
  if (ctx.c.in_multi) return ctx.w.error("ERR WATCH inside MULTI is not allowed");
  if (ctx.c.watched.size() + ctx.args.size() - 1 > max_watched_keys)
    return ctx.w.error("ERR too many WATCHed keys: at most " + std::to_string(max_watched_keys));
  if (ctx.j) return ctx.srv.read_strong_watch(*ctx.j, ctx.args.subspan(1), ctx.w);
  // Strong keys on the Raft engine: no change event reports another node's write of them,
  // so their revisions are read now (linearizably, on a worker) and checked by EXEC.
  if (warp::detail::strong_raft_of(ctx.srv.the_node()))
    for (std::size_t i = 1; i < ctx.args.size(); ++i)
      if (ctx.srv.key_is_strong(ctx.args[i])) {
        ctx.defer = true;
        return;
      }
  for (std::size_t i = 1; i < ctx.args.size(); ++i) ctx.srv.watch_key(ctx.c, ctx.args[i]);
  ctx.w.simple("OK");
}

void cmd_unwatch(context& ctx) {
  ctx.srv.unwatch_all(ctx.c);
  ctx.w.simple("OK");
}

}  // namespace warp::sidecar::detail
