// A lock() call of the strong Raft engine that holds no thread while it waits: one actor
// per call (actors/lock_wait_actor.hpp) on the node's actor system, talking to the engine's
// Raft host and looking at its grant board. Used by the node's lock() (which waits on a
// future for it) and by the sidecar's WARP.LOCK (which does not wait at all).
#pragma once

#include <string_view>
#include <utility>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/lock_wait_actor.hpp"
#include "runtime/modes/strong_raft.hpp"

namespace warp::detail {

/// The owner of a lock taken without one (node::lock, WARP.LOCK ... SESSION without OWNER).
inline constexpr std::string_view default_lock_owner = "default";

/// `done` runs once, on a CAF thread. Returns the waiter, for actors::cancel_lock_wait.
inline caf::actor lock_async(strong_raft& engine, caf::actor_system& sys,
                             actors::lock_wait_spec spec, actors::completion<std::uint64_t> done) {
  if (spec.owner.empty()) spec.owner = default_lock_owner;
  spec.pushed = engine.coord_replica();
  return actors::start_lock_wait(sys, engine.host(), engine.grants(), std::move(spec),
                                 std::move(done));
}

}  // namespace warp::detail
