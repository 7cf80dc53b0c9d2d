// The outage as a Redis client sees it: warpd on a real PostgreSQL, the server
// stopped. Cached keys keep answering (stale) with the breaker open, and no reply names the
// server or the connection string (docs/storage.md, "Protection").
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

#include "resp_client.hpp"
#include "sidecar_fixture.hpp"
#include "test/support/postgres.hpp"

using namespace std::chrono_literals;

TEST_CASE("sidecar: PostgreSQL stopped -> cached keys answer stale, errors are short and "
          "name no server",
          "[protection][postgres]") {
  warp::test::postgres_server pg;
  warp::test::warpd_sidecar w{{"--pattern", "p:*=strong_local:300ms", "--max-stale", "30s",
                               "--storage-breaker", "2", "--storage-breaker-cooldown", "10s"},
                              pg.uri()};
  REQUIRE(w.cli({"SET", "p:a", "v1"}).find("OK") != std::string::npos);
  REQUIRE(w.cli({"GET", "p:a"}) == "v1\n");
  pg.stop();
  std::this_thread::sleep_for(400ms);  // past the L1 TTL: the next read goes to storage

  CHECK(w.cli({"GET", "p:a"}) == "v1\n");  // stale-on-error
  auto first = w.cli({"GET", "p:none"});
  CHECK(first.find("ERR warp storage_unavailable: storage unreachable") != std::string::npos);
  auto open = w.cli({"GET", "p:none2"});  // two failures opened the breaker
  CHECK(open.find("ERR warp storage_unavailable: circuit open") != std::string::npos);
  CHECK(w.cli({"GET", "p:a"}) == "v1\n");
  for (const auto& reply : {first, open}) {
    INFO(reply);
    for (auto leak : {std::string{"127.0.0.1"}, std::string{"postgres"}, std::string{"port"},
                      std::to_string(pg.port())})
      CHECK(reply.find(leak) == std::string::npos);
  }
}

// The "Done when", under load: four clients read 50 cached keys in a loop while
// PostgreSQL is stopped under them. Every read of a cached key keeps answering its value
// (stale, counted in warp_stale_serves_total), the breaker is open, and no reply anywhere
// carries the server's address or the connection string.
TEST_CASE(
    "sidecar: PostgreSQL stopped under load -> every cached read answers stale, the "
    "breaker is open, no reply leaks the connection string",
    "[protection][postgres]") {
  warp::test::postgres_server pg;
  // Its own warpd rather than warpd_sidecar: this one also serves /metrics.
  warp::test::temp_dir dir{"warp-sidecar-load"};
  const auto http = warp::test::free_port();
  const auto resp = warp::test::free_port();
  warp::test::child_process proc{{warp::test::binary("apps/warpd/warpd"),
                                  "--listen",
                                  "",
                                  "--http",
                                  "127.0.0.1:" + std::to_string(http),
                                  "--storage",
                                  pg.uri(),
                                  "--data-dir",
                                  dir.str(),
                                  "--resp",
                                  "127.0.0.1:" + std::to_string(resp),
                                  "--log-level",
                                  "warn",
                                  "--pattern",
                                  "p:*=strong_local:300ms",
                                  "--max-stale",
                                  "1m",
                                  "--storage-breaker",
                                  "3",
                                  "--storage-breaker-cooldown",
                                  "1s"},
                                 dir.str() + "/warpd.log"};
  INFO("warpd log:\n" << proc.log());
  REQUIRE(warp::test::wait_for_port(resp, 20s));
  struct {
    std::uint16_t port;
  } w{resp};
  constexpr int keys = 50;
  {
    warp::test::resp_conn c{w.port};
    for (int i = 0; i < keys; ++i) {
      auto k = "p:" + std::to_string(i);
      REQUIRE(c.cmd({"SET", k, "v" + std::to_string(i)}) == "OK");
      REQUIRE(c.cmd({"GET", k}) == "v" + std::to_string(i));
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, wrong{0};
  std::mutex mtx;
  std::map<std::string, int> odd;  // every reply that was not the key's value
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&, t] {
      warp::test::resp_conn c{w.port};
      for (int i = t; !stop; i = (i + 1) % keys) {
        auto r = c.cmd({"GET", "p:" + std::to_string(i)});
        ++reads;
        if (r != "v" + std::to_string(i)) {
          ++wrong;
          std::lock_guard<std::mutex> g{mtx};
          ++odd[r];
        }
      }
    });
  std::this_thread::sleep_for(300ms);
  const long before = reads;
  pg.stop();
  // Past the L1 TTL several times over, through a cool-down and its probe.
  std::this_thread::sleep_for(2500ms);
  stop = true;
  for (auto& c : clients) c.join();
  const long during = reads - before;
  INFO("reads while storage was down: " << during);
  std::string unexpected;
  for (const auto& [reply, n] : odd) unexpected += std::to_string(n) + " x " + reply + "\n";
  INFO("unexpected replies:\n" << unexpected);
  CHECK(during > 200);  // under load, not a handful of reads
  CHECK(wrong == 0);

  // Marked: the stale answers are counted, and the breaker is open (or probing).
  httplib::Client admin{"127.0.0.1", http};
  auto m = admin.Get("/metrics");
  REQUIRE(m);
  auto value_of = [&](const std::string& prefix) -> double {
    auto at = m->body.find("\n" + prefix);
    if (at == std::string::npos) return -1;
    auto line = m->body.substr(at + 1, m->body.find('\n', at + 1) - at - 1);
    return std::stod(line.substr(line.rfind(' ') + 1));
  };
  CHECK(value_of("warp_stale_serves_total") > 0);
  CHECK(value_of("warp_storage_breaker_transitions_total") >= 1);
  auto state = value_of("warp_storage_breaker_state");
  CHECK((state == 1 || state == 2));  // open, or half-open while its probe runs

  // A key with no stale copy: a short error, no server, no connection string.
  warp::test::resp_conn c{w.port};
  auto miss = c.cmd({"GET", "p:never"});
  CHECK(miss.starts_with("!ERR warp storage_unavailable"));
  for (auto leak : {std::to_string(pg.port()), pg.uri(), std::string{"dbname"},
                    std::string{"user="}, std::string{"password"}, std::string{"postgres"}})
    CHECK(miss.find(leak) == std::string::npos);
  // (/metrics, an admin endpoint, names the storage in warp_node_info on purpose, its
  // password redacted: that is the operator's view, not a client's reply.)
}
