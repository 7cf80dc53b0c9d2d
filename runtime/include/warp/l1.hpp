// L1: the in-process cache. Reads are lock-free (epoch-protected, they write no shared
// cache line); writes take a per-shard lock. TTL, count and byte bounds, eviction, stats.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>

#include "warp/buffer.hpp"
#include "warp/clock.hpp"
#include "warp/version.hpp"

namespace warp {

/// Which new keys a full L1 lets in (docs/hotkeys.md, "Admission").
enum class l1_admission : std::uint8_t {
  none,     ///< every new key enters; sampled LRU picks the victim
  tinylfu,  ///< a new key enters only if its estimated frequency beats the victim's
};

struct l1_options {
  /// Upper bound on entries; 0 = unbounded.
  std::size_t max_entries = 0;
  /// Upper bound on bytes (keys + values + per-entry overhead); 0 = unbounded.
  std::size_t max_bytes = 0;
  /// Number of shards (rounded up to a power of two); 0 = chosen from the hardware.
  std::size_t shards = 0;
  /// How often the background purge drops expired entries; 0 = no purge thread (expired
  /// entries are still never returned, and are dropped lazily when touched).
  std::chrono::milliseconds purge_interval{1000};
  /// Admission filter for new keys once a bound is reached (only with a bound).
  l1_admission admission = l1_admission::none;
};

struct l1_stats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;    ///< dropped to honour max_entries/max_bytes
  std::uint64_t expirations = 0;  ///< dropped because their TTL passed
  std::uint64_t sets = 0;
  std::uint64_t removes = 0;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t admission_rejects = 0;  ///< new keys the admission filter kept out
};

/// Metadata of one entry.
struct l1_entry_info {
  version ver;
  /// Absolute expiry, milliseconds since the Unix epoch (system clock); 0 = never.
  std::int64_t expires_at_ms = 0;
};

enum class put_outcome : std::uint8_t {
  inserted,  ///< the key was absent
  replaced,  ///< an older (or unversioned) value was replaced
  stale,     ///< `only_if_newer` and the present version is newer or equal: nothing changed
  rejected,  ///< a new key the admission filter kept out of a full store (nothing changed)
};

class l1_store {
 public:
  explicit l1_store(l1_options options = {});
  ~l1_store();
  l1_store(const l1_store&) = delete;
  l1_store& operator=(const l1_store&) = delete;

  // -- reads: lock-free, never block on writers --------------------------------------

  /// The value, sharing its buffer (no copy). Counts a hit or a miss.
  std::optional<buffer> get(std::string_view key);

  /// Calls `fn(std::string_view bytes, const l1_entry_info&)` on a live entry without
  /// taking a reference; the view is valid only during the call. Counts a hit or a miss.
  template <class F>
  bool read(std::string_view key, F&& fn) {
    return read_impl(key, &fn, [](void* f, std::string_view bytes, const l1_entry_info& info) {
      (*static_cast<std::remove_reference_t<F>*>(f))(bytes, info);
    });
  }

  /// Metadata of a live entry; does not count as a hit or a miss.
  std::optional<l1_entry_info> info(std::string_view key) const;
  bool contains(std::string_view key) const { return info(key).has_value(); }

  // -- writes -------------------------------------------------------------------------

  /// Stores `value`. With `only_if_newer`, a present entry with a version >= `ver` wins
  /// and nothing changes (how replicated updates apply whatever their arrival order).
  put_outcome put(std::string_view key, buffer value, version ver = {},
                  std::int64_t expires_at_ms = 0, bool only_if_newer = false);

  /// Removes the entry; false if absent.
  bool erase(std::string_view key);
  /// Removes the entry only if its version is <= `ver` (an invalidation for version `ver`
  /// must not drop a newer value). True if something was removed.
  bool erase_if_not_newer(std::string_view key, version ver);
  /// Changes a live entry's expiry (0 = persist); false if absent.
  bool set_expiry(std::string_view key, std::int64_t expires_at_ms);

  /// Atomic read-modify-write of one key under its shard's writer lock:
  /// `fn(const buffer* current, l1_entry_info* info) -> std::optional<buffer>`; `current` is
  /// null when absent; returning nullopt leaves the entry as is, returning a null buffer
  /// removes it; `info` may be edited (version/expiry of the new value).
  template <class F>
  void update(std::string_view key, F&& fn) {
    update_impl(key, &fn,
                [](void* f, const buffer* cur, l1_entry_info* info) -> std::optional<buffer> {
                  return (*static_cast<std::remove_reference_t<F>*>(f))(cur, info);
                });
  }

  /// Removes every entry.
  void clear();
  /// Drops expired entries now; returns how many.
  std::size_t purge_expired();

  /// Calls `fn(std::string_view key, const buffer&, const l1_entry_info&)` for each live
  /// entry (a weakly consistent snapshot: concurrent writes may or may not be seen).
  template <class F>
  void for_each(F&& fn) const {
    for_each_impl(&fn, [](void* f, std::string_view k, const buffer& v, const l1_entry_info& i) {
      (*static_cast<std::remove_reference_t<F>*>(f))(k, v, i);
    });
  }

  l1_stats stats() const;
  std::size_t size() const;
  const l1_options& options() const noexcept;

 private:
  using read_fn = void (*)(void*, std::string_view, const l1_entry_info&);
  using update_fn = std::optional<buffer> (*)(void*, const buffer*, l1_entry_info*);
  using visit_fn = void (*)(void*, std::string_view, const buffer&, const l1_entry_info&);
  bool read_impl(std::string_view key, void* ctx, read_fn fn);
  template <class OnHit>
  bool lookup(std::string_view key, OnHit&& on_hit);  // defined and used in l1_store.cpp
  void update_impl(std::string_view key, void* ctx, update_fn fn);
  void for_each_impl(void* ctx, visit_fn fn) const;

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace warp
