// node_state: the watcher list's lifetime and the change notifications every write path
// sends (runtime/modes/node_state.hpp).
#include "runtime/modes/node_state.hpp"

#include <exception>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "runtime/core/log.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/strong.hpp"

namespace warp::detail {

node_state::~node_state() {
  delete watchers.load(std::memory_order_relaxed);
}

void node_state::notify(const change_event& ev) {
  if (watchers.load(std::memory_order_relaxed) == nullptr) return;
  // The pin keeps the list alive while it is walked (unwatch retires, never frees, it).
  detail::epoch_guard pin;
  const watcher_list* list = watchers.load(std::memory_order_acquire);
  if (list == nullptr) return;
  for (auto& [id, fn] : *list) {
    try {
      fn(ev);
    } catch (const std::exception& e) {
      log()->warn("watcher {} threw: {}", id, e.what());
    }
  }
}

void node_state::notify_local(change_event::kind what, std::string_view key, version ver) {
  if (watchers.load(std::memory_order_relaxed) == nullptr) return;
  // One event per thread, reused: its key keeps its capacity, so a watcher that ignores
  // the event (the sidecar when nobody subscribes or tracks) costs no allocation. A
  // watcher that writes from its callback gets a fresh event for the nested change.
  thread_local change_event reused;
  thread_local bool in_use = false;
  if (in_use) {
    notify({what, std::string{key}, ver, false});
    return;
  }
  in_use = true;
  struct release {
    ~release() { in_use = false; }
  } on_exit;
  reused.what = what;
  reused.key.assign(key);
  reused.ver = ver;
  reused.remote = false;
  notify(reused);
}

}  // namespace warp::detail
