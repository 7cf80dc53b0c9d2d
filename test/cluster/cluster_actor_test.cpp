// The eventual cluster actor (actors/cluster_actor.cpp) under CAF's deterministic test
// coordinator: no sockets, no threads, time advanced by hand (the actor reads the time from
// its actor clock, so membership and batching follow the test's clock). Two cluster actors
// of one actor system talk through a relay actor, the test's transport: it forwards
// heartbeats and change batches both ways and drops what the test tells it to. The fixture
// is set up by hand, as in test/strong/quorum_actor_test.cpp (CAF's dsl.hpp fixture needs
// CAF's own unit-test engine).
#include <catch2/catch.hpp>

#include <memory>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "test/support/caf_testing.hpp"
#include "actors/cluster_actor.hpp"
#include "bus/envelope.hpp"

using namespace warp;
using namespace std::chrono_literals;

namespace {

/// What the relay does to the traffic; read by the relay, set by the test (one thread).
struct link_faults {
  std::size_t drop_batches_from_a = 0;  ///< drop this many of a's next batches
  bool silent = false;                  ///< drop everything, both ways
  std::size_t batches_dropped = 0;
};

struct relay_state {
  caf::actor a, b;
  link_faults* faults = nullptr;
  static inline const char* name = "test.relay";
};

/// The transport between two cluster actors: each sees the relay as the other's actor.
caf::behavior relay(caf::stateful_actor<relay_state>* self, caf::actor a, caf::actor b,
                    link_faults* faults) {
  self->state.a = std::move(a);
  self->state.b = std::move(b);
  self->state.faults = faults;
  auto other = [self]() -> caf::actor {
    auto from = caf::actor_cast<caf::actor>(self->current_sender());
    return from == self->state.a ? self->state.b : self->state.a;
  };
  return {
      [=](actors::heartbeat_atom hb, std::string& bytes) {
        if (self->state.faults->silent) return;
        self->send(other(), hb, std::move(bytes));
      },
      [=](actors::batch_atom batch, std::string& bytes) {
        auto& f = *self->state.faults;
        auto to = other();
        if (f.silent) return;
        if (to == self->state.b && f.drop_batches_from_a > 0) {
          --f.drop_batches_from_a;
          ++f.batches_dropped;
          return;
        }
        self->send(to, batch, std::move(bytes));
      },
  };
}

/// One node as the cluster actor sees it: its context, its host (the clock), and what the
/// actor hands to the node.
struct test_node final : actors::cluster_host {
  actors::cluster_context ctx;
  std::vector<bus::change_batch> batches;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> gaps;  ///< (sender, hlc bound)
  std::uint64_t hlc = 0;
  caf::actor actor;

  test_node(std::uint32_t id, std::string address) {
    ctx.self_id = id;
    ctx.incarnation = 1;
    ctx.name = "n" + std::to_string(id);
    ctx.address = std::move(address);
    ctx.opts.heartbeat_interval = 100ms;
    ctx.opts.failure_timeout = 1000ms;
    ctx.opts.ranges = 8;
    ctx.network = false;
    ctx.host = this;
  }

  std::uint64_t clock_now() override { return ++hlc; }
  void clock_observe(std::uint64_t h) override { hlc = std::max(hlc, h); }
  result<std::optional<record>> local_fetch(const std::string&) override {
    return std::optional<record>{};
  }

  actors::bus_delivery delivery() {
    return {
        [this](const bus::change_batch& b) { batches.push_back(b); },
        [this](std::uint32_t sender, std::uint64_t bound) { gaps.emplace_back(sender, bound); },
        {}};  // key-pattern tables: not these tests' subject
  }

  /// A local write, as caf_bus::publish hands it over.
  void publish(std::string key, std::string value) {
    bus::change_record r;
    r.key = std::move(key);
    r.ver = {++hlc, ctx.self_id};
    r.kind = bus::record_kind::value;
    r.value = std::move(value);
    if (ctx.queue.push(std::move(r))) caf::anon_send(actor, actors::wake_atom::value);
  }

  member_state state_of(std::uint32_t id) {
    std::lock_guard<std::mutex> g{ctx.snap_mtx};
    for (auto& m : ctx.view)
      if (m.id == id) return m.state;
    return member_state::joining;
  }
};

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{test::testing_config(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  std::unique_ptr<test_node> a = std::make_unique<test_node>(1, "10.0.0.1:7000");
  std::unique_ptr<test_node> b = std::make_unique<test_node>(2, "10.0.0.2:7000");
  link_faults faults;
  caf::actor link;

  fixture() {
    sched.clock().current_time += std::chrono::hours(1);  // as CAF's fixture: time is not 0
    a->actor = actors::spawn_cluster_actor(sys, a->ctx, a->delivery());
    b->actor = actors::spawn_cluster_actor(sys, b->ctx, b->delivery());
    link = sys.spawn(relay, a->actor, b->actor, &faults);
    caf::anon_send(a->actor, actors::cluster_link_cmd{link});
    sched.run();
  }

  ~fixture() {
    // As stop_cluster_actor does: goodbye hands over the range actors, then all stop.
    for (auto* n : {a.get(), b.get()}) {
      sys.spawn(
          [](caf::event_based_actor* self, caf::actor cluster) {
            self->request(cluster, caf::infinite, actors::goodbye_atom::value)
                .then([=](std::vector<caf::actor>& ranges) {
                  for (auto& r : ranges) self->send_exit(r, caf::exit_reason::kill);
                  self->send_exit(cluster, caf::exit_reason::kill);
                });
          },
          n->actor);
    }
    caf::anon_send_exit(link, caf::exit_reason::kill);
    sched.run();
  }

  /// Advances the clock in heartbeat steps, running every message and timer due.
  void advance(std::chrono::milliseconds d) {
    for (auto t = 0ms; t < d; t += 50ms) {
      sched.advance_time(50ms);
      sched.run();
    }
  }
};

}  // namespace

TEST_CASE_METHOD(fixture, "cluster actors: linked actors see each other up") {
  CHECK(a->state_of(2) == member_state::up);
  CHECK(b->state_of(1) == member_state::up);
  advance(500ms);  // heartbeats keep them up
  CHECK(a->state_of(2) == member_state::up);
  CHECK(b->state_of(1) == member_state::up);
  CHECK(a->ctx.counters.heartbeats_received.load() > 0);
  CHECK(a->gaps.empty());
  CHECK(b->gaps.empty());
}

TEST_CASE_METHOD(fixture, "cluster actors: a write's batch reaches the peer and is applied") {
  a->publish("user:1", "alice");
  sched.run();
  REQUIRE(b->batches.size() == 1);
  auto& batch = b->batches[0];
  CHECK(batch.header.sender == 1);
  CHECK(batch.header.seq == 1);
  REQUIRE(batch.records.size() == 1);
  CHECK(batch.records[0].key == "user:1");
  CHECK(batch.records[0].value == "alice");
  CHECK(a->ctx.counters.batches_sent.load() == 1);
  CHECK(a->ctx.counters.batches_immediate.load() == 1);  // idle: sent at once
  CHECK(b->ctx.counters.batches_received.load() == 1);
  CHECK(b->hlc >= batch.header.hlc_now);  // b's clock moved past a's
  CHECK(b->gaps.empty());
  a->publish("user:2", "bob");
  sched.run();
  REQUIRE(b->batches.size() == 2);
  CHECK(b->batches[1].header.seq == 2);
  CHECK(b->gaps.empty());
}

TEST_CASE_METHOD(fixture, "cluster actors: a dropped batch leads to a gap invalidation") {
  SECTION("the next batch shows the hole") {
    faults.drop_batches_from_a = 1;
    a->publish("k1", "lost");
    sched.run();
    CHECK(faults.batches_dropped == 1);
    CHECK(b->batches.empty());
    CHECK(b->gaps.empty());  // nothing shows the loss yet
    a->publish("k2", "arrives");
    sched.run();
    REQUIRE(b->batches.size() == 1);
    CHECK(b->batches[0].header.seq == 2);
    REQUIRE(b->gaps.size() == 1);
    CHECK(b->gaps[0].first == 1);
    CHECK(b->gaps[0].second == b->batches[0].header.hlc_now);  // distrusts up to this batch
    CHECK(b->ctx.counters.gaps.load() == 1);
  }
  SECTION("a heartbeat announces a lost tail") {
    faults.drop_batches_from_a = 1;
    a->publish("k1", "lost");
    sched.run();
    CHECK(b->gaps.empty());
    advance(200ms);  // a's next heartbeat says: last batch 1
    REQUIRE(b->gaps.size() == 1);
    CHECK(b->gaps[0].first == 1);
    advance(500ms);
    CHECK(b->gaps.size() == 1);  // judged once
  }
}

TEST_CASE_METHOD(fixture,
                 "cluster actors: membership ticks move a silent peer to suspect, then down") {
  a->publish("k", "v");  // b has cached changes of a: losing a must distrust them
  sched.run();
  REQUIRE(b->batches.size() == 1);
  faults.silent = true;
  advance(300ms);
  CHECK(b->state_of(1) == member_state::up);
  advance(400ms);  // > failure_timeout / 2 of silence
  CHECK(b->state_of(1) == member_state::suspect);
  CHECK(a->state_of(2) == member_state::suspect);
  CHECK(b->gaps.empty());
  advance(500ms);  // > failure_timeout
  CHECK(b->state_of(1) == member_state::down);
  CHECK(a->state_of(2) == member_state::down);
  // Down after being trusted: whatever a wrote meanwhile never reached b.
  REQUIRE(b->gaps.size() == 1);
  CHECK(b->gaps[0].first == 1);
  CHECK(b->ctx.counters.gaps.load() == 1);
}
