// The state the node facade (runtime/node) and the consistency modes share: configuration,
// L1, storage, patterns, the clock, the read-through coalescer, the watchers, the counters,
// the node's one executor, and the parts of each mode (cluster, strong coordinator, write
// path). node::impl extends it with what only the facade uses (the control actor, the node
// port). The modes see this, never warp::node, so the node facade is the layer above them.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "merge/hlc.hpp"
#include "merge/policy.hpp"
#include "runtime/core/epoch.hpp"
#include "runtime/core/hot_keys.hpp"
#include "runtime/core/work_pool.hpp"
#include "runtime/modes/mode.hpp"
#include "runtime/modes/write_path.hpp"
#include "runtime/readthrough/coalescer.hpp"
#include "warp/config.hpp"
#include "warp/l1.hpp"
#include "warp/pattern.hpp"
#include "warp/storage.hpp"
#include "warp/write.hpp"

namespace caf {
class actor_system_config;
}

namespace warp::detail {

class cluster;
class strong_coordinator;

/// Where committed local changes of `+federated` keys go (federation/federation_actor.hpp,
/// docs/federation.md). Called by the write path under the key's write stripe, on the
/// writer's thread: it must only queue, never block. A change the federation itself
/// applied (from another region) is not handed here: the federation forwards it itself.
class federation_sink {
 public:
  virtual ~federation_sink() = default;
  virtual void local_change(const committed_change& c, const key_policy& policy) = 0;
};

struct node_state {
  node_config config;
  std::string name;
  std::uint32_t id = 0;

  // The actor system: either owned (own_config/own_system) or the host's.
  std::unique_ptr<caf::actor_system_config> own_config;
  std::unique_ptr<caf::actor_system> own_system;
  caf::actor_system* system = nullptr;

  std::unique_ptr<l1_store> l1;
  std::shared_ptr<warp::storage> store;
  pattern_registry patterns;
  hybrid_clock clock;
  /// Merge policies of federated keys (node::register_merge, node::bind_merge).
  merge::registry merges;
  fetch_coalescer coalescer;

  // Watchers: a copy-on-write list published through an atomic pointer (null = none) and
  // read under an epoch pin (runtime/core/epoch.hpp), so notifying takes no lock, touches no
  // shared reference count and never holds a lock while calling out. watch()/unwatch()
  // replace the list under watchers_mtx and retire the old one to watcher_garbage.
  using watcher_list = std::vector<std::pair<watch_id, std::function<void(const change_event&)>>>;
  std::mutex watchers_mtx;
  std::atomic<watcher_list*> watchers{nullptr};
  garbage_list watcher_garbage;  // under watchers_mtx
  std::atomic<watch_id> next_watch_id{1};
  ~node_state();

  node_latencies latencies;  // get/set (runtime/node) and propagation (cluster)

  std::atomic<std::uint64_t> storage_fetches{0};
  std::atomic<std::uint64_t> storage_errors{0};
  std::atomic<std::uint64_t> storage_writes{0};
  // Stale-on-error and refresh-ahead (write_path, docs/storage.md "Protection").
  std::atomic<std::uint64_t> stale_serves{0};    // reads answered with a stale value
  std::atomic<std::uint64_t> soft_timeouts{0};   // of those, after the soft timeout
  std::atomic<std::uint64_t> refresh_aheads{0};  // background refreshes started
  /// Some pattern (or the default) turns refresh-ahead on: only then does an L1 hit look
  /// at the entry's expiry, so the hit path of every other node stays as it was.
  /// Set at start, and by a run-time pattern that asks for it (never cleared).
  std::atomic<bool> refresh_ahead_on{false};

  /// The hottest keys read here (null when tracking is off): fed by a sample of the
  /// node's reads and of the misses peers send to it as a range owner.
  std::unique_ptr<hot_key_tracker> hot;
  /// Counts a read of `key` for hot-key tracking: one thread-local draw unless sampled.
  void read_seen(std::string_view key) {
    if (hot && hot->sampled()) [[unlikely]]
      hot->record(key, std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now().time_since_epoch()));
  }
  // Warm-up (runtime/modes/warmup.hpp): runs, keys loaded into L1, keys that failed or
  // were absent in storage, and whether one is running now.
  std::atomic<std::uint64_t> warmup_runs{0};
  std::atomic<std::uint64_t> warmup_loaded{0};
  std::atomic<std::uint64_t> warmup_failed{0};
  std::atomic<std::uint64_t> warmup_absent{0};
  std::atomic<int> warmups_running{0};
  std::atomic<bool> stopped{false};

  // The node's one blocking executor (runtime/core/work_pool.hpp): the control actor, the
  // cluster and the async API post to it. Declared before the cluster and the coordinator,
  // so it outlives them; node::stop drains it once they stopped posting.
  std::unique_ptr<work_pool> executor;

  /// The federation's inbox of committed local changes (null = none); set once the
  /// federation started, cleared before it stops.
  std::atomic<federation_sink*> federation{nullptr};

  void notify(const change_event& ev);
  /// notify() for a change made by this node's write path: builds the event only when
  /// somebody watches, in a per-thread event whose key keeps its capacity (no allocation).
  void notify_local(change_event::kind what, std::string_view key, version ver);

  // The cluster (null when the node does not listen). Declared after everything it uses,
  // so it is torn down first.
  std::unique_ptr<detail::cluster> cluster;
  // The strong_distributed coordinator (runtime/modes/strong.hpp): null unless the node is in
  // a cluster. Declared last, so it is torn down first.
  std::unique_ptr<strong_coordinator> strong;
  /// Set by the facade: deletes a lease's attached keys (docs/coordination.md); called on
  /// the executor by the coordination group's leader while the lease's deletes are pending
  /// in the replicated state. True when every key is gone (deleted or already absent): the
  /// leader then clears them; false leaves them pending for a retry.
  std::function<bool(std::uint64_t lease, const std::vector<std::string>& keys)> on_lease_ended;

  /// Read of a key on this node only: L1, else the coalesced storage read-through (no
  /// range-owner hop). What a range owner answers remote misses with.
  result<std::optional<record>> local_read(std::string_view key) { return writes.read_local(key); }

  // The shared read/write path of the storage-backed modes, and the modes. The cluster's
  // and the coordinator's modes exist while they do; declared after them, so torn down
  // first.
  write_path writes{*this};
  std::unique_ptr<consistency_mode> local_mode = make_strong_local_mode(writes);
  std::unique_ptr<consistency_mode> eventual_mode;
  std::unique_ptr<consistency_mode> strong_mode;

  /// The mode that serves a key of `policy`. A mode whose machinery this node does not run
  /// (no cluster: eventual_distributed and strong_distributed) falls back to strong_local.
  consistency_mode& mode_for(const key_policy& policy) noexcept {
    if (policy.consistency == mode::strong_distributed && strong_mode) return *strong_mode;
    if (policy.consistency == mode::eventual_distributed && eventual_mode) return *eventual_mode;
    return *local_mode;
  }
};

}  // namespace warp::detail
