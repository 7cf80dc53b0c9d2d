// The node's Raft host (actors/raft_host_actor.hpp) under CAF's deterministic test
// coordinator: three hosts of one actor system, each with its replicas of several groups,
// every host-to-host message (batch frames and forwarded requests) through a relay actor
// per direction that the test can cut. The executor is injected as in
// raft_group_actor_test.cpp (queued persist jobs run between mailbox runs).
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

#include "actors/raft_host_actor.hpp"
#include "runtime/membership/strong_placement.hpp"
#include "test/support/caf_testing.hpp"

using namespace warp;
using namespace warp::consensus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct host_relay_state {
  static inline const char* name = "raft_host_relay";
};

struct host_fixture {
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

  host_fixture() {
    sched.clock().current_time += std::chrono::hours(1);
    root = fs::temp_directory_path() / ("warp-rafthost-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(root);
    fs::create_directories(root);
    for (std::size_t i = 0; i < n; ++i)
      placements[i] = std::make_unique<detail::strong_placement>(members, members[i], 3, groups);
  }

  ~host_fixture() {
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
            sys.spawn([this, i, j, to = hosts[j]](caf::stateful_actor<host_relay_state>* self) {
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
      bool ok = seen.size() == groups;
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

  void isolate(std::size_t i, bool on = true) {
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) cut[i][j] = cut[j][i] = on;
  }
};

}  // namespace

TEST_CASE_METHOD(host_fixture,
                 "raft hosts: every group elects a leader over batches, writes and reads work "
                 "from every node") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  // Leaders spread over the nodes (8 groups over 3 nodes; randomized timeouts).
  std::set<node_id> leaders;
  for (auto& [g, st] : group_status(0)) leaders.insert(st.leader);
  CHECK(leaders.size() >= 2);
  // Writes through each host (most are forwarded to another host's leader), one per group.
  for (int k = 0; k < 24; ++k) {
    std::optional<result<std::string>> w;
    put(k % n, "key" + std::to_string(k), "v" + std::to_string(k), w);
    wait(w);
    REQUIRE(w);
    INFO(k << ": " << (w->has_value() ? std::string{"ok"} : w->err().to_string()));
    REQUIRE(*w);
  }
  for (int k = 0; k < 24; ++k) {
    std::optional<result<std::string>> r;
    get((k + 1) % n, "key" + std::to_string(k), r);
    wait(r);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK(**r == "v" + std::to_string(k));
  }
  std::optional<result<std::string>> missing;
  get(2, "never-written", missing);
  wait(missing);
  REQUIRE(missing);
  CHECK(missing->code() == errc::not_found);
  std::uint64_t forwarded = 0;
  for (std::size_t i = 0; i < n; ++i) forwarded += host_status(i).forwarded;
  CHECK(forwarded > 0);
}

TEST_CASE_METHOD(host_fixture,
                 "raft hosts: heartbeats of all groups to one peer leave as one message per tick") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  tick(5);
  std::array<actors::raft_host_status, n> before;
  for (std::size_t i = 0; i < n; ++i) before[i] = host_status(i);
  const int ticks = 20;
  tick(ticks);
  std::uint64_t batches = 0, items = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto now = host_status(i);
    auto b = now.batches_sent - before[i].batches_sent;
    auto it = now.items_sent - before[i].items_sent;
    // Per tick: at most one batch per peer from the tick round, and one per peer with the
    // answers to the batches that peer sent (heartbeat responses): never one per group.
    CHECK(b <= static_cast<std::uint64_t>(ticks) * (n - 1) * 3);
    batches += b;
    items += it;
  }
  // 8 groups x 2 followers heartbeats and their answers per tick, in far fewer messages.
  CHECK(items >= static_cast<std::uint64_t>(ticks) * groups * 2 * 2);
  // Without coalescing every raft message would be a CAF message of its own; here each host
  // message carries the heartbeats (or answers) of all groups the sender leads (follows)
  // towards that peer: 8 groups over 3 leaders, so between 2 and 3 on average.
  CHECK(items >= batches * 2);
  WARN("idle cluster, " << ticks << " ticks: " << batches << " host messages carried " << items
                        << " raft messages");
}

TEST_CASE_METHOD(host_fixture,
                 "raft hosts: a node whose links drop loses its leaderships, the others serve, "
                 "and it catches up when the links return") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  isolate(0);
  // Node 0's groups elect leaders among nodes 1 and 2 (node 0's stale view is skipped).
  REQUIRE(all_led(300, 0));
  for (int k = 0; k < 8; ++k) {
    std::optional<result<std::string>> w;
    put(1 + k % 2, "p" + std::to_string(k), "x" + std::to_string(k), w);
    wait(w);
    REQUIRE(w);
    INFO(k << ": " << (w->has_value() ? std::string{"ok"} : w->err().to_string()));
    REQUIRE(*w);
  }
  // A request to the isolated node cannot be answered: it fails in bounded time.
  std::optional<result<std::string>> stuck;
  put(0, "p-isolated", "y", stuck);
  wait(stuck, 80);
  REQUIRE(stuck);
  CHECK_FALSE(*stuck);
  CHECK((stuck->code() == errc::timeout || stuck->code() == errc::unknown_outcome ||
         stuck->code() == errc::unreachable));
  CHECK(dropped > 0);
  isolate(0, false);
  REQUIRE(all_led(300));
  for (int k = 0; k < 8; ++k) {
    std::optional<result<std::string>> r;
    get(0, "p" + std::to_string(k), r);
    wait(r);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK(**r == "x" + std::to_string(k));
  }
}

TEST_CASE_METHOD(host_fixture, "raft hosts: malformed batch frames are counted and dropped") {
  for (std::size_t i = 0; i < n; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  auto before = host_status(1).malformed;
  caf::anon_send(hosts[1], actors::raft_batch_atom::value, std::string{"\x01garbage", 8});
  caf::anon_send(hosts[1], actors::raft_batch_atom::value,
                 std::string{"\x01\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff", 13});
  caf::anon_send(hosts[1], actors::raft_batch_atom::value, std::string{});
  // A valid frame for a group this node does not host, and one claiming to be from itself.
  raft_batch unknown{index_of(0) + 1, {{999, "x"}}};
  caf::anon_send(hosts[1], actors::raft_batch_atom::value, *encode(unknown));
  raft_batch self_sent{index_of(1) + 1, {{0, "x"}}};
  caf::anon_send(hosts[1], actors::raft_batch_atom::value, *encode(self_sent));
  settle();
  CHECK(host_status(1).malformed == before + 5);
  // Still serving.
  std::optional<result<std::string>> w;
  put(1, "after-junk", "ok", w);
  wait(w);
  REQUIRE(w);
  CHECK(*w);
}
