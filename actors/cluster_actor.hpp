// The cluster actor: one per node, registered in the actor registry as `warpclus` so peers
// find it over CAF's network layer (connect to a peer's listen port, then a registry
// lookup on that node). It runs membership (seeds, DNS answers, gossip, heartbeats, CAF
// monitors, failure timeout), the CAF transport of the sync bus (adaptive batches out,
// sequence-checked batches in), and key-range ownership (range actors on their owner).
//
// Wire protocol. Only CAF built-in types cross the network, so nothing needs registering:
//   (warphb, string)     heartbeat envelope (bus/envelope.hpp), one-way
//   (warpbatch, string)  change batch envelope, one-way
//   (warpfetch, string key) -> string   fetch-reply envelope (remote read-through)
//   (warpmembs) -> string               the view as JSON (warpctl members)
//   (warppats, string)   key-pattern table envelope, one-way: to every peer when the table
//                        changes, and to a peer whose heartbeat shows an older version; the
//                        node hands its own changes to its actor the same way
//   (warphot, uint32 limit) -> string   this node's hot keys (bus/hot_keys_wire.hpp)
// Bytes are decoded with hard bounds; a malformed message is counted and dropped.
#pragma once

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_context.hpp"

namespace warp::actors {

using heartbeat_atom = caf::atom_constant<caf::atom("warphb")>;
using batch_atom = caf::atom_constant<caf::atom("warpbatch")>;
using fetch_atom = caf::atom_constant<caf::atom("warpfetch")>;
using members_atom = caf::atom_constant<caf::atom("warpmembs")>;
using wake_atom = caf::atom_constant<caf::atom("warpwake")>;
using tick_atom = caf::atom_constant<caf::atom("warptick")>;
using fetched_atom = caf::atom_constant<caf::atom("warpfetchd")>;
using goodbye_atom = caf::atom_constant<caf::atom("warpbye")>;
using pattern_table_atom = caf::atom_constant<caf::atom("warppats")>;
/// Local: the node's own new pattern table (already applied here) for the actor to spread.
using local_pattern_table_atom = caf::atom_constant<caf::atom("warppatl")>;
using hotkeys_atom = caf::atom_constant<caf::atom("warphot")>;

/// Most hot keys one warphot request may ask for (the answer is bounded by it).
inline constexpr std::uint32_t max_hot_keys_request = 100'000;

/// Test-only: treat `peer` as another node's cluster actor and say hello to it. Tests under
/// CAF's test coordinator run every node's actor in one actor system, whose own actors a
/// registry answer would be ignored for (test/cluster/cluster_actor_test.cpp).
struct cluster_link_cmd {
  caf::actor peer;
};

/// The registry name peers look the cluster actor up by.
constexpr caf::atom_value cluster_registry_name() noexcept {
  return caf::atom("warpclus");
}

/// Spawns the cluster actor (registered under cluster_registry_name()). `ctx` (and its
/// host) must outlive it; `delivery` receives what arrives, on the actor's thread.
caf::actor spawn_cluster_actor(caf::actor_system& sys, cluster_context& ctx,
                               bus_delivery delivery);

/// Flushes queued changes, tells peers this node is leaving, and stops the actor (waits).
void stop_cluster_actor(caf::actor_system& sys, const caf::actor& cluster);

/// Asks the node at HOST:PORT for its cluster view as JSON (for warpctl members).
warp::result<std::string> fetch_members_json(caf::actor_system& sys, const std::string& host,
                                             std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace warp::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::cluster_link_cmd)
