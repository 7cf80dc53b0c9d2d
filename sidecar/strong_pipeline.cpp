// Pipelined strong_distributed commands without a worker (docs/sidecar.md,
// "Pipelined strong commands"). A worker blocked per strong command made a connection's
// pipeline wait for each command's quorum in turn; here the loop starts consecutive GET,
// SET and read-modify-writes (INCR, SETNX, SET NX, GETSET, GETDEL, APPEND, DEL, and the
// typed writes LPUSH, ZADD, HSET, EXPIRE...) of strong keys on the Raft engine's async
// entries back to back (the Raft host's flush puts what arrives together into one
// append), each with a reply slot. The
// completions run on CAF threads: they render the reply and hand it to the loop through
// the server's inbox and its eventfd, named by (client id, run id), so a completion for a
// client that closed meanwhile finds nothing and is dropped.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <utility>

#include <unistd.h>

#include "runtime/modes/strong_raft.hpp"
#include "sidecar/resp_server_impl.hpp"
#include "sidecar/typed_commands.hpp"
#include "sidecar/typed_value.hpp"

namespace warp::sidecar::detail {

namespace {

bool is_name(std::string_view arg, std::string_view lower) noexcept {
  if (arg.size() != lower.size()) return false;
  for (std::size_t i = 0; i < arg.size(); ++i) {
    char ch = arg[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != lower[i]) return false;
  }
  return true;
}

// The typed writes of one key whose handler runs as a read-modify-write step (the names
// of the command table).
bool handler_step_command(std::string_view name) noexcept {
  static constexpr std::string_view names[] = {
      "lpush",  "rpush",   "lpushx",   "rpushx",    "lpop",   "rpop",    "lset",
      "lrem",   "ltrim",   "zadd",     "zincrby",   "zrem",   "zpopmin", "zpopmax",
      "sadd",   "srem",    "spop",     "hset",      "hmset",  "hdel",    "hincrby",
      "expire", "pexpire", "expireat", "pexpireat", "persist"};
  for (auto n : names)
    if (n == name) return true;
  return false;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::shared_ptr<rmw_step> server::make_handler_step(const command_def* cmd,
                                                    std::span<const std::string_view> args,
                                                    int proto) {
  if (!handler_step_command(cmd->name) || cmd->first_key != 1 || cmd->last_key != 1) return nullptr;
  const auto argc = static_cast<int>(args.size());
  if (cmd->arity >= 0 ? argc != cmd->arity : argc < -cmd->arity) return nullptr;
  // The command's own handler, run by the engine on a CAF thread once per attempt against
  // a one-key overlay holding the value it read (kv_access.hpp, as EXEC evaluates a
  // transaction): its writes stay in the overlay and become the attempt's decision, its
  // reply is kept for the attempt that commits. So a typed write answers the same bytes
  // here as on a worker, with no second implementation of it. The handler touches the
  // server only through the context (a shadow client that does not track, a job of its
  // own for the hit counters); the inbox's liveness lock, held shared while it runs,
  // proves the server still exists.
  struct handler_step final : rmw_step {
    server* srv = nullptr;
    std::shared_ptr<inbox> box;
    const command_def* cmd = nullptr;
    std::vector<std::string> argv;
    job scratch;  // its shadow is the handler's client; its counters take the hits
    std::string out;
    result<mutation> operator()(const buffer* cur, std::int64_t cur_exp) override {
      out.clear();
      tx_overlay overlay;
      overlay.now_ms = wall_ms();
      tx_overlay::entry e;
      if (cur) {
        e.value.emplace(view(*cur));
        e.expires_at_ms = cur_exp;
      }
      auto& entry = overlay.keys.emplace(argv[1], std::move(e)).first->second;
      std::vector<std::string_view> args(argv.begin(), argv.end());
      std::shared_lock<std::shared_mutex> guard{box->alive_mtx};
      if (!box->alive) return error{errc::shutting_down, "the sidecar stopped"};
      resp_writer w{out, scratch.shadow.proto};
      context ctx{*srv, scratch.shadow, w, args, srv->node_, &scratch};
      ctx.n.tx = &overlay;
      cmd->fn(ctx);
      if (ctx.defer) return error{errc::internal, "a typed write wanted a worker"};
      if (!entry.dirty) return mutation::keep();
      if (entry.value) return mutation::put(std::move(*entry.value), entry.expires_at_ms);
      return cur ? mutation::erase() : mutation::keep();
    }
    void reply(resp_writer& w, const result<void>& st) const override {
      if (!st) return reply_write_error(w, st.err());
      w.buffer() += out;
    }
  };
  auto step = std::make_shared<handler_step>();
  step->srv = this;
  step->box = inbox_;
  step->cmd = cmd;
  step->argv.assign(args.begin(), args.end());
  step->scratch.shadow.proto = proto;
  return step;
}

void server::take_strong_del(std::span<const std::string_view> keys,
                             std::function<void(std::string, int)> deliver, int proto) {
  // One read-modify-write per key, in flight together; the reply counts the keys that
  // existed once all are done (each key's delete is atomic, the command is not: as on a
  // worker, which deletes them one by one).
  struct shared {
    std::atomic<std::size_t> left{0};
    std::atomic<std::int64_t> removed{0};
    std::mutex mtx;
    std::optional<error> failed;
    std::function<void(std::string, int)> deliver;
    int proto = 2;
  };
  auto all = std::make_shared<shared>();
  all->left = keys.size();
  all->deliver = std::move(deliver);
  all->proto = proto;
  auto* raft = warp::detail::strong_raft_of(node_);
  for (auto key : keys) {
    auto existed = std::make_shared<bool>(false);
    raft->write_async(
        key,
        [existed](const buffer* cur, std::int64_t) -> result<mutation> {
          *existed = cur != nullptr;
          return cur ? mutation::erase() : mutation::keep();
        },
        true,
        [all, existed](result<mutation> done) {
          if (!done) {
            std::lock_guard<std::mutex> g{all->mtx};
            if (!all->failed) all->failed = done.err();
          } else if (*existed) {
            ++all->removed;
          }
          if (--all->left != 0) return;
          std::string out;
          resp_writer w{out, all->proto};
          if (all->failed)
            reply_failure(w, *all->failed);
          else
            w.integer(all->removed.load());
          all->deliver(std::move(out), 0);
        });
  }
}

bool server::take_strong(client& c, std::span<const std::string_view> args) {
  static const command_def* const get_cmd = find_command("get");
  static const command_def* const set_cmd = find_command("set");
  // read: GET; write: a blind write (SET k v, SET k v EX n); rmw: a read-modify-write.
  enum class kind : std::uint8_t { read, write, rmw };
  kind k = kind::read;
  const command_def* cmd = nullptr;
  if (args.size() == 2 && is_name(args[0], "get")) {
    cmd = get_cmd;
  } else if (args.size() == 3 && is_name(args[0], "set")) {
    cmd = set_cmd;
    k = kind::write;
  } else if (args.size() >= 2) {
    cmd = c.last_command;  // pipelines repeat one command
    if (!cmd || !is_name(args[0], cmd->name)) cmd = find_command(args[0]);
    if (!cmd || !cmd->flags.starts_with("write")) return false;
    k = kind::rmw;
  } else {
    return false;
  }
  // What would change the reply or need the loop's bookkeeping takes the ordinary path:
  // tracking (the read must be remembered), CLIENT CACHING, a transaction, RESP2
  // subscribed mode, a client not yet authenticated.
  if (!any_strong_ || !c.authenticated || c.in_multi || c.tracking || c.caching_left > 0 ||
      (c.proto == 2 && c.subscriptions() > 0))
    return false;
  const std::string_view key = args[1];
  if (!key_is_strong(key)) return false;
  auto* raft = warp::detail::strong_raft_of(node_);
  if (!raft) return false;  // ABD engine or stopping: a worker runs it as before
  const int proto = c.proto;
  std::shared_ptr<rmw_step> step;
  std::string parse_error;
  // DEL/UNLINK of several keys, all strong: one read-modify-write per key.
  std::span<const std::string_view> del_keys;
  if (k == kind::rmw && args.size() > 2 && (cmd->name == "del" || cmd->name == "unlink")) {
    del_keys = args.subspan(1);
    for (auto dk : del_keys)
      if (!key_is_strong(dk) || crdt_key_of(node_, dk) != crdt_key::none) return false;
  } else if (k == kind::rmw) {
    bool failed = false;
    resp_writer w{parse_error, proto};
    step = make_rmw_step(args, w, failed);
    if (!step && !failed) step = make_handler_step(cmd, args, proto);  // LPUSH, ZADD...
    if (!step && !failed) return false;  // not one of them: the ordinary path
    // A federated counter (a CRDT) answers INCR its own way (crdt_commands.cpp).
    if (step && crdt_key_of(node_, key) != crdt_key::none) return false;
    if (step && !step->reads()) k = kind::write;
  }
  const std::size_t key_hash = std::hash<std::string_view>{}(key);
  const bool joins_chain = parse_error.empty() && k == kind::rmw && del_keys.empty() && c.run &&
                           c.run->chain && c.run->chain_key == key;
  if (c.run) {
    // Order inside a run: commands of one run are in flight together, and the Raft host
    // keeps their submission order only while no request is retried (a retry after a
    // leader change lands behind later ones). So a run never holds two commands of one
    // key, nor a read behind a write (a ReadIndex read issued with a write in flight may
    // be served before the write commits): such a command waits for the run's replies.
    // A read-modify-write reads: it joins a run with writes only when they all are
    // read-modify-writes of its own key, which the engine runs in turn (see strong_run).
    // A command refused for its arguments touches nothing: it only takes a slot.
    auto& r = *c.run;
    if (r.slots.size() >= max_batch) return false;
    if (parse_error.empty() && !joins_chain &&
        ((k != kind::write && r.wrote) || r.keys.contains(key_hash)))
      return false;
    for (auto dk : del_keys)
      if (r.keys.contains(std::hash<std::string_view>{}(dk))) return false;
  } else {
    // Writes batched by try_batch reply first: their replies precede this command's.
    if (!batch_empty()) run_batch(c);
    c.run = std::make_unique<strong_run>();
    c.run->id = next_run_id_++;
    c.run->started = std::chrono::steady_clock::now();
    ++strong_runs_;
  }
  auto& r = *c.run;
  if (parse_error.empty()) {
    r.keys.insert(key_hash);
    for (auto dk : del_keys) r.keys.insert(std::hash<std::string_view>{}(dk));
    if (!del_keys.empty()) {
      r.chain = false;  // several keys: no single key's chain
    } else if (k == kind::rmw && !r.wrote) {
      r.chain = true;
      r.chain_key.assign(key);
    } else if (k == kind::write) {
      r.chain = false;
    }
    r.wrote = r.wrote || k != kind::read;
  }
  const std::size_t slot = r.slots.size();
  r.slots.push_back({cmd, {}});
  ++r.waiting;
  ++total_commands;
  ++strong_run_commands_;
  ++c.commands;
  c.last_command = cmd;
  // The completion runs on a CAF thread (or at once when the engine refuses): it renders
  // the reply and queues it for the loop. It holds the inbox, never the server or client.
  auto deliver = [box = inbox_, id = c.id, run = r.id, slot](std::string reply, int hit) {
    std::lock_guard<std::mutex> guard{box->mtx};
    if (box->wake_fd < 0) return;           // the server stopped: nobody reads it
    const bool wake = box->strong.empty();  // an eventfd coalesces extra wake-ups
    box->strong.push_back({id, run, slot, std::move(reply), hit});
    if (wake) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(box->wake_fd, &one, sizeof(one));
    }
  };
  if (!parse_error.empty()) {
    deliver(std::move(parse_error), 0);
    return true;
  }
  const auto& limits = node_.config().limits;
  auto refuse = [&](const error& e) {
    std::string out;
    resp_writer w{out, proto};
    reply_failure(w, e);
    deliver(std::move(out), 0);
  };
  if (auto ok = limits.check_key(key); !ok) {
    refuse(ok.err());
    return true;
  }
  if (!del_keys.empty()) {
    for (auto dk : del_keys)
      if (auto ok = limits.check_key(dk); !ok) {
        refuse(ok.err());
        return true;
      }
    take_strong_del(del_keys, deliver, proto);
    return true;
  }
  if (step) {
    // Read-modify-writes (and SET with an expiry) through the engine's async entry: the
    // decision runs on a CAF thread, the same step as the handler's (resp_commands.cpp).
    raft->write_async(
        key, [step](const buffer* cur, std::int64_t cur_exp) { return (*step)(cur, cur_exp); },
        step->reads(),
        [step, deliver, proto](result<mutation> done) {
          std::string out;
          resp_writer w{out, proto};
          step->reply(w, done ? result<void>{} : result<void>{done.err()});
          deliver(std::move(out), 0);
        });
    return true;
  }
  if (k == kind::read) {
    raft->get_async(key, [deliver, proto](result<buffer> got) {
      std::string out;
      resp_writer w{out, proto};
      reply_get_outcome(w, got);
      deliver(std::move(out), got ? 1 : (got.code() == errc::not_found ? -1 : 0));
    });
    return true;
  }
  const std::string_view value = args[2];
  if (auto ok = limits.check_value(value); !ok) {
    refuse(ok.err());
    return true;
  }
  auto done = [deliver, proto](result<void> st) {
    std::string out;
    resp_writer w{out, proto};
    if (st)
      w.simple("OK");
    else
      reply_failure(w, st.err());
    deliver(std::move(out), 0);
  };
  // Stored as the SET handler stores it: a value that looks like a typed header is escaped.
  if (typed::needs_escape(value)) [[unlikely]]
    raft->set_async(key, typed::encode_string(value), 0, std::move(done));
  else
    raft->set_async(key, value, 0, std::move(done));
  return true;
}

void server::close_run(client& c) {
  if (!c.run || c.run->closed) return;
  c.run->closed = true;
  c.busy = true;  // pushes are held, the socket is not read, the input not parsed
  set_events(c);
}

void server::finish_strong() {
  {
    std::lock_guard<std::mutex> guard{inbox_->mtx};
    scratch_strong_.swap(inbox_->strong);
  }
  for (auto& d : scratch_strong_) {
    client* c = find_client(d.client_id);
    // Closed meanwhile (or a stale run): the write stands or not as the engine decided; the
    // reply has nobody to go to.
    if (!c || !c->run || c->run->id != d.run_id || d.slot >= c->run->slots.size()) continue;
    auto& r = *c->run;
    r.slots[d.slot].reply = std::move(d.reply);
    if (d.hit > 0) ++r.hits;
    if (d.hit < 0) ++r.misses;
    if (--r.waiting == 0 && r.closed) complete_run(*c);
  }
  scratch_strong_.clear();
}

void server::complete_run(client& c) {
  auto run = std::move(c.run);
  // Each command is metered with the run's time: they were in flight together.
  const auto took = std::chrono::steady_clock::now() - run->started;
  for (auto& s : run->slots) {
    meter(s.cmd, took, s.reply, 0);
    c.out += s.reply;
  }
  c.out += c.held;  // invalidations and messages that arrived meanwhile
  c.held.clear();
  c.busy = false;
  keyspace_hits += run->hits;
  keyspace_misses += run->misses;
  if (!reply_ready(c)) return;
  if (!run->protocol_error.empty()) {
    resp_writer w{c.out, c.proto};
    w.error(run->protocol_error);
    c.close_after_write = true;
    return;
  }
  if (!run->next.empty()) {
    // The command that ended the run: it may start the next run, else runs as usual.
    std::vector<std::string_view> args(run->next.begin(), run->next.end());
    if (!take_strong(c, args)) {
      execute(c, args);
      if (!local_events_.empty()) dispatch_events();
      if (c.closed) return;
    }
  }
  if (!c.busy && !c.paused) process_input(c);  // the pipeline it sent meanwhile
  // An open run with nothing more to parse (process_input closes it otherwise).
  if (!c.closed && c.run && !c.run->closed) close_run(c);
  if (!c.closed && c.tls && !c.busy && !c.paused && c.tls->has_pending())
    tls_pending_.push_back(c.id);
}

}  // namespace warp::sidecar::detail
