// The validator actor (validator/validator_actor.hpp) under CAF's deterministic test
// coordinator, over a node_state built by hand (memory storage, a real L1). The executor is
// injected: jobs are queued and the test runs them between mailbox runs, so every run sees
// the same order of ticks, checks and rechecks (as test/raftactor does). The grace window
// is 0: a suspect is looked at again on the next tick.
#include <catch2/catch.hpp>

#include <deque>
#include <functional>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "runtime/modes/cluster.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/modes/strong.hpp"
#include "test/support/caf_testing.hpp"
#include "validator/validator.hpp"
#include "validator/validator_actor.hpp"
#include "warp/clock.hpp"

using namespace std::chrono_literals;
using warp::validation::finding;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{warp::test::testing_config(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  warp::detail::node_state st;
  std::unique_ptr<warp::validation::core> core;
  std::deque<std::function<void()>> jobs;
  caf::actor actor;

  explicit fixture(warp::validate_mode mode) {
    st.config.validator.mode = mode;
    st.config.validator.grace = 0ms;
    st.id = 7;
    st.l1 = std::make_unique<warp::l1_store>(warp::l1_options{});
    st.store = warp::make_memory_storage();
    core = std::make_unique<warp::validation::core>(st);
    warp::validation::validator_settings s;
    s.grace = 0ms;
    s.sample = 16;
    s.self_tick = false;
    actor = warp::validation::spawn_validator_actor(
        sys, *core,
        [this](std::function<void()> job) {
          jobs.push_back(std::move(job));
          return true;
        },
        s);
    sched.run();
  }
  ~fixture() {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// One tick: the actor posts its job, the job runs, its result reaches the actor.
  void tick() {
    caf::anon_send(actor, warp::validation::tick_atom::value);
    sched.run();
    while (!jobs.empty()) {
      auto job = std::move(jobs.front());
      jobs.pop_front();
      job();
      sched.run();
    }
  }

  /// A value in storage and L1 (what a write leaves behind).
  void put_both(const std::string& key, const std::string& value, std::uint64_t hlc) {
    warp::version v{hlc, 1};
    REQUIRE(st.store->store(key, warp::record{value, 0, v}));
    st.l1->put(key, warp::make_buffer(value), v, 0, false);
  }
};

}  // namespace

TEST_CASE("validator actor: a consistent key is counted checked, never inconsistent",
          "[validator]") {
  fixture f{warp::validate_mode::noop};
  f.put_both("k", "v", 1 << 16);
  f.tick();
  auto t = f.core->snapshot();
  CHECK(t.checked == 1);
  CHECK(t.inconsistent == 0);
}

TEST_CASE("validator actor: a disagreement is declared only when the next look still sees it",
          "[validator]") {
  fixture f{warp::validate_mode::noop};
  f.put_both("k", "old", 1 << 16);
  // Storage moves on behind the cache's back.
  REQUIRE(f.st.store->store("k", warp::record{"new", 0, warp::version{2 << 16, 1}}));
  f.tick();  // first sight: a suspect, nothing declared yet
  CHECK(f.core->snapshot().inconsistent == 0);
  CHECK(f.core->snapshot().checked == 0);
  f.tick();  // the grace window (0) passed and the same copy still disagrees
  auto t = f.core->snapshot();
  CHECK(t.inconsistent == 1);
  CHECK(t.by_finding[static_cast<std::size_t>(finding::older_than_storage)] == 1);
  // noop: counted only, the stale copy is still cached.
  auto info = f.st.l1->info("k");
  REQUIRE(info);
  CHECK(info->ver.hlc == 1u << 16);
}

TEST_CASE("validator actor: a change that lands within the grace window is not declared",
          "[validator]") {
  fixture f{warp::validate_mode::noop};
  f.put_both("k", "old", 1 << 16);
  REQUIRE(f.st.store->store("k", warp::record{"new", 0, warp::version{2 << 16, 1}}));
  f.tick();  // suspect
  // The invalidation arrives before the recheck (a propagation in flight).
  f.st.l1->erase_if_not_newer("k", warp::version{2 << 16, 1});
  f.tick();
  auto t = f.core->snapshot();
  CHECK(t.inconsistent == 0);
  CHECK(t.checked == 1);  // resolved: counted as consistent
}

TEST_CASE("validator actor: heal mode refreshes an older copy and drops a deleted one",
          "[validator]") {
  fixture f{warp::validate_mode::heal};
  f.put_both("older", "old", 1 << 16);
  f.put_both("gone", "x", 1 << 16);
  REQUIRE(f.st.store->store("older", warp::record{"new", 0, warp::version{3 << 16, 1}}));
  REQUIRE(f.st.store->remove("gone"));
  f.tick();
  f.tick();
  auto t = f.core->snapshot();
  CHECK(t.inconsistent == 2);
  CHECK(t.healed == 2);
  auto v = f.st.l1->get("older");
  REQUIRE(v);
  CHECK(warp::view(*v) == "new");
  CHECK(f.st.l1->info("older")->ver.hlc == 3u << 16);
  CHECK_FALSE(f.st.l1->contains("gone"));
}

TEST_CASE("validator actor: changed keys are checked from the change stream, bounded",
          "[validator]") {
  fixture f{warp::validate_mode::noop};
  f.st.config.validator.max_pending = 2;
  f.put_both("a", "1", 1 << 16);
  for (auto key : {"a", "a", "b", "c"})
    f.core->on_change({warp::change_event::kind::set, key, warp::version{1 << 16, 1}, false});
  // "a" twice is one pending check; "c" is over the bound of 2.
  CHECK(f.core->snapshot().changes_dropped == 1);
  auto due = f.core->take_due_changes(warp::now_ms(), 10);
  CHECK(due == std::vector<std::string>{"a", "b"});
}
