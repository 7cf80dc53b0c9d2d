// Slow commands (an L1 miss into storage) run on the sidecar's workers: a client waiting
// for one must not stall the others. Real warpd, real PostgreSQL; the test makes the
// storage read slow with a table lock held by its own session.
#include <catch2/catch.hpp>

#include <chrono>
#include <pqxx/pqxx>
#include <thread>

#include "test/sidecar/resp_client.hpp"
#include "test/sidecar/sidecar_fixture.hpp"
#include "test/support/postgres.hpp"

using namespace std::chrono_literals;
using warp::test::resp_conn;

namespace {

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0);
}

}  // namespace

TEST_CASE("a GET missing into a blocked storage does not delay another client's hit",
          "[sidecar][worker]") {
  warp::test::postgres_server pg;
  warp::test::warpd_sidecar warpd({}, pg.uri());

  resp_conn hot(warpd.port);
  REQUIRE(hot.cmd({"SET", "hot", "hot-value"}) == "OK");
  REQUIRE(hot.cmd({"GET", "hot"}) == "hot-value");  // in L1 now

  // Values only storage has (not in this node's L1).
  pqxx::connection admin{pg.uri()};
  {
    pqxx::work tx{admin};
    tx.exec(
        "INSERT INTO warp_kv (key, value) VALUES ('cold'::bytea, 'cold-value'::bytea), "
        "('cold2'::bytea, 'cold2-value'::bytea)");
    tx.commit();
  }

  // Our session holds the table: every storage read of warpd waits for it.
  pqxx::connection locker{pg.uri()};
  auto tx = std::make_unique<pqxx::work>(locker);
  tx->exec("LOCK TABLE warp_kv IN ACCESS EXCLUSIVE MODE");

  resp_conn cold(warpd.port);
  // A pipeline: the miss, then commands behind it that must answer after it, in order.
  cold.send_raw(resp_conn::encode({"GET", "cold"}) + resp_conn::encode({"PING"}) +
                resp_conn::encode({"GET", "hot"}));
  resp_conn closer(warpd.port);
  closer.send({"GET", "cold2"});       // will be closed while its read waits
  std::this_thread::sleep_for(300ms);  // both are waiting on the lock by now
  REQUIRE(cold.read(100ms) == "<timeout>");
  ::close(closer.fd());

  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(hot.cmd({"GET", "hot"}) == "hot-value");  // the old loop timed out here
    auto took = since(t0);
    INFO("hit took " << took.count() << " ms while another client's miss waits");
    CHECK(took < 100ms);
  }
  auto t0 = std::chrono::steady_clock::now();
  CHECK(hot.cmd({"MGET", "hot", "hot"}) == "[hot-value,hot-value]");
  CHECK(since(t0) < 100ms);
  CHECK(hot.cmd({"PING"}) == "PONG");
  REQUIRE(cold.read(50ms) == "<timeout>");  // still waiting for storage

  // A tracking client reading a key that another client writes meanwhile: it must never
  // keep a stale value (the invalidation follows the old value, or it reads the new one).
  resp_conn tracker(warpd.port);
  REQUIRE(tracker.cmd({"HELLO", "3"}).starts_with("{"));
  REQUIRE(tracker.cmd({"CLIENT", "TRACKING", "ON"}) == "OK");
  tracker.send({"GET", "cold"});
  resp_conn writer(warpd.port);
  writer.send({"SET", "cold", "new-value"});  // storage is locked: both wait

  tx->abort();  // releases the lock
  tx.reset();
  CHECK(writer.read(5000ms) == "OK");
  auto seen = tracker.read(5000ms);
  if (seen != "new-value") {
    CHECK(seen == "cold-value");
    CHECK(tracker.read(2000ms) == ">[invalidate,[cold]]");
  }
  auto first = cold.read(5000ms);  // read before or after the SET
  CHECK((first == "cold-value" || first == "new-value"));
  CHECK(cold.read() == "PONG");
  CHECK(cold.read() == "hot-value");
  // The client resumed: new commands work, the value is in L1 now.
  CHECK(cold.cmd({"GET", "cold"}) == "new-value");
  CHECK(cold.cmd({"GET", "cold2"}) == "cold2-value");
  CHECK(hot.cmd({"GET", "hot"}) == "hot-value");
}
