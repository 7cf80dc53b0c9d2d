// The leader-side lease countdown (runtime/coordination/lease_clock.hpp), and with the state
// machine across a leader change: a lease never expires before its TTL has run from the last
// keep-alive, and a new leader expires it at most a replication delay plus the election
// later, never a whole TTL later (the etcd #9395 failure).
#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <set>

#include "runtime/coordination/coord_machine.hpp"
#include "runtime/coordination/lease_clock.hpp"

using namespace std::chrono_literals;
using namespace warp;
using namespace warp::coordination;
using clock_type = std::chrono::steady_clock;

TEST_CASE("lease clock: counts down, proposes each expiry once per retry interval") {
  lease_clock lc{500ms};
  auto t0 = clock_type::time_point{} + 1h;
  lc.arm(7, 0, 1000, t0);
  CHECK(lc.due(t0 + 999ms).empty());
  CHECK(lc.remaining_ms(7, t0 + 400ms) == 600);
  auto d = lc.due(t0 + 1000ms);
  REQUIRE(d.size() == 1);
  CHECK(d[0].lease == 7);
  CHECK(d[0].epoch == 0);
  CHECK(lc.due(t0 + 1200ms).empty());   // proposed: wait for it to apply
  CHECK(lc.due(t0 + 1500ms).size() == 1);  // lost with a leader change: again
  // A keep-alive applied meanwhile re-arms with the new epoch.
  lc.arm(7, 1, 1000, t0 + 1600ms);
  CHECK(lc.due(t0 + 2000ms).empty());
  CHECK(lc.due(t0 + 2600ms)[0].epoch == 1);
  lc.forget(7);
  CHECK(lc.size() == 0);
  CHECK(lc.remaining_ms(7, t0) == 0);
}

TEST_CASE("lease clock: checkpoints cover every lease round robin") {
  lease_clock lc;
  auto t0 = clock_type::time_point{} + 1h;
  for (std::uint64_t id = 1; id <= 5; ++id) lc.arm(id, id, 10000, t0);
  std::set<std::uint64_t> seen;
  for (int call = 0; call < 3; ++call)
    for (auto& cp : lc.checkpoint(t0 + 250ms, 2)) {
      CHECK(cp.remaining_ms == 9750);
      CHECK(cp.epoch == cp.lease);
      seen.insert(cp.lease);
    }
  CHECK(seen.size() == 5);
}

// Three replicas apply every entry, each after its own delay. The leader checkpoints every
// `checkpoint_every` and proposes due expiries; the client keeps the lease alive, then stops;
// the leader dies at a random moment and a new one takes over after `election`.
TEST_CASE("lease clock: a leader change neither shortens a lease nor extends it by a TTL") {
  constexpr auto ttl = 3000ms;
  constexpr auto election = 1000ms;
  constexpr auto max_delay = 30ms;
  constexpr auto checkpoint_every = 500ms;
  constexpr auto step = 10ms;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    std::mt19937_64 rng(seed);
    struct replica {
      coord_machine sm;
      lease_clock clock;
    };
    std::vector<replica> rs(3);
    struct pending {
      clock_type::time_point at;
      std::size_t replica;
      std::string bytes;
      index_t index;
    };
    std::vector<pending> inflight;
    index_t index = 0;
    auto t = clock_type::time_point{} + 1h;
    auto propose = [&](const coord_command& c) {
      ++index;
      for (std::size_t r = 0; r < rs.size(); ++r)
        inflight.push_back({t + std::chrono::milliseconds(rng() % (max_delay.count() + 1)), r,
                            encode(c), index});
    };
    std::size_t leader = 0;
    bool leader_alive = true;
    auto leader_dies_at = t + std::chrono::milliseconds(2000 + rng() % 6000);
    auto new_leader_at = leader_dies_at + election;
    auto keepalives_stop_at = t + std::chrono::milliseconds(1000 + rng() % 3000);
    clock_type::time_point last_keepalive_applied_everywhere{};
    clock_type::time_point last_checkpoint = t;
    std::optional<clock_type::time_point> ended_at;
    std::uint64_t lease = 0;
    coord_command g;
    g.op = coord_op::grant;
    g.number = static_cast<std::uint64_t>(ttl.count());
    propose(g);
    auto next_keepalive = t + 700ms;
    std::optional<clock_type::time_point> keepalive_proposed;
    while (!ended_at && t < clock_type::time_point{} + 1h + 60s) {
      t += step;
      // Deliver what is due, in index order per replica.
      std::stable_sort(inflight.begin(), inflight.end(),
                       [](auto& a, auto& b) { return a.index < b.index; });
      std::vector<pending> later;
      std::vector<index_t> applied_upto(rs.size(), 0);
      for (auto& p : inflight) {
        auto& r = rs[p.replica];
        if (p.at > t || r.sm.applied() + 1 != p.index) {
          later.push_back(std::move(p));
          continue;
        }
        auto out = r.sm.apply(p.index, p.bytes);
        if (lease == 0 && out && p.index == 1) lease = std::stoull(*out);
        for (auto& e : r.sm.take_events()) {
          if (e.what == coord_event::kind::lease_timer)
            r.clock.arm(e.lease, e.epoch, e.remaining_ms, t);
          if (e.what == coord_event::kind::lease_ended) {
            r.clock.forget(e.lease);
            if (!ended_at) ended_at = t;
          }
        }
      }
      inflight = std::move(later);
      if (t < keepalives_stop_at && t >= next_keepalive && lease != 0) {
        coord_command k;
        k.op = coord_op::keepalive;
        k.lease = lease;
        propose(k);
        keepalive_proposed = t;
        next_keepalive = t + 700ms;
      }
      if (leader_alive && t >= leader_dies_at) leader_alive = false;
      if (!leader_alive && t >= new_leader_at) {
        leader = 1;
        leader_alive = true;
        leader_dies_at = clock_type::time_point::max();
      }
      if (!leader_alive) continue;
      auto& lr = rs[leader];
      if (t - last_checkpoint >= checkpoint_every) {
        coord_command cp;
        cp.op = coord_op::checkpoint;
        cp.checkpoints = lr.clock.checkpoint(t, 16);
        if (!cp.checkpoints.empty()) propose(cp);
        last_checkpoint = t;
      }
      for (auto& d : lr.clock.due(t)) {
        coord_command e;
        e.op = coord_op::expire;
        e.lease = d.lease;
        e.number = d.epoch;
        propose(e);
      }
    }
    INFO("seed " << seed);
    REQUIRE(ended_at);
    // The last keep-alive committed at most max_delay after it was proposed: the lease's
    // true end is TTL after that commit. Never earlier than TTL after the proposal ...
    REQUIRE(keepalive_proposed);
    auto true_end = *keepalive_proposed + ttl;
    CHECK(*ended_at >= true_end);
    // ... and never later than a replication delay, a checkpoint's delay, the election and the
    // expiry's own commit beyond it.
    CHECK(*ended_at <= true_end + election + 4 * max_delay + 2 * step);
    (void)last_keepalive_applied_everywhere;
  }
}
