// The cluster part of a node: created by node::start when the node listens. It wires the
// node to the sync bus (local eventual_distributed writes out, remote changes applied to
// L1 by version), handles gaps (drops what can no longer be trusted), and routes read-
// through misses to the key's range owner with a local fallback. Internal to runtime/modes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/cluster_context.hpp"
#include "actors/caf_bus.hpp"
#include "merge/rules.hpp"
#include "warp/cluster.hpp"
#include "warp/write.hpp"

namespace warp::detail {

struct node_state;

/// Also the host of the cluster's actors (actors::cluster_host): the clock and the owner
/// side of the read-through.
class cluster final : public actors::cluster_host {
 public:
  /// `address` = HOST:PORT peers dial to reach this node.
  cluster(node_state& st, std::string address);
  ~cluster() override;
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  /// Before start: the key-pattern table the node starts with (encoded, may be empty for
  /// version (0, 0)) and where tables from peers go (called on the cluster actor's thread:
  /// must not block).
  void set_patterns(bus::pattern_version ver, std::string bytes,
                    std::function<void(bus::pattern_table)> on_patterns);
  /// The node's own new key-pattern table (applied here already): spread it (any thread).
  void publish_patterns(std::string bytes);
  /// What encoded pattern tables from this node carry in their header.
  bus::envelope_header pattern_header();

  void start();
  /// Sends what is queued, announces leaving, stops the actors. Idempotent.
  void stop();

  /// A local write of an eventual_distributed key was applied (any thread).
  void published(std::string_view key, version ver, std::int64_t expires_at_ms,
                 bus::record_kind kind, std::string_view value);

  /// A local write of `key` at `ver` failed in storage, which may have applied it anyway:
  /// every peer drops the key (an invalidation record), and no read-through older than
  /// `ver` fills this node's L1 (an owner may answer from an L1 the record has not reached).
  void unknown_outcome(std::string_view key, version ver);

  /// Drops `key` from every peer's L1 up to `ver` (an invalidation record on the sync bus),
  /// and keeps read-throughs older than `ver` out of this node's L1: the validator's heal.
  void invalidate(std::string_view key, version ver);

  /// Test-only fault hook (compiled in; nothing in production sets it): the next `n`
  /// invalidation or erase records received from peers are dropped unapplied, as a lost
  /// message would be. The validator's tests use it to lose one invalidation.
  void drop_next_invalidations(std::uint32_t n) { drop_invalidations_.store(n); }
  std::uint64_t invalidations_dropped() const { return invalidations_dropped_.load(); }

  /// Read-through via the key's range owner. nullopt = not handled (this node owns the
  /// range, no owner known, or the owner failed: the fallback was counted): fetch locally.
  std::optional<result<std::optional<record>>> fetch_from_owner(std::string_view key);

  cluster_view view() const;
  cluster_stats stats() const { return ctx_.counters.snapshot(); }
  std::uint32_t owner_of(std::string_view key) const;
  bus::sync_bus& bus() noexcept { return *bus_; }

  /// Applies a batch from a peer (the actor's thread). Public for deterministic tests.
  void apply(const bus::change_batch& batch);
  /// Drops cached entries not newer than `hlc_bound` (a gap from `sender`).
  void distrust(std::uint32_t sender, std::uint64_t hlc_bound);
  /// Whether a read-through result of version `ver` may fill L1: not when this node has
  /// already applied a newer change of the key (a tombstone) or a newer clear. A range
  /// owner serves from its own L1, which may lag what this node applied (any thread).
  bool may_cache(std::string_view key, version ver) const;
  /// Test hook: off = peers' read-through requests go unanswered (a paused owner).
  void serve_fetches(bool on) { ctx_.serve_fetches.store(on); }

  // -- actors::cluster_host ----------------------------------------------------------------
  std::uint64_t clock_now() override;
  void clock_observe(std::uint64_t hlc) override;
  result<std::optional<record>> local_fetch(const std::string& key) override;
  void ranges_taken(std::vector<actors::range_takeover> taken) override;
  std::string hot_keys_bytes(std::uint32_t limit) override;

 private:
  /// The warm-up of ranges this node took over (on the executor).
  void warm_up(const std::vector<actors::range_takeover>& taken);
  void remember_tombstone(const std::string& key, version ver);
  /// A peer cleared storage at `ver`: drops every L1 entry not newer.
  void cleared(version ver);
  /// The version of `key`'s tombstone while it lives (any thread).
  std::optional<version> live_tombstone(std::string_view key) const;
  bool tombstoned(std::string_view key, version ver) const;

  node_state& st_;
  actors::cluster_context ctx_;
  std::unique_ptr<bus::caf_bus> bus_;
  // Atomic: stop() runs on the thread stopping the node while work-pool threads read it
  // in fetch_from_owner() (a data race TSan found in warpd's shutdown).
  std::atomic<bool> stopped_{false};
  std::atomic<std::uint32_t> drop_invalidations_{0};  // the fault hook above
  std::atomic<std::uint64_t> invalidations_dropped_{0};
  // Recent invalidations (actor thread only): a hydration older than an invalidation of
  // the same key that arrived first (from another sender) must not resurrect the key.
  // Slots by key hash, allocated on the first invalidation received.
  merge::tombstone_table tombstones_;  // guarded by tomb_mtx_
  mutable std::mutex tomb_mtx_;
  /// HLC of the newest clear applied here, a peer's or this node's own (any thread).
  std::atomic<std::uint64_t> clear_floor_hlc_{0};
  // The newest clear record applied from a peer (actor thread only): an older or repeated
  // one changes nothing.
  version clear_bound_{};
  // The newest gap bound (actor thread only): a hydration not newer than it may predate a
  // change this node missed in the gap (a delete, a clear), so it is applied as an
  // invalidation: the key is read from storage next time instead of cached from the record.
  std::uint64_t hydrate_floor_ = 0;
};

}  // namespace warp::detail
