// The configuration of an actor system for CAF's test coordinator (caf/test/dsl.hpp):
// the deterministic "testing" scheduler and a quiet logger. Shared by the deterministic
// actor tests (cluster, quorum and range actors, Raft group actors).
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

namespace warp::test {

inline caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

}  // namespace warp::test
