// The coordination group (docs/coordination.md, "Where it runs"): a Raft group actor
// (actors/raft_group_actor.hpp) whose state machine is a coordination::coord_machine
// (leases, fenced locks, fenced registers) and whose hooks run the lease countdown:
//   * every replica arms its lease_clock from the lease_timer events of the entries it
//     applies (and from the machine's state after a snapshot), so a new leader carries on
//     counting from the last checkpoint instead of restarting a lease at its full TTL;
//   * the leader proposes `expire(lease, epoch)` when a countdown runs out and a
//     `checkpoint` of the remaining TTLs every checkpoint_interval;
//   * the leader runs the pending deletes of ended leases' attached keys (part of the
//     replicated state) through on_lease_ended (the node deletes them through its normal
//     delete path, off the actor) and, once they are done, proposes keys_deleted to clear
//     them; a new leader repeats whatever is still pending (deletes are idempotent);
//   * every replica posts the lock grants it applies to on_lock_granted (the node's
//     waiting lock() calls wake at once).
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
  /// How long the leader waits before running a lease's pending deletes again when they
  /// failed, or when its keys_deleted did not commit (lost with a leader change).
  std::chrono::milliseconds delete_retry{2000};
  /// Reports that the deletes `on_lease_ended` started are over: true when every key is
  /// gone. Callable from any thread, once.
  using deletes_done = std::function<void(bool ok)>;
  /// Called on the leader's group actor for each ended lease (revoked or expired) whose
  /// attached keys are pending deletion. Must not block: post the deletes elsewhere and
  /// call `done` when they finished.
  std::function<void(std::uint64_t lease, std::vector<std::string> keys, bool expired,
                     deletes_done done)>
      on_lease_ended;
  /// Called on every replica's group actor for each lock grant it applies (the lock, the
  /// lease and owner that got it, the token). Must not block.
  std::function<void(const std::string& name, std::uint64_t lease, const std::string& owner,
                     std::uint64_t token)>
      on_lock_granted;
};

std::unique_ptr<consensus::raft_state_machine> make_coord_machine(const coord_group_options& o);
std::unique_ptr<raft_group_hooks> make_coord_hooks(const coord_group_options& o);

}  // namespace warp::actors
