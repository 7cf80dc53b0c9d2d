// The replica side of the strong_distributed mode: per key, the register value with the
// highest version this node has seen (a value or a tombstone). Every mutation is a
// max-merge (`apply` keeps the newer version), so replica states only grow in a join
// semilattice: applying the same records in any order, any number of times, gives the same
// state. That is what lets read repair, recovery and anti-entropy copy records freely.
//
// One object holds ONE key range (the ring's ranges): its records, an order-independent
// digest (XOR of a hash of every (key, version)) and a `ready` flag: a replica whose memory
// was lost (a restart) answers quorum requests for a range only after it caught that range
// up from the other replicas (docs/strong.md). The range's actor
// (actors/strong_range_actor) owns it, so it has no lock: one thread at a time.
//
// Pure logic, no CAF, no I/O, no lock: unit-tested in test/strong/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "warp/version.hpp"

namespace warp::detail {

/// One register value as replicas keep and exchange it.
struct strong_record {
  version ver;                     ///< empty = the key was never written
  bool tombstone = false;          ///< a delete (no value)
  std::int64_t expires_at_ms = 0;  ///< absolute, 0 = never (values only)
  std::string value;
  friend bool operator==(const strong_record&, const strong_record&) = default;
  /// True when a read sees no value: never written, deleted, or expired at `now_ms`.
  bool absent(std::int64_t now_ms) const noexcept {
    return ver.empty() || tombstone || (expires_at_ms != 0 && expires_at_ms <= now_ms);
  }
};

/// Digest of a range: equal digests (and counts) mean equal (key, version) sets, with
/// overwhelming probability.
struct range_digest {
  std::uint64_t hash = 0;
  std::uint64_t count = 0;
  friend bool operator==(const range_digest&, const range_digest&) = default;
};

class strong_replica {
 public:
  /// A fresh process knows nothing: a range starts not ready unless `ready` (tests, or a
  /// range with a single copy).
  explicit strong_replica(bool ready = false) : ready_(ready) {}

  /// The record of `key` (empty version if unknown). `with_value` false: version only.
  strong_record get(std::string_view key, bool with_value = true) const;
  /// Keeps `rec` if it is newer than what the key holds. True when it changed the state.
  bool apply(std::string_view key, const strong_record& rec);

  struct page {
    std::vector<std::pair<std::string, strong_record>> records;
    bool more = false;  ///< keys after the last one remain
  };
  /// Records with keys after `after` (all when `first`), at most `max_records` or about
  /// `max_bytes`.
  page dump(std::string_view after, bool first, std::size_t max_records,
            std::size_t max_bytes) const;
  range_digest digest() const noexcept { return digest_; }

  bool ready() const noexcept { return ready_; }
  void set_ready(bool ready) noexcept { ready_ = ready; }
  std::size_t key_count() const noexcept { return keys_.size(); }

  /// Hash of (key, version) that the digest XORs together.
  static std::uint64_t entry_hash(std::string_view key, version ver) noexcept;

 private:
  std::map<std::string, strong_record, std::less<>> keys_;
  range_digest digest_;
  bool ready_ = false;
};

}  // namespace warp::detail
