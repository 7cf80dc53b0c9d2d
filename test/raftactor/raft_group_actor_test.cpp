// The Raft group actor (actors/raft_group_actor.hpp) under CAF's deterministic test
// coordinator: three group actors of one actor system, every message between them through a
// relay actor per direction that the test can cut (partitions, drops); time advanced by
// hand. The fixture is built by hand as in test/strong/quorum_actor_test.cpp (CAF's dsl.hpp
// fixture needs CAF's own unit-test engine, which a Catch2 binary does not have).
//
// The executor is injected: jobs are queued and the fixture runs them between mailbox runs
// (settle()). Why not a real work_pool: its threads deliver completions whenever they
// finish, so a test would have to poll, and the order of "fsync done" against the other
// messages would differ from run to run; queued jobs make every run the same, and let a
// test hold an fsync back and look at what the actor does (or does not) meanwhile. The jobs
// are the production ones (raft_log_store::persist on a real directory); one test runs the
// actor on a real work_pool with the threaded scheduler to show the production wiring.
#include <catch2/catch.hpp>

#include <array>
#include <deque>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include <unistd.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "test/support/caf_testing.hpp"
#include "actors/raft_group_actor.hpp"
#include "runtime/core/work_pool.hpp"

using namespace warp;
using namespace warp::consensus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// The POSIX file operations with a fault switch (as in raft_log_store_test.cpp).
struct faulty_ops : file_ops {
  bool fail_syncs = false;
  bool fail_writes = false;
  result<void> datasync(int fd) override {
    if (fail_syncs) return error{errc::storage_error, "injected fsync failure (EIO)"};
    return file_ops::datasync(fd);
  }
  result<void> write(int fd, std::string_view bytes) override {
    if (fail_writes) return error{errc::storage_error, "injected write failure (ENOSPC)"};
    return file_ops::write(fd, bytes);
  }
};

/// Forwards one direction (from -> to) unless the fixture cut it.
struct relay_state {
  static inline const char* name = "raft_relay";
};

struct fixture {
  static constexpr std::size_t n = 3;
  caf::actor_system_config cfg;
  caf::actor_system sys{test::testing_config(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  fs::path root;
  std::deque<std::function<void()>> jobs;  ///< the injected executor's queue
  bool hold_jobs = false;                  ///< leave persist jobs queued (an fsync in progress)
  std::array<caf::actor, n> actors;
  std::vector<caf::actor> relays;
  std::array<faulty_ops, n> ops;
  std::array<std::array<bool, n>, n> cut{};  ///< cut[i][j]: i -> j dropped
  std::size_t dropped = 0;
  bool tearing_down = false;
  std::uint64_t snapshot_entries = 10'000;  ///< raft_group_setup::snapshot_entries

  fixture() {
    sched.clock().current_time += std::chrono::hours(1);
    root = fs::temp_directory_path() / ("warp-raftactor-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(root);
    fs::create_directories(root);
  }

  ~fixture() {
    // A failed REQUIRE leaves completions in the actors whose `out` was a local of the test
    // body: they are called (shutting_down) when the actors go, and must not touch it.
    tearing_down = true;
    for (auto& a : actors)
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& r : relays) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    sched.run();
    jobs.clear();
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  static node_id id_of(std::size_t i) { return i + 1; }

  caf::actor spawn(std::size_t i) {
    actors::raft_group_setup s;
    s.raft.id = id_of(i);
    s.raft.voters = {1, 2, 3};
    s.raft.election_tick = 10;
    s.raft.heartbeat_tick = 1;
    s.raft.seed = 42 + i;
    s.dir = (root / ("n" + std::to_string(id_of(i)))).string();
    s.ops = &ops[i];
    s.tick_interval = 100ms;
    s.request_timeout_ticks = 30;
    s.snapshot_entries = snapshot_entries;
    s.executor = [this](std::function<void()> job) {
      jobs.push_back(std::move(job));
      return true;
    };
    auto a = actors::spawn_raft_group_actor(sys, std::move(s));
    REQUIRE(a);
    actors[i] = *a;
    return actors[i];
  }

  /// Links every actor to every other one through a relay per direction.
  void link_all() {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        if (i == j || !actors[i] || !actors[j]) continue;
        auto relay =
            sys.spawn([this, i, j, to = actors[j]](caf::stateful_actor<relay_state>* self) {
              return caf::behavior{
                  [this, i, j, to, self](actors::raft_msg_atom a, std::string& bytes) {
                    if (cut[i][j]) {
                      ++dropped;
                      return;
                    }
                    self->send(to, a, std::move(bytes));
                  },
              };
            });
        relays.push_back(relay);
        caf::anon_send(actors[i], actors::raft_link_cmd{id_of(j), relay});
      }
    settle();
  }

  /// Runs mailboxes and executor jobs until neither has work.
  void settle() {
    for (;;) {
      sched.run();
      if (hold_jobs || jobs.empty()) return;
      while (!jobs.empty()) {
        auto job = std::move(jobs.front());
        jobs.pop_front();
        job();
      }
    }
  }

  /// `k` ticks of every actor's timer, settling after each.
  void tick(int k = 1) {
    for (int t = 0; t < k; ++t) {
      sched.clock().advance_time(100ms);
      settle();
    }
  }

  actors::raft_group_state& state(std::size_t i) {
    return dynamic_cast<actors::raft_group_actor&>(
               *caf::actor_cast<caf::abstract_actor*>(actors[i]))
        .state;
  }

  role role_of(std::size_t i) { return state(i).core->current_role(); }

  /// Ticks until some actor leads (and has committed its term's entry); its index.
  std::optional<std::size_t> elect(int max_ticks = 100, std::optional<std::size_t> not_this = {}) {
    for (int t = 0; t < max_ticks; ++t) {
      tick();
      for (std::size_t i = 0; i < n; ++i) {
        if (!actors[i] || (not_this && *not_this == i) || state(i).log_failed) continue;
        auto& core = *state(i).core;
        if (core.current_role() == role::leader && core.term_at(core.commit_index()) == core.term())
          return i;
      }
    }
    return std::nullopt;
  }

  template <class T>
  actors::completion<T> capture(std::optional<result<T>>& out) {
    return actors::completion<T>{[this, &out](result<T> r) {
      if (tearing_down) return;
      REQUIRE_FALSE(out);  // exactly once
      out = std::move(r);
    }};
  }

  void propose(std::size_t i, kv_command c, std::optional<result<std::string>>& out) {
    caf::anon_send(actors[i], actors::raft_propose_cmd{std::move(c), capture<std::string>(out), {}});
  }

  void put(std::size_t i, std::uint64_t client, std::uint64_t seq, std::string key,
           std::string value, std::optional<result<std::string>>& out) {
    propose(i, kv_command{client, seq, kv_op::put, std::move(key), std::move(value), {}, false},
            out);
  }

  void read(std::size_t i, std::string key, std::optional<result<std::string>>& out) {
    caf::anon_send(actors[i],
                   actors::raft_read_cmd{std::move(key), capture<std::string>(out), false});
  }

  /// The value of `key` in member i's applied state machine (nullopt: absent).
  std::optional<std::string> applied_value(std::size_t i, const std::string& key) {
    auto v = state(i).sm->read(key);
    if (!v) return std::nullopt;
    return *v;
  }

  void isolate(std::size_t i, bool on = true) {
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) cut[i][j] = cut[j][i] = on;
  }

  void stop(std::size_t i) {
    caf::anon_send(actors[i], actors::raft_stop_cmd{});
    settle();
    actors[i] = nullptr;
  }
};

}  // namespace

TEST_CASE_METHOD(fixture, "raft group actors: a leader is elected and a proposal applies on all") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  std::size_t leaders = 0;
  for (std::size_t i = 0; i < n; ++i) leaders += role_of(i) == role::leader;
  CHECK(leaders == 1);
  std::optional<result<std::string>> w;
  put(*leader, 1, 1, "acct:1", "100", w);
  settle();
  REQUIRE(w);
  REQUIRE(*w);
  tick(2);  // the followers learn the commit index with the next heartbeat
  for (std::size_t i = 0; i < n; ++i) CHECK(applied_value(i, "acct:1") == "100");
  // A group commit per ready, never one fsync per entry per message.
  CHECK(state(*leader).persists > 0);
}

TEST_CASE_METHOD(fixture, "raft group actor: a follower refuses a proposal and names the leader") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  auto follower = (*leader + 1) % n;
  std::optional<result<std::string>> w, r;
  put(follower, 1, 1, "k", "v", w);
  read(follower, "k", r);
  settle();
  REQUIRE(w);
  CHECK(w->code() == errc::unreachable);
  CHECK(actors::not_leader_hint(w->err()) == id_of(*leader));
  REQUIRE(r);
  CHECK(actors::not_leader_hint(r->err()) == id_of(*leader));
  CHECK_FALSE(applied_value(*leader, "k"));
}

TEST_CASE_METHOD(fixture, "raft group actor: a read after a write sees it (ReadIndex)") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  std::optional<result<std::string>> w, r, missing;
  put(*leader, 1, 1, "k", "v1", w);
  settle();
  REQUIRE(w);
  REQUIRE(*w);
  read(*leader, "k", r);
  read(*leader, "nope", missing);
  settle();
  REQUIRE(r);
  REQUIRE(*r);
  CHECK(**r == "v1");
  REQUIRE(missing);
  CHECK(missing->code() == errc::not_found);
  // compare-and-set through the group: a mismatch is a conflict and changes nothing.
  std::optional<result<std::string>> c1, c2, r2;
  propose(*leader, kv_command{1, 2, kv_op::cas, "k", "v2", "wrong", false}, c1);
  propose(*leader, kv_command{1, 3, kv_op::cas, "k", "v2", "v1", false}, c2);
  settle();
  REQUIRE(c1);
  CHECK(c1->code() == errc::conflict);
  REQUIRE(c2);
  CHECK(*c2);
  read(*leader, "k", r2);
  settle();
  REQUIRE(r2);
  REQUIRE(*r2);
  CHECK(**r2 == "v2");
}

TEST_CASE_METHOD(fixture,
                 "raft group actor: a retried proposal (same client and sequence) applies once") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  std::optional<result<std::string>> a, b, again;
  put(*leader, 7, 1, "k", "first", a);
  settle();
  REQUIRE(a);
  REQUIRE(*a);
  put(*leader, 8, 1, "k", "second", b);  // another client overwrites
  settle();
  REQUIRE(b);
  REQUIRE(*b);
  put(*leader, 7, 1, "k", "first", again);  // client 7 retries: its answer was lost
  settle();
  REQUIRE(again);
  CHECK(*again);  // answered as the first attempt was
  tick(2);
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(applied_value(i, "k") == "second");
    auto& kv = dynamic_cast<kv_state_machine&>(*state(i).sm);
    CHECK(kv.deduplicated() == 1);
  }
}

TEST_CASE_METHOD(fixture,
                 "raft group actors: a partitioned leader loses leadership and a new one serves") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto old = elect();
  REQUIRE(old);
  std::optional<result<std::string>> w1;
  put(*old, 1, 1, "k", "before", w1);
  settle();
  REQUIRE(w1);
  REQUIRE(*w1);
  isolate(*old);
  // A proposal to the isolated leader cannot commit.
  std::optional<result<std::string>> lost;
  put(*old, 1, 2, "k", "lost", lost);
  auto fresh = elect(100, old);
  REQUIRE(fresh);
  CHECK(*fresh != *old);
  std::optional<result<std::string>> w2, r;
  put(*fresh, 2, 1, "k", "after", w2);
  settle();
  REQUIRE(w2);
  REQUIRE(*w2);
  read(*fresh, "k", r);
  settle();
  REQUIRE(r);
  REQUIRE(*r);
  CHECK(**r == "after");
  tick(30);  // past the proposal timeout
  // Check quorum: the old leader stepped down on its own, without hearing the new term.
  CHECK(role_of(*old) != role::leader);
  REQUIRE(lost);
  CHECK_FALSE(*lost);
  CHECK(lost->code() == errc::unknown_outcome);
  // Healed: the old leader follows, drops its uncommitted entry and catches up.
  isolate(*old, false);
  tick(5);
  CHECK(role_of(*old) == role::follower);
  for (std::size_t i = 0; i < n; ++i) CHECK(applied_value(i, "k") == "after");
  CHECK(dropped > 0);
}

TEST_CASE_METHOD(fixture, "raft group actor: malformed raft messages are counted and dropped") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  caf::anon_send(actors[0], actors::raft_msg_atom::value, std::string("\x01garbage"));
  caf::anon_send(actors[0], actors::raft_msg_atom::value, std::string{});
  message m;
  m.type = msg_type::heartbeat;
  m.from = 2;
  m.to = 9;  // not this member
  auto enc = encode(m);
  REQUIRE(enc);
  caf::anon_send(actors[0], actors::raft_msg_atom::value, *enc);
  settle();
  CHECK(state(0).malformed == 3);
  std::optional<result<actors::raft_status>> st;
  caf::anon_send(actors[0], actors::raft_status_cmd{capture<actors::raft_status>(st)});
  settle();
  REQUIRE(st);
  REQUIRE(*st);
  CHECK((*st)->malformed == 3);
  CHECK((*st)->leader == id_of(*leader));
  CHECK((*st)->id == 1);
  CHECK_FALSE((*st)->log_failed);
  std::optional<result<std::string>> w;
  put(*leader, 1, 1, "k", "v", w);
  settle();
  REQUIRE(w);
  CHECK(*w);
}

TEST_CASE_METHOD(fixture, "raft group actors: restarted from their log directories they recover") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  for (std::uint64_t s = 1; s <= 5; ++s) {
    std::optional<result<std::string>> w;
    put(*leader, 1, s, "k" + std::to_string(s), "v" + std::to_string(s), w);
    settle();
    REQUIRE(w);
    REQUIRE(*w);
  }
  tick(2);
  // Every member at once, as kill -9 of the whole cluster: nothing survives but the logs.
  for (std::size_t i = 0; i < n; ++i) stop(i);
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto next = elect();
  REQUIRE(next);
  std::optional<result<std::string>> r;
  read(*next, "k5", r);
  settle();
  REQUIRE(r);
  REQUIRE(*r);
  CHECK(**r == "v5");
  tick(2);
  for (std::size_t i = 0; i < n; ++i)
    for (int s = 1; s <= 5; ++s)
      CHECK(applied_value(i, "k" + std::to_string(s)) == "v" + std::to_string(s));
  // The sessions came back with the log: a retry of an applied command is still deduplicated.
  std::optional<result<std::string>> retry;
  put(*next, 1, 5, "k5", "v5", retry);
  settle();
  REQUIRE(retry);
  CHECK(*retry);
  CHECK(dynamic_cast<kv_state_machine&>(*state(*next).sm).deduplicated() == 1);
}

TEST_CASE_METHOD(fixture, "raft group actor: nothing is sent or acknowledged before the fsync") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  hold_jobs = true;
  std::optional<result<std::string>> w;
  put(*leader, 1, 1, "k", "v", w);
  settle();
  // The leader's persist job is queued (its fsync "in progress"): the entry has not gone to
  // the followers, nothing is answered, and input meanwhile waits instead of reaching the core.
  REQUIRE(jobs.size() == 1);
  CHECK(state(*leader).persisting);
  for (std::size_t i = 0; i < n; ++i)
    if (i != *leader) CHECK(state(i).core->last_index() < state(*leader).core->last_index());
  std::optional<result<std::string>> r;
  read(*leader, "k", r);
  sched.clock().advance_time(100ms);
  settle();
  CHECK_FALSE(w);
  CHECK_FALSE(r);
  CHECK(state(*leader).queued.size() >= 2);
  hold_jobs = false;
  settle();
  REQUIRE(w);
  CHECK(*w);
  // The read arrived before the write committed: either answer is linearizable.
  REQUIRE(r);
  CHECK((r->code() == errc::not_found || (*r && **r == "v")));
}

TEST_CASE_METHOD(fixture, "raft group actor: an fsync failure on the leader never acknowledges") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  ops[*leader].fail_syncs = true;
  std::optional<result<std::string>> w, after, r;
  put(*leader, 1, 1, "k", "v", w);
  settle();
  REQUIRE(w);
  CHECK_FALSE(*w);
  CHECK(w->code() == errc::unknown_outcome);
  CHECK(state(*leader).log_failed);
  put(*leader, 1, 2, "k", "v2", after);
  read(*leader, "k", r);
  settle();
  REQUIRE(after);
  CHECK(after->code() == errc::storage_error);
  REQUIRE(r);
  CHECK(r->code() == errc::storage_error);
  // The failed member went silent: the others elect a new leader that serves, and the
  // entry the failed leader never persisted was never sent, so it never applies.
  auto fresh = elect(100, leader);
  REQUIRE(fresh);
  CHECK(*fresh != *leader);
  std::optional<result<std::string>> w2, r2;
  put(*fresh, 2, 1, "other", "x", w2);
  settle();
  REQUIRE(w2);
  CHECK(*w2);
  read(*fresh, "k", r2);
  settle();
  REQUIRE(r2);
  CHECK(r2->code() == errc::not_found);
}

TEST_CASE_METHOD(
    fixture,
    "raft group actor: followers that cannot fsync make a write time out, never acknowledged") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  for (std::size_t i = 0; i < n; ++i)
    if (i != *leader) ops[i].fail_writes = true;
  std::optional<result<std::string>> w;
  put(*leader, 1, 1, "k", "v", w);
  settle();
  CHECK_FALSE(w);  // only the leader has it durable: no majority
  for (std::size_t i = 0; i < n; ++i)
    if (i != *leader) CHECK(state(i).log_failed);
  tick(40);
  REQUIRE(w);
  CHECK_FALSE(*w);
  CHECK(w->code() == errc::unknown_outcome);
  CHECK_FALSE(applied_value(*leader, "k"));
  CHECK(role_of(*leader) != role::leader);  // check quorum: its followers went silent
}

TEST_CASE("raft group actor: on a real work_pool and the threaded scheduler") {
  // The production wiring: fsyncs on the node's executor, completions back as messages.
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  detail::work_pool pool{2};
  auto root = fs::temp_directory_path() / ("warp-raftactor-pool-" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::vector<caf::actor> group;
  for (node_id id = 1; id <= 3; ++id) {
    actors::raft_group_setup s;
    s.raft.id = id;
    s.raft.voters = {1, 2, 3};
    s.raft.seed = id;
    s.dir = (root / ("n" + std::to_string(id))).string();
    s.tick_interval = 10ms;
    s.request_timeout_ticks = 100;
    s.executor = [&pool](std::function<void()> job) { return pool.post(std::move(job)); };
    auto a = actors::spawn_raft_group_actor(sys, std::move(s));
    REQUIRE(a);
    group.push_back(*a);
  }
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      if (i != j) caf::anon_send(group[i], actors::raft_link_cmd{j + 1, group[j]});
  // Whoever is asked answers, or names the leader; follow the hint.
  bool applied = false;
  std::size_t target = 0;
  for (int attempt = 0; attempt < 200 && !applied; ++attempt) {
    std::promise<result<std::string>> p;
    auto f = p.get_future();
    kv_command c{1, 1, kv_op::put, "k", "v", {}, false};
    caf::anon_send(
        group[target],
        actors::raft_propose_cmd{c, actors::completion<std::string>{[&p](result<std::string> r) {
                                   p.set_value(std::move(r));
                                 }}, {}});
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    auto r = f.get();
    if (r) {
      applied = true;
    } else if (auto hint = actors::not_leader_hint(r.err()); hint != 0) {
      target = hint - 1;
    } else {
      std::this_thread::sleep_for(20ms);
      target = (target + 1) % 3;
    }
  }
  CHECK(applied);
  for (auto& a : group) caf::anon_send(a, actors::raft_stop_cmd{});
  group.clear();
  sys.await_all_actors_done();
  pool.shutdown();
  std::error_code ec;
  fs::remove_all(root, ec);
}

TEST_CASE_METHOD(fixture,
                 "raft group actors: the log is compacted into snapshots, a lagging follower and "
                 "a restart recover from them") {
  snapshot_entries = 20;
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto leader = elect();
  REQUIRE(leader);
  const std::size_t lagging = (*leader + 1) % n;
  isolate(lagging);
  const int keys = 100;
  for (int k = 1; k <= keys; ++k) {
    std::optional<result<std::string>> w;
    put(*leader, 7, static_cast<std::uint64_t>(k), "k" + std::to_string(k),
        "v" + std::to_string(k), w);
    settle();
    REQUIRE(w);
    REQUIRE(*w);
  }
  tick(2);
  // The leader snapshotted every 20 applied entries and dropped the log below.
  auto& ls = state(*leader);
  CHECK(ls.snapshots >= 4);
  CHECK(ls.core->last_snapshot().index + snapshot_entries > ls.applied);
  CHECK(ls.core->last_snapshot().index >= 80);
  CHECK_FALSE(ls.core->term_at(1).has_value());  // compacted away
  std::optional<result<actors::raft_status>> st;
  caf::anon_send(actors[*leader], actors::raft_status_cmd{capture<actors::raft_status>(st)});
  settle();
  REQUIRE(st);
  REQUIRE(*st);
  CHECK((*st)->snapshot_index == ls.core->last_snapshot().index);
  CHECK((*st)->snapshots == ls.snapshots);
  // The isolated follower missed entries the leader no longer has: it gets the snapshot.
  CHECK_FALSE(applied_value(lagging, "k1").has_value());
  isolate(lagging, false);
  tick(30);
  for (int k = 1; k <= keys; ++k)
    REQUIRE(applied_value(lagging, "k" + std::to_string(k)) == "v" + std::to_string(k));
  CHECK(state(lagging).core->last_snapshot().index >= 80);
  // Every member at once, restarted from snapshot + log tail.
  for (std::size_t i = 0; i < n; ++i) stop(i);
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  auto next = elect();
  REQUIRE(next);
  tick(5);
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 1; k <= keys; ++k)
      CHECK(applied_value(i, "k" + std::to_string(k)) == "v" + std::to_string(k));
  // The sessions were in the snapshot: a retry of an applied command is still deduplicated.
  std::optional<result<std::string>> retry;
  put(*next, 7, keys, "k" + std::to_string(keys), "v" + std::to_string(keys), retry);
  settle();
  REQUIRE(retry);
  CHECK(*retry);
  CHECK(dynamic_cast<kv_state_machine&>(*state(*next).sm).deduplicated() == 1);
}
