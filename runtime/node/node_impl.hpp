// node::impl: the state behind warp::node. Internal: other parts of Warp (actors, bus,
// sidecar) reach the node through its public API; this header is for runtime/node and runtime/modes only.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "merge/hlc.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/readthrough/coalescer.hpp"
#include "runtime/core/epoch.hpp"
#include "warp/node.hpp"

namespace warp {

namespace bus {
struct node_transport_counters;
}

namespace detail {
class strong_coordinator;
}

struct node::impl {
  node_config config;
  std::string name;
  std::uint32_t id = 0;

  // The actor system: either owned (own_config/own_system) or the host's.
  std::unique_ptr<caf::actor_system_config> own_config;
  std::unique_ptr<caf::actor_system> own_system;
  caf::actor_system* system = nullptr;
  caf::actor control;
  std::uint16_t listen_port = 0;
  // The node port's guard (bus/node_transport); null when the node does not listen.
  std::shared_ptr<bus::node_transport_counters> transport;

  std::unique_ptr<l1_store> l1;
  std::shared_ptr<warp::storage> store;
  pattern_registry patterns;
  hybrid_clock clock;
  detail::fetch_coalescer coalescer;

  // Writes to one key are ordered by its stripe (write-through to storage, then L1).
  static constexpr std::size_t write_stripes = 256;
  std::array<std::mutex, write_stripes> write_locks;
  static std::size_t stripe_of(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key) % write_stripes;
  }
  std::mutex& write_lock(std::string_view key) { return write_locks[stripe_of(key)]; }

  // Watchers: a copy-on-write list published through an atomic pointer (null = none) and
  // read under an epoch pin (runtime/core/epoch.hpp), so notifying takes no lock, touches no
  // shared reference count and never holds a lock while calling out. watch()/unwatch()
  // replace the list under watchers_mtx and retire the old one to watcher_garbage.
  using watcher_list = std::vector<std::pair<watch_id, std::function<void(const change_event&)>>>;
  std::mutex watchers_mtx;
  std::atomic<watcher_list*> watchers{nullptr};
  detail::garbage_list watcher_garbage;  // under watchers_mtx
  std::atomic<watch_id> next_watch_id{1};
  ~impl();

  std::atomic<std::uint64_t> storage_fetches{0};
  std::atomic<std::uint64_t> storage_errors{0};
  std::atomic<std::uint64_t> storage_writes{0};
  std::atomic<bool> stopped{false};

  void notify(const change_event& ev);
  /// notify() for a change made by this node's write path: builds the event only when
  /// somebody watches, in a per-thread event whose key keeps its capacity (no allocation).
  void notify_local(change_event::kind what, std::string_view key, version ver);

  // The cluster (null when the node does not listen). Declared after everything it uses,
  // so it is torn down first.
  std::unique_ptr<detail::cluster> cluster;
  // The strong_distributed coordinator (runtime/modes/strong.hpp): null unless the node is in
  // a cluster. Declared last, so it is torn down first.
  std::unique_ptr<detail::strong_coordinator> strong;

  /// Read of a key on this node only: L1, else the coalesced storage read-through (no
  /// range-owner hop). What a range owner answers remote misses with.
  result<std::optional<record>> local_read(std::string_view key);
};

}  // namespace warp
