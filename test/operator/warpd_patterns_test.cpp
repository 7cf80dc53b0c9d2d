// Key patterns at run time (docs/keyspaces.md), against real
// warpd clusters driven by the real warpctl: a pattern set on one node applies on every
// node (a mode change is observable: hydrated values reach the other nodes), reaches a node
// that joins later, survives a restart of every node, and goes away with rm (the L1 entries
// it governed with it); a bad spec is refused with a clear error; a rate limit set at run
// time takes effect; /admin/patterns does the same over HTTP.
#include <catch2/catch.hpp>

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/support/view.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using namespace warp::test;

namespace {

// The spec of `glob` in `d`'s table ("" when absent or unreachable).
std::string spec_on(const warpd_process& d, const std::string& glob) {
  auto r = d.ctl({"--output", "json", "patterns", "list"});
  if (r.exit_code != 0) return {};
  auto doc = json::parse(r.out, nullptr, false);
  if (doc.is_discarded()) return {};
  for (auto& p : doc["patterns"])
    if (p.value("glob", "") == glob) return p.value("spec", "");
  return {};
}

std::uint64_t version_on(const warpd_process& d) {
  auto r = d.ctl({"--output", "json", "patterns", "list"});
  if (r.exit_code != 0) return 0;
  auto doc = json::parse(r.out, nullptr, false);
  if (doc.is_discarded()) return 0;
  return doc["version"].value("counter", std::uint64_t{0});
}

std::size_t up_count(const warpd_process& d) {
  auto r = d.ctl({"--json", "members"});
  if (r.exit_code != 0) return 0;
  return members_in_state(parse_view(r.out), "up");
}

struct cluster {
  temp_dir dir{"warpd-patterns"};
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<warpd_process>> nodes;

  explicit cluster(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) ports.push_back(free_port());
  }
  void start(std::size_t i) {
    if (nodes.size() <= i) nodes.resize(i + 1);
    nodes[i] = std::make_unique<warpd_process>(
        cluster_member_args(ports, i, dir.str(), {"--failure-timeout", "3s"}), false);
  }
  void start_all() {
    for (std::size_t i = 0; i < ports.size(); ++i) start(i);
    for (auto& n : nodes) {
      INFO(n->log());
      REQUIRE(n->wait_ready());
    }
    for (auto& n : nodes) REQUIRE(eventually([&] { return up_count(*n) == ports.size(); }));
  }
  void stop_all() {
    for (auto& n : nodes) CHECK(n->process().stop(SIGTERM, 20s) == 0);
    nodes.clear();
  }
  warpd_process& operator[](std::size_t i) { return *nodes[i]; }
};

}  // namespace

TEST_CASE(
    "warpctl patterns: set on one node applies on every node, reaches a late joiner, "
    "survives a restart of all, and rm takes it away") {
  cluster c{3};
  c.start_all();
  auto& a = c[0];
  auto& b = c[1];
  auto& d = c[2];

  // Before: ev:* is strong_local (the default) and storage is per node (memory), so a
  // value written on b is not seen on d.
  REQUIRE(b.ctl({"set", "ev:0", "v0"}).exit_code == 0);
  CHECK(d.ctl({"get", "ev:0"}).exit_code == 1);

  auto t0 = std::chrono::steady_clock::now();
  auto set = a.ctl({"patterns", "set", "ev:*", "eventual_distributed+hydrate:10m"});
  INFO(set.err);
  REQUIRE(set.exit_code == 0);
  CHECK(set.out.find("ev:*") != std::string::npos);  // the table, as a table
  for (auto* n : {&a, &b, &d})
    CHECK(
        eventually([&] { return spec_on(*n, "ev:*") == "ev:*=eventual_distributed+hydrate:10m"; }));
  // For the record (docs/keyspaces.md): set, then seen on all three through warpctl.
  std::printf("pattern set -> listed on 3 nodes: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count()));
  CHECK(version_on(d) == 1);

  // Observable: the mode changed everywhere: b's write reaches d's L1 (hydration).
  REQUIRE(b.ctl({"set", "ev:1", "v1"}).exit_code == 0);
  CHECK(eventually([&] { return d.ctl({"get", "ev:1"}).out == "v1\n"; }));

  // A node that joins later gets the current table from its peers.
  {
    std::vector<std::uint16_t> ports = c.ports;
    ports.push_back(free_port());
    temp_dir late_dir{"warpd-patterns-late"};
    warpd_process late{cluster_member_args(ports, 3, late_dir.str(), {"--failure-timeout", "3s"}),
                       false};
    INFO(late.log());
    REQUIRE(late.wait_ready());
    CHECK(eventually(
        [&] { return spec_on(late, "ev:*") == "ev:*=eventual_distributed+hydrate:10m"; }));
    CHECK(late.process().stop(SIGTERM, 20s) == 0);
  }

  // Every node persisted the table: a restart of all keeps it.
  c.stop_all();
  {
    std::ifstream in{c.dir.str() + "/n2/patterns.json"};
    std::stringstream text;
    text << in.rdbuf();
    auto doc = json::parse(text.str(), nullptr, false);
    REQUIRE_FALSE(doc.is_discarded());
    CHECK(doc["version"]["counter"] == 1);
    CHECK(doc["patterns"][0]["spec"] == "ev:*=eventual_distributed+hydrate:10m");
  }
  c.start_all();
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(spec_on(c[i], "ev:*") == "ev:*=eventual_distributed+hydrate:10m");
    CHECK(version_on(c[i]) == 1);
  }
  REQUIRE(c[1].ctl({"set", "ev:2", "v2"}).exit_code == 0);
  CHECK(eventually([&] { return c[2].ctl({"get", "ev:2"}).out == "v2\n"; }));

  // rm on another node: gone everywhere, and the L1 copies the old mode put on c[2] with
  // it (its own storage never had ev:2).
  auto rm = c[2].ctl({"patterns", "rm", "ev:*"});
  INFO(rm.err);
  REQUIRE(rm.exit_code == 0);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(eventually([&] { return spec_on(c[i], "ev:*").empty() && version_on(c[i]) == 2; }));
  }
  CHECK(eventually([&] { return c[0].ctl({"get", "ev:2"}).exit_code == 1; }));
  CHECK(c[2].ctl({"get", "ev:2"}).exit_code == 1);
  CHECK(c[1].ctl({"get", "ev:2"}).out == "v2\n");  // the writer's storage keeps it
  REQUIRE(c[1].ctl({"set", "ev:3", "v3"}).exit_code == 0);
  std::this_thread::sleep_for(500ms);  // what propagation there would be has happened
  CHECK(c[2].ctl({"get", "ev:3"}).exit_code == 1);
  // Removing what is not there is an error that says so.
  auto again = c[0].ctl({"patterns", "rm", "ev:*"});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("no pattern 'ev:*'") != std::string::npos);
}

TEST_CASE(
    "warpctl patterns: two globs set at once on two nodes are both listed on all three, "
    "and kept across a restart") {
  cluster c{3};
  c.start_all();
  // Several rounds, each two sets started together on two nodes: each node gives its
  // change the next counter of its own table, so the two usually carry the same counter
  // (a whole-table version would keep only one of them).
  for (int round = 0; round < 3; ++round) {
    auto g1 = "c" + std::to_string(round) + "a:*";
    auto g2 = "c" + std::to_string(round) + "b:*";
    auto s1 = g1 + "=strong_local:1m";
    auto s2 = g2 + "=strong_local:2m";
    auto f1 = std::async(std::launch::async, [&] {
      return c[0].ctl({"patterns", "set", g1, "strong_local:1m"});
    });
    auto f2 = std::async(std::launch::async, [&] {
      return c[1].ctl({"patterns", "set", g2, "strong_local:2m"});
    });
    auto r1 = f1.get();
    auto r2 = f2.get();
    INFO(r1.err << r2.err);
    REQUIRE(r1.exit_code == 0);
    REQUIRE(r2.exit_code == 0);
    for (std::size_t i = 0; i < 3; ++i) {
      INFO("node " << i << " round " << round);
      CHECK(eventually([&] { return spec_on(c[i], g1) == s1 && spec_on(c[i], g2) == s2; }));
    }
  }
  // The same glob changed on two nodes at once: every node ends with the same one.
  auto f1 = std::async(std::launch::async, [&] {
    return c[0].ctl({"patterns", "set", "same:*", "strong_local:1m"});
  });
  auto f2 = std::async(std::launch::async, [&] {
    return c[2].ctl({"patterns", "set", "same:*", "strong_local:2m"});
  });
  REQUIRE(f1.get().exit_code == 0);
  REQUIRE(f2.get().exit_code == 0);
  CHECK(eventually([&] {
    auto s0 = spec_on(c[0], "same:*");
    return !s0.empty() && spec_on(c[1], "same:*") == s0 && spec_on(c[2], "same:*") == s0;
  }));
  auto winner = spec_on(c[0], "same:*");

  c.stop_all();
  c.start_all();
  for (std::size_t i = 0; i < 3; ++i) {
    for (int round = 0; round < 3; ++round) {
      auto r = std::to_string(round);
      CHECK(spec_on(c[i], "c" + r + "a:*") == "c" + r + "a:*=strong_local:1m");
      CHECK(spec_on(c[i], "c" + r + "b:*") == "c" + r + "b:*=strong_local:2m");
    }
    CHECK(spec_on(c[i], "same:*") == winner);
  }
}

TEST_CASE("warpctl patterns: a patterns.json of the first format (one version) still loads") {
  temp_dir dir{"warpd-patterns-v1"};
  {
    std::ofstream out{dir.str() + "/patterns.json"};
    out << R"({"format": 1, "version": {"counter": 3, "node": 9},
              "patterns": [{"glob": "old:*", "spec": "old:*=strong_local:1m"}]})";
  }
  warpd_process w{{"--storage", "memory", "--data-dir", dir.str()}};
  INFO(w.log());
  REQUIRE(w.wait_ready());
  CHECK(spec_on(w, "old:*") == "old:*=strong_local:1m");
  CHECK(version_on(w) == 3);
  // The next change writes the second format, each glob with its version.
  REQUIRE(w.ctl({"patterns", "set", "new:*", "strong_local"}).exit_code == 0);
  REQUIRE(w.ctl({"patterns", "rm", "old:*"}).exit_code == 0);
  std::ifstream in{dir.str() + "/patterns.json"};
  std::stringstream text;
  text << in.rdbuf();
  auto doc = json::parse(text.str(), nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc["format"] == 2);
  const auto& ps = doc["patterns"];
  REQUIRE(ps.size() == 2);
  CHECK(ps[0]["glob"] == "new:*");
  CHECK(ps[0]["counter"] == 4);
  CHECK(ps[1]["glob"] == "old:*");
  CHECK(ps[1]["spec"].is_null());  // the removal, kept as a tombstone
  CHECK(ps[1]["counter"] == 5);
}

TEST_CASE("warpctl patterns: a bad spec is refused with a clear error and changes nothing") {
  temp_dir dir{"warpd-patterns-bad"};
  warpd_process w{{"--storage", "memory", "--data-dir", dir.str()}};
  REQUIRE(w.wait_ready());
  auto mode = w.ctl({"patterns", "set", "x:*", "eventually"});
  CHECK(mode.exit_code == 4);
  CHECK(mode.err.find("unknown mode 'eventually'") != std::string::npos);
  auto rate = w.ctl({"patterns", "set", "x:*", "strong_local+rate=fast"});
  CHECK(rate.exit_code == 4);
  CHECK(rate.err.find("option '+rate=fast'") != std::string::npos);
  auto option = w.ctl({"--output", "json", "patterns", "set", "x:*", "strong_local+colour=red"});
  CHECK(option.exit_code == 4);
  auto doc = json::parse(option.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc["error"] == "invalid_argument");
  CHECK(doc["message"].get<std::string>().find("unknown option") != std::string::npos);
  auto glob = w.ctl({"patterns", "set", "x:[", "strong_local"});
  CHECK(glob.exit_code == 4);
  CHECK(glob.err.find("unbalanced '['") != std::string::npos);
  auto list = w.ctl({"--output", "json", "patterns", "list"});
  REQUIRE(list.exit_code == 0);
  auto table = json::parse(list.out);
  CHECK(table["patterns"].empty());
  CHECK(table["version"]["counter"] == 0);
  CHECK_FALSE(std::ifstream{dir.str() + "/patterns.json"}.good());
}

TEST_CASE("warpctl patterns: a rate limit set at run time takes effect on every node") {
  cluster c{2};
  c.start_all();
  // Before: reads of absent keys all reach storage and answer "not there".
  auto before = c[1].ctl({"mget", "rl:1", "rl:2", "rl:3", "rl:4"});
  CHECK(before.exit_code == 0);
  auto set = c[0].ctl({"patterns", "set", "rl:*", "strong_local+rate=1"});
  INFO(set.err);
  REQUIRE(set.exit_code == 0);
  REQUIRE(eventually([&] { return spec_on(c[1], "rl:*") == "rl:*=strong_local+rate=1"; }));
  // One fetch per second (burst 1): four misses in one request run over it.
  auto after = c[1].ctl({"mget", "rl:5", "rl:6", "rl:7", "rl:8"});
  CHECK(after.exit_code == 4);
  CHECK(after.err.find("rate_limited") != std::string::npos);
  // Other keys keep the node's (unlimited) default.
  CHECK(c[1].ctl({"mget", "other:1", "other:2", "other:3", "other:4"}).exit_code == 0);
}

TEST_CASE("/admin/patterns: GET lists, PUT sets, DELETE removes, a bad spec gets 400") {
  temp_dir dir{"warpd-patterns-http"};
  warpd_process w{
      {"--storage", "memory", "--data-dir", dir.str(), "--pattern", "boot:*=strong_local:1m"}};
  REQUIRE(w.wait_ready());
  httplib::Client client{"127.0.0.1", w.http_port()};
  client.set_read_timeout(10);
  auto list = client.Get("/admin/patterns");
  REQUIRE(list);
  CHECK(list->status == 200);
  auto doc = json::parse(list->body);
  REQUIRE(doc["patterns"].size() == 1);
  CHECK(doc["patterns"][0]["spec"] == "boot:*=strong_local:1m");
  CHECK(doc["patterns"][0]["ttl_ms"] == 60000);
  CHECK(doc["version"]["counter"] == 0);

  auto put = client.Put("/admin/patterns", "user:*=strong_local:30s+breaker=3\n", "text/plain");
  REQUIRE(put);
  CHECK(put->status == 200);
  doc = json::parse(put->body);
  CHECK(doc["patterns"].size() == 2);
  CHECK(doc["version"]["counter"] == 1);

  auto bad = client.Put("/admin/patterns", "user:*=strong_local+breaker=0", "text/plain");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(bad->body.find("breaker") != std::string::npos);

  auto del = client.Delete("/admin/patterns?glob=boot%3A%2A");
  REQUIRE(del);
  CHECK(del->status == 200);
  doc = json::parse(del->body);
  REQUIRE(doc["patterns"].size() == 1);
  CHECK(doc["patterns"][0]["glob"] == "user:*");
  auto missing = client.Delete("/admin/patterns?glob=nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  // Other admin endpoints stay read-only.
  auto post = client.Post("/admin/stats", "x", "text/plain");
  REQUIRE(post);
  CHECK(post->status == 405);

  // The command line's table (version 0) does not win over the persisted one (version 2).
  CHECK(w.process().stop(SIGTERM, 20s) == 0);
  warpd_process again{
      {"--storage", "memory", "--data-dir", dir.str(), "--pattern", "boot:*=strong_local:1m"}};
  REQUIRE(again.wait_ready());
  CHECK(spec_on(again, "boot:*").empty());
  CHECK(spec_on(again, "user:*") == "user:*=strong_local:30s+breaker=3");
  CHECK(again.process().stop(SIGTERM, 20s) == 0);
  // ... unless it is given a newer version.
  warpd_process newer{{"--storage", "memory", "--data-dir", dir.str(), "--pattern",
                       "boot:*=strong_local:1m", "--patterns-version", "5"}};
  REQUIRE(newer.wait_ready());
  CHECK(spec_on(newer, "boot:*") == "boot:*=strong_local:1m");
  CHECK(spec_on(newer, "user:*").empty());
  CHECK(version_on(newer) == 5);
}
