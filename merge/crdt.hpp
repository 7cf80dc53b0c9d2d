// State-based CRDTs for federated keys (docs/merge.md): a PN-counter, an add-wins OR-set
// and a last-writer-wins map. Each state is a value of a join semilattice: `merge` is
// commutative, associative and idempotent, so regions may ship whole states to each other
// in any order, any number of times, and still converge (test/merge/crdt_test.cpp checks
// the three laws on seeded random states).
//
// Each has a versioned binary encoding (runtime/consensus/byte_codec.hpp layout): a kind
// byte, an encoding version byte, then the body. Encodings are canonical (entries sorted,
// no duplicates), so equal states encode to equal bytes, and a decoder refuses anything
// else: the bytes come from other regions. Counts are checked against a bound before
// anything is read, and nothing is reserved by a count, so a frame that claims 2^32
// elements costs a failed decode, not an allocation.
//
// Pure logic, no CAF, no I/O, no lock: the caller owns a state (the key's write stripe).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"
#include "warp/version.hpp"

namespace warp::merge {

/// The first byte of an encoded state: which CRDT it is.
enum class crdt_kind : std::uint8_t { counter = 1, set = 2, map = 3 };
/// The second byte: the layout of the body. A decoder refuses versions it does not know.
inline constexpr std::uint8_t crdt_encoding_version = 1;

/// Bounds a decoder enforces (and local operations refuse to exceed), so one key's state
/// stays bounded whatever another region sends.
struct crdt_limits {
  std::size_t max_origin = 255;             ///< bytes of an origin (region/node) id
  std::size_t max_origins = 4096;           ///< distinct origins in one state
  std::size_t max_entries = 1'000'000;      ///< set elements or map fields
  std::size_t max_item = 64 * 1024 * 1024;  ///< bytes of one element, field or value
};

/// Which CRDT an encoded state holds (codec_error when it is none of them).
result<crdt_kind> crdt_kind_of(std::string_view bytes);
/// Whether an encoded state shows as a key to a Redis client (EXISTS, TYPE, KEYS): Redis
/// has no empty set or hash, so an OR-set without members and an LWW-map without live
/// fields do not, nor does a counter a DEL reset that nobody wrote since
/// (`pn_counter::present`).
/// Their states stay stored: the context and tombstones are what make the removes win over
/// older adds arriving from other regions. codec_error for bytes of no CRDT.
result<bool> crdt_present(std::string_view bytes);

// -- PN-counter -----------------------------------------------------------------------

/// Per origin, the total of its increments (P) and of its decrements (N); the value is
/// sum(P) - sum(N), less the floors DEL left (`reset`). Each origin only ever raises its own
/// totals, so merge is a per-origin max. INCR/INCRBY/DECR/DECRBY are `add` on the local origin's
/// entry.
class pn_counter {
 public:
  struct totals {
    std::uint64_t p = 0;
    std::uint64_t n = 0;
    friend bool operator==(const totals&, const totals&) = default;
  };

  /// The counter's value. Saturates at the int64 range: merged totals of many origins
  /// may exceed it even though every local step stayed inside (deterministic either way).
  std::int64_t value() const noexcept;
  /// Adds `delta` (negative: a decrement) on `origin`'s entry (0 after a DEL: both totals
  /// move by one, so the key is present again at the same value). Refused (invalid_argument,
  /// Redis's "increment or decrement would overflow") when the value would leave the
  /// int64 range or the origin's total would overflow; the state is then unchanged.
  result<std::int64_t> add(std::string_view origin, std::int64_t delta,
                           const crdt_limits& lim = {});
  /// SET to `target`: adds target - value() on `origin`'s entry, so the value is `target`
  /// here and increments other regions make concurrently add on top once merged. Refused
  /// like `add` when the origin's total would overflow; the state is then unchanged.
  result<void> assign(std::string_view origin, std::int64_t target, const crdt_limits& lim = {});
  /// DEL: sets each origin's floor (its `reset_origin` entry) to its totals as observed
  /// here; the value counts only what each origin added past its floor, so after merging it
  /// is what other regions added concurrently or later (concurrent DELs in several regions
  /// subtract each increment once), and the key reads as absent until some origin writes
  /// again (`present`). True when it was present.
  result<bool> reset(const crdt_limits& lim = {});
  /// False for a counter a DEL reset and nobody wrote since, as far as this state shows:
  /// there are floors, and every origin's totals equal its floor. True otherwise, a
  /// counter counted back to 0 by INCR/DECR included (Redis answers "0" for it).
  bool present() const noexcept;
  /// The entry holding `origin`'s floor: `origin` + "/reset" ('/' is in no region name).
  /// A floor's P and N are subtracted from the value; merge takes their max like any entry.
  static std::string reset_origin(std::string_view origin);
  void merge(const pn_counter& other);

  std::string encode() const;
  static result<pn_counter> decode(std::string_view bytes, const crdt_limits& lim = {});

  const std::map<std::string, totals, std::less<>>& entries() const noexcept { return entries_; }
  friend bool operator==(const pn_counter&, const pn_counter&) = default;

 private:
  void touch(std::string_view origin);
  std::map<std::string, totals, std::less<>> entries_;
};

// -- OR-set (add-wins) ------------------------------------------------------------------

/// An add tag: the origin that added and its per-origin sequence number.
struct dot {
  std::string origin;
  std::uint64_t counter = 0;
  friend auto operator<=>(const dot&, const dot&) = default;
};

/// Observed-remove set in the optimized form (ORSWOT): a causal context (per origin, the
/// highest add counter seen) and, per present element, the dots of the adds that made it
/// present. A remove drops the element's dots but the context still covers them: the
/// context is the tombstone, one integer per origin instead of one entry per removed add,
/// so state is O(origins + present elements x origins) and never grows with removes.
/// Concurrent add and remove: the add's dot is not in the remover's context, so it
/// survives the merge (add wins). Needs each origin's counters to be issued in order and
/// never reused: the local origin's next counter is read from the state itself, and an
/// origin id must be unique per concurrent writer (docs/merge.md).
class or_set {
 public:
  bool contains(std::string_view element) const;
  std::size_t size() const noexcept { return elements_.size(); }
  /// Present elements, sorted (bytewise).
  std::vector<std::string> members() const;
  /// SADD of one element by `origin`: a fresh dot replaces the element's dots (the
  /// context covers them). True when the element was absent. Refused past the limits.
  result<bool> add(std::string_view origin, std::string_view element, const crdt_limits& lim = {});
  /// SREM: drops the element's dots (observed by this state's context). True when it was
  /// present.
  bool remove(std::string_view element);
  void merge(const or_set& other);

  std::string encode() const;
  static result<or_set> decode(std::string_view bytes, const crdt_limits& lim = {});

  const std::map<std::string, std::uint64_t, std::less<>>& context() const noexcept {
    return context_;
  }
  friend bool operator==(const or_set&, const or_set&) = default;

 private:
  bool seen(const dot& d) const;
  std::map<std::string, std::uint64_t, std::less<>> context_;
  std::map<std::string, std::set<dot>, std::less<>> elements_;
};

// -- LWW-map ------------------------------------------------------------------------------

/// One field of an lww_map: a value or a deletion, the version that wrote it and the
/// origin (region) it was written in.
struct lww_field {
  std::optional<std::string> value;  ///< nullopt: deleted (a tombstone)
  version ver;
  std::string origin;
  friend bool operator==(const lww_field&, const lww_field&) = default;
};

/// Whether `incoming` replaces `current` in an lww_map: the strictly newer version wins
/// (merge/rules.hpp, `replaces`). A tie (the same version from two writes: a forged or
/// duplicated version, since versions carry the writer's node id) is broken by origin
/// (larger wins), then a deletion over a value (as rules.hpp's tombstone rules: a tie is
/// never resolved by resurrecting a value), then the larger value bytes. That makes the
/// choice a total order on fields, so the per-field merge is a max: commutative,
/// associative, idempotent.
bool lww_field_wins(const lww_field& incoming, const lww_field& current) noexcept;

/// Field -> lww_field, for hashes (HSET/HDEL/HGETALL). Deleted fields stay as tombstones
/// so a late, older HSET cannot resurrect them; `drop_tombstones` bounds that growth.
class lww_map {
 public:
  /// HSET of one field at `ver` by `origin`: applied when it wins over what the field
  /// holds (so a replay or an older write changes nothing). True when applied.
  result<bool> set(std::string_view field, std::string_view value, version ver,
                   std::string_view origin, const crdt_limits& lim = {});
  /// HDEL: a tombstone at `ver`. True when applied.
  result<bool> remove(std::string_view field, version ver, std::string_view origin,
                      const crdt_limits& lim = {});
  /// The live value of a field (nullopt when absent or deleted).
  std::optional<std::string_view> get(std::string_view field) const;
  /// Live fields, sorted by field.
  std::vector<std::pair<std::string, std::string>> live() const;
  std::size_t live_count() const noexcept;
  void merge(const lww_map& other);
  /// Drops tombstones whose version's clock reading is at most `hlc` (docs/merge.md: safe
  /// once every region applied every write up to then; an older write arriving after
  /// could resurrect the field). Returns how many it dropped.
  std::size_t drop_tombstones(std::uint64_t hlc);

  std::string encode() const;
  static result<lww_map> decode(std::string_view bytes, const crdt_limits& lim = {});

  const std::map<std::string, lww_field, std::less<>>& fields() const noexcept { return fields_; }
  friend bool operator==(const lww_map&, const lww_map&) = default;

 private:
  result<bool> put(std::string_view field, lww_field f, const crdt_limits& lim);
  std::map<std::string, lww_field, std::less<>> fields_;
};

}  // namespace warp::merge
