// The three consistency modes behind one interface. The node looks up a key's policy and
// hands the call to the mode that serves it (node::impl::mode_for):
//   strong_local          runtime/modes/mode_strong_local.cpp: this node's L1 over storage;
//   eventual_distributed  runtime/modes/mode_eventual.cpp: the same, plus the sync bus
//                         (runtime/modes/cluster.*) and read-through via the range owner;
//   strong_distributed    runtime/modes/mode_strong_distributed.cpp: ABD quorums
//                         (runtime/modes/strong.*), no L1, no storage adapter.
// The two storage-backed modes share one read path and one write path
// (runtime/modes/write_path.*): the mode only supplies the hooks that differ (where a miss
// is fetched, whether a fetched version may be cached, who hears of a committed write).
// Internal to runtime/modes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "warp/buffer.hpp"
#include "warp/error.hpp"
#include "warp/write.hpp"
#include "warp/pattern.hpp"
#include "warp/storage.hpp"
#include "warp/version.hpp"

namespace warp::detail {

class cluster;
struct node_state;
class strong_coordinator;

/// A write's decision on the current value (warp/write.hpp).
using write_fn = warp::update_fn;

/// What a committed write changed, as the mode's replication hook sees it.
struct committed_change {
  enum class kind : std::uint8_t { put, erase };
  kind what = kind::put;
  std::string_view key;
  version ver;
  std::int64_t expires_at_ms = 0;
  std::string_view value;  ///< put only
  bool hydrate = false;    ///< the key's policy ships values to peers (put only)
};

class consistency_mode {
 public:
  virtual ~consistency_mode() = default;
  virtual warp::mode kind() const noexcept = 0;

  /// A read the node's L1 did not answer (strong_distributed: every read).
  virtual result<buffer> get(std::string_view key, const key_policy& policy) = 0;
  /// get(), with a miss filled by `load` and written through.
  virtual result<buffer> get_or_load(std::string_view key, const key_policy& policy,
                                     const loader& load) = 0;
  /// A blind put (set, set_at): the common write, without write()'s callback.
  virtual result<void> set(std::string_view key, const key_policy& policy, std::string_view value,
                     std::int64_t expires_at_ms) = 0;
  /// Every other single-key write (set, remove, update): `fn` decides on the current value when
  /// `read_current`, else on nothing (a blind write).
  virtual result<mutation> write(std::string_view key, const key_policy& policy, const write_fn& fn,
                                 bool read_current) = 0;
  /// Non-blocking forms, offered by modes whose calls complete without a waiting thread
  /// (strong_distributed: the quorum actor completes them). False = not offered, `done`
  /// untouched: the node runs the blocking call on its executor instead. When offered,
  /// `done` runs on whichever thread completes the call (an actor's) and must not block.
  using get_done = std::function<void(result<buffer>)>;
  using write_done = std::function<void(result<void>)>;
  virtual bool get_async(std::string_view, const key_policy&, get_done&) { return false; }
  virtual bool set_async(std::string_view, const key_policy&, std::string_view, std::int64_t,
                         write_done&) {
    return false;
  }
  virtual bool remove_async(std::string_view, const key_policy&, write_done&) { return false; }

  /// Whether batched writes of its keys may share the write path's batch (stripes taken
  /// once, one storage write per key); false = the node runs them one by one via write().
  virtual bool batches() const noexcept { return true; }

  // -- hooks of the shared read and write paths (storage-backed modes) -----------------

  /// Where a miss goes before storage (the range owner). nullopt = read storage here.
  virtual std::optional<result<std::optional<record>>> fetch_elsewhere(std::string_view) {
    return std::nullopt;
  }
  /// Whether a read-through result of version `ver` may fill L1.
  virtual bool may_cache(std::string_view, version) const { return true; }
  /// A write reached storage and L1 (the key's write stripe is held).
  virtual void committed(const committed_change&) {}
  /// Storage reported a write of `key` at `ver` as failed: it may or may not have applied
  /// it. L1 has already dropped the key here; whoever else caches it must too.
  virtual void unknown_outcome(std::string_view, version) {}
};

class write_path;

std::unique_ptr<consistency_mode> make_strong_local_mode(write_path& path);
std::unique_ptr<consistency_mode> make_eventual_mode(write_path& path, cluster& c);
std::unique_ptr<consistency_mode> make_strong_distributed_mode(strong_coordinator& coordinator);

}  // namespace warp::detail
