// What the strong_distributed coordinator (runtime/modes/strong.cpp) and its quorum actor
// (actors/quorum_actor.cpp) share as definitions: the counters the actor keeps and the
// replica side of the protocol (serve one request from the local replica).
//
// Nothing here is shared at run time: the quorum actor owns its counters, peers, queues and
// the operations in flight; each range actor (actors/strong_range_actor) owns its range's
// replica and serves from it with serve().
#pragma once

#include <cstdint>

#include "merge/strong_replica.hpp"
#include "bus/strong_wire.hpp"

namespace warp::detail {

/// Counters of the strong mode, owned by the quorum actor (plain integers: one thread).
struct strong_counters {
#define WARP_STRONG_COUNTERS(X)                                                                   \
  X(gets)                                                                                         \
  X(sets)                                                                                         \
  X(deletes)                                                                                      \
  X(read_repairs) X(quorum_timeouts) X(unknown_outcomes) X(requests_sent) X(batches_sent)         \
      X(requests_served) X(batches_served) X(decode_errors) X(fingerprint_mismatches)             \
          X(ranges_recovered) X(ranges_bootstrapped) X(anti_entropy_rounds) X(anti_entropy_pulls) \
              X(records_merged) X(unreachable_replies) X(group_messages)
#define WARP_DECLARE(name) std::uint64_t name = 0;
  WARP_STRONG_COUNTERS(WARP_DECLARE)
#undef WARP_DECLARE
};

/// Answers one request from one range's replica (the replica side of the protocol); the
/// caller routed it to the replica of `req.range`.
wire::reply serve(strong_replica& replica, const wire::request& req);

}  // namespace warp::detail
