// Federation through the shipped binaries (docs/federation.md): regions of warpd
// processes, each region a cluster with its own storage (one SQLite file its nodes share,
// and hydrating patterns, so a value reaches every node's L1 through the region's
// cluster), linked over CAF on their node ports. A write in one region reaches every node of the
// other; a stopped gateway, writes on both sides, and the gateway resumed converge to the
// last writer everywhere; a gateway killed mid-stream loses nothing; three regions in a
// ring apply each write once per region.
#include <catch2/catch.hpp>

#include <csignal>
#include <map>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/federation/federation_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using warp::test::eventually;
using warp::test::warpd_process;
using namespace std::chrono_literals;

using namespace warp::test::fed;

TEST_CASE("federation: a write in region A reaches every node of region B and back",
          "[federation][warpd]") {
  // Two regions of three nodes each, as issue #13 describes its deployment.
  region a{"A", 3}, b{"B", 3};
  a.start({b.gateway(0), b.gateway(1), b.gateway(2)});
  b.start({a.gateway(0), a.gateway(1), a.gateway(2)});

  REQUIRE(a.nodes[1]->ctl({"set", "f:1", "from-a"}).exit_code == 0);
  CHECK(everywhere(b, "f:1", "from-a"));
  REQUIRE(b.nodes[0]->ctl({"set", "f:2", "from-b"}).exit_code == 0);
  CHECK(everywhere(a, "f:2", "from-b"));
  // A key no pattern federates stays in its region.
  REQUIRE(a.nodes[0]->ctl({"set", "local:1", "x"}).exit_code == 0);
  // Deletes travel too.
  REQUIRE(b.nodes[1]->ctl({"del", "f:1"}).exit_code == 0);
  CHECK(everywhere(a, "f:1", "(nil)"));
  CHECK(everywhere(b, "f:1", "(nil)"));
  CHECK(get(*b.nodes[0], "local:1") == "(nil)");

  // Operations: the link is up and its counters add up.
  auto s = a.status(0);
  INFO(s.dump());
  REQUIRE(s["region"] == "A");
  REQUIRE(s["links"].size() == 1);
  CHECK(s["links"][0]["region"] == "B");
  CHECK(s["links"][0]["state"] == "up");
  // The counters are published by the federation actor's next tick.
  std::optional<std::string> metrics;
  CHECK(eventually(
      [&] {
        metrics = http_get(a.nodes[1]->http_port(), "/metrics");
        return metrics &&
               metrics->find("warp_federation_shipped_total{region=\"B\"} 1\n") !=
                   std::string::npos &&
               metrics->find("warp_federation_queue_depth{region=\"B\"} 0\n") != std::string::npos;
      },
      10s));
  INFO(metrics.value_or("(no /metrics)"));
  auto ctl = a.nodes[0]->ctl({"regions"});
  INFO(ctl.out << ctl.err);
  CHECK(ctl.exit_code == 0);
  CHECK(ctl.out.find("B") != std::string::npos);
  CHECK(ctl.out.find("up") != std::string::npos);
}

TEST_CASE(
    "federation: a stopped gateway with writes on both sides then resumed converges to the last "
    "writer",
    "[federation][warpd][partition]") {
  region a{"A", 3}, b{"B", 3};
  // Region A reaches B only through b0: while it is stopped, A's changes wait in A's queues.
  a.start({b.gateway(0)});
  b.start({a.gateway(0), a.gateway(1), a.gateway(2)});
  REQUIRE(a.nodes[0]->ctl({"set", "f:warm", "1"}).exit_code == 0);
  REQUIRE(everywhere(b, "f:warm", "1"));

  b.nodes[0]->process().signal(SIGSTOP);
  // b1 writes first, A writes later (newer HLC): A's values must win everywhere, though
  // they reach B only after b0 resumes, long after B's own.
  for (int i = 0; i < 5; ++i)
    REQUIRE(b.nodes[1]->ctl({"set", "f:k" + std::to_string(i), "b"}).exit_code == 0);
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < 5; ++i)
    REQUIRE(a.nodes[i % 3]->ctl({"set", "f:k" + std::to_string(i), "a"}).exit_code == 0);
  // And one key B writes last: B's value must win it.
  REQUIRE(a.nodes[1]->ctl({"set", "f:last", "a"}).exit_code == 0);
  std::this_thread::sleep_for(50ms);
  REQUIRE(b.nodes[1]->ctl({"set", "f:last", "b"}).exit_code == 0);
  std::this_thread::sleep_for(1500ms);  // batches to b0 time out meanwhile
  b.nodes[0]->process().signal(SIGCONT);

  for (int i = 0; i < 5; ++i) {
    CHECK(everywhere(a, "f:k" + std::to_string(i), "a", 60s));
    CHECK(everywhere(b, "f:k" + std::to_string(i), "a", 60s));
  }
  CHECK(everywhere(a, "f:last", "b", 60s));
  CHECK(everywhere(b, "f:last", "b", 60s));
}

TEST_CASE("federation: kill -9 of a gateway mid-stream loses no change", "[federation][warpd]") {
  region a{"A", 2}, b{"B", 2};
  // Writes through the sidecar and reads by one mget: a warpctl process per write and per
  // read took most of this case's minute on a loaded machine.
  a.resp = true;
  a.start({b.gateway(0), b.gateway(1)});
  b.start({a.gateway(0), a.gateway(1)});
  REQUIRE(a.nodes[0]->ctl({"set", "f:warm", "1"}).exit_code == 0);
  REQUIRE(everywhere(b, "f:warm", "1"));

  constexpr int n = 60;
  std::map<std::string, std::string> written;
  for (int i = 0; i < n; ++i) {
    if (i == n / 3) b.nodes[0]->process().signal(SIGKILL);
    auto key = "f:s" + std::to_string(i);
    REQUIRE(cmd(*a.nodes[i % 2], {"SET", key, std::to_string(i)}) == "OK");
    written[key] = std::to_string(i);
  }
  // b1 takes over as the gateway: every change, including those b0 took but never
  // acknowledged, reaches it.
  std::string diff;
  if (!holds(*b.nodes[1], written, 60s, &diff)) FAIL_CHECK("b1 differs: " << diff);
  // The killed gateway comes back and serves every change (its region's storage has them;
  // its reconnection also runs an anti-entropy pass with each A node).
  b.restart(0);
  std::map<std::string, std::string> sample;
  for (int i = 0; i < n; i += 7) sample["f:s" + std::to_string(i)] = std::to_string(i);
  if (!holds(*b.nodes[0], sample, 60s, &diff)) FAIL_CHECK("restarted b0 differs: " << diff);
}

TEST_CASE("federation: a full queue drops and counts and anti-entropy repairs what it dropped",
          "[federation][warpd][anti-entropy]") {
  region a{"A", 1}, b{"B", 1};
  a.shared_storage = b.shared_storage = false;
  b.start({a.gateway()});
  // A queue of 5 whose batch waits 5 s to fill: most of 40 quick writes overflow it.
  a.max_delay = "5s";
  a.start({b.gateway()}, {"--federation-queue-limit", "5"});
  REQUIRE(eventually([&] { return a.status(0)["links"][0]["state"] == "up"; }));
  constexpr int n = 40;
  for (int i = 0; i < n; ++i)
    REQUIRE(a.nodes[0]->ctl({"set", "f:q" + std::to_string(i), std::to_string(i)}).exit_code == 0);
  for (int i = 0; i < n; ++i)
    CHECK(eventually(
        [&] { return get(*b.nodes[0], "f:q" + std::to_string(i)) == std::to_string(i); }, 60s));
  auto s = a.status(0);
  INFO(s.dump());
  auto dropped =
      s["links"][0]["dropped"].get<std::uint64_t>() + s["inbox_dropped"].get<std::uint64_t>();
  CHECK(dropped > 0);
  CHECK(s["links"][0]["repaired"].get<std::uint64_t>() >= dropped);
}

TEST_CASE("federation: three regions in a ring apply each write exactly once per region",
          "[federation][warpd][ring]") {
  region a{"A", 1}, b{"B", 1}, c{"C", 1};
  a.start({b.gateway(), c.gateway()});
  b.start({a.gateway(), c.gateway()});
  c.start({a.gateway(), b.gateway()});
  constexpr int n = 10;
  for (int i = 0; i < n; ++i) {
    REQUIRE(a.nodes[0]->ctl({"set", "f:a" + std::to_string(i), "x"}).exit_code == 0);
    REQUIRE(b.nodes[0]->ctl({"set", "f:b" + std::to_string(i), "x"}).exit_code == 0);
    REQUIRE(c.nodes[0]->ctl({"set", "f:c" + std::to_string(i), "x"}).exit_code == 0);
  }
  auto total_applied = [](const json& s) {
    std::uint64_t t = 0;
    for (auto r : {"A", "B", "C"}) t += applied_from(s, r);
    return t;
  };
  for (auto* r : {&a, &b, &c})
    CHECK(eventually([&] { return total_applied(r->status(0)) >= 2 * n; }, 30s));
  std::this_thread::sleep_for(1s);  // late duplicates would show now
  for (auto* r : {&a, &b, &c}) {
    auto s = r->status(0);
    INFO(r->name << ": " << s.dump());
    CHECK(total_applied(s) == 2 * n);
    CHECK(applied_from(s, r->name) == 0);
  }
  for (int i = 0; i < n; ++i)
    for (auto* r : {&a, &b, &c})
      for (auto w : {"a", "b", "c"})
        CHECK(get(*r->nodes[0], std::string{"f:"} + w + std::to_string(i)) == "x");
}
