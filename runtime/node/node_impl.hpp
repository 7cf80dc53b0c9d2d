// node::impl: the state behind warp::node. The part the consistency modes share lives in
// detail::node_state (runtime/modes/node_state.hpp); this adds what only the facade uses.
// Internal: other parts of Warp (actors, bus, sidecar) reach the node through its public
// API; this header is for runtime/node only.
#pragma once

#include <cstdint>
#include <memory>

#include <caf/actor.hpp>

#include "actors/control_actor.hpp"
#include "federation/federation_actor.hpp"
#include "runtime/modes/node_state.hpp"
#include "validator/validator.hpp"
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
  // The validator (runtime/node/node_validator.cpp, validator/): the core always exists
  // (warpctl validate works with the validator off); the actor and its watcher only when
  // a pattern or the node-wide mode turns it on.
  std::unique_ptr<validation::core> validator;
  caf::actor validator_actor;
  watch_id validator_watch = 0;
  // The run-time key-pattern table (runtime/node/pattern_table.hpp).
  std::unique_ptr<detail::pattern_table_keeper> pattern_table;
  // The federation with other regions (federation/, docs/federation.md); null without
  // --region.
  std::unique_ptr<federation::node_federation> federation_link;
};

/// The control protocol's coordination requests (actors/control_actor.hpp, coord_atom) on
/// the node API (coordination_api.cpp). Blocking.
result<std::string> coordination_request(node& n, std::string_view verb,
                                         const std::vector<std::string>& args);

/// Creates the validator and, when enabled, starts its actor and change-stream watcher.
void start_validator(node& n, node::impl& st);
/// Stops the actor and the watcher (before the executor drains).
void stop_validator(node& n, node::impl& st);
/// The validator's part of node_stats.
void fill_validator_stats(const node::impl& st, node_stats& out);

}  // namespace warp
