// Every message a Raft group actor (actors/raft_group_actor.hpp) understands.
//
// Between the group actors of one group only one atom carries data:
//   (warprmsg, string)  one raft message in the versioned, size-bounded encoding of
//                       runtime/consensus/raft_wire.hpp, one-way (a built-in CAF type:
//                       nothing to register; the bytes are the wire format, not CAF's)
// The commands below never leave the process; those that carry a completion are allowed as
// local message types.
#pragma once

#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include "actors/quorum_commands.hpp"  // completion<T>
#include "runtime/consensus/raft.hpp"
#include "runtime/consensus/raft_kv.hpp"
#include "warp/error.hpp"

namespace warp::actors {

// Between group actors (name fixed: it is the wire protocol).
using raft_msg_atom = caf::atom_constant<caf::atom("warprmsg")>;
// Local: the actor's tick timer.
using raft_tick_atom = caf::atom_constant<caf::atom("warprtick")>;

/// A proposal to the group's key -> value map. Answered once the command is applied on this
/// node (the value is the state machine's answer), or with an error:
///   unreachable      not the leader; the message names the leader it knows of (see
///                    not_leader_hint()); nothing was proposed
///   unknown_outcome  no answer within the proposal timeout, leadership lost with the entry
///                    uncommitted, or the log failed: it may still apply. Retrying with the
///                    same client id and sequence is safe: it applies at most once
///   storage_error    this node's log failed earlier: it acknowledges nothing any more
///   shutting_down    the actor stopped
///   conflict         a compare-and-set whose expected value did not match (applied as a no-op)
struct raft_propose_cmd {
  consensus::kv_command cmd;
  completion<std::string> done;
};

/// A linearizable read (ReadIndex): answered by the leader once its applied state covers
/// everything committed before the read arrived. Errors as for proposals; not_found when the
/// key has no value.
struct raft_read_cmd {
  std::string key;
  completion<std::string> done;
};

/// Use `peer` as the group actor of member `id` (tests link actors of one system directly;
/// the network transport comes later).
struct raft_link_cmd {
  consensus::node_id id = 0;
  caf::actor peer;
};

/// Fail everything in flight with shutting_down and quit.
struct raft_stop_cmd {};

/// Answer of raft_status_cmd: what /metrics and /admin/strong will show per group.
struct raft_status {
  consensus::node_id id = 0;
  consensus::role role = consensus::role::follower;
  consensus::term_t term = 0;
  consensus::node_id leader = 0;
  consensus::index_t commit = 0;
  consensus::index_t applied = 0;
  consensus::index_t last_index = 0;
  bool log_failed = false;
  std::uint64_t persists = 0;       ///< group commits (one fsync each)
  std::uint64_t malformed = 0;      ///< raft messages refused by the decoder's bounds
  std::uint64_t undeliverable = 0;  ///< raft messages to a member with no link
};

struct raft_status_cmd {
  completion<raft_status> done;
};

/// The leader named by a not-the-leader error (errc::unreachable), 0 when none is known or
/// the error is another one.
consensus::node_id not_leader_hint(const error& e);

}  // namespace warp::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_propose_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_read_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_link_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_stop_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_status_cmd)
