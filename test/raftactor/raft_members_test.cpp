// Membership changes of the Raft groups while they serve (docs/strong.md, "Membership"):
// Raft hosts (actors/raft_host_actor.hpp) of one actor system under CAF's deterministic
// test coordinator, as in raft_host_test.cpp, but with a varying set of hosts: a fourth host
// joins with a fresh member id and is added to every group, members (and leaders) are
// removed, and a member whose data dir was wiped comes back with a new id and catches up
// from a snapshot. Host-to-host traffic goes through relay actors that look up the current
// host of a slot, so a restarted host is reached through the same relays.
#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
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

struct members_relay_state {
  static inline const char* name = "raft_members_relay";
};

struct members_fixture {
  static constexpr std::size_t max_hosts = 5;
  static constexpr std::size_t groups = 4;
  caf::actor_system_config cfg;
  caf::actor_system sys{test::testing_config(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  fs::path root;
  std::deque<std::function<void()>> jobs;
  /// The initial (static) members; slots 3 and 4 are hosts that join later.
  std::vector<std::string> members{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};
  std::vector<std::unique_ptr<detail::strong_placement>> placements;
  std::vector<caf::actor> hosts = std::vector<caf::actor>(max_hosts);
  std::vector<node_id> ids = std::vector<node_id>(max_hosts);
  std::map<std::pair<std::size_t, std::size_t>, caf::actor> relays;
  bool tearing_down = false;
  std::uint64_t snapshot_entries = 8;

  members_fixture() {
    sched.clock().current_time += std::chrono::hours(1);
    root = fs::temp_directory_path() / ("warp-raftmembers-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(root);
    fs::create_directories(root);
    for (std::size_t i = 0; i < max_hosts; ++i)
      placements.push_back(std::make_unique<detail::strong_placement>(
          members, "127.0.0.1:" + std::to_string(7001 + i), 3, groups));
  }

  ~members_fixture() {
    tearing_down = true;
    for (auto& h : hosts)
      if (h) caf::anon_send(h, actors::raft_host_stop_cmd{});
    for (auto& [k, r] : relays) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    sched.run();
    jobs.clear();
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  fs::path dir(std::size_t i) const { return root / ("n" + std::to_string(i)); }

  void spawn(std::size_t i, bool join = false) {
    actors::raft_host_setup s;
    s.placement = placements[i].get();
    s.dir = dir(i).string();
    s.join = join;
    s.self_address = "127.0.0.1:" + std::to_string(7001 + i);
    s.executor = [this](std::function<void()> job) {
      jobs.push_back(std::move(job));
      return true;
    };
    s.tick_interval = 100ms;
    s.election_tick = 10;
    s.request_timeout_ticks = 40;
    s.snapshot_entries = snapshot_entries;
    s.incarnation = 1000 + i + 10 * (++spawns);
    s.dial = false;
    auto h = actors::spawn_raft_host_actor(sys, std::move(s));
    REQUIRE(h);
    hosts[i] = *h;
    settle();
    ids[i] = host_status(i).id;
  }
  int spawns = 0;

  void stop(std::size_t i) {
    caf::anon_send(hosts[i], actors::raft_host_stop_cmd{});
    hosts[i] = nullptr;
    settle();
  }

  caf::actor relay(std::size_t i, std::size_t j) {
    auto& r = relays[{i, j}];
    if (r) return r;
    r = sys.spawn([this, j](caf::stateful_actor<members_relay_state>* self) {
      return caf::behavior{
          [this, j, self](actors::raft_batch_atom a, std::string& bytes) {
            if (hosts[j]) self->send(hosts[j], a, std::move(bytes));
          },
          [this, j, self](actors::raft_fwd_atom a, std::string& bytes) {
            auto rp = self->make_response_promise();
            if (!hosts[j]) return rp;  // never answered: the sender's request times out
            self->request(hosts[j], caf::infinite, a, std::move(bytes))
                .then([rp](std::string& ans) mutable { rp.deliver(std::move(ans)); },
                      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
            return rp;
          },
      };
    });
    return r;
  }

  /// Every live host learns every other live host's id (what hellos do over the network).
  void link_all() {
    for (std::size_t i = 0; i < max_hosts; ++i)
      for (std::size_t j = 0; j < max_hosts; ++j)
        if (i != j && hosts[i] && hosts[j])
          caf::anon_send(hosts[i], actors::raft_host_link_cmd{ids[j], relay(i, j)});
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

  /// Ticks until every group has a leader (among live hosts, not `removed`) that committed
  /// in its term, and the live hosts that are not `removed` agree on it.
  bool all_led(int max_ticks = 200, std::set<node_id> removed = {}) {
    for (int t = 0; t < max_ticks; ++t) {
      tick();
      std::map<std::uint32_t, std::set<node_id>> seen;
      std::map<std::uint32_t, bool> led;
      for (std::size_t i = 0; i < max_hosts; ++i) {
        if (!hosts[i] || removed.count(ids[i])) continue;
        for (auto& [g, st] : group_status(i)) {
          seen[g].insert(st.leader);
          if (st.role == role::leader && st.commit > 0) led[g] = true;
        }
      }
      bool ok = seen.size() == groups;
      for (auto& [g, leaders] : seen)
        ok = ok && leaders.size() == 1 && *leaders.begin() != 0 &&
             !removed.count(*leaders.begin()) && led[g];
      if (ok) return true;
    }
    return false;
  }

  void put(std::size_t i, std::string key, std::string value,
           std::optional<result<std::string>>& out) {
    caf::anon_send(hosts[i],
                   actors::raft_request_cmd{
                       actors::raft_request_kind::propose,
                       kv_command{0, 0, kv_op::put, std::move(key), std::move(value), {}, false},
                       capture<std::string>(out)});
  }
  void get(std::size_t i, std::string key, std::optional<result<std::string>>& out) {
    caf::anon_send(hosts[i], actors::raft_request_cmd{
                                 actors::raft_request_kind::read,
                                 kv_command{0, 0, kv_op::put, std::move(key), {}, {}, false},
                                 capture<std::string>(out)});
  }
  void send_members(std::size_t i, actors::raft_members_op op, std::string target,
                    std::optional<result<std::string>>& out) {
    caf::anon_send(hosts[i],
                   actors::raft_members_cmd{op, std::move(target), capture<std::string>(out)});
  }

  void wait(std::optional<result<std::string>>& out, int max_ticks = 100) {
    settle();
    for (int t = 0; t < max_ticks && !out; ++t) tick();
  }

  /// Writes `count` keys prefix0.. through the live hosts in turn; all must succeed.
  void write_keys(const std::string& prefix, int count) {
    std::size_t i = 0;
    for (int k = 0; k < count; ++k) {
      while (!hosts[i % max_hosts]) ++i;
      std::optional<result<std::string>> w;
      put(i++ % max_hosts, prefix + std::to_string(k), "v" + std::to_string(k), w);
      wait(w);
      REQUIRE(w);
      INFO(prefix << k << ": " << (w->has_value() ? std::string{"ok"} : w->err().to_string()));
      REQUIRE(*w);
    }
  }

  void check_keys(std::size_t i, const std::string& prefix, int count) {
    for (int k = 0; k < count; ++k) {
      std::optional<result<std::string>> r;
      get(i, prefix + std::to_string(k), r);
      wait(r);
      REQUIRE(r);
      INFO("host " << i << " " << prefix << k << ": "
                   << (r->has_value() ? **r : r->err().to_string()));
      REQUIRE(*r);
      CHECK(**r == "v" + std::to_string(k));
    }
  }

  std::string run_members(std::size_t i, actors::raft_members_op op, const std::string& target) {
    std::optional<result<std::string>> out;
    send_members(i, op, target, out);
    wait(out, 400);
    REQUIRE(out);
    INFO((out->has_value() ? **out : out->err().to_string()));
    REQUIRE(*out);
    return **out;
  }
};

}  // namespace

TEST_CASE_METHOD(members_fixture,
                 "raft members: a host joining with --strong-join is added to every group under "
                 "load and serves every committed key") {
  for (std::size_t i = 0; i < 3; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  write_keys("before", 80);  // every group past snapshot_entries: the logs are compacted
  spawn(3, true);
  CHECK(ids[3] >= (node_id{1} << 32));
  CHECK(host_status(3).groups.empty());  // votes nowhere until added
  link_all();
  // Writes in flight while the configuration changes.
  std::vector<std::optional<result<std::string>>> during(12);
  for (std::size_t k = 0; k < during.size(); ++k)
    put(k % 3, "during" + std::to_string(k), "v" + std::to_string(k), during[k]);
  std::optional<result<std::string>> added;
  send_members(0, actors::raft_members_op::add, std::to_string(ids[3]), added);
  wait(added, 400);
  REQUIRE(added);
  INFO((added->has_value() ? **added : added->err().to_string()));
  REQUIRE(*added);
  CHECK(added->value().find("added") != std::string::npos);
  for (auto& w : during) {
    wait(w);
    REQUIRE(w);
    INFO((w->has_value() ? std::string{"ok"} : w->err().to_string()));
    REQUIRE(*w);
  }
  write_keys("after", 20);
  // The new host runs every group as a voter, caught up (from a snapshot: the leaders'
  // logs no longer start at 1).
  tick(20);
  auto st = group_status(3);
  REQUIRE(st.size() == groups);
  CHECK(host_status(3).groups_created == groups);
  for (auto& [g, s] : st) {
    INFO("group " << g);
    CHECK(s.voters == 4);
    CHECK(s.snapshot_index > 0);
    CHECK(s.applied > 0);
  }
  check_keys(3, "before", 80);
  check_keys(3, "after", 20);
  for (std::size_t k = 0; k < during.size(); ++k) {
    std::optional<result<std::string>> r;
    get(3, "during" + std::to_string(k), r);
    wait(r);
    REQUIRE(r);
    REQUIRE(*r);
  }
  // Adding it again changes nothing (idempotent).
  auto again = run_members(1, actors::raft_members_op::add, std::to_string(ids[3]));
  CHECK(again.find("already a voter") != std::string::npos);
  CHECK(again.find("added") == std::string::npos);
  // The list names it as a voter of every group.
  auto list = run_members(0, actors::raft_members_op::list, "");
  CHECK(list.find(std::to_string(ids[3]) + " ") != std::string::npos);
  CHECK(list.find("voter_of=" + std::to_string(groups) + "/" + std::to_string(groups)) !=
        std::string::npos);
}

TEST_CASE_METHOD(members_fixture,
                 "raft members: removing a follower and then the leader keeps every group "
                 "serving with no committed key lost") {
  for (std::size_t i = 0; i < 3; ++i) spawn(i);
  spawn(3, true);
  link_all();
  REQUIRE(all_led());
  run_members(0, actors::raft_members_op::add, std::to_string(ids[3]));
  write_keys("a", 20);
  // A follower of group 0.
  auto g0 = group_status(0).at(0);
  std::size_t follower = 0;
  while (ids[follower] == g0.leader) ++follower;
  auto rm = run_members(3, actors::raft_members_op::remove, std::to_string(ids[follower]));
  CHECK(rm.find("removed") != std::string::npos);
  std::set<node_id> removed{ids[follower]};
  REQUIRE(all_led(200, removed));
  write_keys("b", 20);
  // The leader of group 0 now (one of the three left): it commits its own removal and
  // steps down; the others elect a new leader.
  std::size_t asker = 0;
  while (removed.count(ids[asker])) ++asker;
  auto leader = group_status(asker).at(0).leader;
  REQUIRE(leader != 0);
  rm = run_members(asker, actors::raft_members_op::remove, std::to_string(leader));
  CHECK(rm.find("removed") != std::string::npos);
  removed.insert(leader);
  REQUIRE(all_led(300, removed));
  std::size_t left = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (removed.count(ids[i])) continue;
    ++left;
    for (auto& [g, s] : group_status(i)) {
      INFO("host " << i << " group " << g);
      CHECK(s.voters == 2);
      CHECK(!removed.count(s.leader));
    }
  }
  CHECK(left == 2);
  write_keys("c", 10);
  for (std::size_t i = 0; i < 4; ++i) {
    if (removed.count(ids[i])) continue;
    check_keys(i, "a", 20);
    check_keys(i, "b", 20);
    check_keys(i, "c", 10);
  }
  // Removing it again is a no-op (asked of a member that is still a voter).
  asker = 0;
  while (removed.count(ids[asker])) ++asker;
  auto again = run_members(asker, actors::raft_members_op::remove, std::to_string(leader));
  CHECK(again.find("not a voter") != std::string::npos);
}

TEST_CASE_METHOD(members_fixture,
                 "raft members: a member whose data dir was wiped rejoins with a new id and "
                 "catches up from a snapshot") {
  for (std::size_t i = 0; i < 3; ++i) spawn(i);
  link_all();
  REQUIRE(all_led());
  write_keys("k", 80);  // every group past snapshot_entries
  auto old_id = ids[2];
  stop(2);
  fs::remove_all(dir(2));
  // Without --strong-join it would come back as the initial member with an empty log; with
  // it, it takes a fresh id and votes nowhere.
  spawn(2, true);
  CHECK(ids[2] != old_id);
  CHECK(ids[2] >= (node_id{1} << 32));
  CHECK(host_status(2).groups.empty());
  link_all();
  // The two left still serve (a majority of 3), once they replaced the old id's leaderships.
  REQUIRE(all_led(300, {old_id, ids[2]}));
  write_keys("m", 10);
  run_members(0, actors::raft_members_op::remove, std::to_string(old_id));
  run_members(1, actors::raft_members_op::add, std::to_string(ids[2]));
  REQUIRE(all_led(200, {old_id}));
  tick(20);
  auto st = group_status(2);
  REQUIRE(st.size() == groups);
  for (auto& [g, s] : st) {
    INFO("group " << g);
    CHECK(s.voters == 3);
    CHECK(s.snapshot_index > 0);  // restored from the leader's snapshot
  }
  check_keys(2, "k", 80);
  check_keys(2, "m", 10);
  // The rejoined member counts in the quorum: with one original down, writes still commit.
  stop(0);
  REQUIRE(all_led(300, {old_id}));
  write_keys("n", 10);
  check_keys(2, "n", 10);
  // And it restarts with the id it was given (the member file), as a voter.
  auto new_id = ids[2];
  stop(2);
  spawn(2, true);
  CHECK(ids[2] == new_id);
  link_all();
  REQUIRE(all_led(300, {old_id}));
  check_keys(2, "n", 10);
}

TEST_CASE("raft members: member ids come from the member file, fresh ones only with join") {
  auto root = fs::temp_directory_path() / ("warp-memberid-" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::vector<std::string> members{"h:1", "h:2", "h:3"};
  detail::strong_placement initial{members, "h:2", 3, 4};
  detail::strong_placement outsider{members, "h:9", 3, 4};
  auto a = actors::resolve_member_id((root / "a").string(), initial, false);
  REQUIRE(a);
  CHECK(*a == 2);
  CHECK(*actors::resolve_member_id((root / "a").string(), initial, true) == 2);  // file wins
  auto b = actors::resolve_member_id((root / "b").string(), outsider, true);
  REQUIRE(b);
  CHECK(*b >= (node_id{1} << 32));
  CHECK(*actors::resolve_member_id((root / "b").string(), outsider, false) == *b);
  auto c = actors::resolve_member_id((root / "c").string(), outsider, false);
  REQUIRE_FALSE(c);
  CHECK(c.err().message().find("--strong-join") != std::string::npos);
  // Group logs without a member file: never a fresh id over them.
  fs::create_directories(root / "d" / "0");
  CHECK_FALSE(actors::resolve_member_id((root / "d").string(), initial, true));
  // A corrupt member file is an error, not a guess.
  fs::create_directories(root / "e");
  { std::ofstream(root / "e" / "member") << "garbage\n"; }
  CHECK_FALSE(actors::resolve_member_id((root / "e").string(), initial, false));
  fs::remove_all(root);
}

TEST_CASE("raft members: hello frames round-trip and bad ones are refused") {
  std::map<node_id, std::string> book{{1, "h:1"}, {5000000000ULL, "h:4"}};
  auto bytes = actors::encode_hello(2, "h:2", book);
  auto h = actors::decode_hello(bytes);
  REQUIRE(h);
  REQUIRE(h->size() == 3);
  CHECK(h->front() == std::pair<node_id, std::string>{2, "h:2"});
  CHECK(std::find(h->begin(), h->end(), std::pair<node_id, std::string>{5000000000ULL, "h:4"}) !=
        h->end());
  CHECK_FALSE(actors::decode_hello(""));
  CHECK_FALSE(actors::decode_hello("WRH1\n"));
  CHECK_FALSE(actors::decode_hello("WRH1\n0 h:1\n"));
  CHECK_FALSE(actors::decode_hello("WRH1\nx h:1\n"));
  CHECK_FALSE(actors::decode_hello("WRH1\n1 h:1"));
  CHECK_FALSE(actors::decode_hello("WRH2\n1 h:1\n"));
  CHECK_FALSE(actors::decode_hello(std::string(actors::max_hello_bytes + 1, 'x')));
  CHECK_FALSE(actors::decode_hello("WRH1\n1 " + std::string(300, 'a') + "\n"));
}
