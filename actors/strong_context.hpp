// What the strong_distributed coordinator (runtime/modes/strong.cpp) shares with its quorum
// actor (actors/quorum_actor.cpp): the local replica, the peers (outbound request queues
// and whether a connection exists), the table of calls waiting for replies, counters.
//
// Threads: coordinator calls run on the callers' threads (node::get/set/remove) and on the
// maintenance thread; they queue requests per peer and block on their call. The quorum
// actor (scheduled, never blocking) sends the queued requests as batches, answers
// peers' requests from the local replica, and hands replies to the waiting calls.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>

#include "merge/strong_replica.hpp"
#include "bus/strong_wire.hpp"

namespace warp::detail {

/// Counters of the strong mode (relaxed atomics).
struct strong_counters {
#define WARP_STRONG_COUNTERS(X)                                                              \
  X(gets)                                                                                    \
  X(sets) X(deletes) X(read_repairs) X(quorum_timeouts) X(unknown_outcomes) X(requests_sent) \
      X(batches_sent) X(requests_served) X(batches_served) X(decode_errors)                  \
          X(fingerprint_mismatches) X(ranges_recovered) X(ranges_bootstrapped)               \
              X(anti_entropy_rounds) X(anti_entropy_pulls) X(records_merged)                 \
                  X(unreachable_replies)
#define WARP_DECLARE(name) std::atomic<std::uint64_t> name{0};
  WARP_STRONG_COUNTERS(WARP_DECLARE)
#undef WARP_DECLARE
};

/// One phase of one operation: requests to up to 15 replicas ("slots"), replies by slot.
struct pending_call {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::optional<wire::reply>> replies;  ///< guarded by mtx
  std::size_t answered = 0;                         ///< guarded by mtx
};

/// A member this node talks to (every member but itself).
struct quorum_peer {
  std::string address;  ///< HOST:PORT as in the member list
  std::string host;
  std::uint16_t port = 0;
  /// The actor has a handle on the peer's quorum actor (set/cleared by the actor only).
  std::atomic<bool> connected{false};
  std::mutex mtx;
  std::vector<wire::request> queue;  ///< guarded by mtx: waiting for the next flush
};

struct quorum_context {
  // -- fixed at start -----------------------------------------------------------------
  std::uint64_t fingerprint = 0;
  std::uint64_t incarnation = 0;
  wire::strong_limits limits;
  strong_replica* replica = nullptr;
  std::vector<std::unique_ptr<quorum_peer>> peers;
  std::function<std::uint64_t()> clock_now;
  /// The status as JSON (for warp-nemesis, tests, operators).
  std::function<std::string()> status_json;

  // -- shared -----------------------------------------------------------------------------
  strong_counters counters;
  caf::actor actor;  ///< the quorum actor (set once after spawn)
  std::atomic<bool> flush_scheduled{false};
  std::atomic<bool> stopping{false};

  std::mutex pending_mtx;
  /// request id -> (call, slot)
  std::unordered_map<std::uint64_t, std::pair<std::shared_ptr<pending_call>, std::uint32_t>>
      pending;
  std::atomic<std::uint64_t> next_call{1};

  /// Queues a request for peer `p` and makes sure the actor flushes soon (any thread).
  void enqueue(std::size_t p, wire::request req);
  /// Hands a reply to the call waiting for it (any thread); unknown ids are dropped.
  void deliver(wire::reply rep);
  /// Fails every queued and pending request of peer `p` with status::unreachable.
  void fail_queue(std::size_t p, std::vector<wire::request>& reqs);
};

/// Answers one request from the local replica (the replica side of the protocol).
wire::reply serve(strong_replica& replica, const wire::request& req);

}  // namespace warp::detail
