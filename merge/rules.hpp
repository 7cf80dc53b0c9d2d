// Conflict rules: how two versions of one key meet, wherever they meet (L1, the sync bus,
// the strong replicas). Pure functions and one pure class; no I/O, no locks, no clock of
// their own (the caller passes "now"), so each rule is unit-tested on its own
// (test/merge/rules_test.cpp). Versions are totally ordered (warp/version.hpp), so every
// rule is a comparison; what differs is which side wins a tie, and that is written here
// once, with the reason.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "warp/version.hpp"

namespace warp::merge {

// -- only-if-newer --------------------------------------------------------------------

/// A write of `incoming` replaces what is held at `current` only when strictly newer: the
/// same version applied twice (a retransmission, a repair) changes nothing, and an older
/// one arriving late never goes back in time. L1's only-if-newer put, the strong
/// replica's apply.
constexpr bool replaces(version current, version incoming) noexcept {
  return current < incoming;
}

/// An invalidation or removal at `ver` drops an entry held at `current` unless the entry
/// is newer: the entry of the very version the invalidation announces goes too (the
/// receiver refetches it, which costs a read, never a stale value).
constexpr bool invalidates(version ver, version current) noexcept {
  return !(ver < current);
}

// -- tombstones -----------------------------------------------------------------------

/// A hydration (a value shipped with its version) at `ver` is stale when a tombstone of
/// the key at `tomb` is not older: an invalidation or delete that arrived first (from
/// another sender) must not be undone by an older value arriving late. A tie is stale
/// too: one version is one write, and a tombstone of it means the write was a delete or
/// was announced without its value.
constexpr bool tombstone_hides_hydration(version tomb, version ver) noexcept {
  return !(tomb < ver);
}

/// A read-through result at `ver` may fill L1 after a tombstone at `tomb` only if it is
/// not older: an invalidation of version v announces the value of version v, which is
/// what storage then holds, so that one may be cached; anything older may not.
constexpr bool tombstone_allows_fill(version tomb, version ver) noexcept {
  return !(ver < tomb);
}

/// Recent tombstones by key hash: a direct-mapped table (no allocation per record on the
/// receive path). A slot keeps the newest version of its key for `lifetime_ms`; another
/// key hashing to the slot replaces it (its tombstone is lost early, which only re-opens
/// the millisecond reordering window it guards). Not thread-safe: the owner locks.
class tombstone_table {
 public:
  explicit tombstone_table(std::size_t slots_pow2 = std::size_t{1} << 16,
                           std::int64_t lifetime_ms = 60'000)
      : mask_(slots_pow2 - 1), slots_count_(slots_pow2), lifetime_ms_(lifetime_ms) {}

  void remember(std::uint64_t hash, version ver, std::int64_t now_ms) {
    if (slots_.empty()) slots_.resize(slots_count_);  // allocated on the first tombstone
    auto& slot = slots_[hash & mask_];
    if (slot.hash == hash && live(slot, now_ms) && ver < slot.ver) return;
    slot = {hash, ver, now_ms};
  }

  /// The version of the key's tombstone while it lives.
  std::optional<version> find(std::uint64_t hash, std::int64_t now_ms) const {
    if (slots_.empty()) return std::nullopt;
    auto& slot = slots_[hash & mask_];
    if (slot.hash != hash || !live(slot, now_ms)) return std::nullopt;
    return slot.ver;
  }

 private:
  struct slot_t {
    std::uint64_t hash = 0;
    version ver;
    std::int64_t at_ms = 0;
  };
  bool live(const slot_t& s, std::int64_t now_ms) const noexcept {
    return now_ms - s.at_ms <= lifetime_ms_;
  }

  std::uint64_t mask_;
  std::size_t slots_count_;
  std::int64_t lifetime_ms_;
  std::vector<slot_t> slots_;
};

// -- clear floor ----------------------------------------------------------------------

/// A clear record at `incoming` is applied only when newer than the last clear applied
/// (`floor`): an older or repeated one changes nothing.
constexpr bool clear_advances(version floor, version incoming) noexcept {
  return floor < incoming;
}

/// A record or read-through result at `ver` is not newer than a clear applied here at
/// `floor_hlc`: storage lost it, so it is dropped (compared by clock reading only: a clear
/// covers every node's writes up to that moment).
constexpr bool below_clear_floor(version ver, std::uint64_t floor_hlc) noexcept {
  return ver.hlc <= floor_hlc;
}

/// A clear at `clear` drops an L1 entry held at `current` unless the entry is newer.
constexpr bool clear_drops(version clear, version current) noexcept {
  return invalidates(clear, current);
}

// -- hydrate floor (gaps) -------------------------------------------------------------

/// After a gap from a peer up to `hlc_bound`, anything of ours not newer may predate a
/// change we missed: the bound as a version no entry of that clock reading is newer than.
constexpr version gap_bound(std::uint64_t hlc_bound) noexcept {
  return version{hlc_bound, std::numeric_limits<std::uint32_t>::max()};
}

/// Whether an entry at `ver` is dropped by a gap up to `hlc_bound`.
constexpr bool distrusted_by_gap(version ver, std::uint64_t hlc_bound) noexcept {
  return ver.hlc <= hlc_bound;
}

/// A hydration at `ver` is trusted (its value cached) only when newer than the newest gap
/// bound seen (`hydrate_floor`); otherwise it is applied as an invalidation, and the key
/// is read from storage next time.
constexpr bool hydration_trusted(version ver, std::uint64_t hydrate_floor) noexcept {
  return ver.hlc > hydrate_floor;
}

/// Whether a hydration record carries a value to cache at all: live (no expiry, or one in
/// the future) and above the hydrate floor.
constexpr bool hydrates(version ver, std::int64_t expires_at_ms, std::int64_t now_ms,
                        std::uint64_t hydrate_floor) noexcept {
  return (expires_at_ms == 0 || expires_at_ms > now_ms) && hydration_trusted(ver, hydrate_floor);
}

}  // namespace warp::merge
