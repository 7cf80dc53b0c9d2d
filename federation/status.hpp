// What a client (warpctl regions) asks a node's federation: its /admin/federation JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/fwd.hpp>

#include "warp/error.hpp"

namespace warp::federation {

/// Asks the federation actor of the node at HOST:PORT (registry name `warpfed`) for its
/// status JSON. Blocks the caller (not for a scheduler thread).
result<std::string> fetch_federation_json(caf::actor_system& sys, const std::string& host,
                                          std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace warp::federation
