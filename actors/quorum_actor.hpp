// The quorum actor: one per node in a cluster with strong_distributed keys, registered as
// `warpquor` so peers find it (connect to a peer's listen port, then a registry lookup on
// that node). It is the coordinator of every strong operation of its node and the router
// of its node's replica requests:
//   * strong_read_cmd / strong_write_cmd run the ABD phases (detail::quorum_op, a pure
//     class) and complete the caller's continuation with the outcome: no caller thread
//     takes part in the protocol; blocking callers wait on a future the continuation fills;
//   * it spawns `range_groups` range-group actors (actors/strong_range_actor.hpp), each
//     owning the replicas of a share of the ranges this node replicates: a peer's request
//     batch is split by group (at most range_groups parts), each part served by its group
//     actor, and the replies gathered into one reply batch per request batch; its own
//     node's part in quorums is queued per group and sent with the peer flush (one
//     message per group per flush, not one per operation);
//   * it paces crash recovery (every 100 ms while a range is not ready) and anti-entropy
//     (every anti_entropy_interval, jittered) with timers, and runs the range actors'
//     fan-outs to the other replicas;
//   * it owns the peer links, the outbound batches, the operations in flight, the
//     deadlines, the counters and the catch-up progress (stateful_actor state, one thread:
//     no lock).
// It runs on CAF's scheduler and never blocks. Messages: actors/quorum_commands.hpp.
// Bytes from the network are decoded with hard bounds; a malformed message is counted and
// dropped.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/quorum_commands.hpp"
#include "bus/strong_wire.hpp"
#include "warp/error.hpp"
#include "warp/version.hpp"

namespace warp::detail {
class strong_placement;
}

namespace warp::actors {

/// Everything the quorum actor is given at spawn; fixed for its lifetime.
struct quorum_setup {
  /// Where each range's replicas are (owned by the coordinator, immutable).
  const detail::strong_placement* placement = nullptr;
  /// Start every range ready (tests); a (re)started node starts every range it replicates
  /// not ready and catches it up (docs/strong.md, "Crash recovery").
  bool ranges_ready = false;
  /// Anti-entropy period (jittered); zero: none.
  std::chrono::milliseconds anti_entropy_interval{0};
  std::uint64_t incarnation = 0;
  detail::wire::strong_limits limits;
  /// Range-group actors (docs/strong.md, "Structure"): the ranges this node replicates are
  /// dealt round-robin to this many actors (at most one per range). More groups spread
  /// replica work over more scheduler threads; fewer mean fewer parts per peer batch.
  std::size_t range_groups = 4;
  /// Bound on one get/set/delete.
  std::chrono::milliseconds timeout{1000};
  /// The version of a write, strictly above `highest` (HLC and node id).
  std::function<version(const version& highest)> pick_version;
  /// The node's HLC reading, sent in every batch header.
  std::function<std::uint64_t()> clock_now;
  /// Find peers through the middleman (connect + registry lookup) and register as
  /// quorum_registry_name(). Tests link actors of one system with quorum_link_cmd instead.
  bool dial = true;
};

/// Spawns the quorum actor (registered under quorum_registry_name() when `setup.dial`) and
/// its range actors; the placement must outlive them.
caf::actor spawn_quorum_actor(caf::actor_system& sys, quorum_setup setup);
/// Fails its operations in flight, stops it and waits until it is gone.
void stop_quorum_actor(caf::actor_system& sys, const caf::actor& quorum);

/// Asks the node at HOST:PORT for its strong-mode status JSON (blocking; for warp-nemesis
/// and tests).
warp::result<std::string> fetch_strong_status(caf::actor_system& sys, const std::string& host,
                                              std::uint16_t port,
                                              std::chrono::milliseconds timeout);
/// The same through a fresh, short-lived actor system of its own: no connection, route or
/// middleman cache entry of the caller's system is involved. An observer that polls a node
/// restarted at the same address falls back to it when its own system cannot get an answer
/// (seen once in a while with CAF 0.17: the caller's registry lookup of the new process
/// never answered while the cluster itself was fine; docs/strong.md).
warp::result<std::string> fetch_strong_status_fresh(const std::string& host, std::uint16_t port,
                                                    std::chrono::milliseconds timeout);

}  // namespace warp::actors
