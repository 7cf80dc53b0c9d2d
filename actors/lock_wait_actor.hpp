// A lock() call that holds no thread while it waits (docs/coordination.md, "Waiting for a
// lock"): one short-lived actor per call proposes the lock to the coordination group through
// the node's Raft host and, when queued, waits for its grant with timers only (its own
// delayed messages): a look at the grant board every 2 ms (in-process; the local replica of
// the coordination group posts the grants it applies there), a read of the lock at the
// leader every 10 ms growing to 1 s (every 10-50 ms without a local replica) as a safety
// net, and its deadline, when it leaves the queue (cancel_wait, which returns a grant that
// raced it). Its caller may give up at any
// time (a sidecar client that disconnected): the waiter then leaves the queue at once, and
// releases the lock if it was granted meanwhile, so the next waiter is not held up until
// the session ends. The caller's completion runs exactly once, on a CAF thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/quorum_commands.hpp"  // completion<T>
#include "runtime/coordination/grant_board.hpp"

namespace warp::actors {

struct lock_wait_spec {
  std::string name;
  std::uint64_t session = 0;
  std::string owner;  ///< not empty
  /// 0: try once (conflict when held); else the longest wait (then errc::timeout).
  std::chrono::milliseconds timeout{0};
  /// This node replicates the coordination group: grants are pushed through the board, so
  /// the lock is read rarely (up to every second) instead of every 10-50 ms.
  bool pushed = false;
};

/// Starts the call (`board`: the node's, strong_raft::grants()); returns its waiter (for
/// cancel_lock_wait). `done` gets the fencing token, or conflict (held, timeout 0), timeout (the
/// wait ran out, or the caller gave up), or the coordination group's error.
caf::actor start_lock_wait(caf::actor_system& sys, caf::actor host,
                           std::shared_ptr<coordination::grant_board> board, lock_wait_spec spec,
                           completion<std::uint64_t> done);

/// The caller gives up: the waiter leaves the queue, or releases what it was granted, and
/// completes with errc::timeout (a grant that had already completed the call is the caller's
/// to release: release_lock).
void cancel_lock_wait(const caf::actor& waiter);

/// Proposes an unlock nobody waits for (a grant whose caller is gone).
void release_lock(const caf::actor& host, std::string name, std::uint64_t session,
                  std::string owner, std::uint64_t token);

/// A fresh client id for a coordination command: its retries (same id, sequence 1) apply once.
std::uint64_t fresh_coord_client();

}  // namespace warp::actors
