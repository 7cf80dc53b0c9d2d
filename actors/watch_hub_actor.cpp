#include "actors/watch_hub_actor.hpp"

#include <chrono>

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

namespace warp::actors {

namespace {

using watch_tick_atom = caf::atom_constant<caf::atom("warpwtick")>;

struct watch_hub_state {
  std::optional<watch_hub> hub;
  static inline const char* name = "warp.watch_hub";
};

using watch_hub_actor = caf::stateful_actor<watch_hub_state>;

}  // namespace

caf::actor spawn_watch_hub_actor(caf::actor_system& sys, watch_hub_options opts,
                                 std::vector<std::uint32_t> groups, bool all_groups,
                                 std::function<std::uint32_t(std::string_view)> group_of) {
  return sys.spawn([opts, groups = std::move(groups), all_groups,
                    group_of = std::move(group_of)](watch_hub_actor* self) {
    using clock = std::chrono::steady_clock;
    self->state.hub.emplace(opts, groups, all_groups);
    // Progress is checked a few times per interval, so an idle watcher hears within ~1.25x.
    auto period = std::max(opts.progress_interval / 4, std::chrono::milliseconds{10});
    self->delayed_send(self, period, watch_tick_atom::value);
    return caf::behavior{
        [self](applied_change& c) { self->state.hub->applied(c, clock::now()); },
        [self](watch_restored_msg& m) { self->state.hub->restored(m.group, m.index); },
        [self](watch_add_cmd& cmd) {
          auto& hub = *self->state.hub;
          auto out = std::make_shared<watch_stream>(hub.options().max_queue);
          auto id = hub.add(std::move(cmd.filter), cmd.from, cmd.prev, out, clock::now());
          if (!id) return cmd.done(id.err());
          cmd.done(std::move(out));
        },
        [self, group_of](watch_history_cmd& cmd) {
          cmd.done(self->state.hub->history(group_of(cmd.key), cmd.key));
        },
        [self, group_of](watch_get_at_cmd& cmd) {
          cmd.done(self->state.hub->get_at(group_of(cmd.key), cmd.key, cmd.revision));
        },
        [self, period](watch_tick_atom) {
          self->state.hub->tick(clock::now());
          self->delayed_send(self, period, watch_tick_atom::value);
        },
        [self](watch_hub_stop_cmd) {
          self->state.hub->stop_all("canceled: the node is stopping");
          self->quit(caf::exit_reason::user_shutdown);
        },
    };
  });
}

std::function<void(applied_change)> watch_change_sink(caf::actor hub) {
  return [hub](applied_change c) { caf::anon_send(hub, std::move(c)); };
}

std::function<void(std::uint32_t, std::uint64_t)> watch_restore_sink(caf::actor hub) {
  return [hub](std::uint32_t g, std::uint64_t index) {
    caf::anon_send(hub, watch_restored_msg{g, index});
  };
}

}  // namespace warp::actors
