// The quorum actor: one per node in a cluster with strong_distributed keys, registered as
// `warpquor` so peers find it (connect to a peer's listen port, then a registry lookup on
// that node). It runs on CAF's scheduler and never blocks; callers of strong operations
// block on their own threads (application threads, the control actor's work pool), never
// on a scheduler thread, so they cannot starve the replies they wait for.
//
// Wire protocol (bus/strong_wire.hpp; only CAF built-in types cross the network):
//   (warpqreq, string)  request batch, one-way; answered by one or more reply batches
//   (warpqrep, string)  reply batch, one-way, to the sender of the requests
//   (warpqstat) -> string   the node's strong-mode status as JSON
// Bytes are decoded with hard bounds; a malformed message is counted and dropped.
#pragma once

#include <chrono>
#include <string>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "actors/strong_context.hpp"
#include "warp/error.hpp"

namespace warp::actors {

using quorum_request_atom = caf::atom_constant<caf::atom("warpqreq")>;
using quorum_reply_atom = caf::atom_constant<caf::atom("warpqrep")>;
using quorum_status_atom = caf::atom_constant<caf::atom("warpqstat")>;

constexpr caf::atom_value quorum_registry_name() noexcept {
  return caf::atom("warpquor");
}

/// Spawns the quorum actor (registered under quorum_registry_name()); `ctx` must outlive it.
caf::actor spawn_quorum_actor(caf::actor_system& sys, detail::quorum_context& ctx);
/// Stops it and waits until it is gone.
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
