// warp::node: one Warp node inside a process. Owns L1, the key policies and the storage
// adapter; runs in its own caf::actor_system or in one the host service passes in.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "warp/buffer.hpp"
#include "warp/config.hpp"
#include "warp/coordination.hpp"
#include "warp/error.hpp"
#include "warp/l1.hpp"
#include "warp/merge_fn.hpp"
#include "warp/pattern.hpp"
#include "warp/storage.hpp"
#include "warp/write.hpp"

namespace caf {
class actor_system;
}

namespace warp {

class node;
namespace detail {
class cluster;
cluster* cluster_of(const node& n);
}  // namespace detail
namespace validation {
class core;
}  // namespace validation
namespace merge {
class registry;
}  // namespace merge
namespace detail {
/// The node's merge policies (merge/policy.hpp), for the federation apply path.
merge::registry& merges_of(const node& n);
}  // namespace detail
namespace detail {
/// The node's validator (docs/validator.md), for tests' hooks.
validation::core* validator_of(const node& n);
class strong_raft;
/// The node's strong Raft engine (runtime/modes/strong_raft.hpp), null when it runs none
/// or stopped: for the layers above the node that reach it directly (the sidecar's EXEC
/// over strong keys, the watch API).
strong_raft* strong_raft_of(const node& n);
}  // namespace detail

/// What `node::validate` (and `warpctl validate`) found.
struct validation_report {
  std::uint64_t checked = 0;       ///< cached keys compared with storage
  std::uint64_t inconsistent = 0;  ///< still disagreeing after the grace window
  std::uint64_t healed = 0;        ///< of those, fixed (heal mode)
  std::uint64_t uncached = 0;      ///< keys no longer cached when looked at
  std::uint64_t errors = 0;        ///< keys storage could not be read for
  struct item {
    std::string key;
    std::string finding;  ///< deleted_in_storage, older_than_storage, value_differs, ...
    version l1_version;
    version storage_version;
  };
  std::vector<item> found;  ///< the inconsistent keys, at most 100
};

/// The strong mode on this node, asked of its actors (docs/strong.md, "Operations").
struct strong_status {
  std::string engine;     ///< "raft" or "abd"
  bool answered = false;  ///< false: the actors did not answer in time (see `error`)
  std::string error;
  // -- abd: the range replicas this node holds ------------------------------------------
  std::size_t replicated_ranges = 0;
  std::size_t ready_ranges = 0;  ///< caught up and serving
  std::vector<std::string> waiting_on;
  // -- raft: the groups this node is a member of, and its host's transport ----------------
  struct group {
    std::uint32_t id = 0;
    std::uint64_t member = 0;  ///< this node's member id in the group
    std::string role;          ///< follower, pre_candidate, candidate, leader
    std::uint64_t term = 0;
    std::uint64_t leader = 0;    ///< member id, 0 = none known
    std::string leader_address;  ///< HOST:PORT of the leader, empty when none is known
    std::uint64_t commit = 0;
    std::uint64_t applied = 0;
    std::uint64_t last_index = 0;
    std::size_t voters = 0;
    bool log_failed = false;  ///< the log failed: the group is stopped on this node
    std::uint64_t persists = 0;
    std::uint64_t snapshot_index = 0;  ///< the log's base: entries up to it are compacted
    std::uint64_t snapshots = 0;       ///< compactions since start
    std::uint64_t elections_started = 0;
    std::uint64_t elections_won = 0;
    std::size_t pending_proposals = 0;
    std::size_t pending_reads = 0;
  };
  std::vector<group> groups;
  std::vector<std::uint32_t> missing_groups;  ///< groups that did not answer in time
  struct {
    std::size_t peers_connected = 0;
    std::uint64_t batches_sent = 0;
    std::uint64_t items_sent = 0;
    std::uint64_t batches_received = 0;
    std::uint64_t malformed = 0;
    std::uint64_t undeliverable = 0;
    std::uint64_t forwarded = 0;
    std::uint64_t forwards_served = 0;
    std::uint64_t flushes = 0;
  } host;
  /// Ready as `/readyz` and `warpctl strong status` judge it: the actors answered; abd: every
  /// replicated range caught up; raft: every group here knows a leader, has a working log
  /// and answered in time.
  bool ready() const noexcept;
};

/// Counters of the node beside L1's own.
struct node_stats {
  l1_stats l1;
  std::uint64_t storage_fetches = 0;  ///< reads that reached storage
  std::uint64_t storage_errors = 0;   ///< storage calls that failed
  std::uint64_t coalesced_reads = 0;  ///< misses that joined an in-flight fetch
  std::uint64_t storage_writes = 0;
  /// Storage protection, one entry per limiter/breaker used so far: the node-wide one
  /// (pattern "(node)") and each pattern with its own (docs/storage.md, "Protection").
  struct guard_entry {
    std::string pattern;
    std::string breaker;              ///< closed, open or half_open
    std::uint64_t transitions = 0;    ///< breaker state changes
    std::uint64_t rate_limited = 0;   ///< fetches refused with errc::rate_limited
    std::uint64_t rejected_open = 0;  ///< fetches failed fast with "circuit open"
  };
  std::vector<guard_entry> protection;
  /// The validator (docs/validator.md): totals since start and consistency in nines
  /// (-log10(inconsistent / checked); nullopt = nothing checked in the window).
  struct {
    bool enabled = false;
    std::uint64_t checked = 0;
    std::uint64_t inconsistent = 0;
    std::uint64_t healed = 0;
    std::uint64_t errors = 0;
    std::uint64_t changes_dropped = 0;
    std::uint64_t deleted_in_storage = 0;
    std::uint64_t older_than_storage = 0;
    std::uint64_t value_differs = 0;
    std::uint64_t newer_than_storage = 0;
    std::optional<double> nines_1m, nines_5m, nines_10m;
  } validator;
  std::uint64_t stale_serves = 0;    ///< reads answered with a stale value (stale-on-error)
  std::uint64_t soft_timeouts = 0;   ///< of those, because storage was slower than soft_timeout
  std::uint64_t refresh_aheads = 0;  ///< background refreshes of hot keys near their expiry
  /// Hybrid clock readings from other nodes or regions ignored for being more than
  /// node_config::max_clock_skew ahead, and the furthest ahead one (ms).
  std::uint64_t hlc_remote_skew = 0;
  std::int64_t hlc_max_skew_seen_ms = 0;
  /// Hot-key tracking (docs/hotkeys.md): reads recorded (the sample), halvings, keys listed.
  struct {
    std::uint64_t sampled = 0;
    std::uint64_t decays = 0;
    std::uint64_t tracked = 0;
  } hot_keys;
  /// Warm-ups (on start, on taking over ranges): runs, keys loaded into L1, keys whose
  /// fetch failed (storage error, rate limit, open breaker), keys storage no longer had.
  struct {
    std::uint64_t runs = 0;
    std::uint64_t loaded = 0;
    std::uint64_t failed = 0;
    std::uint64_t absent = 0;
    bool running = false;
  } warmup;
  /// The node port's guard (bus/node_transport): connections accepted, and closed because
  /// they announced a message over the limit, arrived while too many handshakes were
  /// pending, failed the TLS handshake (no certificate, or one the CA did not sign), or
  /// sent a BASP message out of place (e.g. a server handshake to a server).
  struct {
    std::uint64_t accepted = 0;
    std::uint64_t refused_oversize = 0;
    std::uint64_t refused_pending = 0;
    std::uint64_t refused_tls = 0;
    std::uint64_t refused_malformed = 0;
  } node_port;
};

/// The node's run-time key-pattern table (node::pattern_table): what /admin/patterns and
/// `warpctl patterns list` show. Version (0, 0) is the table the node started with.
struct pattern_table_view {
  std::uint64_t version_counter = 0;
  std::uint32_t version_node = 0;  ///< the node that made the change (0: the command line)
  struct item {
    std::string glob;
    std::string spec;  ///< as given (GLOB=MODE[:TTL]+options)
    key_policy policy;
  };
  std::vector<item> patterns;  ///< by glob
  std::string file;            ///< where it is persisted (empty: not persisted)
};
/// {"version":{"counter":N,"node":"%08x"},"file":"...","patterns":[{"glob","spec","mode",
/// "ttl_ms","hydrate"}...]}
std::string to_json(const pattern_table_view& t);
/// One of the node's hottest keys: estimated reads (sampled, halved every half-life).
struct hot_key_entry {
  std::string key;
  std::uint64_t reads = 0;
};

class node {
 public:
  /// Starts a node in an actor system of its own.
  static result<std::unique_ptr<node>> start(node_config config);
  /// Starts a node inside the host's actor system (which must have the middleman loaded
  /// if `config.listen` or peers are set). The system must outlive the node.
  static result<std::unique_ptr<node>> start(caf::actor_system& host, node_config config);

  ~node();  ///< calls stop()
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Stops listeners and actors, flushes storage. Idempotent.
  void stop();

  // -- the byte API (warp::cache<T> is a typed view over it) ------------------------

  /// L1, then read-through from storage on a miss (concurrent misses of one key share
  /// one fetch). errc::not_found when absent.
  result<buffer> get(std::string_view key);
  /// L1 only: the value when this node caches it, else nullopt. Never leaves the process
  /// and never blocks on I/O (strong_distributed keys, never cached, always miss), so it
  /// is safe on a CAF scheduler thread.
  std::optional<buffer> get_if_present(std::string_view key);
  /// get_if_present without a copy or a reference count: calls `fn(std::string_view)` on
  /// a hit while L1 keeps the bytes alive (keep it short). True on a hit.
  template <class F>
  bool read_if_present(std::string_view key, F&& fn) {
    return read_if_present_impl(key, &fn, [](void* f, std::string_view bytes) {
      (*static_cast<std::remove_reference_t<F>*>(f))(bytes);
    });
  }
  /// get() of several keys: one result per key, in order (L1 hits first, then each miss).
  std::vector<result<buffer>> get_many(std::span<const std::string_view> keys);
  /// Like get, but a miss is filled by `load` (coalesced) and written through to storage.
  result<buffer> get_or_load(std::string_view key, const loader& load);
  /// Write-through: storage first, then L1. `ttl` overrides the key's policy TTL
  /// (0 = no expiry). On a storage error L1 keeps no new value.
  result<void> set(std::string_view key, std::string_view value,
             std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  /// Like set with an absolute expiry in ms since the Unix epoch (0 = never).
  result<void> set_at(std::string_view key, std::string_view value, std::int64_t expires_at_ms);
  /// Several set_at in one pass: every key is validated first (a bad key or value writes
  /// nothing), then the write stripes of all keys are taken once and each pair is written
  /// through in order. Each key is atomic and ordered with every other write of it; the
  /// batch is not a transaction (a storage error stops it after the pairs before). A pair
  /// followed by a later pair for the same key reaches watchers but not storage, L1 or the
  /// cluster (the later value replaces it at once).
  result<void> set_many(std::span<const kv_write> items);
  /// One key of update_many (warp/write.hpp).
  using update_item = warp::update_item;
  /// Several update() calls in one pass, in order: the write stripes of all keys are taken
  /// once, each key is read from storage once, and items of the same key see the decisions
  /// of the items before them; each key's final value is then written through once, and
  /// watchers see every change after it. Atomic per key and ordered with every other write
  /// of it, as update(); not a transaction across keys. `out[i]` (out.size() >=
  /// items.size()) is item i's status: an error from its callback, its key or value, or
  /// from storage (then no item of that key in the batch took effect).
  void update_many(std::span<const update_item> items, std::span<result<void>> out);
  /// Removes from storage and L1. Removing an absent key succeeds.
  result<void> remove(std::string_view key);
  /// Atomic read-modify-write of one key, ordered with every other write of this node to
  /// that key. `fn(current, expires_at_ms)` sees the current value (null when absent) and
  /// decides; the result is written through to storage, then L1. Returns the decision.
  result<mutation> update(
      std::string_view key,
      const std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)>& fn);
  /// The expiry of a live key in ms since the Unix epoch (0 = none); errc::not_found if absent.
  result<std::int64_t> expiry(std::string_view key);
  /// Cursor walk over every key (storage's key space): up to `count` keys after `after`
  /// that match `glob` (empty = all). Continue with the last key returned; an empty page
  /// with `done` ends the walk.
  struct scan_page {
    std::vector<std::string> keys;
    std::string next_after;
    bool done = false;
  };
  result<scan_page> scan(std::string_view after, std::size_t count, std::string_view glob = {});
  /// Number of keys in storage.
  result<std::size_t> key_count();
  /// Removes every key from storage and L1.
  result<void> clear();

  /// Calls `fn` after every change applied on this node (local or remote), on the thread
  /// that applied it: keep it short (enqueue and return).
  watch_id watch(std::function<void(const change_event&)> fn);
  void unwatch(watch_id id);

  // -- the async API --------------------------------------------------------------------
  //
  // Everything that may leave the process (storage, a peer, a quorum), without blocking
  // the caller: the call runs on the node's blocking executor (node_config::
  // executor_threads) and its outcome comes back through the callback, on an executor
  // thread (or at once, on the caller's thread, when L1 answers a get), or through the
  // future. From inside a CAF actor, pass a callback that sends the outcome to the actor
  // (examples/async_in_actor.cpp); never wait on the future on a scheduler thread. After
  // stop() the outcome is errc::shutting_down.

  void get_async(std::string key, std::function<void(result<buffer>)> done);
  std::future<result<buffer>> get_async(std::string key);
  void get_many_async(std::vector<std::string> keys,
                      std::function<void(std::vector<result<buffer>>)> done);
  std::future<std::vector<result<buffer>>> get_many_async(std::vector<std::string> keys);
  void set_async(std::string key, std::string value, std::optional<std::chrono::milliseconds> ttl,
                 std::function<void(result<void>)> done);
  std::future<result<void>> set_async(std::string key, std::string value,
                                std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  void remove_async(std::string key, std::function<void(result<void>)> done);
  std::future<result<void>> remove_async(std::string key);
  void update_async(
      std::string key,
      std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)> fn,
      std::function<void(result<mutation>)> done);
  std::future<result<mutation>> update_async(
      std::string key,
      std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)> fn);
  void get_or_load_async(std::string key, loader load, std::function<void(result<buffer>)> done);
  std::future<result<buffer>> get_or_load_async(std::string key, loader load);

  /// True when the key has a value (L1, else storage).
  result<bool> contains(std::string_view key);
  /// Loads `keys` from storage into L1 (batch fetch); returns how many were found.
  result<std::size_t> warmup(std::span<const std::string> keys);

  // -- policies ------------------------------------------------------------------------

  /// Registers `glob` with a mode and TTL (`register` is a C++ keyword).
  result<void> register_pattern(std::string_view glob, mode consistency,
                          std::chrono::milliseconds ttl = std::chrono::milliseconds{0},
                          bool hydrate = false);
  key_policy policy(std::string_view key) const;
  /// The registered patterns (read-only: register_pattern() adds one).
  const pattern_registry& patterns() const noexcept;
  /// Sets (adds or replaces) one pattern of the run-time table from a spec as `--pattern`
  /// takes it (pattern_registry::parse_spec): applied here at once, persisted under the
  /// data dir, and on every member of the cluster (newest version wins). Keys whose mode,
  /// TTL or hydration change lose their L1 entries (docs/keyspaces.md). Blocks on the file write:
  /// not for a CAF scheduler thread.
  result<void> set_pattern(std::string_view spec);
  /// Removes a pattern of the run-time table (errc::not_found if it has none by that glob).
  result<void> remove_pattern(std::string_view glob);
  pattern_table_view pattern_table() const;

  // -- merge policies of federated keys (docs/merge.md) ------------------------------------

  /// Registers a custom merge function under `name` (a pattern names it with
  /// `+federated=NAME`). When `name` is a glob ("cart:*"), federated keys it matches merge
  /// with `fn` unless their pattern names a policy. `fn` must be deterministic,
  /// commutative, associative and idempotent, do no I/O and return quickly
  /// (warp/merge_fn.hpp). Refused: an empty name, a built-in's (lww, counter, set, map).
  /// Registering a name again replaces its function.
  result<void> register_merge(std::string_view name, merge_fn fn);
  /// Binds federated keys matching `glob` to a policy by name (lww, counter, set, map or a
  /// registered function) unless their pattern names one. A name registered later is
  /// fine: it is resolved when a key of the glob first merges (an unknown name is then an
  /// error, and the key keeps its local value).
  result<void> bind_merge(std::string_view glob, std::string_view policy);

  // -- parts (read-only views) -----------------------------------------------------------

  /// This node's L1, to inspect (info, contains, stats, for_each). Reads that count as
  /// hits go through get_if_present/read_if_present; writes through the node.
  const l1_store& l1() const noexcept;
  /// The storage adapter, to inspect (describe, memory, error_counts).
  const warp::storage& storage() const noexcept;
  /// Asks the storage adapter whether it is healthy (warp::storage::check).
  result<void> check_storage();
  /// Drops `key` from this node's L1 only (storage and peers untouched): for a storage
  /// adapter that evicts on its own and must keep L1 from serving what it dropped.
  bool evict_from_l1(std::string_view key);
  node_stats stats() const;
  /// Latency histograms of get, set and change propagation (for /metrics).
  const node_latencies& latencies() const noexcept;
  /// The hottest keys read on this node, hottest first (at most `limit`, 0 = all tracked;
  /// empty when tracking is off). docs/hotkeys.md.
  std::vector<hot_key_entry> hot_keys(std::size_t limit) const;
  const node_config& config() const noexcept;
  /// This node's id (stamped into versions it writes).
  std::uint32_t id() const noexcept;
  /// The next version for a local write (hybrid logical clock).
  version next_version() noexcept;
  caf::actor_system& system() noexcept;
  /// The port the node-to-node listener is bound to (0 when not listening).
  std::uint16_t listen_port() const noexcept;
  /// Runs a validation pass now (docs/validator.md): every cached key matching `glob`
  /// (empty = all; at most validator.max_batch, drawn at random beyond) is compared with
  /// storage by version, and what still disagrees after the grace window is counted,
  /// logged and healed per its pattern's mode (keys whose mode is off: counted only).
  /// Blocks on storage and the grace window: not on a CAF scheduler thread.
  result<validation_report> validate(std::string_view glob = {});
  /// The federation's state as JSON (what warpd's /admin/federation serves): region,
  /// links, their state, queue depth, lag, counters. {"enabled":false} without a region.
  std::string federation_json() const;
  /// The federation's lines of /metrics (Prometheus text; empty without a region).
  std::string federation_metrics() const;
  /// Starts an anti-entropy pass with every linked region now.
  void federation_repair();
  /// The validator's state as JSON (what warpd's /admin/validator serves).
  std::string validator_json() const;
  /// The strong mode's state (nullopt: the node runs no strong mode), asked of its actors:
  /// blocks up to `timeout`, so not on a CAF scheduler thread. /metrics, /readyz,
  /// /admin/strong and `warpctl strong status` show it.
  std::optional<strong_status> strong_state(
      std::chrono::milliseconds timeout = std::chrono::milliseconds{1000}) const;

  // -- coordination: leases, fenced locks (docs/coordination.md) ------------------------
  // On the cluster's coordination group (a Raft group): errc::unsupported without the
  // strong Raft engine. Blocking: call from application threads or the executor, never
  // from a CAF scheduler thread. `owner` tells holders inside one session apart (empty:
  // "default"). Lease and lock names are bounded like keys.

  result<lease_id> lease_grant(std::chrono::milliseconds ttl);
  /// Resets the lease's countdown to its full TTL; answers the TTL.
  result<std::chrono::milliseconds> lease_keepalive(lease_id id);
  /// Ends the lease now: its locks are released, its attached keys deleted.
  result<void> lease_revoke(lease_id id);
  result<lease_status> lease_time_to_live(lease_id id);
  result<std::vector<lease_id>> leases();
  /// A normal set (any mode), then the key is attached to the lease: when the lease ends
  /// the key is deleted through the node's delete path (L1 everywhere, storage, replicas).
  /// A lease that is gone by then: the key is deleted again and errc::not_found returned.
  result<void> set(std::string_view key, std::string_view value, lease_id lease);
  /// Waits up to `timeout` (0: not at all) in FIFO order; the token of the grant.
  /// errc::timeout when the wait ran out (the place in the queue is given up).
  result<fencing_token> lock(std::string_view name, lease_id session,
                             std::chrono::milliseconds timeout, std::string_view owner = {});
  /// errc::conflict when another holder has it.
  result<fencing_token> try_lock(std::string_view name, lease_id session,
                                 std::string_view owner = {});
  /// errc::conflict unless `token` is the caller's current hold.
  result<void> unlock(std::string_view name, lease_id session, fencing_token token,
                      std::string_view owner = {});
  result<lock_status> lock_info(std::string_view name);
  /// Writes the fenced register `key` only while `lock` is held with exactly `token`
  /// (errc::conflict otherwise): a holder that lost the lock cannot write.
  result<void> set_if_fence(std::string_view key, std::string_view value, std::string_view lock,
                            fencing_token token);
  result<std::string> get_fenced(std::string_view key);
  /// Async forms: `done` runs on a CAF thread (must not block); lock waits are not offered
  /// async (try_lock is).
  void lease_grant_async(std::chrono::milliseconds ttl,
                         std::function<void(result<lease_id>)> done);
  void lease_keepalive_async(lease_id id, std::function<void(result<std::chrono::milliseconds>)> done);
  void try_lock_async(std::string name, lease_id session, std::string owner,
                      std::function<void(result<fencing_token>)> done);

  /// Runs `job` on the node's executor, its one pool for blocking work (storage calls,
  /// quorum waits); for a host's own blocking work that must not run on a CAF scheduler
  /// thread (the RESP sidecar's slow commands go there). False once stop() began: the job
  /// is not run. Queued jobs run before stop() returns.
  bool post(std::function<void()> job);

  struct impl;

 private:
  explicit node(std::unique_ptr<impl> impl);
  static result<std::unique_ptr<node>> start_impl(std::unique_ptr<impl> p);
  bool read_if_present_impl(std::string_view key, void* ctx, void (*fn)(void*, std::string_view));
  bool try_write_async(std::string_view key, const std::string* value,
                       std::optional<std::chrono::milliseconds> ttl,
                       std::function<void(result<void>)>& done);
  result<mutation> write(std::string_view key,
                         const std::function<result<mutation>(const buffer*, std::int64_t)>& fn,
                         bool read_current);
  friend detail::cluster* detail::cluster_of(const node& n);
  friend validation::core* detail::validator_of(const node& n);
  friend merge::registry& detail::merges_of(const node& n);
  friend detail::strong_raft* detail::strong_raft_of(const node& n);
  std::unique_ptr<impl> impl_;
};

}  // namespace warp
