// The Raft core step by step, on a lossless in-test network that delivers everything until
// quiet: the behaviours the simulation only shows statistically, pinned down one by one.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "runtime/consensus/raft.hpp"

using namespace warp;
using namespace warp::consensus;

namespace {

struct net {
  std::map<node_id, raft_core> cores;
  std::map<node_id, std::vector<entry>> applied;
  std::map<node_id, std::vector<read_state>> reads;
  std::set<node_id> cut;  // nodes whose messages are dropped both ways

  explicit net(int n, bool pre_vote = true) {
    std::vector<node_id> ids;
    for (int i = 1; i <= n; ++i) ids.push_back(static_cast<node_id>(i));
    for (auto id : ids) {
      raft_config c;
      c.id = id;
      c.voters = ids;
      c.seed = id;
      c.pre_vote = pre_vote;
      cores.emplace(id, raft_core{c, {}});
    }
  }

  void settle() {
    std::vector<message> q;
    auto drain = [&](raft_core& c) {
      while (c.has_ready()) {
        auto rd = c.take_ready();
        for (auto& m : rd.messages) q.push_back(m);
        for (auto& e : rd.committed) applied[c.id()].push_back(e);
        for (auto& r : rd.reads) reads[c.id()].push_back(r);
        c.advance(rd);
      }
    };
    for (auto& [id, c] : cores) drain(c);
    while (!q.empty()) {
      auto m = q.front();
      q.erase(q.begin());
      if (cut.count(m.from) || cut.count(m.to)) continue;
      auto& c = cores.at(m.to);
      c.step(m);
      drain(c);
    }
  }

  void tick(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, c] : cores) c.tick();
      settle();
    }
  }

  raft_core* leader() {
    for (auto& [id, c] : cores)
      if (c.current_role() == role::leader && !cut.count(id)) return &c;
    return nullptr;
  }
};

}  // namespace

TEST_CASE("raft core: a single node leads itself and commits only what it persisted") {
  raft_config c;
  c.id = 1;
  c.voters = {1};
  raft_core r{c, {}};
  for (int i = 0; i < 20 && r.current_role() != role::leader; ++i) r.tick();
  REQUIRE(r.current_role() == role::leader);
  while (r.has_ready()) {
    auto rd = r.take_ready();
    r.advance(rd);
  }
  auto idx = r.propose("x");
  REQUIRE(idx);
  auto before = r.take_ready();
  REQUIRE(before.entries.size() == 1);
  CHECK(before.committed.empty());  // not durable yet: not committed, not applied
  CHECK(r.commit_index() < *idx);
  r.advance(before);
  auto after = r.take_ready();
  REQUIRE(after.committed.size() == 1);
  CHECK(after.committed[0].data == "x");
  CHECK(after.hard->commit == *idx);
}

TEST_CASE("raft core: three nodes elect one leader and replicate in order") {
  net n{3};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  for (int i = 0; i < 50; ++i) REQUIRE(l->propose("e" + std::to_string(i)));
  n.settle();
  n.tick(3);
  for (auto& [id, c] : n.cores) {
    CHECK(c.commit_index() == l->last_index());
    std::vector<std::string> datas;
    for (auto& e : n.applied[id])
      if (!e.data.empty()) datas.push_back(e.data);
    REQUIRE(datas.size() == 50);
    CHECK(datas.front() == "e0");
    CHECK(datas.back() == "e49");
  }
}

TEST_CASE("raft core: pre-vote keeps a partitioned node from inflating terms and disrupting") {
  net n{3};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  const term_t t = l->term();
  node_id lonely = l->id() == 3 ? 2 : 3;
  n.cut.insert(lonely);
  n.tick(200);
  CHECK(n.cores.at(lonely).term() == t);  // campaigned only as pre-candidate
  n.cut.clear();
  n.tick(30);
  REQUIRE(n.leader());
  CHECK(n.leader()->term() == t);  // the leader was never deposed
}

TEST_CASE("raft core: without pre-vote the same partition does bump terms (the test can fail)") {
  net n{3, false};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  node_id lonely = l->id() == 3 ? 2 : 3;
  n.cut.insert(lonely);
  n.tick(200);
  CHECK(n.cores.at(lonely).term() > l->term());
}

TEST_CASE("raft core: check quorum makes an isolated leader step down") {
  net n{3};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  n.cut.insert(l->id());
  n.tick(25);  // > two election timeouts of 10 ticks
  CHECK(l->current_role() == role::follower);
  CHECK(l->read_index(1).code() == errc::unreachable);
  n.cut.clear();
  n.tick(40);
  CHECK(n.leader());
}

TEST_CASE("raft core: ReadIndex answers with the commit index once a majority confirms") {
  net n{3};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  REQUIRE(l->propose("w"));
  n.settle();
  REQUIRE(l->read_index(7));
  n.settle();
  REQUIRE(n.reads[l->id()].size() == 1);
  CHECK(n.reads[l->id()][0].context == 7);
  CHECK(n.reads[l->id()][0].index == l->commit_index());
  // A follower is no place for a read.
  for (auto& [id, c] : n.cores)
    if (&c != l) CHECK(c.read_index(8).code() == errc::unreachable);
  // Cut off from a majority, the leader cannot confirm a read.
  n.cut.insert(l->id() == 1 ? 2 : 1);
  n.cut.insert(l->id() == 3 ? 2 : 3);
  n.reads.clear();
  REQUIRE(l->read_index(9));
  n.settle();
  CHECK(n.reads[l->id()].empty());
}

TEST_CASE("raft core: one membership change at a time, effective when appended") {
  net n{3};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  n.cut.insert(l->id() == 1 ? 2 : 1);
  n.cut.insert(l->id() == 3 ? 2 : 3);  // no majority: the change cannot commit
  auto c1 = l->propose_conf_change(conf_change_type::add_voter, 4);
  REQUIRE(c1);
  CHECK(l->voters().size() == 4);
  CHECK(l->propose_conf_change(conf_change_type::remove_voter, 2).code() == errc::conflict);
  CHECK(l->propose_conf_change(conf_change_type::add_voter, 4).code() == errc::conflict);
}

TEST_CASE("raft core: a leader that removes itself steps down once the change commits") {
  net n{3};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  const node_id old = l->id();
  REQUIRE(l->propose_conf_change(conf_change_type::remove_voter, old));
  n.settle();
  n.tick(2);
  CHECK(l->current_role() == role::follower);
  n.cut.insert(old);  // shut it down, as an operator would
  n.tick(60);
  auto* nl = n.leader();
  REQUIRE(nl);
  CHECK(nl->id() != old);
  CHECK(nl->voters().size() == 2);
}

TEST_CASE("raft core: a restarted node recovers term, vote and log from persisted state") {
  raft_config c;
  c.id = 2;
  c.voters = {1, 2, 3};
  persisted_state st;
  st.hard = hard_state{5, 1, 2};
  st.entries = {entry{4, 1, entry_type::normal, "a"}, entry{5, 2, entry_type::normal, "b"},
                entry{5, 4, entry_type::normal, "gap"}};  // a gap: cut there
  raft_core r{c, st};
  CHECK(r.term() == 5);
  CHECK(r.last_index() == 2);
  CHECK(r.commit_index() == 2);
  // Already voted for 1 in term 5: a vote for 3 in term 5 is refused.
  message v;
  v.type = msg_type::vote;
  v.from = 3;
  v.to = 2;
  v.term = 5;
  v.log_term = 5;
  v.index = 9;
  r.step(v);
  auto rd = r.take_ready();
  REQUIRE(rd.messages.size() == 1);
  CHECK(rd.messages[0].reject);
}

TEST_CASE("raft core: compaction keeps what is above the snapshot and lagging peers get it") {
  net n{3};
  n.tick(40);
  auto* l = n.leader();
  REQUIRE(l);
  node_id lag = l->id() == 3 ? 2 : 3;
  n.cut.insert(lag);
  for (int i = 0; i < 30; ++i) REQUIRE(l->propose("e" + std::to_string(i)));
  n.settle();
  n.tick(2);
  const index_t at = l->applied_index() - 5;
  REQUIRE(l->compact(at, "state@" + std::to_string(at)));
  CHECK(l->first_index() == at + 1);
  CHECK(l->entry_at(at) == nullptr);
  CHECK(l->entry_at(at + 1) != nullptr);
  CHECK(l->compact(at, "again").code() == errc::invalid_argument);
  n.cut.clear();
  n.tick(10);
  auto& f = n.cores.at(lag);
  CHECK(f.last_snapshot().index == at);
  CHECK(f.last_snapshot().data == "state@" + std::to_string(at));
  CHECK(f.commit_index() == l->commit_index());
}

TEST_CASE("raft core: voter sets encode sorted and decode only what is well formed") {
  auto s = encode_voters({3, 1, 2, 2});
  auto d = decode_voters(s, 8);
  REQUIRE(d);
  CHECK(*d == std::vector<node_id>{1, 2, 3});
  CHECK(!decode_voters(s.substr(1), 8));
  CHECK(!decode_voters(s, 2));
  std::string rev = s.substr(8, 8) + s.substr(0, 8);
  CHECK(!decode_voters(rev, 8));
}
