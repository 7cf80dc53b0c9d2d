// The storage write-through of a Raft key group (docs/strong.md, "Storage write-through"):
// committed strong values reach the storage adapter, so services that read the database
// see them. Group hooks (raft_group_hooks), run on the group actor of every replica:
//   * what is still to write is replicated state: the key map lists the keys changed since
//     the group's last `stored` mark (consensus::kv_state_machine, track_unstored), also in
//     its snapshots, so a new leader, a restart or a compaction loses nothing;
//   * only the leader writes, and only once it applied an entry of its own term (its state
//     then holds everything an earlier leader could have written); it writes each listed
//     key's CURRENT value (or a delete when the key is gone) on the node's executor, one
//     batch at a time, through storage::write_fenced with its term as the fence token, so
//     a deposed leader's batch still in flight cannot overwrite a newer leader's writes;
//   * once a batch is stored it proposes a `stored` mark (every change up to index N is in
//     storage), which every replica applies by dropping those keys from the list;
//   * a failed write is retried with backoff (doubling from one tick up to max_backoff_ticks)
//     and the list keeps the keys meanwhile; Raft acknowledges writes as before.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "actors/raft_group_actor.hpp"
#include "warp/storage.hpp"
#include "warp/storage_fence.hpp"
#include "warp/version.hpp"

namespace warp::actors {

struct writethrough_options {
  std::shared_ptr<warp::storage> store;  ///< required, with fenced writes (fenced_writes_of)
  raft_executor executor;                ///< required: the node's blocking executor
  /// The version each stored record carries (the node's hybrid clock).
  std::function<version()> next_version;
  /// Keys per fenced write (one storage transaction).
  std::size_t max_batch = 512;
  int max_backoff_ticks = 64;
  /// Node-wide bound on write-through jobs on the executor at once, shared by the node's
  /// groups: a storage outage blocks at most that many executor threads, never the fsyncs
  /// of the Raft logs, which run on the same executor.
  std::shared_ptr<std::atomic<int>> jobs_in_flight = std::make_shared<std::atomic<int>>(0);
  int max_jobs = 2;
};

/// The fence a group's writes are checked against in storage: "raft-group-<group>".
std::string writethrough_fence(std::uint32_t group);

std::unique_ptr<raft_group_hooks> make_writethrough_hooks(std::uint32_t group,
                                                          writethrough_options opts);

}  // namespace warp::actors
