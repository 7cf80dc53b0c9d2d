// The coordination group (actors/coord_group.hpp) on three Raft hosts under CAF's
// deterministic test coordinator (the fixture of raft_host_test.cpp, with the coordination
// group switched on): leases, fenced locks with tokens increasing across hosts, the
// leader's countdown ending leases and reporting their keys once, and a leader cut off
// that does not extend a lease beyond TTL + an election timeout.
#include <catch2/catch.hpp>

#include <array>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include <unistd.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/coord_group.hpp"
#include "actors/raft_host_actor.hpp"
#include "runtime/coordination/coord_command.hpp"
#include "runtime/membership/strong_placement.hpp"
#include "test/support/caf_testing.hpp"

using namespace warp;
using namespace warp::consensus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct coord_relay_state {
  static inline const char* name = "coord_relay";
};

struct coord_fixture {
  static constexpr std::size_t n = 3;
  static constexpr std::size_t groups = 8;
  caf::actor_system_config cfg;
  caf::actor_system sys{test::testing_config(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  fs::path root;
  std::deque<std::function<void()>> jobs;
  std::vector<std::string> members{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};
  std::array<std::unique_ptr<detail::strong_placement>, n> placements;
  std::array<caf::actor, n> hosts;
  std::vector<caf::actor> relays;
  std::array<std::array<bool, n>, n> cut{};
  std::size_t dropped = 0;
  bool tearing_down = false;
  struct ended_lease {
    std::size_t host;
    std::uint64_t lease;
    std::vector<std::string> keys;
    caf::actor_clock::time_point at;  ///< when the leader applied the lease's end
  };
  std::vector<ended_lease> ended;
  bool hold_deletes = false;  ///< the deletes started never report back
  bool fail_deletes = false;  ///< the deletes report a failure (retried later)
  std::vector<actors::coord_group_options::deletes_done> held;
  struct grant_seen {
    std::size_t host;
    std::string name;
    std::uint64_t lease;
    std::uint64_t token;
  };
  std::vector<grant_seen> grants;  ///< lock_granted as each replica applied it
  std::uint64_t snapshot_entries = 10'000;

  coord_fixture() {
    sched.clock().current_time += std::chrono::hours(1);
    root = fs::temp_directory_path() / ("warp-coordgroup-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(root);
    fs::create_directories(root);
    for (std::size_t i = 0; i < n; ++i)
      placements[i] = std::make_unique<detail::strong_placement>(members, members[i], 3, groups);
  }

  ~coord_fixture() {
    tearing_down = true;
    for (auto& h : hosts)
      if (h) caf::anon_send(h, actors::raft_host_stop_cmd{});
    for (auto& r : relays) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    sched.run();
    jobs.clear();
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  /// Member i's index in the (sorted) placement, i.e. its raft id - 1.
  std::size_t index_of(std::size_t i) const { return placements[i]->self_index(); }

  void spawn(std::size_t i) {
    actors::raft_host_setup s;
    s.placement = placements[i].get();
    s.dir = (root / ("n" + std::to_string(i))).string();
    s.executor = [this](std::function<void()> job) {
      jobs.push_back(std::move(job));
      return true;
    };
    s.tick_interval = 100ms;
    s.election_tick = 10;
    s.request_timeout_ticks = 40;
    s.incarnation = 1000 + i;
    s.dial = false;
    auto co = std::make_shared<actors::coord_group_options>();
    co->on_lease_ended = [this, i](std::uint64_t lease, std::vector<std::string> keys, bool,
                                   actors::coord_group_options::deletes_done done) {
      ended.push_back({i, lease, std::move(keys), sched.clock().current_time});
      if (hold_deletes)
        held.push_back(std::move(done));  // never finishes: the deleting leader "dies"
      else
        done(!fail_deletes);
    };
    co->on_lock_granted = [this, i](const std::string& name, std::uint64_t lease,
                                    const std::string&, std::uint64_t token) {
      grants.push_back({i, name, lease, token});
    };
    s.coordination = co;
    s.snapshot_entries = snapshot_entries;
    auto h = actors::spawn_raft_host_actor(sys, std::move(s));
    REQUIRE(h);
    hosts[i] = *h;
    settle();
  }

  void link_all() {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        if (i == j || !hosts[i] || !hosts[j]) continue;
        auto relay =
            sys.spawn([this, i, j, to = hosts[j]](caf::stateful_actor<coord_relay_state>* self) {
              return caf::behavior{
                  [this, i, j, to, self](actors::raft_batch_atom a, std::string& bytes) {
                    if (cut[i][j]) {
                      ++dropped;
                      return;
                    }
                    self->send(to, a, std::move(bytes));
                  },
                  [this, i, j, to, self](actors::raft_fwd_atom a, std::string& bytes) {
                    auto rp = self->make_response_promise();
                    if (cut[i][j]) {
                      ++dropped;
                      return rp;  // never delivered: the sender's request times out
                    }
                    self->request(to, caf::infinite, a, std::move(bytes))
                        .then([rp](std::string& ans) mutable { rp.deliver(std::move(ans)); },
                              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
                    return rp;
                  },
              };
            });
        relays.push_back(relay);
        caf::anon_send(hosts[i], actors::raft_host_link_cmd{index_of(j) + 1, relay});
      }
    settle();
  }

  void settle() {
    for (;;) {
      sched.run();
      if (jobs.empty()) return;
      while (!jobs.empty()) {
        auto job = std::move(jobs.front());
        jobs.pop_front();
        job();
      }
    }
  }

  void tick(int k = 1) {
    for (int t = 0; t < k; ++t) {
      sched.clock().advance_time(100ms);
      settle();
    }
  }

  template <class T>
  actors::completion<T> capture(std::optional<result<T>>& out) {
    return actors::completion<T>{[this, &out](result<T> r) {
      if (tearing_down) return;
      REQUIRE_FALSE(out);
      out = std::move(r);
    }};
  }

  actors::raft_host_status host_status(std::size_t i) {
    std::optional<result<actors::raft_host_status>> out;
    caf::anon_send(hosts[i], actors::raft_host_status_cmd{capture<actors::raft_host_status>(out)});
    settle();
    REQUIRE(out);
    REQUIRE(*out);
    return **out;
  }

  /// Every group's status on host i.
  std::map<std::uint32_t, actors::raft_status> group_status(std::size_t i) {
    std::map<std::uint32_t, actors::raft_status> out;
    for (auto& [g, a] : host_status(i).groups) {
      std::optional<result<actors::raft_status>> st;
      caf::anon_send(a, actors::raft_status_cmd{capture<actors::raft_status>(st)});
      settle();
      REQUIRE(st);
      REQUIRE(*st);
      out[g] = **st;
    }
    return out;
  }

  /// Ticks until every group has a leader among the hosts not in `skip`, that leader has
  /// committed in its term and every live replica agrees on it.
  bool all_led(int max_ticks = 200, std::optional<std::size_t> skip = {}) {
    for (int t = 0; t < max_ticks; ++t) {
      tick();
      std::map<std::uint32_t, std::set<node_id>> seen;
      std::map<std::uint32_t, bool> led;
      for (std::size_t i = 0; i < n; ++i) {
        if (!hosts[i] || (skip && *skip == i)) continue;
        for (auto& [g, st] : group_status(i)) {
          seen[g].insert(st.leader);
          if (st.role == role::leader && st.commit > 0) led[g] = true;
        }
      }
      bool ok = seen.size() == groups + 1;  // and the coordination group
      for (auto& [g, leaders] : seen)
        ok = ok && leaders.size() == 1 && *leaders.begin() != 0 && led[g];
      if (ok) return true;
    }
    return false;
  }

  void request(std::size_t i, actors::raft_request_kind kind, kv_command c,
               std::optional<result<std::string>>& out) {
    caf::anon_send(hosts[i],
                   actors::raft_request_cmd{kind, std::move(c), capture<std::string>(out)});
  }
  void put(std::size_t i, std::string key, std::string value,
           std::optional<result<std::string>>& out) {
    request(i, actors::raft_request_kind::propose,
            kv_command{0, 0, kv_op::put, std::move(key), std::move(value), {}, false}, out);
  }
  void get(std::size_t i, std::string key, std::optional<result<std::string>>& out) {
    request(i, actors::raft_request_kind::read,
            kv_command{0, 0, kv_op::put, std::move(key), {}, {}, false}, out);
  }

  /// Runs until `out` is set (or `max_ticks` pass).
  void wait(std::optional<result<std::string>>& out, int max_ticks = 60) {
    settle();
    for (int t = 0; t < max_ticks && !out; ++t) tick();
  }

  result<std::string> coord(std::size_t i, bool write, std::string bytes, int max_ticks = 60) {
    std::optional<result<std::string>> out;
    kv_command c;
    c.value = std::move(bytes);
    request(i, write ? actors::raft_request_kind::coord_propose : actors::raft_request_kind::coord_read,
            std::move(c), out);
    wait(out, max_ticks);
    if (!out) return error{errc::timeout, "no answer"};
    return std::move(*out);
  }
  std::uint64_t next_client = 100;
  coordination::coord_command cmd(coordination::coord_op op) {
    coordination::coord_command c;
    c.client = ++next_client;
    c.seq = 1;
    c.op = op;
    return c;
  }
  std::uint64_t grant(std::size_t i, std::uint64_t ttl_ms) {
    auto c = cmd(coordination::coord_op::grant);
    c.number = ttl_ms;
    auto r = coord(i, true, coordination::encode(c));
    REQUIRE(r);
    return std::stoull(*r);
  }
  result<coordination::lock_answer> lock(std::size_t i, std::string name, std::uint64_t lease,
                                         coordination::coord_op op = coordination::coord_op::lock) {
    auto c = cmd(op);
    c.name = std::move(name);
    c.lease = lease;
    c.owner = "o";
    auto r = coord(i, true, coordination::encode(c));
    if (!r) return r.err();
    return coordination::decode_lock_answer(*r);
  }
  result<coordination::lock_info> lock_info(std::size_t i, std::string name) {
    auto r = coord(i, false,
                   coordination::encode(coordination::coord_query{
                       coordination::coord_query_kind::lock, 0, std::move(name)}));
    if (!r) return r.err();
    return coordination::decode_lock_info(*r);
  }
  result<std::string> fenced_put(std::size_t i, std::string key, std::string lockname,
                                 std::uint64_t token) {
    auto c = cmd(coordination::coord_op::fenced_put);
    c.name = std::move(key);
    c.value = "v" + std::to_string(token);
    c.owner = std::move(lockname);
    c.number = token;
    return coord(i, true, coordination::encode(c));
  }
  /// Whether `lease` still exists, read (linearizably) through host i.
  result<bool> lease_exists(std::size_t i, std::uint64_t lease) {
    auto r = coord(i, false,
                   coordination::encode(coordination::coord_query{
                       coordination::coord_query_kind::lease, lease, {}}), 5);
    if (!r && r.code() == errc::not_found) return false;
    if (!r) return r.err();
    return true;
  }
  std::optional<std::size_t> coord_leader() {
    for (std::size_t i = 0; i < n; ++i) {
      if (!hosts[i]) continue;
      auto st = group_status(i);
      auto it = st.find(actors::coord_group_id);
      if (it != st.end() && it->second.role == role::leader) return i;
    }
    return std::nullopt;
  }

  void isolate(std::size_t i, bool on = true) {
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) cut[i][j] = cut[j][i] = on;
  }
};

}  // namespace

TEST_CASE_METHOD(coord_fixture,
                 "coordination group: locks from every host get strictly increasing tokens, "
                 "FIFO hand-over on unlock, and only the current token writes the fence") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  std::array<std::uint64_t, n> lease{};
  for (std::size_t i = 0; i < n; ++i) lease[i] = grant(i, 60000);
  CHECK(lease[0] != lease[1]);
  // Host 0 takes the lock; hosts 1 and 2 queue behind it (through forwarding to the leader).
  auto a = lock(0, "L", lease[0]);
  REQUIRE(a);
  REQUIRE(a->held);
  auto b = lock(1, "L", lease[1]);
  REQUIRE(b);
  CHECK_FALSE(b->held);
  CHECK(b->position == 1);
  auto c = lock(2, "L", lease[2]);
  REQUIRE(c);
  CHECK(c->position == 2);
  // try_lock never queues: a fourth session is refused while the lock is held.
  auto t = lock(2, "L", grant(2, 60000), coordination::coord_op::try_lock);
  CHECK(t.code() == errc::conflict);
  REQUIRE(fenced_put(0, "reg", "L", a->token));
  std::uint64_t last = a->token;
  std::size_t holder = 0;
  std::uint64_t token = a->token;
  for (std::size_t next : {std::size_t{1}, std::size_t{2}}) {
    auto u = cmd(coordination::coord_op::unlock);
    u.name = "L";
    u.lease = lease[holder];
    u.owner = "o";
    u.number = token;
    REQUIRE(coord(holder, true, coordination::encode(u)));
    auto info = lock_info(next, "L");
    REQUIRE(info);
    REQUIRE(info->held);
    CHECK(info->holder_lease == lease[next]);
    CHECK(info->token > last);
    // The old holder's token is fenced out; the new one writes.
    auto stale = fenced_put(holder, "reg", "L", token);
    CHECK(stale.code() == errc::conflict);
    REQUIRE(fenced_put(next, "reg", "L", info->token));
    last = token = info->token;
    holder = next;
  }
}

TEST_CASE_METHOD(coord_fixture,
                 "coordination group: the leader's countdown expires a lease after its TTL, "
                 "releases its lock to the next waiter and reports its keys once") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  auto short_lease = grant(0, 2000);
  auto long_lease = grant(1, 60000);
  for (auto key : {"k1", "k2"}) {
    auto c = cmd(coordination::coord_op::attach);
    c.lease = short_lease;
    c.name = key;
    REQUIRE(coord(2, true, coordination::encode(c)));
  }
  auto a = lock(0, "L", short_lease);
  REQUIRE(a);
  REQUIRE(a->held);
  auto b = lock(1, "L", long_lease);
  REQUIRE(b);
  REQUIRE_FALSE(b->held);
  const auto granted_at = sched.clock().current_time;
  // Keep-alives of the long lease only; the short one runs out.
  for (int t = 0; t < 60 && ended.empty(); ++t) tick();
  REQUIRE(ended.size() == 1);
  auto lived = std::chrono::duration_cast<std::chrono::milliseconds>(ended[0].at - granted_at);
  tick(10);
  CHECK(lived >= 2000ms - 200ms);  // granted a little before `granted_at` (the lock calls)
  CHECK(lived <= 2000ms + 1000ms);
  REQUIRE(ended.size() == 1);  // the leader only, once
  CHECK(ended[0].lease == short_lease);
  CHECK(ended[0].keys == std::vector<std::string>{"k1", "k2"});
  auto info = lock_info(2, "L");
  REQUIRE(info);
  CHECK(info->holder_lease == long_lease);
  CHECK(info->token > a->token);
  CHECK(fenced_put(0, "reg", "L", a->token).code() == errc::conflict);
  auto e = lease_exists(0, long_lease);
  REQUIRE(e);
  CHECK(*e);
  WARN("lease of 2000 ms ended after " << lived.count() << " ms");
}

TEST_CASE_METHOD(coord_fixture,
                 "coordination group: a leader cut off mid-lease does not extend the lease "
                 "beyond TTL + one election timeout") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  auto leader = coord_leader();
  REQUIRE(leader);
  const std::size_t other = (*leader + 1) % n;
  const auto start = sched.clock().current_time;
  auto lease = grant(other, 4000);
  auto c = cmd(coordination::coord_op::attach);
  c.lease = lease;
  c.name = "session-key";
  REQUIRE(coord(other, true, coordination::encode(c)));
  // Checkpoints replicate the countdown (every second) before the leader goes away.
  tick(25);
  isolate(*leader);
  for (int t = 0; t < 100 && ended.empty(); ++t) tick();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].host != *leader);  // decided by the new leader
  auto lived = std::chrono::duration_cast<std::chrono::milliseconds>(ended[0].at - start);
  CHECK(lived >= 4000ms - 200ms);
  // Election timeout: 10 to 20 ticks of 100 ms.
  CHECK(lived <= 4000ms + 2000ms + 500ms);
  WARN("lease of 4000 ms, leader cut off at 2500 ms: ended after " << lived.count()
                                                                   << " ms");
  isolate(*leader, false);
}

TEST_CASE_METHOD(coord_fixture,
                 "coordination group: a revoked lease's key deletes survive the death of the "
                 "leader that applied its end, and a failed delete is retried") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  auto leader = coord_leader();
  REQUIRE(leader);
  const std::size_t other = (*leader + 1) % n;
  auto lease = grant(other, 60000);
  for (auto key : {"k1", "k2"}) {
    auto c = cmd(coordination::coord_op::attach);
    c.lease = lease;
    c.name = key;
    REQUIRE(coord(other, true, coordination::encode(c)));
  }
  // The leader applies the revoke and starts the deletes, which never finish: it dies.
  hold_deletes = true;
  auto r = cmd(coordination::coord_op::revoke);
  r.lease = lease;
  REQUIRE(coord(other, true, coordination::encode(r)));
  for (int t = 0; t < 10 && ended.empty(); ++t) tick();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].host == *leader);
  tick(5);
  CHECK(ended.size() == 1);  // in flight: not started twice
  caf::anon_send(hosts[*leader], actors::raft_host_stop_cmd{});
  hosts[*leader] = nullptr;
  isolate(*leader);
  settle();
  held.clear();
  // The next leader finds the deletes pending in the replicated state: it runs them. The
  // first run fails, so it runs them again after delete_retry (2 s), and then clears them.
  hold_deletes = false;
  fail_deletes = true;
  for (int t = 0; t < 100 && ended.size() < 2; ++t) tick();
  REQUIRE(ended.size() == 2);
  CHECK(ended[1].host != *leader);
  CHECK(ended[1].lease == lease);
  CHECK(ended[1].keys == std::vector<std::string>{"k1", "k2"});
  fail_deletes = false;
  for (int t = 0; t < 60 && ended.size() < 3; ++t) tick();
  REQUIRE(ended.size() == 3);
  CHECK(ended[2].host == ended[1].host);
  auto retried = std::chrono::duration_cast<std::chrono::milliseconds>(ended[2].at - ended[1].at);
  CHECK(retried >= 2000ms);
  // Done and confirmed (keys_deleted committed): never run again, by this leader or another.
  tick(50);
  CHECK(ended.size() == 3);
  auto gone = lease_exists(ended[2].host, lease);
  REQUIRE(gone);
  CHECK_FALSE(*gone);
}

TEST_CASE_METHOD(coord_fixture,
                 "coordination group: its log is compacted, and a member restarted behind "
                 "the snapshot catches up from it with leases, locks and waiters intact") {
  snapshot_entries = 16;
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  auto leader = coord_leader();
  REQUIRE(leader);
  const std::size_t down = (*leader + 1) % n;
  const auto down_last = group_status(down).at(actors::coord_group_id).last_index;
  caf::anon_send(hosts[down], actors::raft_host_stop_cmd{});
  hosts[down] = nullptr;
  isolate(down);
  settle();
  // Meanwhile: a holder, a waiter, an attached key, and enough entries to compact twice.
  auto a = grant(*leader, 60000);
  auto b = grant(*leader, 60000);
  auto held = lock(*leader, "L", a);
  REQUIRE(held);
  REQUIRE(held->held);
  auto queued = lock(*leader, "L", b);
  REQUIRE(queued);
  REQUIRE_FALSE(queued->held);
  auto at = cmd(coordination::coord_op::attach);
  at.lease = b;
  at.name = "kept";
  REQUIRE(coord(*leader, true, coordination::encode(at)));
  for (int k = 0; k < 60; ++k) {
    auto ka = cmd(coordination::coord_op::keepalive);
    ka.lease = k % 2 ? a : b;
    REQUIRE(coord(*leader, true, coordination::encode(ka)));
  }
  tick(5);
  auto st = group_status(*leader).at(actors::coord_group_id);
  CHECK(st.snapshots >= 2);
  CHECK(st.snapshot_index > down_last);  // the member's next entry is gone from the log
  // The member comes back on its old log, far behind the leader's log base: it gets the
  // snapshot (no entry it lacks is left in the log).
  spawn(down);
  isolate(down, false);
  link_all();
  for (int t = 0; t < 100; ++t) {
    tick();
    auto mine = group_status(down).at(actors::coord_group_id);
    if (mine.applied >= st.applied) break;
  }
  auto mine = group_status(down).at(actors::coord_group_id);
  CHECK(mine.applied >= st.applied);
  CHECK(mine.snapshot_index >= st.snapshot_index);
  // Its restored machine has the lock, its holder and its waiter: the unlock applied there
  // hands the lock to b with the same token as on the others.
  grants.clear();
  auto u = cmd(coordination::coord_op::unlock);
  u.name = "L";
  u.lease = a;
  u.owner = "o";
  u.number = held->token;
  REQUIRE(coord(*leader, true, coordination::encode(u)));
  tick(5);
  std::map<std::size_t, std::uint64_t> token_on;
  for (auto& g : grants)
    if (g.name == "L" && g.lease == b) token_on[g.host] = g.token;
  REQUIRE(token_on.size() == n);
  CHECK(token_on[down] == token_on[*leader]);
  CHECK(token_on[down] > held->token);
  // And its leases: b is there when read through it.
  auto e = lease_exists(down, b);
  REQUIRE(e);
  CHECK(*e);
}
