// The outage as a Redis client sees it: warpd on a real PostgreSQL, the server
// stopped. Cached keys keep answering (stale) with the breaker open, and no reply names the
// server or the connection string (docs/storage.md, "Protection").
#include <catch2/catch.hpp>

#include <thread>

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
