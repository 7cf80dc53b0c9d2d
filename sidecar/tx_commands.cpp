// MULTI/EXEC/DISCARD/WATCH/UNWATCH (docs/sidecar.md, "Transactions").
//
// EXEC runs its queued commands back to back on the loop thread: no other command of this
// sidecar's loop runs in between, which is what makes the transaction atomic for the other
// clients of the loop. Reads that miss L1 are done inline (the handler sees a job and does
// the read-through) instead of on a worker: a worker would let other clients interleave.
// strong_distributed keys are refused: their writes wait for a quorum, and a transaction
// over them needs consensus (Raft), which Warp does not have yet.
#include <algorithm>
#include <string>

#include "sidecar/resp_server_impl.hpp"

namespace warp::sidecar::detail {

namespace {

// Bounds of what one client may queue: the commands come from the network and are copied.
constexpr std::size_t max_queued_commands = 1'000'000;
constexpr std::size_t max_queued_bytes = 512 * 1024 * 1024;
constexpr std::size_t per_arg_overhead = sizeof(std::string);
// Bound of the keys one client may WATCH (each is a copy plus a registry entry).
constexpr std::size_t max_watched_keys = 100'000;

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

void server::exec_transaction(client& c, resp_writer& w) {
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
    return;
  }
  if (c.watch_dirty) {
    discard_transaction(c);
    unwatch_all(c);
    w.null_array();
    return;
  }
  auto queued = std::move(c.queued);
  discard_transaction(c);
  unwatch_all(c);  // as in Redis: EXEC forgets the WATCHed keys whatever happens
  for (const auto& q : queued) {
    const auto argc = static_cast<int>(q.argv.size());
    const int last = q.cmd->last_key < 0 ? argc + q.cmd->last_key : q.cmd->last_key;
    for (int i = q.cmd->first_key; i > 0 && i <= last && i < argc; i += std::max(q.cmd->step, 1)) {
      const auto& key = q.argv[static_cast<std::size_t>(i)];
      if (key_is_strong(key)) {
        w.error("ERR EXEC refused: key '" + key.substr(0, 128) +
                "' is strong_distributed; a transaction over strong_distributed keys needs "
                "consensus (Raft), which is not built yet. Nothing was executed.");
        return;
      }
    }
  }
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

void cmd_multi(context& ctx) {
  if (ctx.c.in_multi) return ctx.w.error("ERR MULTI calls can not be nested");
  ctx.c.in_multi = true;
  ctx.c.multi_error = false;
  ctx.w.simple("OK");
}

void cmd_exec(context& ctx) {
  if (!ctx.c.in_multi) return ctx.w.error("ERR EXEC without MULTI");
  ctx.srv.exec_transaction(ctx.c, ctx.w);
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
  for (std::size_t i = 1; i < ctx.args.size(); ++i) ctx.srv.watch_key(ctx.c, ctx.args[i]);
  ctx.w.simple("OK");
}

void cmd_unwatch(context& ctx) {
  ctx.srv.unwatch_all(ctx.c);
  ctx.w.simple("OK");
}

}  // namespace warp::sidecar::detail
