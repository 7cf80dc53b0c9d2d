// The node's watch hub (docs/coordination.md, "Watch"): one CAF actor per node that owns a
// watch_hub (actors/watch_hub.hpp) and feeds it. The key groups' state machines
// (watched_kv_state_machine) send it each applied entry; watchers register a watch_stream
// and read it from their own thread (the C++ API's handle, an SSE connection), so the hub
// never waits on a watcher: a watcher that does not keep up is ended `slow`.
// Its timer paces the progress events. Nothing here blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/quorum_commands.hpp"  // completion<T>
#include "actors/watch_hub.hpp"

namespace warp::actors {

struct watch_restored_msg {
  std::uint32_t group = 0;
  std::uint64_t index = 0;
};

/// Answered with the watcher's stream (bounded by the hub's max_queue).
struct watch_add_cmd {
  std::string filter;
  watch_from from;
  bool prev = false;
  completion<std::shared_ptr<watch_stream>> done;
};

struct watch_history_cmd {
  std::string key;
  completion<std::vector<key_version>> done;
};

struct watch_get_at_cmd {
  std::string key;
  std::uint64_t revision = 0;
  completion<std::optional<key_version>> done;
};

struct watch_hub_stop_cmd {};

/// Spawns the hub for the key groups `groups` (`all_groups`: every key group is here);
/// `group_of` maps a key to its group (history, get_at).
caf::actor spawn_watch_hub_actor(caf::actor_system& sys, watch_hub_options opts,
                                 std::vector<std::uint32_t> groups, bool all_groups,
                                 std::function<std::uint32_t(std::string_view)> group_of);

/// The callbacks a key group's watched_kv_state_machine reports through (to `hub`).
std::function<void(applied_change)> watch_change_sink(caf::actor hub);
std::function<void(std::uint32_t, std::uint64_t)> watch_restore_sink(caf::actor hub);

}  // namespace warp::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::applied_change)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::watch_restored_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::watch_add_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::watch_history_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::watch_get_at_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::watch_hub_stop_cmd)
