// The pure parts of a federation link (no CAF, no clock of their own: time is passed in),
// shared by every transport:
//   - link_queue: one linked region's bounded outbound queue, its batching decision (full
//     batch or oldest change waited max_delay: Hazelcast WAN's 500 / 1 s), the one batch
//     in flight until acknowledged, and the full-queue policy "repair" (drop, count, mark
//     the key for anti-entropy: never a silent drop);
//   - forward_targets: the loop rule (never to the origin or a region in the path);
//   - seen_set: bounded dedup of (origin, key, version) already handled;
//   - tombstones: bounded memory of deletes, so an older put arriving after a delete
//     does not resurrect the key (LWW needs the delete's version).
//   - region_gateway: which node of this region is its gateway (the live member with the
//     lowest name) and which members went away, whose changes the gateway re-ships.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "federation/change.hpp"

namespace warp::federation {

using clock_point = std::chrono::steady_clock::time_point;

struct link_counters {
  std::uint64_t queued = 0;   ///< changes accepted into the queue
  std::uint64_t shipped = 0;  ///< changes acknowledged by the other region
  std::uint64_t dropped = 0;  ///< changes refused by a full queue (marked for repair)
  std::uint64_t resent = 0;   ///< batches sent again after a timeout or a failure
  std::uint64_t batches = 0;  ///< batches acknowledged
};

class link_queue {
 public:
  link_queue(std::size_t limit, std::size_t batch_size, std::chrono::milliseconds max_delay)
      : limit_(limit), batch_size_(batch_size), max_delay_(max_delay) {}

  /// Queues `c`; false when full: the change is dropped, counted and its key kept for
  /// repair (take_repairs).
  bool push(change c, clock_point now);
  /// Whether a batch should leave now: none in flight, and a full batch or the oldest
  /// change queued for max_delay.
  bool due(clock_point now) const;
  /// Takes the next batch (at most batch_size changes) as the one in flight.
  batch take(std::string sender, clock_point now);
  /// The batch in flight was acknowledged.
  void acked(std::uint64_t seq);
  /// The batch in flight failed or timed out: its changes go back to the queue's front.
  void failed(std::uint64_t seq);
  bool in_flight() const noexcept { return flight_.has_value(); }
  std::optional<clock_point> flight_since() const {
    return flight_ ? std::optional{flight_since_} : std::nullopt;
  }
  /// Changes queued or in flight.
  std::size_t depth() const noexcept;
  /// Seconds the oldest change queued or in flight has waited (0 when none).
  double lag_seconds(clock_point now) const;
  /// Keys dropped since the last call (for anti-entropy).
  std::set<std::string> take_repairs();
  bool needs_repair() const noexcept { return !repair_.empty(); }
  const link_counters& counters() const noexcept { return n_; }

 private:
  struct entry {
    change c;
    clock_point at;
  };
  std::size_t limit_, batch_size_;
  std::chrono::milliseconds max_delay_;
  std::deque<entry> q_;
  std::optional<std::vector<entry>> flight_;
  std::uint64_t flight_seq_ = 0;
  clock_point flight_since_{};
  std::uint64_t next_seq_ = 1;
  std::set<std::string> repair_;
  static constexpr std::size_t max_repair_keys = 100000;
  bool repair_all_ = false;
  link_counters n_;
};

/// The linked regions a change applied in `self` goes on to: those not in its path, not
/// its origin, not `self`. With origin + path, no region receives a change it already
/// has from the path it came by, so any topology (chain, ring, mesh) terminates.
std::vector<std::string> forward_targets(const change& c, const std::string& self,
                                         const std::vector<std::string>& linked);

/// Bounded set of changes already handled here, oldest forgotten first.
class seen_set {
 public:
  explicit seen_set(std::size_t capacity = 65536) : cap_(capacity) {}
  /// True the first time (origin, key, version) is seen.
  bool first_time(const change& c);
  /// Forgets `c` (its apply failed: a re-delivery must be applied).
  void forget(const change& c);
  std::size_t size() const noexcept { return order_.size(); }

 private:
  static std::string id_of(const change& c);
  std::size_t cap_;
  std::set<std::string> set_;
  std::deque<std::string> order_;
};

/// Bounded, thread-safe memory of the latest delete of each key (apply jobs on the
/// executor read it, the write-path sink and apply record into it).
class tombstones {
 public:
  explicit tombstones(std::size_t capacity = 100000) : cap_(capacity) {}
  void record(const std::string& key, version ver);
  version floor(const std::string& key) const;
  void forget(const std::string& key);

 private:
  std::size_t cap_;
  mutable std::mutex mtx_;
  std::unordered_map<std::string, version> map_;
  std::deque<std::string> order_;
};

/// One member of this region as the cluster view shows it.
struct member_seen {
  std::uint32_t id = 0;
  std::string name;
  bool live = false;  ///< up or suspect (this node always)
  bool self = false;
};

/// The region's gateway and the hand-over of departed members' changes. Every node ships
/// its own committed changes; a node that dies (or leaves) may take changes it had queued
/// but not yet delivered with it. The gateway, the live member with the lowest name, then
/// re-ships every federated key whose current version that member wrote: receivers drop
/// what they already have (dedup, LWW; CRDT joins are idempotent), so nothing is lost.
class region_gateway {
 public:
  /// How long a departed member stays on the list a newly elected gateway takes over
  /// (the gateway died while, or before, handing it over).
  explicit region_gateway(std::chrono::milliseconds remember = std::chrono::minutes{5})
      : remember_(remember) {}
  /// Feeds the current view; returns the members whose changes this node must re-ship
  /// now: those that went away, once this node is the gateway (on becoming the gateway,
  /// also those that went away in the last `remember` and were not re-shipped here).
  std::vector<std::uint32_t> observe(const std::vector<member_seen>& members, clock_point now);
  /// Name of the gateway (empty before the first view).
  const std::string& gateway() const noexcept { return gateway_; }
  bool self_is_gateway() const noexcept { return self_gateway_; }

 private:
  std::chrono::milliseconds remember_;
  std::set<std::uint32_t> live_;
  std::map<std::uint32_t, clock_point> gone_;  // departed, by when; not yet re-shipped here
  std::string gateway_;
  bool self_gateway_ = false;
};

}  // namespace warp::federation
