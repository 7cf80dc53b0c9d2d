// The strong range-group actor: a handful per node (quorum_setup::range_groups), each
// owning a GROUP of the key ranges this node replicates in the strong_distributed mode,
// spawned (linked) by the node's quorum actor. Its state OWNS the replicas of its ranges
// (merge/strong_replica, one per range: records, digest, ready flag), so nothing else reads
// or writes them and no lock guards them. Ranges, not groups, stay the unit of the
// protocol: every range keeps its own ready flag, catch-up pass and anti-entropy round; a
// group only decides which actor (mailbox, thread) a range's work runs on. Why groups and
// not one actor per range: a peer's batch of 64 requests touches ~50 of 271 ranges, and
// one message hop plus a gathered reply per range cost ~12% of loaded strong throughput
// (docs/benchmarks.md); with G groups a batch splits into at most G parts. It
//   * serves the replica requests the quorum actor routes to it (a peer's batch split by
//     group, and its own node's part in quorums, one message per flush):
//     range_serve_cmd -> range_served;
//   * catches its not-ready ranges up when the quorum actor's pacing timer says so
//     (range_recover_atom), by the rules of docs/strong.md ("Crash recovery");
//   * compares each ready range's digest with the other replicas and pulls what differs
//     (range_sync_atom, one anti-entropy round per range);
//   * reports readiness per range (range_progress) and counters (strong_count_cmd) to the
//     quorum actor, which owns the peer links: every fan-out to other replicas is a request
//     to it (range_fanout_cmd), answered asynchronously; nothing here waits.
// Messages: actors/quorum_commands.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/quorum_commands.hpp"
#include "merge/strong_replica.hpp"

namespace warp::detail {
class strong_placement;
}

namespace warp::actors {

/// What a range-group actor is given at spawn; fixed for its lifetime.
struct strong_range_setup {
  /// The group's index (for the status and logs).
  std::uint32_t group = 0;
  /// The ranges it owns (each one a range this node replicates).
  std::vector<std::uint32_t> ranges;
  /// Owned by the strong mode, immutable, outlives the actor.
  const detail::strong_placement* placement = nullptr;
  /// The node's quorum actor: fan-outs, progress and counters go there.
  caf::actor quorum;
  /// Deadline of one fan-out (a dump page, a digest wave).
  std::chrono::milliseconds timeout{1000};
  /// Start ready (tests; a fresh process starts not ready).
  bool ready = false;
};

struct strong_range_state {
  explicit strong_range_state(caf::event_based_actor* ptr) : self(ptr) {}

  caf::behavior make_behavior(strong_range_setup s);

  /// One owned range: its replica and whether a pass or round of its own is in flight.
  struct range_slot {
    std::uint32_t range = 0;
    detail::strong_replica replica;
    bool recovering = false;  ///< a catch-up pass is in flight
    bool syncing = false;     ///< an anti-entropy round is in flight
  };

  /// The replica of `range`; null when this group does not own it.
  detail::strong_replica* replica_of(std::uint32_t range);

  // -- handlers, one per command -------------------------------------------------------

  void on_serve(range_serve_cmd& cmd);
  /// One catch-up pass per owned range that is not ready and not in a pass already.
  void on_recover();
  /// One anti-entropy round per owned range that is ready and not in a round already.
  void on_sync();
  range_info on_info() const;

  // -- recovery and anti-entropy steps (per range: `i` is the slot index) --------------

  void recover(std::size_t i);
  void sync(std::size_t i);
  /// Slots (in the range's replica list) of the other replicas of `range`.
  std::vector<std::size_t> other_slots(std::uint32_t range) const;
  void fanout(std::uint32_t range, std::vector<std::size_t> slots, detail::wire::request req,
              std::size_t need, std::chrono::milliseconds timeout,
              std::function<void(fanout_result&)> then);
  /// Copies every record of range slot `i` from the replica in `slot`, page by page, until
  /// `deadline`; `done(true)` when every page came back ok.
  void pull(std::size_t i, std::size_t slot, std::string after, bool first,
            std::chrono::steady_clock::time_point deadline, std::function<void(bool)> done);
  void on_probed(std::size_t i, fanout_result& res);
  void finish_pass(std::size_t i, std::size_t copied, std::size_t ready_slots, bool census,
                   std::vector<std::size_t> unusable);
  void report(const strong_count_cmd& counts);

  caf::event_based_actor* self;
  strong_range_setup setup;
  /// Fixed after make_behavior (never resized: continuations keep indexes into it).
  std::vector<range_slot> slots;
  std::unordered_map<std::uint32_t, std::size_t> slot_of;  ///< range -> index in slots

  static inline const char* name = "warp.strong_range_group";
};

using strong_range_actor = caf::stateful_actor<strong_range_state>;

/// Spawns the actor of `setup.ranges`, linked to the calling actor (it goes when the quorum
/// actor goes).
caf::actor spawn_strong_range_actor(caf::event_based_actor* parent, strong_range_setup setup);
/// The same, unlinked (tests drive one range-group actor on its own).
caf::actor spawn_strong_range_actor(caf::actor_system& sys, strong_range_setup setup);

}  // namespace warp::actors
