// Internals of the RESP sidecar shared by the event loop (resp_server.cpp) and the command
// handlers (resp_commands.cpp). Everything here lives on the loop thread except the few
// members marked as shared with watch callbacks.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sidecar/kv_access.hpp"
#include "sidecar/resp_parser.hpp"
#include "sidecar/resp_server.hpp"
#include "sidecar/resp_tls.hpp"
#include "sidecar/resp_writer.hpp"
#include "warp/node.hpp"

namespace warp::sidecar::detail {

/// Growable byte buffer without the zero fill std::string::resize does on every read.
class byte_buffer {
 public:
  char* data() noexcept { return data_.get(); }
  const char* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return cap_; }
  std::string_view view(std::size_t from = 0) const noexcept {
    return {data_.get() + from, size_ - from};
  }
  /// Makes room for `n` more bytes after size(), growing no further than `total_hint`
  /// (the frame's known total size; 0 = unknown) needs.
  void reserve_tail(std::size_t n, std::size_t total_hint = 0);
  void commit(std::size_t n) noexcept { size_ += n; }
  /// Drops the first `n` bytes.
  void consume(std::size_t n) noexcept;
  void clear() noexcept { size_ = 0; }
  /// Gives memory back after a large frame.
  void shrink_if_idle(std::size_t keep);

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

struct command_def;
struct strong_tx;
class typed_write;

/// Consecutive strong_distributed GET/SET and read-modify-writes (INCR, SETNX, SET NX...)
/// of one client's pipeline, started on the Raft
/// engine from the loop thread without a worker (strong_pipeline.cpp, docs/sidecar.md,
/// "Pipelined strong commands"). Each command has a slot; completions fill them from CAF
/// threads through the server's inbox; the replies go out in command order once every slot
/// is filled, and the client's input is not parsed meanwhile.
struct strong_run {
  std::uint64_t id = 0;  // completions name the run by (client id, run id), never a pointer
  struct slot {
    const command_def* cmd = nullptr;
    std::string reply;
  };
  std::vector<slot> slots;
  std::size_t waiting = 0;  // slots not filled yet
  bool closed = false;      // no more commands join: the client is busy until it completes
  bool wrote = false;       // a write is in the run: a later read waits for the next run
  /// Hashes of the keys the run names: a key named twice ends the run (a collision ends
  /// it early, which is harmless), so no two commands of a run depend on each other;
  /// except read-modify-writes of one key (`chain`).
  std::unordered_set<std::size_t> keys;
  /// Every write of the run so far is a read-modify-write of `chain_key`: another one of
  /// that key may join, since the engine runs one key's read-modify-writes one after
  /// another in submission order (strong_raft::write_async), each reading what the one
  /// before it wrote.
  bool chain = false;
  std::string chain_key;
  std::chrono::steady_clock::time_point started;
  /// The command that ended the run (owned: the input buffer moves on), run after the
  /// run's replies; or a protocol error found meanwhile, answered after them.
  std::vector<std::string> next;
  std::string protocol_error;
  std::uint64_t hits = 0, misses = 0;
};

/// The answer of a WARP.LOCK that waited without a worker (lock_commands.cpp), from a CAF
/// thread to the loop.
struct lock_done {
  std::uint64_t client_id = 0;
  std::uint64_t wait_id = 0;  // completions name the wait by (client id, wait id)
  std::string reply;          // rendered in the client's protocol
  std::uint64_t token = 0;    // the fencing token when granted, else 0
};

/// A finished command of a strong run, from a CAF thread to the loop.
struct strong_done {
  std::uint64_t client_id = 0;
  std::uint64_t run_id = 0;
  std::size_t slot = 0;
  std::string reply;  // rendered in the client's protocol
  int hit = 0;        // GET: 1 found, -1 not found, 0 neither (an error or a write)
};

/// A strong key's revision as WATCH read it (consensus::kv_versioned without the value):
/// a write of any bytes, or a create and delete, between WATCH and EXEC changes it.
struct strong_revision {
  bool present = false;
  std::uint64_t revision = 0;
  friend bool operator==(const strong_revision&, const strong_revision&) = default;
};

struct client {
  std::uint64_t id = 0;
  int fd = -1;
  std::string addr;
  std::string laddr;
  std::string name;
  std::string lib_name, lib_ver;

  byte_buffer in;
  resp_parser parser;

  std::string out;
  std::size_t out_pos = 0;
  bool epollout = false;       // EPOLLOUT registered
  bool pending_write = false;  // queued in server::pending_
  bool close_after_write = false;
  bool closed = false;
  /// Its last reply is sent and its write side shut: what it still sends is read and
  /// dropped until it closes too (server::start_lingering_close).
  bool lingering = false;

  int proto = 2;
  bool authenticated = true;
  std::size_t auth_failures = 0;
  /// Paused after a failed AUTH: not read nor parsed until the server's timer resumes it.
  bool paused = false;

  /// Set on a TLS connection (null = plaintext).
  std::unique_ptr<tls_session> tls;
  bool tls_want_write = false;  // the handshake or a read waits for writability

  /// This client's buffers as last counted into server::client_memory_.
  std::size_t mem_accounted = 0;
  std::size_t memory() const noexcept { return in.capacity() + out.capacity() + held.capacity(); }
  std::int64_t created_ms = 0;
  std::int64_t last_ms = 0;
  std::uint64_t commands = 0;
  const command_def* last_command = nullptr;

  std::unordered_set<std::string> channels;
  std::unordered_set<std::string> patterns;
  std::size_t subscriptions() const noexcept { return channels.size() + patterns.size(); }

  // Client-side caching (CLIENT TRACKING).
  bool tracking = false;
  bool bcast = false;
  bool optin = false;
  bool optout = false;
  bool noloop = false;
  std::uint64_t redirect = 0;
  std::vector<std::string> prefixes;
  /// CLIENT CACHING yes|no applies to the next command only: -1 unset, 0 no, 1 yes.
  int caching = -1;
  int caching_left = 0;  // commands the CACHING flag still covers (the CACHING one + next)

  /// A slow command of this client runs on a worker: its input is not parsed (nor read)
  /// until the reply is back, so replies keep the order of the commands.
  bool busy = false;
  /// Pushes (invalidations, Pub/Sub messages) for a busy client, appended after its reply:
  /// an invalidation of a key it is reading must follow the value.
  std::string held;
  std::string& push_buffer() noexcept { return busy ? held : out; }

  // Transactions (tx_commands.cpp). Queued commands own their arguments: the input buffer
  // moves on while the transaction is built.
  struct queued_command {
    const command_def* cmd = nullptr;
    std::vector<std::string> argv;
  };
  bool in_multi = false;
  bool multi_error = false;  // a command was rejected while queuing: EXEC answers EXECABORT
  std::vector<queued_command> queued;
  std::size_t queued_bytes = 0;
  std::unordered_set<std::string> watched;  // WATCHed keys
  bool watch_dirty = false;                 // one of them changed since WATCH
  /// WATCHed strong_distributed keys (Raft engine): their revisions as read at WATCH.
  /// EXEC's proposal makes them its conditions: no change event reports another node's
  /// write of a strong key.
  std::unordered_map<std::string, strong_revision> strong_watched;
  /// An EXEC over strong keys handed to a worker (start_job moves it into the job).
  std::unique_ptr<strong_tx> pending_tx;
  /// Pipelined strong commands in flight without a worker (open while the loop parses
  /// this client's input, then closed: the client is busy until it completes).
  std::unique_ptr<strong_run> run;
  /// Its WARP.LOCK waiting for the lock (server::lock_waits_), 0 = none: the client is busy
  /// (a blocked client, in Redis terms) and a hang-up is noticed (EPOLLRDHUP).
  std::uint64_t lock_wait = 0;
};

/// A transaction over strong_distributed keys of one Raft group, run by a worker
/// (tx_commands.cpp): its commands, every key they name (and the WATCHed strong keys),
/// and the WATCHed keys' bytes as read at WATCH.
struct strong_tx {
  std::vector<client::queued_command> queued;
  std::vector<std::string> keys;  // sorted, unique
  std::unordered_map<std::string, strong_revision> watched;
};

/// A change seen by node.watch(), with the client whose command caused it (0 = none:
/// another thread, another node, or an embedding service).
struct pending_event {
  change_event ev;
  std::uint64_t origin = 0;
};

/// A slow command (an L1 miss, a quorum, a remote storage round trip) handed to a worker
/// thread. It owns copies of everything it reads: the client may close meanwhile.
struct job {
  std::uint64_t client_id = 0;
  const command_def* cmd = nullptr;
  std::chrono::steady_clock::time_point started;  // for the command's latency
  std::vector<std::string> argv;
  client shadow;    // the client's protocol and tracking flags, copied
  std::string out;  // the rendered reply
  std::uint64_t hits = 0, misses = 0;
  std::vector<pending_event> events;  // changes it raised, handled after its reply
  std::unique_ptr<strong_tx> tx;      // an EXEC over strong keys instead of cmd
  /// A WATCH of strong keys: each key's revision as read (registered by the loop).
  std::vector<std::pair<std::string, strong_revision>> watch_snapshot;
  /// The worker only prepared the command (WARP.LOCK: the sidecar's session): the loop runs
  /// it again instead of replying.
  bool rerun = false;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

class server;

/// What a command handler gets.
struct context {
  server& srv;
  client& c;
  resp_writer& w;
  std::span<const std::string_view> args;
  kv_access n;         // the node, or a strong transaction's overlay (kv_access.hpp)
  job* j = nullptr;    // set on a worker thread
  bool defer = false;  // set by a handler on the loop thread: run me on a worker
  bool waits = false;  // set by a handler that answers later without a worker (WARP.LOCK)

  void hit() noexcept;
  void miss() noexcept;
};

using handler = void (*)(context&);

struct command_def {
  std::string_view name;   // lower case
  int arity;               // Redis convention: N exact, -N at least N
  std::string_view flags;  // space separated, for COMMAND
  int first_key, last_key, step;
  handler fn;
  bool no_auth = false;    // allowed before AUTH
  bool in_pubsub = false;  // allowed in RESP2 subscribed mode
  std::string_view group = "generic";
  std::string_view summary = "";
};

/// Transaction commands (tx_commands.cpp).
void cmd_multi(context& ctx);
void cmd_exec(context& ctx);
void cmd_discard(context& ctx);
void cmd_watch(context& ctx);
void cmd_unwatch(context& ctx);

/// The command table (resp_commands.cpp).
const std::vector<command_def>& commands();
const command_def* find_command(std::string_view name);
/// Plain `SET k v` commands of one client's pipeline as one node.set_many, replying to
/// each in order (resp_commands.cpp).
void run_set_batch(node& n, resp_writer& w, std::span<const kv_write> batch);
/// One INCR/DECR/INCRBY/DECRBY: the node.update callback and the reply.
struct incr_step {
  std::string_view key;
  std::int64_t delta = 0;
  enum class fail : std::uint8_t { none, not_int, overflow, wrong_type } failed = fail::none;
  std::int64_t value = 0;  // the result
  result<mutation> operator()(const buffer* cur, std::int64_t cur_exp);
  void reply(resp_writer& w, const result<void>& st) const;
};
/// One read-modify-write command of one key: its decision and its reply. The handlers run
/// it through node.update (resp_commands.cpp), the strong pipeline through the Raft
/// engine's write_async (strong_pipeline.cpp), where the decision runs on a CAF thread,
/// once per attempt: so a command answers the same bytes on either path. It owns its
/// arguments (the input buffer moves on while it is in flight) and resets what it
/// records at each call.
struct rmw_step {
  virtual ~rmw_step() = default;
  virtual result<mutation> operator()(const buffer* cur, std::int64_t cur_exp) = 0;
  virtual void reply(resp_writer& w, const result<void>& st) const = 0;
  /// False: decides without the current value (a plain SET with an expiry).
  virtual bool reads() const noexcept { return true; }
};
/// The step of a one-key string command: INCR, DECR, INCRBY, DECRBY, SETNX, GETSET, GETDEL,
/// APPEND, DEL/UNLINK of one key, SET with options but LEASE. Null for anything else (or a
/// wrong argument count), or with `failed` set and the error reply written to `w` when its
/// arguments are wrong (resp_commands.cpp).
std::unique_ptr<rmw_step> make_rmw_step(std::span<const std::string_view> args, resp_writer& w,
                                        bool& failed);
/// Pipelined INCR-family commands of one client as one node.update_many, replying to each
/// in order (resp_commands.cpp).
void run_incr_batch(node& n, resp_writer& w, std::span<incr_step> steps);
/// A GET's reply exactly as the GET handler renders it (resp_commands.cpp): the stored
/// string, a null when absent, WRONGTYPE for another type, the error otherwise.
void reply_get_outcome(resp_writer& w, const result<buffer>& r);
/// A failed command's error reply as every handler renders it (resp_commands.cpp).
void reply_failure(resp_writer& w, const error& e);

/// The sidecar's own lease for locks taken without SESSION (lock_commands.cpp): granted on
/// first use, kept alive by a thread of its own every TTL/3 (a keep-alive waits on a Raft
/// round trip: not on the loop), revoked on stop.
class coord_session_keeper {
 public:
  static constexpr std::chrono::milliseconds ttl{10000};
  explicit coord_session_keeper(node& n) : n_(n) {}
  ~coord_session_keeper() { stop(); }
  result<lease_id> get();
  /// The session if there is one now (0: none yet), without waiting: the loop thread.
  lease_id current();
  void stop();
  /// The loop thread, handing a WARP.LOCK without SESSION or OWNER of connection `conn` to
  /// a worker: the lock belongs to the connection, released when it closes.
  void handing_over(std::uint64_t conn);
  /// The worker, when that WARP.LOCK is over (`held`: it got the lock).
  void finished(std::uint64_t conn, bool held);
  /// The loop thread, when a connection closes: cheap; the release (a Raft round trip)
  /// runs on this keeper's thread (lock_commands.cpp).
  void connection_closed(std::uint64_t conn);

 private:
  void run();
  void release(std::uint64_t conn, lease_id session);
  node& n_;
  std::mutex mtx_;
  std::condition_variable cv_;
  lease_id id_ = 0;
  bool stopping_ = false;
  std::thread thread_;
  struct tracked {
    std::uint32_t in_flight = 0;  ///< its WARP.LOCKs on workers
    bool closed = false;
  };
  std::unordered_map<std::uint64_t, tracked> tracked_;  ///< by connection id
  std::vector<std::uint64_t> to_release_;               ///< closed, not released yet
};

class server final : public resp_server {
 public:
  server(node& n, resp_options options);
  ~server() override;

  result<std::uint16_t> bind();
  void start_thread();

  void stop() override;
  std::uint16_t port() const override { return port_; }
  std::uint16_t tls_port() const override { return tls_port_; }
  resp_stats stats() const override;

  /// A failed AUTH/HELLO AUTH of `c` (resp_commands.cpp): counts it, pauses the client
  /// (growing delay) or, past the limit, closes it once the reply is out.
  void auth_failed(client& c);

  // -- for command handlers ------------------------------------------------------------
  node& the_node() noexcept { return node_; }
  const resp_options& options() const noexcept { return options_; }
  client* find_client(std::uint64_t id);
  const std::unordered_map<std::uint64_t, std::unique_ptr<client>>& clients() const {
    return clients_;
  }
  /// Queues `c` for writing at the end of this loop iteration.
  void mark_pending(client& c);
  /// A reply that completed off the loop (a worker's job, a strong run, a lock wait) was
  /// appended: queue it for writing, or close the client whose output outgrew the limit.
  /// False when it was closed.
  bool reply_ready(client& c);

  // pub/sub
  void subscribe(client& c, std::string_view channel, bool pattern);
  void unsubscribe(client& c, std::string_view channel, bool pattern, bool reply);
  void unsubscribe_all(client& c, bool pattern, bool reply);
  /// Delivers to channel and pattern subscribers; returns how many received it.
  std::size_t publish(std::string_view channel, std::string_view message);

  // client-side caching
  void remember_read(client& c, std::string_view key);
  void tracking_changed(client& c);
  void update_interest();

  /// SCAN cursors: a numeric handle for the key to continue after (clients expect numbers).
  std::uint64_t save_cursor(std::string after);
  /// True when the key's pattern is strong_distributed (the WATCH handler asks too).
  bool key_is_strong(std::string_view key) const;
  bool load_cursor(std::uint64_t cursor, std::string& after);

  std::string info_text(std::span<const std::string_view> sections);

  /// The lease of locks taken without SESSION (lock_commands.cpp). Blocks: workers only.
  result<lease_id> coord_session() { return coord_keeper_.get(); }
  coord_session_keeper& coord_keeper() { return coord_keeper_; }
  /// WARP.LOCK without a worker (lock_commands.cpp): the wait is an actor's; `c` is busy
  /// until its answer is back (finish_locks), and gives up its place if it hangs up.
  void start_lock_wait(client& c, std::string name, lease_id session, std::string owner,
                       std::chrono::milliseconds timeout, bool connection_owned);

  // transactions (tx_commands.cpp)
  /// Called by execute() for a client in MULTI: queues the command (+QUEUED) unless it is
  /// one that runs at once (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET). True = handled.
  bool queue_in_multi(client& c, resp_writer& w, const command_def* cmd,
                      std::span<const std::string_view> args);
  void watch_key(client& c, std::string_view key);
  void unwatch_all(client& c);
  void discard_transaction(client& c);
  /// False when the transaction is over strong keys and was handed to a worker (the
  /// handler then defers: c.pending_tx holds it).
  bool exec_transaction(client& c, resp_writer& w);
  /// EXEC of a transaction over no strong key: back to back on the loop.
  void run_plain_transaction(client& c, resp_writer& w,
                             const std::vector<client::queued_command>& queued);
  /// EXEC over strong keys on a worker: read, evaluate, propose one batch, retry.
  void run_strong_tx(job& j);
  /// WATCH of strong keys on a worker: reads their bytes into j.watch_snapshot.
  void read_strong_watch(job& j, std::span<const std::string_view> keys, resp_writer& w);
  /// The loop's part of a finished strong WATCH: registers the keys and their bytes.
  void finish_strong_watch(client& c, job& j);
  /// Marks the clients watching what `ev` changed.
  void touch_watched(const change_event& ev);

  // statistics
  std::uint64_t total_connections = 0;
  std::uint64_t total_commands = 0;
  std::uint64_t rejected_connections = 0;
  std::uint64_t keyspace_hits = 0;
  std::uint64_t keyspace_misses = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t output_limit_disconnects = 0;
  std::uint64_t idle_disconnects = 0;
  std::int64_t started_ms = 0;
  // Read by stats() from other threads (the admin HTTP endpoint).
  std::atomic<std::uint64_t> auth_failures{0};
  std::atomic<std::uint64_t> auth_disconnects{0};
  std::atomic<std::uint64_t> client_memory_disconnects{0};
  std::atomic<std::uint64_t> tls_handshake_failures{0};
  std::atomic<std::uint64_t> client_memory_gauge{0};
  std::atomic<std::uint64_t> clients_gauge{0};
  std::atomic<std::uint64_t> tracked_keys_gauge{0};
  std::size_t client_memory() const noexcept { return client_memory_; }

  /// Records one command's latency (null cmd: a name not in the table) and, when the
  /// reply in `reply` from `from` on is an error, its kind. Loop thread only.
  void meter(const command_def* cmd, std::chrono::steady_clock::duration took,
             const std::string& reply, std::size_t from) noexcept;
  struct metered_scope;

 private:
  void run();
  /// Binds one listener; returns its fd and port.
  result<std::pair<int, std::uint16_t>> bind_one(const std::string& listen);
  void on_accept(int listen_fd, bool tls);
  /// Drives a TLS handshake; false when the client was closed.
  bool tls_handshake(client& c);
  /// recv() or SSL_read into c.in; <0 = closed, 0 = nothing now, >0 = bytes.
  long read_some(client& c, std::size_t want);
  void account(client& c) noexcept;
  /// Over max_client_memory: disconnects the biggest clients until under it.
  void enforce_client_memory();
  void resume_paused();
  void on_readable(client& c);
  void process_input(client& c);
  void execute(client& c, std::span<const std::string_view> args);
  /// Queues a plain write of a pipeline into the batch; false = run it as usual.
  bool try_batch(client& c, std::span<const std::string_view> args);
  /// Runs the queued batch of `c` and writes its replies.
  void run_batch(client& c);
  void flush(client& c);
  void close_client(client& c);
  void start_lingering_close(client& c);
  void discard_input(client& c);
  void expire_lingering();
  void drain_remote_events();
  void dispatch_events();
  void handle_event(const pending_event& e);
  /// A gap in a peer's stream: invalidates what trackers may hold of eventual keys.
  void distrust_tracked();
  void send_invalidation(client& tracker, const std::string* key);
  void deliver_keyspace(const change_event& ev);
  void check_idle();
  /// True when the command must not run on the loop thread (see docs/sidecar.md).
  bool needs_worker(const command_def* cmd, std::span<const std::string_view> args);
  void refresh_patterns();
  void start_job(client& c, const command_def* cmd, std::span<const std::string_view> args);
  /// Hands queued jobs to the node's executor while fewer than max_running_jobs run
  /// (jobs_mtx_ held).
  void dispatch_jobs();
  /// One slow command, on an executor thread.
  void run_job(std::unique_ptr<job> j);
  /// Queues a finished job's reply for the loop and wakes it.
  void job_done(std::unique_ptr<job> j);
  void finish_jobs();
  void set_events(client& c);
  // Pipelined strong commands without a worker (strong_pipeline.cpp).
  /// Starts `args` on the Raft engine as part of c's open run (opening one if needed);
  /// false = not such a command, or it must wait for the run's replies.
  bool take_strong(client& c, std::span<const std::string_view> args);
  /// The step of a typed write of one strong key (LPUSH, ZADD, HSET, EXPIRE...): its own
  /// handler evaluated against the value the engine read; null for other commands or a
  /// wrong argument count (the ordinary path answers those).
  std::shared_ptr<rmw_step> make_handler_step(const command_def* cmd,
                                              std::span<const std::string_view> args, int proto);
  /// DEL/UNLINK of several strong keys in a run: one read-modify-write per key, one reply.
  void take_strong_del(std::span<const std::string_view> keys,
                       std::function<void(std::string, int)> deliver, int proto);
  /// No more commands join c's open run: c is busy until its replies are in.
  void close_run(client& c);
  /// Completions of strong runs, from the inbox (the loop's wake-up).
  void finish_strong();
  /// Every slot of c's run is filled: appends the replies in order and resumes c.
  void complete_run(client& c);
  /// Answers of WARP.LOCK waits, from the inbox (the loop's wake-up; lock_commands.cpp).
  void finish_locks();
  void watch_expiry(std::string_view key);
  void fire_expirations();

  node& node_;
  coord_session_keeper coord_keeper_{node_};
  resp_options options_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::shared_ptr<tls_context> tls_;
  bool tls_on_main_ = false;  // TLS on listen_fd_ itself
  int tls_listen_fd_ = -1;
  std::uint16_t tls_port_ = 0;
  std::size_t client_memory_ = 0;  // sum of clients' mem_accounted
  /// TLS clients with decrypted input OpenSSL holds: epoll will not report it.
  std::vector<std::uint64_t> tls_pending_;
  /// Clients paused after a failed AUTH: (resume time, id).
  std::priority_queue<std::pair<std::int64_t, std::uint64_t>,
                      std::vector<std::pair<std::int64_t, std::uint64_t>>, std::greater<>>
      paused_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::mutex stop_mtx_;

  std::int64_t loop_now_ms_ = 0;
  bool busy_ = false;  ///< the last epoll_wait found work: poll briefly before blocking
  std::uint64_t next_client_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<client>> clients_;
  // Per command (by position in commands(), the last one for unknown names): latency and
  // calls. Written on the loop thread, read by stats() from the admin endpoint's.
  std::unique_ptr<latency_histogram[]> command_latency_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> errors_by_kind_;
  // Commands of the pending pipelined batch (try_batch), timed when it runs.
  std::vector<const command_def*> batch_cmds_;
  std::vector<client*> pending_;
  std::vector<std::unique_ptr<client>> graveyard_;
  /// Clients in a lingering close, oldest first: (deadline ms, client id).
  std::deque<std::pair<std::int64_t, std::uint64_t>> lingering_;
  std::vector<std::string_view> argv_;  // reused per command
  // Consecutive plain `SET k v` of one client's read buffer, run as one node.set_many when
  // another command comes or the buffer is parsed. Their views point into the client's
  // input buffer, where the parser leaves every argument (inline ones are unescaped in
  // place): process_input runs the batch before it drops or moves those bytes. Only while
  // nobody subscribes or tracks: then a write raises no event this sidecar handles, so
  // batching changes nothing a client can see but the speed.
  std::vector<kv_write> set_batch_;
  std::vector<incr_step> incr_batch_;  // the same for INCR, DECR, INCRBY, DECRBY
  // ... and for LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP ZADD (typed_commands.hpp)
  std::vector<std::unique_ptr<typed_write>> typed_batch_;
  bool batch_empty() const noexcept {
    return set_batch_.empty() && incr_batch_.empty() && typed_batch_.empty();
  }
  static constexpr std::size_t max_batch = 512;

  // pub/sub registry
  std::unordered_map<std::string, std::unordered_set<client*>, string_hash, std::equal_to<>>
      channels_;
  std::unordered_map<std::string, std::unordered_set<client*>, string_hash, std::equal_to<>>
      patterns_;

  // tracking: key -> ids of clients that read it (default mode); BCAST clients by id
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>, string_hash, std::equal_to<>>
      tracked_;
  std::unordered_set<std::uint64_t> bcast_clients_;
  std::size_t tracking_clients_ = 0;

  // WATCH: key -> ids of clients watching it.
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>, string_hash, std::equal_to<>>
      watched_;

  // Expiries of keys someone may care about (tracked reads, BCAST and keyspace listeners):
  // the node reports no `expired` events, so the sidecar notices them itself.
  using expiry_entry = std::pair<std::int64_t, std::string>;
  std::priority_queue<expiry_entry, std::vector<expiry_entry>, std::greater<>> expiries_;

  // SCAN cursors
  std::unordered_map<std::uint64_t, std::string> cursors_;
  std::deque<std::uint64_t> cursor_order_;
  std::uint64_t next_cursor_ = 1;

  // Change events. Local ones (raised by our own commands on this thread) need no lock.
  watch_id watch_ = 0;
  std::uint64_t current_client_ = 0;
  std::vector<pending_event> local_events_;
  /// What a watch callback on another thread touches. Shared with the callback so that a
  /// notification racing with stop() (node.unwatch does not wait for callbacks already
  /// running) never reaches a destroyed server.
  struct inbox {
    std::atomic<bool> interest{false};  // anyone subscribed or tracking?
    std::mutex mtx;
    std::vector<pending_event> events;
    std::vector<strong_done> strong;  // completions of strong runs (strong_pipeline.cpp)
    std::vector<lock_done> locks;     // answers of WARP.LOCK waits (lock_commands.cpp)
    int wake_fd = -1;  // -1 once closed (under mtx)
    /// Held shared while a typed write's handler runs on a CAF thread (its context names
    /// the server); stop() clears `alive` under it exclusively before the server goes.
    std::shared_mutex alive_mtx;
    bool alive = true;
  };
  std::vector<strong_done> scratch_strong_;
  std::vector<lock_done> scratch_locks_;
  /// WARP.LOCK waits in flight, by client id (one per client: it is busy meanwhile). Kept
  /// until the answer, also for a client that closed: a grant that reaches no one is
  /// released (lock_commands.cpp).
  struct lock_wait {
    std::uint64_t id = 0;
    std::chrono::steady_clock::time_point started;
    std::function<void()> cancel;  // the waiter gives up (the client went away)
    std::string name, owner;
    lease_id session = 0;
    bool connection_owned = false;
  };
  std::unordered_map<std::uint64_t, lock_wait> lock_waits_;
  std::uint64_t next_lock_wait_ = 1;
  std::uint64_t next_run_id_ = 1;
  /// Commands answered through strong runs, and the runs (INFO, tests).
  std::uint64_t strong_run_commands_ = 0;
  std::uint64_t strong_runs_ = 0;
  std::shared_ptr<inbox> inbox_ = std::make_shared<inbox>();

  // Slow commands run on the node's executor (its one pool for blocking work), at most
  // max_running_jobs at once: a flood of them must not take every executor thread from
  // what the node posts there itself (range-owner fetches for peers, control requests),
  // or a peer's misses would stall until they time out. Jobs beyond the cap wait in jobs_;
  // finished ones in done_ (the loop is
  // woken through wake_fd_, like for remote events).
  static constexpr std::size_t max_running_jobs = 4;
  bool remote_storage_ = false;  // PostgreSQL: every storage call is a network round trip
  bool any_strong_ = true;       // some pattern (or the default) is strong_distributed
  std::int64_t patterns_checked_ms_ = 0;
  std::mutex jobs_mtx_;
  std::condition_variable jobs_cv_;  // stop() waits on it for the running jobs
  std::deque<std::unique_ptr<job>> jobs_;
  std::size_t jobs_running_ = 0;
  bool jobs_stopping_ = false;
  std::mutex done_mtx_;
  std::vector<std::unique_ptr<job>> done_;
  std::vector<std::unique_ptr<job>> scratch_done_;
  std::vector<pending_event> scratch_events_;
};

inline void context::hit() noexcept {
  if (j)
    ++j->hits;
  else
    ++srv.keyspace_hits;
}
inline void context::miss() noexcept {
  if (j)
    ++j->misses;
  else
    ++srv.keyspace_misses;
}

}  // namespace warp::sidecar::detail
