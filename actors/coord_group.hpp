// The coordination group (docs/coordination.md, "Where it runs"): a Raft group actor
// (actors/raft_group_actor.hpp) whose state machine is a coordination::coord_machine
// (leases, fenced locks, fenced registers) and whose hooks run the lease countdown:
//   * every replica arms its lease_clock from the lease_timer events of the entries it
//     applies (and from the machine's state after a snapshot), so a new leader carries on
//     counting from the last checkpoint instead of restarting a lease at its full TTL;
//   * the leader proposes `expire(lease, epoch)` when a countdown runs out and a
//     `checkpoint` of the remaining TTLs every checkpoint_interval;
//   * the leader hands each ended lease's attached keys to on_lease_ended (the node deletes
//     them through its normal delete path, off the actor).
// The host spawns it (raft_host_setup::coordination) under the id coord_group_id.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/raft_group_actor.hpp"
#include "runtime/coordination/coord_command.hpp"

namespace warp::actors {

struct coord_group_options {
  coordination::coord_limits limits;
  std::chrono::milliseconds checkpoint_interval{1000};
  std::chrono::milliseconds expire_retry{500};
  /// Called on the leader's group actor when a lease ended (revoked or expired) with its
  /// attached keys. Must not block: post the deletes elsewhere.
  std::function<void(std::uint64_t lease, std::vector<std::string> keys, bool expired)>
      on_lease_ended;
};

std::unique_ptr<consensus::raft_state_machine> make_coord_machine(const coord_group_options& o);
std::unique_ptr<raft_group_hooks> make_coord_hooks(const coord_group_options& o);

}  // namespace warp::actors
