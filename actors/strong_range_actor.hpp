// The strong range actor: one per key range this node replicates in the strong_distributed
// mode, spawned (linked) by the node's quorum actor. Its state OWNS the range's replica
// (merge/strong_replica: records, digest, ready flag), so nothing else reads or writes it
// and no lock guards it. It
//   * serves the replica requests the quorum actor routes to it (a peer's batch split by
//     range, and its own node's part in a quorum): range_serve_cmd -> range_served;
//   * catches its range up after a (re)start when the quorum actor's pacing timer says so
//     (range_recover_atom), by the rules of docs/strong.md ("Crash recovery");
//   * compares digests with the other replicas and pulls what differs
//     (range_sync_atom, one anti-entropy round);
//   * reports readiness (range_progress) and counters (strong_count_cmd) to the quorum
//     actor, which owns the peer links: every fan-out to other replicas is a request to it
//     (range_fanout_cmd), answered asynchronously; nothing here waits.
// Messages: actors/quorum_commands.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
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

/// What a range actor is given at spawn; fixed for its lifetime.
struct strong_range_setup {
  std::uint32_t range = 0;
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

  // -- handlers, one per command -------------------------------------------------------

  void on_serve(range_serve_cmd& cmd);
  /// One catch-up pass, unless the range is ready or a pass is still running.
  void on_recover();
  /// One anti-entropy round, unless the range is not ready or a round is still running.
  void on_sync();

  // -- recovery and anti-entropy steps -------------------------------------------------

  /// Slots (in the range's replica list) of the other replicas.
  std::vector<std::size_t> other_slots() const;
  void fanout(std::vector<std::size_t> slots, detail::wire::request req, std::size_t need,
              std::chrono::milliseconds timeout, std::function<void(fanout_result&)> then);
  /// Copies every record from the replica in `slot`, page by page, until `deadline`;
  /// `done(true)` when every page came back ok.
  void pull(std::size_t slot, std::string after, bool first,
            std::chrono::steady_clock::time_point deadline, std::function<void(bool)> done);
  void on_probed(fanout_result& res);
  void finish_pass(std::size_t copied, std::size_t ready_slots, bool census,
                   std::vector<std::size_t> unusable);
  void report(const strong_count_cmd& counts);

  caf::event_based_actor* self;
  strong_range_setup setup;
  detail::strong_replica replica;
  bool recovering = false;  ///< a catch-up pass is in flight
  bool syncing = false;     ///< an anti-entropy round is in flight

  static inline const char* name = "warp.strong_range";
};

using strong_range_actor = caf::stateful_actor<strong_range_state>;

/// Spawns the actor of `setup.range`, linked to the calling actor (it goes when the quorum
/// actor goes).
caf::actor spawn_strong_range_actor(caf::event_based_actor* parent, strong_range_setup setup);
/// The same, unlinked (tests drive one range actor on its own).
caf::actor spawn_strong_range_actor(caf::actor_system& sys, strong_range_setup setup);

}  // namespace warp::actors
