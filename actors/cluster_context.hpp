// What the cluster actor, the range actors and the CAF bus share with the node: fixed
// settings, the outbound queue, callbacks into the node, counters, and the snapshots
// (view, ownership) the actor publishes for other threads. Owned by runtime/modes/cluster.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>

#include "bus/batcher.hpp"
#include "bus/sync_bus.hpp"
#include "runtime/membership/ring.hpp"
#include "runtime/core/work_pool.hpp"
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

struct cluster_context {
  // -- fixed at start -----------------------------------------------------------------
  std::uint32_t self_id = 0;
  std::uint64_t incarnation = 0;
  std::string name;
  std::string address;  ///< what peers should dial (HOST:PORT)
  cluster_options opts;
  std::vector<std::string> seeds;
  bus::wire_limits limits;
  std::function<std::uint64_t()> clock_now;          ///< next HLC reading
  std::function<void(std::uint64_t)> clock_observe;  ///< a remote HLC reading
  bus::sync_bus::batch_handler on_batch;
  bus::sync_bus::gap_handler on_gap;
  /// Owner side of the read-through: L1, else coalesced storage fetch (blocking).
  std::function<result<std::optional<record>>(const std::string& key)> local_fetch;

  /// Test hook: while false, this node's cluster actor holds fetch requests unanswered,
  /// as a paused (SIGSTOPped) owner would, until it is set again.
  std::atomic<bool> serve_fetches{true};

  /// False in tests under CAF's test coordinator (no middleman loaded): the actor dials no
  /// address and looks nothing up; the test links the actors itself.
  bool network = true;

  // -- shared ---------------------------------------------------------------------------
  bus::outbound_queue queue;
  cluster_counters counters;
  /// The node's blocking executor (it outlives the cluster's actors).
  work_pool* pool = nullptr;

  mutable std::mutex snap_mtx;
  std::vector<member_info> view;            ///< guarded by snap_mtx
  std::shared_ptr<const ownership> owners;  ///< guarded by snap_mtx
  std::size_t reachable_peers = 0;          ///< guarded by snap_mtx

  std::shared_ptr<const ownership> ownership_snapshot() const {
    std::lock_guard<std::mutex> g{snap_mtx};
    return owners;
  }
};

}  // namespace warp::actors
