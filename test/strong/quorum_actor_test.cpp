// The quorum actor (actors/quorum_actor.hpp) under CAF's deterministic test coordinator:
// no sockets, no threads, time advanced by hand. Three quorum actors of one actor system
// (or one actor and scripted peers) are linked directly (quorum_link_cmd); the test runs
// the mailboxes to quiescence with sched.run() and fires the actors' timers with
// trigger_timeouts(). CAF's dsl.hpp fixture (test_coordinator_fixture) needs CAF's own
// unit-test engine (its argc/argv and current test), which a Catch2 binary does not have,
// so this fixture sets the test coordinator up the same way by hand.
#include <catch2/catch.hpp>

#include <optional>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/quorum_actor.hpp"
#include "runtime/modes/strong.hpp"
#include "actors/strong_context.hpp"

using namespace warp;
using namespace warp::detail;
using namespace std::chrono_literals;

namespace {

caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

/// How a scripted peer treats the request batches it gets.
enum class peer_mode { answer, silent, drop_stores, answer_late };

struct scripted_peer_state {
  peer_mode mode = peer_mode::answer;
  strong_replica* replica = nullptr;
  std::size_t batches = 0;
  std::size_t requests = 0;
  static inline const char* name = "scripted_peer";
};

/// A replica that is not a quorum actor: answers from its own store, or not, as scripted.
caf::behavior scripted_peer(caf::stateful_actor<scripted_peer_state>* self, peer_mode mode,
                            strong_replica* replica, std::uint64_t fingerprint) {
  self->state.mode = mode;
  self->state.replica = replica;
  return {
      [=](actors::quorum_request_atom, const std::string& bytes) {
        auto batch = wire::decode_requests(bytes);
        REQUIRE(batch);
        auto& st = self->state;
        ++st.batches;
        st.requests += batch->items.size();
        if (st.mode == peer_mode::silent) return;
        wire::reply_batch out;
        out.head.kind = 2;
        out.head.fingerprint = fingerprint;
        for (auto& req : batch->items) {
          if (st.mode == peer_mode::drop_stores && req.what == wire::op::store) continue;
          out.items.push_back(serve(*st.replica, req));
        }
        auto enc = wire::encode(out);
        REQUIRE(enc);
        auto dest = caf::actor_cast<caf::actor>(self->current_sender());
        if (st.mode == peer_mode::answer_late)
          self->delayed_send(dest, 5s, actors::quorum_reply_atom::value, std::move(*enc));
        else
          self->send(dest, actors::quorum_reply_atom::value, std::move(*enc));
      },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{testing_config(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  std::vector<std::string> addresses{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"};
  std::vector<std::unique_ptr<strong_placement>> placements;
  std::vector<std::unique_ptr<strong_replica>> replicas;
  std::vector<caf::actor> actors;  ///< by member index; a quorum actor or a scripted peer
  std::vector<bool> scripted;
  std::uint64_t hlc = 0;

  fixture() {
    sched.clock().current_time += std::chrono::hours(1);  // as CAF's fixture: time is not 0
    for (auto& a : addresses) {
      placements.push_back(std::make_unique<strong_placement>(addresses, a, 3, 4));
      replicas.push_back(std::make_unique<strong_replica>(4, true));
    }
    actors.resize(addresses.size());
    scripted.resize(addresses.size());
  }

  ~fixture() {
    for (auto& a : actors)
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched.run();
  }

  std::uint64_t fingerprint() const { return placements[0]->fingerprint(); }

  caf::actor spawn_quorum(std::size_t m) {
    actors::quorum_setup setup;
    setup.placement = placements[m].get();
    setup.replica = replicas[m].get();
    setup.timeout = 1000ms;
    setup.dial = false;
    auto node = static_cast<std::uint32_t>(m + 1);
    setup.pick_version = [this, node](const version& highest) {
      hlc = std::max(hlc + 1, highest.hlc + 1);
      return version{hlc, node};
    };
    actors[m] = actors::spawn_quorum_actor(sys, std::move(setup));
    return actors[m];
  }

  caf::actor spawn_peer(std::size_t m, peer_mode mode) {
    actors[m] = sys.spawn(scripted_peer, mode, replicas[m].get(), fingerprint());
    scripted[m] = true;
    return actors[m];
  }

  /// Links every quorum actor to every other member's actor.
  void link_all() {
    for (std::size_t i = 0; i < actors.size(); ++i)
      for (std::size_t j = 0; j < actors.size(); ++j)
        if (i != j && actors[i] && actors[j] && !scripted[i])
          caf::anon_send(actors[i], actors::quorum_link_cmd{j, actors[j]});
    sched.run();
  }

  template <class T>
  actors::completion<T> capture(std::optional<result<T>>& out) {
    return actors::completion<T>{[&out](result<T> r) {
      REQUIRE_FALSE(out);  // exactly once
      out = std::move(r);
    }};
  }

  void write(std::size_t m, std::string key, std::string value,
             std::optional<result<strong_record>>& out) {
    strong_record rec;
    rec.value = std::move(value);
    caf::anon_send(actors[m], actors::strong_write_cmd{std::move(key), std::move(rec),
                                                       capture<strong_record>(out)});
  }

  void read(std::size_t m, std::string key, std::optional<result<strong_record>>& out) {
    caf::anon_send(actors[m], actors::strong_read_cmd{std::move(key), capture<strong_record>(out)});
  }

  std::size_t holding(const std::string& key, const std::string& value) {
    std::size_t n = 0;
    for (std::size_t m = 0; m < replicas.size(); ++m)
      n += replicas[m]->get(placements[m]->range_of(key), key).value == value;
    return n;
  }
};

}  // namespace

TEST_CASE_METHOD(fixture, "quorum actors: a write through one node is read through another") {
  for (std::size_t m = 0; m < 3; ++m) spawn_quorum(m);
  link_all();
  std::optional<result<strong_record>> w, r;
  write(0, "acct:1", "100", w);
  sched.run();
  REQUIRE(w);
  REQUIRE(*w);
  CHECK((*w)->ver.node == 1);
  CHECK(holding("acct:1", "100") >= 2);
  read(2, "acct:1", r);
  sched.run();
  REQUIRE(r);
  REQUIRE(*r);
  CHECK((*r)->value == "100");
  CHECK((*r)->ver == (*w)->ver);
}

TEST_CASE_METHOD(fixture, "quorum actor: without a majority a write times out on the deadline") {
  spawn_quorum(0);
  spawn_peer(1, peer_mode::silent);
  spawn_peer(2, peer_mode::silent);
  link_all();
  std::optional<result<strong_record>> w;
  write(0, "k", "v", w);
  sched.run();
  CHECK_FALSE(w);  // waiting: only its own replica answered
  sched.trigger_timeouts();
  sched.run();
  REQUIRE(w);
  CHECK(w->code() == errc::timeout);
  CHECK(holding("k", "v") == 0);  // phase 1 only read versions
}

TEST_CASE_METHOD(fixture, "quorum actor: a store phase without a majority is an unknown outcome") {
  spawn_quorum(0);
  spawn_peer(1, peer_mode::drop_stores);
  spawn_peer(2, peer_mode::silent);
  link_all();
  std::optional<result<strong_record>> w;
  write(0, "k", "v", w);
  sched.run();
  CHECK_FALSE(w);
  sched.trigger_timeouts();
  sched.run();
  REQUIRE(w);
  CHECK(w->code() == errc::unknown_outcome);
  CHECK(holding("k", "v") == 1);  // its own replica applied it: "may have been applied"
}

TEST_CASE_METHOD(fixture, "quorum actor: replies after the outcome are ignored") {
  spawn_quorum(0);
  spawn_peer(1, peer_mode::answer_late);
  spawn_peer(2, peer_mode::answer_late);
  link_all();
  std::optional<result<strong_record>> r;
  replicas[1]->apply(placements[1]->range_of("k"), "k", [] {
    strong_record rec;
    rec.ver = version{7, 2};
    rec.value = "x";
    return rec;
  }());
  read(0, "k", r);
  sched.run();
  CHECK_FALSE(r);
  // The op's 1 s deadline comes before the peers' 5 s replies: timeout, then the late
  // replies arrive and change nothing (the completion would fail the test if called twice).
  sched.trigger_timeout();
  sched.run();
  REQUIRE(r);
  CHECK(r->code() == errc::timeout);
  sched.trigger_timeouts();
  sched.run();
  CHECK(r->code() == errc::timeout);
}

TEST_CASE_METHOD(fixture, "quorum actor: operations queued together share one batch per peer") {
  spawn_quorum(0);
  spawn_peer(1, peer_mode::answer);
  spawn_peer(2, peer_mode::answer);
  link_all();
  std::vector<std::optional<result<strong_record>>> out(10);
  for (std::size_t i = 0; i < out.size(); ++i) read(0, "key" + std::to_string(i), out[i]);
  sched.run();
  for (auto& o : out) {
    REQUIRE(o);
    CHECK(*o);
  }
  for (std::size_t m : {1, 2}) {
    auto& st = dynamic_cast<caf::stateful_actor<scripted_peer_state>&>(
                   *caf::actor_cast<caf::abstract_actor*>(actors[m]))
                   .state;
    CHECK(st.requests == 10);
    CHECK(st.batches == 1);
  }
}

TEST_CASE_METHOD(fixture, "quorum actor: stopping fails what is in flight, and what comes later") {
  spawn_quorum(0);
  spawn_peer(1, peer_mode::drop_stores);
  spawn_peer(2, peer_mode::silent);
  link_all();
  std::optional<result<strong_record>> w, r, late;
  // Member 0 holds a newer "other" than member 1: the read must write it back, and no
  // store gets acknowledged, so the read waits in its second phase.
  strong_record newer;
  newer.ver = version{9, 1};
  newer.value = "x";
  replicas[0]->apply(placements[0]->range_of("other"), "other", newer);
  write(0, "k", "v", w);
  read(0, "other", r);
  sched.run();
  CHECK_FALSE(w);
  CHECK_FALSE(r);
  caf::anon_send(actors[0], actors::quorum_stop_cmd{});
  sched.run();
  REQUIRE(w);
  CHECK(w->code() == errc::unknown_outcome);  // its store phase had begun
  REQUIRE(r);
  CHECK(r->code() == errc::shutting_down);
  // The actor is gone: a command sent now is dropped, and its completion still reports.
  read(0, "k", late);
  sched.run();
  REQUIRE(late);
  CHECK(late->code() == errc::shutting_down);
  actors[0] = nullptr;
}

TEST_CASE_METHOD(fixture, "quorum actor: a peer that is not linked answers unreachable at once") {
  spawn_quorum(0);
  spawn_quorum(1);
  link_all();  // nobody for member 2
  std::optional<result<strong_record>> w;
  write(0, "k", "v", w);
  sched.run();
  REQUIRE(w);  // two of three is a majority; member 2 counted as answered, never as ok
  CHECK(*w);
  caf::anon_send(actors[1], actors::quorum_stop_cmd{});
  sched.run();
  actors[1] = nullptr;
  std::optional<result<strong_record>> r;
  read(0, "k", r);
  sched.run();
  // Member 1 went down (its link is dropped), member 2 was never there: no majority, and
  // no wait for the deadline either.
  REQUIRE(r);
  CHECK(r->code() == errc::timeout);
}
