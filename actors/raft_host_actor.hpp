// The node's Raft host: one per node, registered as raft_host_registry_name() so the other
// nodes' hosts find it (actors/peer_dialer.hpp: connect + registry lookup, as the quorum
// actor does). It spawns this node's replica of every Raft group the node belongs to
// (actors/raft_group_actor.hpp: multi-Raft, one group per strong range over that range's
// replica set; a group is an actor, not a thread) and carries all their traffic:
//   * groups hand their outbound raft messages to the host (raft_outbound); the host sends
//     ONE CAF message per destination node per flush: a batch frame
//     (runtime/consensus/raft_batch.hpp: versioned, sender id, bounded count of
//     (group, raft_wire bytes)), split only above flush_chunk_bytes;
//   * one timer per host ticks every group, waits for each group's raft_tick_done and then
//     flushes, so all heartbeats of all groups to one peer leave in one message; traffic
//     between ticks (appends, answers) is flushed once the mailbox has been drained;
//   * an incoming frame is size-checked, decoded with bounds, and each item handed to the
//     local group it names; a malformed frame (or an item for a group this node does not
//     host) is counted and dropped;
//   * client requests (raft_request_cmd) go to the key's group: to the local replica when
//     it leads, else forwarded to the leader's host (warprfwd request, one hop), following
//     not-the-leader hints a bounded number of times; proposals carry a client id (from the
//     host's incarnation) and a sequence, kept across retries, so a retry applies once.
// Nothing here blocks: opening the groups' logs happens in spawn_raft_host_actor (call it
// where blocking is allowed), fsyncs on the executor (the group actors do that).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/raft_commands.hpp"
#include "actors/raft_group_actor.hpp"
#include "runtime/consensus/raft_batch.hpp"
#include "runtime/consensus/raft_kv.hpp"
#include "warp/error.hpp"

namespace warp::detail {
class strong_placement;
}

namespace warp::actors {

struct coord_group_options;

/// The coordination group's id on every host (docs/coordination.md, "Where it runs"): outside
/// the key groups' ids 0..ranges-1; its voters are those of range 0.
inline constexpr std::uint32_t coord_group_id = 1u << 30;
inline std::uint32_t voters_range(std::uint32_t group) noexcept {
  return group == coord_group_id ? 0 : group;
}

struct raft_host_setup {
  /// The initial members, this node, and the groups: group g = range g of the placement, its
  /// initial voters the range's replicas (bootstrap raft id = member index + 1). Voter sets
  /// change later by configuration changes (docs/strong.md, "Membership"). Must outlive the
  /// host.
  const detail::strong_placement* placement = nullptr;
  /// This node's raft id: 0 = resolve_member_id(dir, placement, join) at spawn.
  consensus::node_id member_id = 0;
  /// --strong-join: with no member file, take a fresh id and vote nowhere until added.
  bool join = false;
  /// HOST:PORT other hosts reach this one at (hello messages); default: the placement's.
  std::string self_address;
  std::string dir;  ///< group g's log lives in <dir>/<g>
  raft_executor executor;
  std::chrono::milliseconds tick_interval{100};
  int election_tick = 10;
  /// Host ticks a client request may take in all (hops and retries included).
  int request_timeout_ticks = 20;
  /// How many not-the-leader hints a request follows at once; beyond them it follows them a
  /// tick apart. Only the deadline (request_timeout_ticks) ends a request.
  int max_attempts = 6;
  std::uint64_t incarnation = 1;  ///< distinguishes this process's client ids
  consensus::wire_limits wire;
  consensus::log_store_options log;
  consensus::kv_limits kv;
  consensus::batch_limits batch;
  std::size_t max_entry_bytes = 1u << 20;  ///< raft_config::max_entry_bytes of every group
  std::uint64_t snapshot_entries = 10'000;  ///< raft_group_setup::snapshot_entries
  std::size_t flush_chunk_bytes = 1u << 20;
  consensus::file_ops* ops = nullptr;  ///< nullptr: POSIX
  /// Find peers through the middleman and register under raft_host_registry_name();
  /// tests link hosts of one system with raft_host_link_cmd instead.
  bool dial = true;
  /// When set, the host also runs this node's replica of the coordination group.
  std::shared_ptr<const coord_group_options> coordination;
  /// When set, the key groups' state machine (the watch hub's reporting map,
  /// actors/watch_hub.hpp); else the plain key -> value map.
  std::function<std::unique_ptr<consensus::raft_state_machine>(std::uint32_t group)>
      make_key_state_machine;
  /// When set, the key groups' hooks (the storage write-through, actors/raft_writethrough.hpp).
  std::function<std::unique_ptr<raft_group_hooks>(std::uint32_t group)> make_key_hooks;
};

/// This node's raft id, from <dir>/member (written at first start, fsync'd): the bootstrap
/// id (placement index + 1) for an initial member, a fresh random id >= 2^32 when `join`
/// (an empty or lost data dir joining a running cluster). Blocking file I/O.
result<consensus::node_id> resolve_member_id(const std::string& dir,
                                             const detail::strong_placement& pl, bool join);

/// Hello frames (warprhel): "WRH1", then one "ID HOST:PORT" line per member the sender knows
/// of, the sender's own first. Bounded before anything is allocated for them.
inline constexpr std::size_t max_hello_bytes = 256u << 10;
inline constexpr std::size_t max_hello_entries = 4096;
std::string encode_hello(consensus::node_id self, std::string_view self_address,
                         const std::map<consensus::node_id, std::string>& book);
result<std::vector<std::pair<consensus::node_id, std::string>>> decode_hello(
    std::string_view bytes);

/// Spawns the host, opens every local group's log (blocking) and spawns its group actor.
result<caf::actor> spawn_raft_host_actor(caf::actor_system& sys, raft_host_setup setup);
/// Fails requests in flight, stops the host and its groups, waits until they are gone.
void stop_raft_host_actor(caf::actor_system& sys, const caf::actor& host);

/// The forwarded request and its answer (warprfwd): kind u8 | group u32 | kv_command;
/// answer: errc u8 | the value or the error's message. Decoding is bounded by `kv`.
std::string encode_forward(raft_request_kind kind, std::uint32_t group,
                           const consensus::kv_command& cmd);
struct forward_request {
  raft_request_kind kind = raft_request_kind::read;
  std::uint32_t group = 0;
  consensus::kv_command cmd;
};
result<forward_request> decode_forward(std::string_view bytes, const consensus::kv_limits& kv);
std::string encode_forward_answer(const result<std::string>& r);
result<std::string> decode_forward_answer(std::string_view bytes);

}  // namespace warp::actors
