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
#include <map>
#include <string>
#include <utility>
#include <vector>

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
// Local: the actor's tick timer (or the node's Raft host's, which ticks all its groups).
using raft_tick_atom = caf::atom_constant<caf::atom("warprtick")>;

// Between the Raft hosts of two nodes (actors/raft_host_actor.hpp; names fixed: they are the
// wire protocol, built-in CAF types only, nothing to register):
//   (warprbat, string)           one-way: a batch frame (runtime/consensus/raft_batch.hpp),
//                                every group's raft messages from the sender to this node
//   (warprfwd, string) -> string a client request forwarded to a node that replicates the
//                                key's group (encode_forward / decode_forward_answer in
//                                actors/raft_host_actor.hpp), answered once the group did
using raft_batch_atom = caf::atom_constant<caf::atom("warprbat")>;
using raft_fwd_atom = caf::atom_constant<caf::atom("warprfwd")>;
//   (warprhel, string)           one-way: who the sender is and the members it knows of
//                                (encode_hello in actors/raft_host_actor.hpp): how hosts
//                                reach members outside the static list
using raft_hello_atom = caf::atom_constant<caf::atom("warprhel")>;
// Local: the host's own timer.
using raft_host_tick_atom = caf::atom_constant<caf::atom("warprhtk")>;

/// The name every node's Raft host is registered under (peers look it up).
constexpr caf::atom_value raft_host_registry_name() noexcept {
  return caf::atom("warpraft");
}

/// Group -> host: the raft messages of one ready (destination member, raft_wire bytes),
/// released only after the ready was persisted; the host batches them per node.
struct raft_outbound {
  std::uint32_t group = 0;
  std::vector<std::pair<consensus::node_id, std::string>> msgs;
};

/// Group -> host: the group handled the host's tick (whatever that tick sent is already in
/// the host's mailbox before this), so the host may flush once every group said so.
struct raft_tick_done {
  std::uint32_t group = 0;
  /// The group's current voters and the leader it knows of: the host routes requests and
  /// answers `members list` with them (voter sets change while serving).
  std::vector<consensus::node_id> voters;
  consensus::node_id leader = 0;
};

/// A single-server configuration change of one group, at its leader: answered once the
/// change is committed ("added"/"removed"), at once when there is nothing to do ("already a
/// voter"/"not a voter"), or with not_leader. A change refused because the previous one is
/// still uncommitted waits in the group and is retried every tick.
struct raft_conf_cmd {
  consensus::conf_change_type type = consensus::conf_change_type::add_voter;
  consensus::node_id node = 0;
  completion<std::string> done;
};

/// `warpctl members add|remove|list` at the node's Raft host (docs/strong.md, "Membership").
/// target: HOST:PORT or a decimal raft id (add, remove); answered with a readable summary.
enum class raft_members_op : std::uint8_t { list, add, remove };
struct raft_members_cmd {
  raft_members_op op = raft_members_op::list;
  std::string target;
  completion<std::string> done;
};

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
  /// When not empty: proposed as is instead of `cmd` (a coordination group's commands,
  /// runtime/coordination/coord_command.hpp, carrying their own client id and sequence).
  std::string raw;
};

/// A linearizable read (ReadIndex): answered by the leader once its applied state covers
/// everything committed before the read arrived. Errors as for proposals; not_found when the
/// key has no value. `versioned`: the state machine's read_versioned (the key's revision
/// with its value, present or not) instead of read.
struct raft_read_cmd {
  std::string key;
  completion<std::string> done;
  bool versioned = false;
};

/// A client request to the node's Raft host, for the group that holds `cmd.key`: a
/// linearizable read (ReadIndex at the leader) or a proposal. The host runs it on its own
/// replica of the group when that one leads, else forwards it host-to-host to the leader it
/// knows of (one hop; on not-the-leader it follows the hint: at once a few times, then a
/// tick apart; only the request's deadline ends it).
/// Proposals get a client id and sequence from the host (cmd.client/seq are overwritten),
/// kept across its retries, so a retried proposal applies once. Answers and errors as for
/// raft_propose_cmd / raft_read_cmd; unreachable when no replica of the group answers.
/// coord_read / coord_propose: for the coordination group (actors/coord_group.hpp), the raw
/// coord_query / coord_command bytes in cmd.value; client id and sequence are the caller's.
/// conf_add / conf_remove: make member cmd.value (a decimal raft id) a voter of the group,
/// or not (docs/strong.md, "Membership"); idempotent, so retried like reads.
/// read_versioned: a read answered with the key's revision (consensus::kv_versioned).
enum class raft_request_kind : std::uint8_t {
  read = 0,
  propose = 1,
  coord_read = 2,
  coord_propose = 3,
  conf_add = 4,
  conf_remove = 5,
  read_versioned = 6,
};
constexpr bool is_write(raft_request_kind k) noexcept {
  return k == raft_request_kind::propose || k == raft_request_kind::coord_propose;
}
struct raft_request_cmd {
  raft_request_kind kind = raft_request_kind::read;
  consensus::kv_command cmd;
  completion<std::string> done;
};

/// The host learns that `actor` runs its replica of `group`.
struct raft_attach_cmd {
  std::uint32_t group = 0;
  caf::actor actor;
};

/// Tests in one actor system: use `peer` as the Raft host of member `id`.
struct raft_host_link_cmd {
  consensus::node_id id = 0;
  caf::actor peer;
};

/// Counters of a Raft host and its group actors (each answers raft_status_cmd).
struct raft_host_status {
  consensus::node_id id = 0;
  std::size_t peers_connected = 0;
  std::uint64_t batches_sent = 0;  ///< CAF messages to other hosts (one per node per flush)
  std::uint64_t items_sent = 0;    ///< raft messages inside them
  std::uint64_t batches_received = 0;
  std::uint64_t malformed = 0;        ///< batch frames refused by the decoder, and their
                                      ///< items for an unknown group or the wrong sender
  std::uint64_t undeliverable = 0;    ///< raft messages to a member with no link
  std::uint64_t forwarded = 0;        ///< client requests sent to another host
  std::uint64_t forwards_served = 0;  ///< requests other hosts forwarded here
  std::uint64_t flushes = 0;
  std::uint64_t groups_created = 0;  ///< groups this host joined while running (a leader
                                     ///< contacted it for a group it did not replicate)
  std::vector<std::pair<std::uint32_t, caf::actor>> groups;
  /// Raft id -> HOST:PORT of every member this host knows of (its address book), so a
  /// leader that joined later is named too.
  std::map<consensus::node_id, std::string> addresses;
};
struct raft_host_status_cmd {
  completion<raft_host_status> done;
};

/// Stop the host and its group actors (requests in flight: shutting_down).
struct raft_host_stop_cmd {};

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
  std::uint32_t group = 0;  ///< the group's id on its host
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
  std::uint64_t snapshots = 0;          ///< log compactions by this actor
  consensus::index_t snapshot_index = 0;  ///< the log's base (its last snapshot)
  std::uint64_t elections_started = 0;  ///< by this member, after a won pre-vote
  std::uint64_t elections_won = 0;
  std::size_t voters = 0;
  std::size_t pending_proposals = 0;  ///< waiting to commit
  std::size_t pending_reads = 0;      ///< ReadIndex reads waiting
  /// The storage write-through (docs/strong.md, "Storage write-through"), when on: keys
  /// changed and not yet in storage (replicated: the same on every replica), the group's
  /// stored mark, and this replica's writes as a leader.
  bool write_through = false;
  std::size_t wt_pending_keys = 0;
  consensus::index_t wt_stored_index = 0;
  std::uint64_t wt_batches = 0;   ///< fenced writes this replica completed
  std::uint64_t wt_keys = 0;      ///< keys they wrote (puts and deletes)
  std::uint64_t wt_failures = 0;  ///< failed fenced writes (storage errors; retried)
  std::uint64_t wt_fenced = 0;    ///< writes refused by a newer leader's fence
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
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_outbound)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_request_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_attach_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_host_link_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_host_status_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_host_stop_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_tick_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_conf_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::raft_members_cmd)
