// A key range actor: lives on the range's owner and answers remote read-through misses of
// the range's keys. Concurrent misses of one key share one fetch (and that fetch joins the
// node's own coalesced read-through), so N nodes missing a cold key cost one storage read.
// The blocking part (storage) runs on the cluster's work pool, never on the actor.
#pragma once

#include <cstdint>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_context.hpp"

namespace warp::actors {

caf::actor spawn_range_actor(caf::actor_system& sys, cluster_context& ctx, std::uint32_t range);

}  // namespace warp::actors
