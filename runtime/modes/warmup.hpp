// Warm-up: loading keys into L1 before (or while) this node serves them, on start and when
// it takes over key ranges (docs/hotkeys.md). Every load is a read-through of this node
// (runtime/modes/write_path read_local): coalesced with client misses of the same key, and
// through the key's storage protection (rate limit, breaker), so a warm-up cannot overload
// storage: a rate-limited load waits and retries, an open breaker or a storage outage stops
// the warm-up. Blocking: runs on the node's executor, never on a CAF scheduler thread.
// Internal to runtime/modes.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace warp::detail {

struct node_state;

/// Loads `keys` (at most hot_keys.warmup_limit of them) into L1; `why` names the warm-up in
/// its log lines ("start", "takeover of 90 ranges from node 2"). Logs progress at info.
void warm_keys(node_state& st, const std::vector<std::string>& keys, std::string_view why);

/// Up to `limit` keys of storage that `want` accepts, walking storage's key space from its
/// start and looking at no more than `budget` keys: the sample a warm-up falls back to when
/// no hot-key list is at hand.
std::vector<std::string> sample_storage_keys(node_state& st, std::size_t limit, std::size_t budget,
                                             const std::function<bool(std::string_view)>& want);

/// The warm-up of a node that starts outside a cluster (or as its first member): hot keys
/// it saved at its last stop (`data_dir/hotkeys`) if any, else a sample of storage. Posted
/// to the executor; returns at once.
void start_warmup(node_state& st);

/// Writes this node's hot-key list to `data_dir/hotkeys` (at stop), for the next start.
void save_hot_keys(node_state& st);

}  // namespace warp::detail
