// The validator actor (docs/validator.md): one per node, for every key range the node
// caches (see the doc for why one per node rather than one per range). A stateful actor in
// the style of Zeek Broker's master_actor: the state below, one handler per command. It
// paces the validator's core (validator/validator.hpp) and keeps the keys that disagreed
// once until their grace window has passed; every blocking step (L1 walk, storage reads,
// heals) runs on the node's executor, never on a CAF scheduler thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "validator/validator.hpp"

namespace warp::validation {

/// Timer: check what is due (changed keys, a sample, suspects whose grace passed).
using tick_atom = caf::atom_constant<caf::atom("wvtick")>;
/// -> std::string: the core's JSON (what /admin/validator serves).
using status_atom = caf::atom_constant<caf::atom("wvstatus")>;

/// What one tick's job found: keys that disagreed with storage for the first time. They
/// are looked at again once the grace window has passed.
struct check_batch {
  std::vector<observation> suspects;
};

/// Runs a blocking job on the node's executor; false = not queued (the node is stopping).
using executor_fn = std::function<bool(std::function<void()>)>;

struct validator_settings {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds grace{500};
  std::size_t sample = 64;
  std::size_t max_batch = 1000;
  std::size_t max_suspects = 10000;
  /// Whether the actor arms its own timer (false in deterministic tests, which send
  /// tick_atom themselves).
  bool self_tick = true;
};

/// Spawns the validator actor over `c`; `post` runs its jobs. `c` must outlive the actor
/// and every job it posted (the node drains its executor after stopping the actor).
caf::actor spawn_validator_actor(caf::actor_system& sys, core& c, executor_fn post,
                                 validator_settings settings);

/// Tells the actor to quit and waits until it has. Safe with an invalid handle.
void stop_validator_actor(caf::actor_system& sys, const caf::actor& a);

}  // namespace warp::validation

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::validation::check_batch)
