// The one read path and the one write path of the storage-backed modes (strong_local and
// eventual_distributed). Every write of such a key (set, set_many, update, update_many,
// remove, the sidecar's batches, get_or_load's fill) ends in commit_put or commit_erase,
// the only places that run the sequence
//     store -> supersede in-flight reads -> L1 -> the mode's replication hook -> count
// and, when storage fails (its outcome is unknown), drop L1 here and tell the mode so it
// can invalidate the key wherever else it is cached. Internal to runtime/modes.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/modes/mode.hpp"
#include "runtime/readthrough/protection.hpp"
#include "warp/write.hpp"

namespace warp::detail {

struct node_state;

/// A change from another region, for write_path::apply_federated.
struct federated_write {
  bool erase = false;
  std::string_view key;
  std::string_view value;  ///< put only
  version ver;
  std::int64_t expires_at_ms = 0;
};


/// L1 expiry of a value: its own expiry, shortened by the policy's cache TTL.
std::int64_t l1_expiry(std::int64_t value_expiry, const key_policy& policy);

class write_path {
 public:
  explicit write_path(node_state& st) : st_(st) {}
  write_path(const write_path&) = delete;
  write_path& operator=(const write_path&) = delete;

  // -- reads ---------------------------------------------------------------------------

  /// A miss: coalesced with concurrent misses of the key, fetched where the mode says
  /// (else storage), cached in L1 unless a write superseded it or the mode refuses the
  /// version. errc::not_found when absent.
  result<buffer> read(std::string_view key, const key_policy& policy, consistency_mode& m);
  /// L1, else the coalesced storage read of this node (no hop elsewhere): what a range
  /// owner answers its peers' misses with.
  result<std::optional<record>> read_local(std::string_view key);
  /// read(), with a miss filled by `load` (coalesced) and written through.
  result<buffer> get_or_load(std::string_view key, const key_policy& policy, consistency_mode& m,
                             const loader& load);

  // -- writes --------------------------------------------------------------------------

  /// A blind put of one key: takes its stripe, commits, tells watchers.
  result<void> put(std::string_view key, const key_policy& policy, consistency_mode& m,
             std::string_view value, std::int64_t expires_at_ms);
  /// One key: takes its stripe, reads the current value from storage when `read_current`,
  /// lets `fn` decide, commits. Watchers hear of the change.
  result<mutation> write(std::string_view key, const key_policy& policy, consistency_mode& m,
                         const write_fn& fn, bool read_current);
  /// node::set_many for keys whose modes batch (validated by the caller).
  result<void> set_many(std::span<const kv_write> items, std::span<const key_policy> policies);
  /// node::update_many for keys whose modes batch; `keys_policy[k]` per distinct key in
  /// first-seen order, `key_of[i]` item i's distinct key.
  struct update_key {
    std::string_view key;
    key_policy policy;
  };
  void update_many(std::span<const update_item> items, std::span<const update_key> keys,
                   std::span<const std::size_t> key_of, std::span<result<void>> out);

  /// The commit sequence of a put; the key's stripe is held. Does not notify watchers.
  result<void> commit_put(std::string_view key, const key_policy& policy, consistency_mode& m,
                    record rec);
  /// The commit sequence of a removal at `ver`; the key's stripe is held.
  result<void> commit_erase(std::string_view key, const key_policy& policy, consistency_mode& m,
                      version ver);

  version next_version() noexcept;

  /// A change of a federated key from another region (federation/): under the key's
  /// stripe, applied through commit_put/commit_erase (storage, L1, the mode's replication
  /// to the region's other nodes, watchers) only if `w.ver` is newer than what this node
  /// has (L1, storage) and than `floor` (a tombstone the caller remembers): last writer
  /// wins by HLC version, ties broken by node id. true = applied, false = not newer.
  /// Not handed back to the federation sink.
  result<bool> apply_federated(const federated_write& w, const key_policy& policy,
                               consistency_mode& m, version floor);

  // -- storage protection --------------------------------------------------------------

  /// One storage fetch of `key` for the read-through path, through its policy's rate
  /// limiter and circuit breaker: errc::rate_limited or storage_unavailable "circuit open"
  /// without touching storage when they refuse.
  result<std::optional<record>> guarded_fetch(std::string_view key, const key_policy& policy);
  struct guard_stats {
    std::uint32_t slot;
    breaker_state state;
    std::uint64_t transitions, rate_limited, rejected_open;
  };
  /// Every limiter/breaker in use (slot 0 = node-wide), for metrics.
  std::vector<guard_stats> protection_stats() const;
  /// Drops the limiters/breakers of slots no pattern uses any more (a pattern whose
  /// protection changed gets a new slot; a removed one has none), so the map and the
  /// metrics hold only live patterns. `live`: the slots of the table in force.
  void retire_guards(const std::vector<std::uint32_t>& live);
  /// How many limiters/breakers exist (tests).
  std::size_t guard_count() const;
  /// The protection of `policy` with the fields it leaves unset taken from the node's.
  key_policy::protection effective(const key_policy& policy) const noexcept;

  /// An L1 hit of `key`, whose entry expires at `expires_at_ms` (only called when
  /// refresh-ahead is on somewhere): when the hit falls in the last refresh_ahead_pct of
  /// the entry's TTL, starts one background refresh of the key on the node executor
  /// unless one is already running.
  void hit(std::string_view key, std::int64_t expires_at_ms);
  /// A peer invalidated `key`: its stale copy may be served for max_stale from now.
  void invalidated(std::string_view key);
  /// Every key changed (a clear): no stale copy may be served.
  void clear_stale();
  /// A key was removed (here or by a peer): its stale copy goes too.
  void forget(std::string_view key) {
    if (stale_used_.load(std::memory_order_relaxed)) drop_stale(key);
  }

  // -- write stripes -------------------------------------------------------------------

  /// Writes to one key are ordered by its stripe (write-through to storage, then L1).
  static constexpr std::size_t stripes = 256;
  static std::size_t stripe_of(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key) % stripes;
  }
  std::mutex& lock_of(std::string_view key) { return locks_[stripe_of(key)]; }

  /// Holds several stripes at once, taken in ascending order (batched writes are the only
  /// holders of more than one: no deadlock), released in reverse.
  class stripe_set {
   public:
    stripe_set(write_path& p, std::vector<std::uint16_t> stripes);
    ~stripe_set();
    stripe_set(const stripe_set&) = delete;
    stripe_set& operator=(const stripe_set&) = delete;

   private:
    write_path& p_;
    std::vector<std::uint16_t> stripes_;
  };

 private:
  /// Storage failed a write of `key` at `ver`: nothing of it may stay cached anywhere.
  void failed(std::string_view key, consistency_mode& m, version ver);

  std::shared_ptr<storage_guard> guard_for(const key_policy& policy);
  /// The coalesced fetch of a miss and its fill of L1 (and of the stale copies);
  /// `filled`, when given, receives the buffer that entered L1.
  result<std::optional<record>> fetch_fill(std::string_view key, const key_policy& policy,
                                           consistency_mode& m, buffer* filled);

  // Stale copies (stale-on-error): the last value of each key of a pattern with
  // max_stale, usable until its L1 expiry (or invalidation) plus max_stale. Kept beside
  // L1 rather than in it, so the L1 hit path does not change; a copy shares L1's buffer.
  struct stale_copy {
    buffer value;
    std::int64_t usable_until_ms;  // system clock; INT64_MAX while L1 may hold it
    std::int64_t max_stale_ms;
  };
  struct alignas(64) stale_stripe {
    std::mutex mtx;
    std::unordered_map<std::string, stale_copy> copies;
  };
  void keep_stale(std::string_view key, const buffer& value, std::int64_t l1_expiry_ms,
                  std::int64_t max_stale_ms);
  void drop_stale(std::string_view key);
  std::optional<buffer> stale_value(std::string_view key);
  stale_stripe& stale_for(std::string_view key);
  std::array<stale_stripe, 16> stale_;
  std::atomic<bool> stale_used_{false};

  std::mutex refresh_mtx_;
  std::unordered_set<std::string> refreshing_;  // keys with a refresh-ahead in flight

  node_state& st_;
  std::array<std::mutex, stripes> locks_;
  // Created on a pattern's first miss; a replaced or removed pattern's slot is dropped by
  // retire_guards (a fetch in flight keeps its guard alive through its shared_ptr). Only
  // fetches that go to storage take the mutex.
  mutable std::mutex guards_mtx_;
  std::unordered_map<std::uint32_t, std::shared_ptr<storage_guard>> guards_;
};

}  // namespace warp::detail
