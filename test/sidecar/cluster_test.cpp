// Cross-node: a write through node A's sidecar is seen through node B's sidecar and pushes
// an invalidation to a client tracking the key on B. Both nodes share one SQLite file as
// storage and the keys are eventual_distributed, so A's change record reaches B's L1.
// Hidden ([.cluster]) until change propagation between nodes lands; run it with
// `warp_test_sidecar [cluster]`.
#include <catch2/catch.hpp>

#include <thread>

#include "support/process.hpp"
#include "test/sidecar/resp_client.hpp"

using namespace warp::test;
using namespace std::chrono_literals;

TEST_CASE("a write through node A's sidecar invalidates a tracking client on node B",
          "[.cluster][sidecar][tracking]") {
  temp_dir dir{"warp-sidecar-cluster"};
  auto bin = binary("apps/warpd/warpd");
  auto node_port_a = free_port(), node_port_b = free_port();
  auto resp_a = free_port(), resp_b = free_port();
  auto storage = "sqlite:" + dir.str() + "/shared.db";
  auto args = [&](std::uint16_t node_port, std::uint16_t resp, const std::string& name,
                  std::vector<std::string> extra) {
    std::vector<std::string> a = {bin, "--name", name, "--listen", "127.0.0.1:" + std::to_string(node_port),
                                  "--http", "", "--storage", storage, "--data-dir", dir.str() + "/" + name,
                                  "--resp", "127.0.0.1:" + std::to_string(resp),
                                  "--pattern", "shared:*=eventual_distributed", "--log-level", "warn"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  child_process a{args(node_port_a, resp_a, "a", {}), dir.str() + "/a.log"};
  REQUIRE(wait_for_port(resp_a, 20s));
  child_process b{args(node_port_b, resp_b, "b", {"--peers", "127.0.0.1:" + std::to_string(node_port_a)}),
                  dir.str() + "/b.log"};
  REQUIRE(wait_for_port(resp_b, 20s));

  resp_conn on_a{resp_a};
  resp_conn tracker{resp_b};
  CHECK(on_a.cmd({"SET", "shared:k", "v1"}) == "OK");
  CHECK(tracker.cmd({"HELLO", "3"}).rfind("{server", 0) == 0);
  CHECK(tracker.cmd({"CLIENT", "TRACKING", "ON"}) == "OK");
  CHECK(tracker.cmd({"GET", "shared:k"}) == "v1");  // B caches it in L1, tracker tracks it
  CHECK(on_a.cmd({"SET", "shared:k", "v2"}) == "OK");
  CHECK(tracker.read(10000ms) == ">[invalidate,[shared:k]]");
  CHECK(tracker.cmd({"GET", "shared:k"}) == "v2");
  // Keyspace notifications on B carry A's writes as well.
  resp_conn sub{resp_b};
  CHECK(sub.cmd({"SUBSCRIBE", "__keyspace@0__:shared:k"}) == "[subscribe,__keyspace@0__:shared:k,:1]");
  CHECK(on_a.cmd({"INCR", "shared:n"}) == ":1");
  CHECK(on_a.cmd({"DEL", "shared:k"}) == ":1");
  auto msg = sub.read(10000ms);
  CHECK((msg == "[message,__keyspace@0__:shared:k,del]" ||
         msg == "[message,__keyspace@0__:shared:k,invalidated]"));
}
