// node::impl: the state behind warp::node. The part the consistency modes share lives in
// detail::node_state (runtime/modes/node_state.hpp); this adds what only the facade uses.
// Internal: other parts of Warp (actors, bus, sidecar) reach the node through its public
// API; this header is for runtime/node only.
#pragma once

#include <cstdint>
#include <memory>

#include <caf/actor.hpp>

#include "actors/control_actor.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/node/pattern_table.hpp"
#include "warp/node.hpp"

namespace warp {

namespace bus {
struct node_transport_counters;
}

struct node::impl : detail::node_state {
  caf::actor control;
  // What the control actor calls (actors/control_actor.hpp): this node, through the
  // interface the actor layer defines.
  std::unique_ptr<actors::control_backend> control_backend;
  std::uint16_t listen_port = 0;
  // The node port's guard (bus/node_transport); null when the node does not listen.
  std::shared_ptr<bus::node_transport_counters> transport;
  // The run-time key-pattern table (runtime/node/pattern_table.hpp).
  std::unique_ptr<detail::pattern_table_keeper> pattern_table;
};

}  // namespace warp
