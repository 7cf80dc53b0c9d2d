// Locks, leases and fenced writes (docs/coordination.md): the vocabulary of the node API's
// coordination calls (warp/node.hpp, "coordination"). They run on the cluster's
// coordination group, a Raft group of the strong mode's Raft engine, so they need a node
// in a cluster with strong members (warpd --strong-members, engine raft).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace warp {

/// A lease (a client session is a lease the client keeps alive): the log index that
/// granted it, unique in the cluster.
using lease_id = std::uint64_t;
/// A lock's fencing token: the log index of the grant; strictly increasing per lock.
using fencing_token = std::uint64_t;

/// Shortest lease TTL: a few election timeouts (10 ticks of 100 ms), so a leader change
/// alone does not end a live lease (docs/coordination.md, "Lease TTLs").
inline constexpr std::chrono::milliseconds min_lease_ttl{1000};

struct lease_status {
  lease_id id = 0;
  std::chrono::milliseconds ttl{0};
  /// As of the leader's last checkpoint (at most checkpoint interval, 1 s, old) or the last
  /// keep-alive.
  std::chrono::milliseconds remaining{0};
  std::uint64_t keepalives = 0;
  std::vector<std::string> keys;  ///< attached keys, ascending
};

struct lock_status {
  bool held = false;
  lease_id holder = 0;
  std::string owner;
  fencing_token token = 0;
  std::uint64_t waiters = 0;
};

}  // namespace warp
