// What the node and the cluster's actors (cluster actor, range actors) have in common, and
// why each part is there. Owned by runtime/modes/cluster; the actors keep the rest (the
// membership table, the peer links, the stream numbering and gap tracking, the batching
// policy, the range map, the bus's delivery handlers) in their own stateful_actor state.
//   - settings: fixed before the actors start, read by any thread without a lock;
//   - host: the node's services the actors call (a small interface, not callbacks);
//   - the outbound queue: writer threads push, the cluster actor drains;
//   - counters: written by the actors, read by stats from any thread;
//   - snapshots (view, ownership): published by the cluster actor, read on the read path
//     (fetch_from_owner, owner_of) and by view/health;
//   - serve_fetches: a test flips it from its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>

#include "bus/batcher.hpp"
#include "bus/envelope.hpp"
#include "bus/sync_bus.hpp"
#include "runtime/core/work_pool.hpp"
#include "runtime/membership/ring.hpp"
#include "warp/cluster.hpp"
#include "warp/config.hpp"
#include "warp/storage.hpp"

namespace warp::actors {

/// Counters behind warp::cluster_stats (relaxed atomics: written by one actor, read by any).
struct cluster_counters {
#define WARP_CLUSTER_COUNTERS(X)                                                                   \
  X(records_published)                                                                             \
  X(records_coalesced)                                                                             \
  X(batches_sent)                                                                                  \
  X(records_sent) X(bytes_sent) X(batches_compressed) X(max_batch_records) X(batch_delay_us_total) \
      X(max_batch_delay_us) X(batches_received) X(records_received) X(records_applied)             \
          X(records_stale) X(decode_errors) X(gaps) X(gap_invalidations) X(owner_fetches)          \
              X(replica_fetches) X(owner_fetch_fallbacks) X(owner_fetches_served)                  \
                  X(heartbeats_sent) X(heartbeats_received) X(batches_immediate)                   \
                      X(batches_delayed) X(batch_delay_current_us) X(arrival_rate_per_s)
#define WARP_DECLARE(name) std::atomic<std::uint64_t> name{0};
  WARP_CLUSTER_COUNTERS(WARP_DECLARE)
#undef WARP_DECLARE
  cluster_stats snapshot() const;
  static void raise_max(std::atomic<std::uint64_t>& slot, std::uint64_t v) {
    auto cur = slot.load(std::memory_order_relaxed);
    while (v > cur && !slot.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }
};

/// Who owns what, as of the last membership change.
struct ownership {
  detail::range_map map;
  /// Cluster actors of the owners (not this node).
  std::unordered_map<std::uint32_t, caf::actor> handles;
};

using detail::work_pool;

/// A key range this node now owns, and who owned it before (0: nobody known).
struct range_takeover {
  std::uint32_t range = 0;
  std::uint32_t previous_owner = 0;
};

/// The node's services the cluster's actors call. The clock calls come from the cluster
/// actor's thread and must not block; local_fetch blocks (L1, else a coalesced storage
/// read) and is only ever called on the work pool.
class cluster_host {
 public:
  virtual ~cluster_host() = default;
  /// The next HLC reading (stamps outgoing batches and heartbeats).
  virtual std::uint64_t clock_now() = 0;
  /// A peer's HLC reading: moves this node's clock past it.
  virtual void clock_observe(std::uint64_t hlc) = 0;
  /// Owner side of the read-through.
  virtual result<std::optional<record>> local_fetch(const std::string& key) = 0;
  /// This node became the owner of `taken` (the cluster actor's thread: must not block;
  /// the warm-up it may start runs on the work pool). docs/hotkeys.md.
  virtual void ranges_taken(std::vector<range_takeover> taken) { (void)taken; }
  /// This node's hot-key list (bus/hot_keys_wire), at most `limit` keys, for a peer taking
  /// over ranges (the cluster actor's thread: a copy under a short lock).
  virtual std::string hot_keys_bytes(std::uint32_t limit) {
    (void)limit;
    return {};
  }
};

/// Where the cluster actor hands what arrives (the sync_bus subscription). Moved into the
/// actor at spawn and called on its thread only.
struct bus_delivery {
  bus::sync_bus::batch_handler on_batch;
  bus::sync_bus::gap_handler on_gap;
  /// A key-pattern table newer than any this actor had (from a peer). Must not block: the
  /// node posts the work (parse, L1, the file) to its executor.
  std::function<void(bus::pattern_table)> on_patterns;
};

struct cluster_context {
  // -- fixed before the actors start (read by any thread without a lock) ------------------
  std::uint32_t self_id = 0;
  std::uint64_t incarnation = 0;
  std::string name;
  std::string address;  ///< what peers should dial (HOST:PORT)
  cluster_options opts;
  std::vector<std::string> seeds;
  bus::wire_limits limits;
  /// False in tests under CAF's test coordinator (no middleman loaded): the actor dials no
  /// address and looks nothing up; the test links the actors itself.
  bool network = true;
  cluster_host* host = nullptr;
  /// The node's blocking executor (it outlives the cluster's actors).
  work_pool* pool = nullptr;
  /// The key-pattern table the node started with, encoded (bus::pattern_table), and its
  /// version; later tables reach the actor as messages (patterns_atom). Empty bytes: the
  /// start table is version (0, 0), which is never sent.
  bus::pattern_version patterns_ver;
  std::string patterns_bytes;
  /// This node's storage identity (warp::storage::identity), sent in every heartbeat;
  /// empty = unknown (no check).
  std::string storage_id;
  /// Some pattern (or the default) is eventual_distributed: members must share storage.
  bool shares_storage = false;

  // -- shared between threads ------------------------------------------------------------
  /// Writer threads push local changes; the cluster actor drains them.
  bus::outbound_queue queue;
  /// Written by the actors, read by stats and metrics from any thread.
  cluster_counters counters;
  /// Test hook, flipped from the test's thread: while false, this node's cluster actor
  /// holds fetch requests unanswered, as a paused (SIGSTOPped) owner would.
  std::atomic<bool> serve_fetches{true};

  /// Published by the cluster actor on every membership change; read on the read path
  /// (ownership_snapshot) and by view/health, off the actor's thread.
  mutable std::mutex snap_mtx;
  std::vector<member_info> view;            ///< guarded by snap_mtx
  std::shared_ptr<const ownership> owners;  ///< guarded by snap_mtx
  std::size_t reachable_peers = 0;          ///< guarded by snap_mtx
  /// Set once by the cluster actor when a member's storage identity differs from ours and
  /// this node is the newer of the two (cluster_view::storage_conflict). Guarded by snap_mtx.
  std::string storage_conflict;

  std::shared_ptr<const ownership> ownership_snapshot() const {
    std::lock_guard<std::mutex> g{snap_mtx};
    return owners;
  }
};

}  // namespace warp::actors
