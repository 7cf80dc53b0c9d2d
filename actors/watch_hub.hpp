// The watch hub's protocol core (docs/coordination.md, "Watch", "History"): a pure class,
// no CAF, no clock of its own (time is passed in), no threads. The node's watch hub actor
// (actors/watch_hub_actor.hpp) owns one and feeds it.
//
// Per Raft key group it keeps a ring of the recent changes (put, delete, with the value each
// replaced), bounded by entries and bytes. `floor[g]`: every change of group g above it is in
// the ring; a start below it is `compacted`. The ring is in memory: after a restart the group
// actor replays its log after the last snapshot, which refills the ring from the snapshot's
// index (the new floor), so a watch resumes across a restart while its cursor is above the
// last snapshot.
//
// Also here: the state machine decorator that reports every applied entry of a key group
// (watched_kv_state_machine), run on the group actor.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/consensus/raft_kv.hpp"
#include "warp/watch.hpp"

namespace warp::actors {

struct watch_hub_options {
  std::size_t ring_entries = 4096;    ///< per group
  std::size_t ring_bytes = 4u << 20;  ///< per group: keys, values and replaced values
  std::size_t max_watchers = 256;
  std::size_t max_queue = 10'000;  ///< per watcher (watch_stream's bound)
  std::chrono::milliseconds progress_interval{1000};
};

/// One key an applied entry wrote.
struct applied_write {
  bool deleted = false;
  std::string key;
  std::string raw_value;  ///< as stored in the map: format byte, expiry, bytes
  bool had_prev = false;
  std::string raw_prev;
};

/// One applied entry of a key group, as the decorator reports it: every key it wrote, in
/// order (several for a transaction, kv_op::batch, all at one revision). `writes` is empty
/// for entries that changed no key (a refused compare-and-set or transaction, a retry
/// answered from the session, a delete of an absent key): they only advance the group's
/// applied revision.
struct applied_change {
  std::uint32_t group = 0;
  std::uint64_t index = 0;
  std::vector<applied_write> writes;
};

class watch_hub {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// `groups`: the key groups this node replicates; `all_groups`: whether that is every
  /// group (otherwise a watch would miss the others' changes, so it is refused).
  watch_hub(watch_hub_options opts, std::vector<std::uint32_t> groups, bool all_groups);

  void applied(const applied_change& c, time_point now);
  /// The group's state machine was replaced by a snapshot taken at `index` (at start, or a
  /// follower that fell behind): changes up to it are not known here.
  void restored(std::uint32_t group, std::uint64_t index);

  /// Registers a watcher writing into `out`: replays the retained changes after `from`,
  /// then streams live ones. Ends `out` with `compacted` when `from` is below a group's
  /// floor. Errors: unsupported (not every group here), rate_limited (too many watchers).
  result<std::uint64_t> add(std::string filter, const watch_from& from, bool prev,
                            std::shared_ptr<watch_stream> out, time_point now);
  void remove(std::uint64_t id);
  /// Progress for idle watchers, drops canceled ones.
  void tick(time_point now);
  /// Ends every watch with `canceled` (the node stops).
  void stop_all(std::string_view why);

  /// Newest first: the retained changes of `key` in `group`.
  std::vector<key_version> history(std::uint32_t group, std::string_view key) const;
  /// The key as of `revision`; nullopt when the ring holds no change of it at all (so its
  /// value is the current one, if `revision` is applied here). Errors: not_found
  /// "compacted(N)" below the floor; invalid_argument beyond the applied revision.
  result<std::optional<key_version>> get_at(std::uint32_t group, std::string_view key,
                                            std::uint64_t revision) const;

  std::size_t watchers() const noexcept { return watchers_.size(); }
  std::uint64_t floor(std::uint32_t group) const;
  std::uint64_t last(std::uint32_t group) const;
  std::size_t retained(std::uint32_t group) const;
  watch_cursor progress() const;
  const watch_hub_options& options() const noexcept { return opts_; }

  struct counters {
    std::uint64_t events = 0;     ///< changes taken into the rings
    std::uint64_t delivered = 0;  ///< events pushed to watchers
    std::uint64_t compacted = 0;  ///< watches ended compacted
    std::uint64_t slow = 0;       ///< watches ended slow
    std::uint64_t evicted = 0;    ///< changes that fell out of a ring
  };
  const counters& stats() const noexcept { return stats_; }

 private:
  struct change {
    std::uint64_t revision = 0;
    bool deleted = false;
    std::string key;
    std::string value;
    std::int64_t expires_at_ms = 0;
    bool had_prev = false;
    std::string prev;
    std::size_t bytes() const noexcept { return key.size() + value.size() + prev.size() + 64; }
  };
  struct ring {
    std::deque<change> changes;
    std::size_t bytes = 0;
    std::uint64_t floor = 0;
    std::uint64_t last = 0;
  };
  struct watcher {
    std::string filter;
    bool glob = false;
    bool prev = false;
    std::shared_ptr<watch_stream> out;
    watch_cursor pos;  ///< per group: the last revision this watcher is past
    time_point last_sent;
  };

  bool matches(const watcher& w, std::string_view key) const;
  watch_event make_event(std::uint32_t group, const change& c, const watcher& w) const;
  /// Offers the changes of one revision (`first`, `last`: a range of a ring) as a unit: all
  /// matching events are queued or none is, so a cursor never points inside a revision.
  /// False when the watcher was ended (slow).
  bool deliver(watcher& w, std::uint32_t group, std::deque<change>::const_iterator first,
               std::deque<change>::const_iterator last, time_point now);
  /// deliver() for each revision of a ring, in order.
  bool deliver_ring(watcher& w, std::uint32_t group, const ring& r, time_point now);
  void end(watcher& w, watch_event::kind k, std::uint32_t group, std::uint64_t rev,
           std::string reason);

  watch_hub_options opts_;
  bool all_groups_;
  std::map<std::uint32_t, ring> rings_;
  std::map<std::uint64_t, watcher> watchers_;
  std::uint64_t next_id_ = 1;
  counters stats_;
};

/// The stored form of a strong value (runtime/modes/strong_raft.hpp, encode_value): format
/// byte 1, expiry ms (i64 little-endian), bytes. Anything else is passed through whole.
struct decoded_value {
  std::string value;
  std::int64_t expires_at_ms = 0;
};
decoded_value decode_strong_value(std::string_view raw);

/// The key groups' state machine with a report of each applied entry (`on_change`) and of
/// each restore (`on_restore`); both run on the group actor and must not block.
class watched_kv_state_machine final : public consensus::raft_state_machine {
 public:
  watched_kv_state_machine(std::uint32_t group, consensus::kv_limits lim,
                           std::function<void(applied_change)> on_change,
                           std::function<void(std::uint32_t, std::uint64_t)> on_restore,
                           bool track_unstored = false)
      : group_(group),
        lim_(lim),
        inner_(lim, track_unstored),
        on_change_(std::move(on_change)),
        on_restore_(std::move(on_restore)) {}

  result<std::string> apply(consensus::index_t index, std::string_view data) override;
  result<std::string> read(std::string_view key) const override { return inner_.read(key); }
  result<std::string> read_versioned(std::string_view key) const override {
    return inner_.read_versioned(key);
  }
  std::string snapshot() const override { return inner_.snapshot(); }
  result<void> restore(std::string_view data) override;
  consensus::index_t applied() const noexcept override { return inner_.applied(); }
  /// The map itself (the storage write-through reads its unstored keys and values).
  const consensus::kv_state_machine& inner() const noexcept { return inner_; }

 private:
  std::uint32_t group_;
  consensus::kv_limits lim_;
  consensus::kv_state_machine inner_;
  std::function<void(applied_change)> on_change_;
  std::function<void(std::uint32_t, std::uint64_t)> on_restore_;
};

}  // namespace warp::actors
