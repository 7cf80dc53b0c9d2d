// The replica side of the strong_distributed mode: per key, the register value with the
// highest version this node has seen (a value or a tombstone). Every mutation is a
// max-merge (`apply` keeps the newer version), so replica states only grow in a join
// semilattice: applying the same records in any order, any number of times, gives the same
// state. That is what lets read repair, recovery and anti-entropy copy records freely.
//
// Keys are kept per key range (the ring's ranges), each range with its own lock, an
// order-independent digest (XOR of a hash of every (key, version)) and a `ready` flag: a
// replica whose memory was lost (a restart) answers quorum requests for a range only after
// it caught that range up from a majority of the other replicas (docs/strong.md).
//
// Pure logic, no CAF, no I/O: unit-tested in test/strong/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
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
  /// `ranges`: number of key ranges; every range starts not ready (a fresh process knows
  /// nothing), except when `ready` is true (tests).
  explicit strong_replica(std::size_t ranges, bool ready = false);

  std::size_t ranges() const noexcept { return ranges_.size(); }

  /// The record of `key` (empty version if unknown). `with_value` false: version only.
  strong_record get(std::uint32_t range, std::string_view key, bool with_value = true) const;
  /// Keeps `rec` if it is newer than what the key holds. True when it changed the state.
  bool apply(std::uint32_t range, std::string_view key, const strong_record& rec);

  struct page {
    std::vector<std::pair<std::string, strong_record>> records;
    bool more = false;  ///< keys after the last one remain
  };
  /// Records of `range` with keys after `after` (all when empty and `first`), at most
  /// `max_records` or about `max_bytes`.
  page dump(std::uint32_t range, std::string_view after, bool first, std::size_t max_records,
            std::size_t max_bytes) const;
  range_digest digest(std::uint32_t range) const;

  bool ready(std::uint32_t range) const;
  void set_ready(std::uint32_t range, bool ready);
  std::size_t ready_count() const;
  std::size_t key_count() const;

  /// Hash of (key, version) that the digest XORs together.
  static std::uint64_t entry_hash(std::string_view key, version ver) noexcept;

 private:
  struct range_state {
    mutable std::mutex mtx;
    std::map<std::string, strong_record, std::less<>> keys;
    range_digest digest;
    bool ready = false;
  };
  range_state& at(std::uint32_t range);
  const range_state& at(std::uint32_t range) const;

  std::vector<std::unique_ptr<range_state>> ranges_;
};

}  // namespace warp::detail
