// The cluster as an embedding service or an operator sees it: who is in it, in which
// state, who owns which key range, and the numbers of the sync bus. The machinery lives
// in runtime/modes/cluster*, actors/ and bus/; see docs/cluster.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace warp {

class node;

/// Where a member stands in this node's view.
///   joining: known (seed, DNS, gossip) but not heard from yet
///   up:      heartbeats arrive; owns ranges
///   suspect: silent for half the failure timeout (or its connection dropped); keeps its
///            ranges for now, but this node already distrusts nothing yet
///   down:    silent for the whole timeout; its ranges moved, entries it may have changed
///            were dropped from L1; contacted again periodically (a restart rejoins)
///   leaving: announced a clean shutdown; owns nothing
enum class member_state : std::uint8_t { joining = 0, up = 1, suspect = 2, down = 3, leaving = 4 };
std::string_view to_string(member_state s) noexcept;

struct member_info {
  std::uint32_t id = 0;           ///< node id (random per start)
  std::uint64_t incarnation = 0;  ///< start time of that process, ms
  std::string name;
  std::string address;  ///< HOST:PORT of its node-to-node listener
  member_state state = member_state::joining;
  std::int64_t last_heard_ms = 0;  ///< system clock, 0 = never
  bool self = false;
  std::size_t owned_ranges = 0;
};

/// Numbers of the cluster part of a node (all counters since start).
struct cluster_stats {
  std::uint64_t records_published = 0;  ///< local changes handed to the bus
  std::uint64_t records_coalesced =
      0;  ///< dropped before sending: a newer change of the same key was queued
  std::uint64_t batches_sent = 0;  ///< messages sent (one per batch per peer)
  std::uint64_t records_sent = 0;  ///< records in those messages
  std::uint64_t bytes_sent = 0;
  std::uint64_t batches_compressed = 0;
  std::uint64_t max_batch_records = 0;
  std::uint64_t batch_delay_us_total = 0;  ///< summed wait of each batch's oldest record
  std::uint64_t max_batch_delay_us = 0;
  std::uint64_t batches_received = 0;
  std::uint64_t records_received = 0;
  std::uint64_t records_applied = 0;  ///< changed L1 (invalidated, hydrated, erased)
  std::uint64_t records_stale = 0;    ///< older than what L1 holds: ignored
  std::uint64_t decode_errors = 0;
  std::uint64_t gaps = 0;                   ///< sequence gaps and lost peers detected
  std::uint64_t gap_invalidations = 0;      ///< L1 entries dropped because of them
  std::uint64_t owner_fetches = 0;          ///< misses answered by a remote range owner
  std::uint64_t replica_fetches = 0;        ///< owner failed: answered by a standby replica
  std::uint64_t owner_fetch_fallbacks = 0;  ///< no owner or replica answered: from storage
  std::uint64_t owner_fetches_served = 0;   ///< remote misses this node answered as owner
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t heartbeats_received = 0;
  std::uint64_t batches_immediate = 0;  ///< flushes sent at once (idle, or below the busy rate)
  std::uint64_t batches_delayed = 0;    ///< flushes held back to gather more records
  std::uint64_t batch_delay_current_us = 0;  ///< gauge: the delay the batcher applies now
  std::uint64_t arrival_rate_per_s = 0;      ///< gauge: observed records/s handed to the bus
};

struct cluster_view {
  std::uint32_t self_id = 0;
  std::size_t ranges = 0;
  std::vector<member_info> members;  ///< this node first, then by name
  /// Non-empty when a member runs on storage this node does not share while distributed
  /// patterns are in use (their storage identities differ): who, where, and what to do.
  /// Set by the newer of the two members (the one that should not have joined).
  std::string storage_conflict;
};

/// The view and stats as one JSON object: {"self":id,"ranges":n,"members":[...],"stats":{...}}.
std::string to_json(const cluster_view& view, const cluster_stats& stats);

/// The view of `n`'s cluster; a single `self` member when the node runs alone.
cluster_view view_of(node& n);
cluster_stats cluster_stats_of(node& n);
/// The view and stats as one JSON object (what `warpctl members --json` prints).
std::string cluster_json(node& n);
/// Prometheus text for the cluster (members by state, bus counters, batch sizes/delays).
std::string cluster_prometheus_text(node& n);
/// Id of the node owning `key`'s range (0 when unknown); this node's id when alone.
std::uint32_t owner_of(node& n, std::string_view key);

}  // namespace warp
