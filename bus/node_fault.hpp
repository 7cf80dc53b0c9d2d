// Test-only fault injection on the node port (warpd --fault-injection; docs/strong.md,
// "Partition fault"). Implemented by the guarded transport (bus/node_transport.cpp), which
// owns the connections; a header of its own so the transport's many includers do not
// depend on a test hook.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "warp/error.hpp"

namespace warp::bus {

/// Shuts every node-port connection `sys` dialed to one of `peers` (HOST:PORT as dialed,
/// e.g. the --peers entries) and refuses to dial them until the next call; an empty list
/// heals. Connections a peer dialed to us are the peer's to close: cut both sides (each
/// node told of the other) for a partition. Answers how many connections it shut;
/// unsupported when `sys` runs no node transport.
result<std::size_t> set_partition(caf::actor_system& sys, const std::vector<std::string>& peers);

}  // namespace warp::bus
