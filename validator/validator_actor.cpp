#include "validator/validator_actor.hpp"

#include <algorithm>
#include <iterator>
#include <string>
#include <unordered_map>

#include <caf/all.hpp>

#include "warp/clock.hpp"

namespace warp::validation {

namespace {

using batch_done_atom = caf::atom_constant<caf::atom("wvdone")>;

struct validator_state {
  core* c = nullptr;
  executor_fn post;
  validator_settings settings;
  /// Keys that disagreed once, by key: what was seen, and when to look again.
  struct suspect {
    observation first;
    std::int64_t recheck_at_ms;
  };
  std::unordered_map<std::string, suspect> suspects;
  /// One job at a time: a slow storage makes ticks skip instead of piling up jobs.
  bool busy = false;
  std::uint64_t ticks_skipped = 0;
  static inline const char* name = "warp.validator";
};

using validator_actor = caf::stateful_actor<validator_state>;

// The job of one tick, on the executor: the suspects due again are declared or cleared,
// then the changed keys and a sample get their first look.
check_batch run_tick(core& c, const validator_settings& s, std::vector<observation> due) {
  check_batch out;
  std::uint64_t consistent = 0;
  for (auto& first : due) {
    auto again = c.observe(first.key);
    if (again.what == finding::storage_error) {
      c.declare(again, validate_mode::noop);  // counted as an error, decided nothing
      continue;
    }
    // The copy seen first is gone (invalidated, refreshed) or agrees now: the change was
    // in flight. The same copy still disagreeing a grace window later is declared.
    if (again.cached != first.cached || !is_inconsistent(again.what)) {
      ++consistent;
      continue;
    }
    c.declare(again, c.mode_of(again.key));
  }
  const auto budget = s.max_batch > due.size() ? s.max_batch - due.size() : 0;
  auto keys = c.take_due_changes(now_ms(), budget);
  if (keys.size() < budget) {
    auto more = c.sample(std::min(s.sample, budget - keys.size()));
    keys.insert(keys.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
  }
  for (const auto& key : keys) {
    if (c.mode_of(key) == validate_mode::off) continue;
    auto o = c.observe(key);
    if (o.what == finding::consistent)
      ++consistent;
    else if (o.what == finding::storage_error)
      c.declare(o, validate_mode::noop);
    else if (is_inconsistent(o.what))
      out.suspects.push_back(std::move(o));
  }
  c.count_consistent(consistent);
  return out;
}

caf::behavior validator_impl(validator_actor* self, core* c, executor_fn post,
                             validator_settings settings) {
  auto& st = self->state;
  st.c = c;
  st.post = std::move(post);
  st.settings = settings;
  if (settings.self_tick) self->delayed_send(self, settings.interval, tick_atom::value);
  return {
      [=](tick_atom) {
        auto& st = self->state;
        if (st.settings.self_tick) self->delayed_send(self, st.settings.interval, tick_atom::value);
        if (st.busy) {
          ++st.ticks_skipped;
          return;
        }
        std::vector<observation> due;
        const auto now = now_ms();
        for (auto it = st.suspects.begin(); it != st.suspects.end();) {
          if (it->second.recheck_at_ms <= now && due.size() < st.settings.max_batch) {
            due.push_back(std::move(it->second.first));
            it = st.suspects.erase(it);
          } else {
            ++it;
          }
        }
        auto me = caf::actor_cast<caf::actor>(self);
        st.busy = st.post([me, c = st.c, s = st.settings, due = std::move(due)]() mutable {
          auto batch = run_tick(*c, s, std::move(due));
          caf::anon_send(me, batch_done_atom::value, std::move(batch));
        });
      },
      [=](batch_done_atom, check_batch& batch) {
        auto& st = self->state;
        st.busy = false;
        const auto at = now_ms() + st.settings.grace.count();
        for (auto& o : batch.suspects) {
          if (st.suspects.size() >= st.settings.max_suspects) break;
          auto key = o.key;
          st.suspects.try_emplace(std::move(key), validator_state::suspect{std::move(o), at});
        }
      },
      [=](status_atom) -> std::string { return self->state.c->json(); },
  };
}

}  // namespace

caf::actor spawn_validator_actor(caf::actor_system& sys, core& c, executor_fn post,
                                 validator_settings settings) {
  return sys.spawn(validator_impl, &c, std::move(post), settings);
}

void stop_validator_actor(caf::actor_system& sys, const caf::actor& a) {
  if (!a) return;
  caf::scoped_actor self{sys};
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->wait_for(a);
}

}  // namespace warp::validation
