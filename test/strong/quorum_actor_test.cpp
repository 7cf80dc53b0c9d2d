// The quorum actor (actors/quorum_actor.hpp) and the strong range-group actors
// (actors/strong_range_actor.hpp) under CAF's deterministic test coordinator: no sockets,
// no threads, time advanced by hand. Three quorum actors of one actor system
// (or one actor and scripted peers) are linked directly (quorum_link_cmd); the test runs
// the mailboxes to quiescence with sched.run() and fires the actors' timers with
// trigger_timeouts(). CAF's dsl.hpp fixture (test_coordinator_fixture) needs CAF's own
// unit-test engine (its argc/argv and current test), which a Catch2 binary does not have,
// so this fixture sets the test coordinator up the same way by hand.
#include <catch2/catch.hpp>

#include <optional>

#include <nlohmann/json.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "test/support/caf_testing.hpp"
#include "actors/quorum_actor.hpp"
#include "actors/strong_context.hpp"
#include "actors/strong_range_actor.hpp"
#include "runtime/modes/strong.hpp"

using namespace warp;
using namespace warp::detail;
using namespace std::chrono_literals;

namespace {

/// How a scripted peer treats the request batches it gets.
enum class peer_mode { answer, silent, drop_stores, answer_late };

struct scripted_peer_state {
  peer_mode mode = peer_mode::answer;
  std::vector<strong_replica>* replicas = nullptr;  ///< by range
  std::size_t batches = 0;
  std::size_t requests = 0;
  static inline const char* name = "scripted_peer";
};

/// A replica that is not a quorum actor: answers from its own store, or not, as scripted.
caf::behavior scripted_peer(caf::stateful_actor<scripted_peer_state>* self, peer_mode mode,
                            std::vector<strong_replica>* replicas, std::uint64_t fingerprint) {
  self->state.mode = mode;
  self->state.replicas = replicas;
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
          out.items.push_back(serve(st.replicas->at(req.range), req));
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
  caf::actor_system sys{test::testing_config(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  std::vector<std::string> addresses{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"};
  std::vector<std::unique_ptr<strong_placement>> placements;
  /// A scripted peer's replicas, by member and range (quorum actors' ranges are their
  /// range actors' state: see store()).
  std::vector<std::vector<strong_replica>> peer_replicas;
  std::vector<caf::actor> actors;  ///< by member index; a quorum actor or a scripted peer
  std::vector<std::vector<caf::actor>> range_actors;  ///< of quorum actors: group, by range
  std::vector<bool> scripted;
  std::uint64_t hlc = 0;

  fixture() {
    sched.clock().current_time += std::chrono::hours(1);  // as CAF's fixture: time is not 0
    for (auto& a : addresses) {
      placements.push_back(std::make_unique<strong_placement>(addresses, a, 3, 4));
      peer_replicas.emplace_back(4, strong_replica{true});
    }
    actors.resize(addresses.size());
    scripted.resize(addresses.size());
    range_actors.resize(addresses.size());
  }

  ~fixture() {
    for (auto& a : actors)
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched.run();
  }

  std::uint64_t fingerprint() const { return placements[0]->fingerprint(); }

  caf::actor spawn_quorum(std::size_t m, bool ready = true,
                          std::chrono::milliseconds anti_entropy = 0ms, std::size_t groups = 2) {
    actors::quorum_setup setup;
    setup.range_groups = groups;
    setup.placement = placements[m].get();
    setup.ranges_ready = ready;
    setup.anti_entropy_interval = anti_entropy;
    setup.timeout = 1000ms;
    setup.dial = false;
    auto node = static_cast<std::uint32_t>(m + 1);
    setup.pick_version = [this, node](const version& highest) {
      hlc = std::max(hlc + 1, highest.hlc + 1);
      return version{hlc, node};
    };
    actors[m] = actors::spawn_quorum_actor(sys, std::move(setup));
    std::optional<result<std::vector<caf::actor>>> ranges;
    caf::anon_send(actors[m], actors::quorum_ranges_cmd{capture<std::vector<caf::actor>>(ranges)});
    sched.run();
    REQUIRE(ranges);
    REQUIRE(*ranges);
    range_actors[m] = **ranges;
    return actors[m];
  }

  /// Member m's replica of `range`: a scripted peer's own, or the state of a quorum
  /// actor's range-group actor (read between sched.run() calls: one thread, nothing
  /// running).
  strong_replica& store(std::size_t m, std::uint32_t range) {
    if (scripted[m]) return peer_replicas[m].at(range);
    auto& hdl = range_actors[m].at(range);
    REQUIRE(hdl);
    auto* rep =
        dynamic_cast<actors::strong_range_actor&>(*caf::actor_cast<caf::abstract_actor*>(hdl))
            .state.replica_of(range);
    REQUIRE(rep);
    return *rep;
  }

  /// Member m's strong-mode status (the quorum actor's JSON), asked by a helper actor.
  nlohmann::json status(std::size_t m) {
    std::optional<std::string> out;
    auto q = actors[m];
    sys.spawn([&out, q](caf::event_based_actor* self) {
      self->request(q, caf::infinite, actors::quorum_status_atom::value)
          .then([&out](std::string& json) { out = std::move(json); });
    });
    sched.run();
    REQUIRE(out);
    return nlohmann::json::parse(*out);
  }

  strong_replica& store(std::size_t m, const std::string& key) {
    return store(m, placements[m]->range_of(key));
  }

  caf::actor spawn_peer(std::size_t m, peer_mode mode) {
    actors[m] = sys.spawn(scripted_peer, mode, &peer_replicas[m], fingerprint());
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
    for (std::size_t m = 0; m < actors.size(); ++m)
      if (actors[m]) n += store(m, key).get(key).value == value;
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
  store(1, "k").apply("k", [] {
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
  store(0, "other").apply("other", newer);
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

// -- the strong range actor ---------------------------------------------------------------

namespace {

struct collector_state {
  std::vector<actors::range_served> served;
  std::vector<actors::range_progress> progress;
  static inline const char* name = "collector";
};

/// Stands in for the quorum actor of one range actor: keeps what it is sent.
caf::behavior collector(caf::stateful_actor<collector_state>* self) {
  return {
      [=](actors::range_served& msg) { self->state.served.push_back(std::move(msg)); },
      [=](const actors::range_progress& msg) { self->state.progress.push_back(msg); },
      [=](const actors::strong_count_cmd&) {},
  };
}

wire::request store_req(std::uint64_t id, std::string key, std::uint64_t hlc, std::string value) {
  wire::request req;
  req.id = id;
  req.what = wire::op::store;
  req.key = std::move(key);
  strong_record rec;
  rec.ver = version{hlc, 1};
  rec.value = std::move(value);
  req.rec = std::move(rec);
  return req;
}

wire::request read_req(std::uint64_t id, std::string key, wire::op what = wire::op::read) {
  wire::request req;
  req.id = id;
  req.what = what;
  req.key = std::move(key);
  return req;
}

strong_record record(std::uint64_t hlc, std::uint32_t node, std::string value) {
  strong_record rec;
  rec.ver = version{hlc, node};
  rec.value = std::move(value);
  return rec;
}

}  // namespace

TEST_CASE_METHOD(fixture, "range actor: serves reads and writes of its range with max-merge") {
  auto sink = sys.spawn(collector);
  auto& got = dynamic_cast<caf::stateful_actor<collector_state>&>(
                  *caf::actor_cast<caf::abstract_actor*>(sink))
                  .state;
  auto range = actors::spawn_strong_range_actor(
      sys, actors::strong_range_setup{0, {0}, placements[0].get(), sink, 1000ms, true});
  std::vector<wire::request> reqs;
  reqs.push_back(store_req(1, "k", 5, "new"));
  reqs.push_back(store_req(2, "k", 3, "old"));  // older: no change
  reqs.push_back(read_req(3, "k"));
  reqs.push_back(read_req(4, "k", wire::op::read_version));
  reqs.push_back(read_req(5, "missing"));
  caf::anon_send(range, actors::range_serve_cmd{42, std::move(reqs)});
  sched.run();
  REQUIRE(got.served.size() == 1);
  auto& out = got.served[0];
  CHECK(out.batch == 42);  // the gathering it belongs to comes back with it
  REQUIRE(out.replies.size() == 5);
  for (auto& rep : out.replies) CHECK(rep.code == wire::status::ok);
  REQUIRE(out.replies[2].rec);
  CHECK(out.replies[2].rec->value == "new");
  CHECK(out.replies[2].rec->ver == (version{5, 1}));
  REQUIRE(out.replies[3].rec);
  CHECK(out.replies[3].rec->ver == (version{5, 1}));
  CHECK(out.replies[3].rec->value.empty());  // version only
  REQUIRE(out.replies[4].rec);
  CHECK(out.replies[4].rec->ver.empty());
  // A newer store replaces; the digest follows the state.
  auto* replica =
      dynamic_cast<actors::strong_range_actor&>(*caf::actor_cast<caf::abstract_actor*>(range))
          .state.replica_of(0);
  REQUIRE(replica);
  auto before = replica->digest();
  caf::anon_send(range, actors::range_serve_cmd{0, {store_req(6, "k", 9, "newest")}});
  sched.run();
  CHECK(replica->get("k").value == "newest");
  CHECK_FALSE(replica->digest() == before);
  CHECK(replica->key_count() == 1);
  caf::anon_send_exit(range, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(fixture, "range actor: a range that is not ready refuses, and still merges") {
  auto sink = sys.spawn(collector);
  auto& got = dynamic_cast<caf::stateful_actor<collector_state>&>(
                  *caf::actor_cast<caf::abstract_actor*>(sink))
                  .state;
  auto range = actors::spawn_strong_range_actor(
      sys, actors::strong_range_setup{0, {0}, placements[0].get(), sink, 1000ms, false});
  caf::anon_send(range, actors::range_serve_cmd{0, {store_req(1, "k", 5, "v"), read_req(2, "k")}});
  sched.run();
  REQUIRE(got.served.size() == 1);
  REQUIRE(got.served[0].replies.size() == 2);
  for (auto& rep : got.served[0].replies) CHECK(rep.code == wire::status::not_ready);
  auto* replica =
      dynamic_cast<actors::strong_range_actor&>(*caf::actor_cast<caf::abstract_actor*>(range))
          .state.replica_of(0);
  REQUIRE(replica);
  CHECK(replica->get("k").value == "v");  // a max-merge never hurts
  CHECK_FALSE(replica->ready());
  caf::anon_send_exit(range, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  sched.run();
}

namespace {

/// Fires every timer (catch-up ticks, fan-out deadlines, anti-entropy) and runs the
/// mailboxes, `rounds` times.
void run_timers(caf::scheduler::test_coordinator& sched, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    sched.trigger_timeouts();
    sched.run();
  }
}

}  // namespace

TEST_CASE_METHOD(fixture, "recovery: a restarted replica copies both others before it serves") {
  // Members 1 and 2 are ready; each holds a record the other lacks (a write acknowledged
  // by the old incarnation of member 0 and only one of them). Member 0 restarts empty.
  spawn_quorum(1);
  spawn_quorum(2);
  auto k1 = std::string{"only-on-1"}, k2 = std::string{"only-on-2"};
  store(1, k1).apply(k1, record(10, 1, "a"));
  store(2, k2).apply(k2, record(11, 1, "b"));
  spawn_quorum(0, false);
  link_all();
  for (std::uint32_t r = 0; r < 4; ++r) CHECK_FALSE(store(0, r).ready());
  std::optional<result<strong_record>> early;
  read(1, k1, early);  // member 0 answers not_ready: 1 and 2 still form the quorum
  sched.run();
  REQUIRE(early);
  CHECK(*early);
  run_timers(sched, 3);
  for (std::uint32_t r = 0; r < 4; ++r) CHECK(store(0, r).ready());
  CHECK(store(0, k1).get(k1).value == "a");
  CHECK(store(0, k2).get(k2).value == "b");
}

TEST_CASE_METHOD(fixture,
                 "recovery: not ready while a needed replica is silent, ready by census once it answers") {
  spawn_quorum(1);
  auto peer = spawn_peer(2, peer_mode::silent);
  auto k1 = std::string{"k1"};
  store(1, k1).apply(k1, record(10, 2, "a"));
  spawn_quorum(0, false);
  link_all();
  // Rule 1 needs both other replicas copied (RF 3), rule 2 an answer from every one:
  // with member 2 silent neither holds, however many passes run.
  run_timers(sched, 5);
  for (std::uint32_t r = 0; r < 4; ++r) CHECK_FALSE(store(0, r).ready());
  CHECK(store(0, k1).get(k1).ver.empty());  // no copy while no rule can hold
  // Member 2 answers, but as a replica that is itself recovering: every other replica has
  // answered and every ready one (member 1) was copied: rule 2.
  for (auto& r : peer_replicas[2]) r.set_ready(false);
  dynamic_cast<caf::stateful_actor<scripted_peer_state>&>(
      *caf::actor_cast<caf::abstract_actor*>(peer))
      .state.mode = peer_mode::answer;
  run_timers(sched, 3);
  for (std::uint32_t r = 0; r < 4; ++r) CHECK(store(0, r).ready());
  CHECK(store(0, k1).get(k1).value == "a");
}

TEST_CASE_METHOD(fixture, "recovery: one ready replica and one silent is not enough (rule 1)") {
  // The rule-1 quorum for RF 3 is both others: a replica that answered ready alone, with
  // the third one silent, must not make the range ready (it may lack a write only the
  // silent one and the old incarnation held).
  spawn_quorum(1);
  spawn_peer(2, peer_mode::silent);
  store(2, std::string{"x"}).apply("x", record(10, 3, "only-on-2"));
  spawn_quorum(0, false);
  link_all();
  run_timers(sched, 4);
  for (std::uint32_t r = 0; r < 4; ++r) CHECK_FALSE(store(0, r).ready());
  std::optional<result<strong_record>> w;
  write(0, "y", "v", w);  // member 0 coordinates; its replica does not vote
  sched.run();
  sched.trigger_timeouts();
  sched.run();
  REQUIRE(w);
  CHECK(w->code() == errc::timeout);  // only member 1 counts: no majority
}

TEST_CASE_METHOD(fixture, "anti-entropy: a round pulls a record a replica missed") {
  for (std::size_t m = 0; m < 3; ++m) spawn_quorum(m, true, 5000ms);
  link_all();
  auto key = std::string{"missed"};
  // Members 1 and 2 hold a write member 0 never got (it was paused), and member 0 holds an
  // older version of another key than they do.
  store(1, key).apply(key, record(20, 2, "v"));
  store(2, key).apply(key, record(20, 2, "v"));
  store(0, std::string{"other"}).apply("other", record(30, 1, "newer"));
  store(1, std::string{"other"}).apply("other", record(25, 2, "older"));
  CHECK(store(0, key).get(key).ver.empty());
  run_timers(sched, 3);
  CHECK(store(0, key).get(key).value == "v");
  CHECK(store(1, std::string{"other"}).get("other").value == "newer");
  CHECK(store(2, std::string{"other"}).get("other").value == "newer");
  for (std::uint32_t r = 0; r < 4; ++r) {
    CHECK(store(0, r).digest() == store(1, r).digest());
    CHECK(store(1, r).digest() == store(2, r).digest());
  }
}

TEST_CASE_METHOD(fixture,
                 "range-group actor: one message serves requests of several of its ranges") {
  auto sink = sys.spawn(collector);
  auto& got = dynamic_cast<caf::stateful_actor<collector_state>&>(
                  *caf::actor_cast<caf::abstract_actor*>(sink))
                  .state;
  auto group = actors::spawn_strong_range_actor(
      sys, actors::strong_range_setup{1, {0, 2}, placements[0].get(), sink, 1000ms, true});
  auto in_range = [](wire::request req, std::uint32_t r) {
    req.range = r;
    return req;
  };
  std::vector<wire::request> reqs;
  reqs.push_back(in_range(store_req(1, "a", 5, "in-0"), 0));
  reqs.push_back(in_range(store_req(2, "a", 5, "in-2"), 2));
  reqs.push_back(in_range(read_req(3, "a"), 0));
  reqs.push_back(in_range(read_req(4, "a"), 2));
  reqs.push_back(in_range(read_req(5, "a"), 1));  // not one of its ranges
  caf::anon_send(group, actors::range_serve_cmd{7, std::move(reqs)});
  sched.run();
  REQUIRE(got.served.size() == 1);  // one answer for the whole part
  auto& out = got.served[0].replies;
  REQUIRE(out.size() == 5);
  REQUIRE(out[2].rec);
  CHECK(out[2].rec->value == "in-0");  // each range is its own replica
  REQUIRE(out[3].rec);
  CHECK(out[3].rec->value == "in-2");
  CHECK(out[4].code == wire::status::bad_request);
  auto& st =
      dynamic_cast<actors::strong_range_actor&>(*caf::actor_cast<caf::abstract_actor*>(group))
          .state;
  CHECK(st.replica_of(1) == nullptr);
  REQUIRE(st.replica_of(0));
  CHECK(st.replica_of(0)->key_count() == 1);
  caf::anon_send_exit(group, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(
    fixture,
    "quorum actors: a batch of many ranges costs one message per group, own part included") {
  // 2 groups over the 4 ranges. 40 reads of distinct keys touch every range; with one actor
  // per range a peer's batch was split into 4 parts and the coordinator's own participation
  // was one message per operation (40 here).
  for (std::size_t m = 0; m < 3; ++m) spawn_quorum(m, true, 0ms, 2);
  link_all();
  std::vector<std::optional<result<strong_record>>> out(40);
  for (std::size_t i = 0; i < out.size(); ++i) read(0, "key" + std::to_string(i), out[i]);
  sched.run();
  for (auto& o : out) {
    REQUIRE(o);
    CHECK(*o);
  }
  auto s0 = status(0);
  CHECK(s0["range_groups"] == 2);
  auto c0 = s0["counters"];
  CHECK(c0["gets"] == 40);
  // The coordinator's own part of 40 quorums: at most one message per group per flush.
  CHECK(c0["group_messages"].get<std::uint64_t>() <= 2 * c0["batches_sent"].get<std::uint64_t>());
  CHECK(c0["group_messages"].get<std::uint64_t>() <= 4);
  for (std::size_t m : {1, 2}) {
    auto c = status(m)["counters"];
    CHECK(c["requests_served"] == 40);
    // Every batch it served went to at most 2 group actors.
    CHECK(c["group_messages"].get<std::uint64_t>() <= 2 * c["batches_served"].get<std::uint64_t>());
  }
}
