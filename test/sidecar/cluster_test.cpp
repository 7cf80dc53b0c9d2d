// Cross-node: a write through node A's sidecar is seen through node B's sidecar and pushes
// an invalidation to a client tracking the key on B. Both nodes share one SQLite file as
// storage (as test/cluster's harness does) and `k:*` is eventual_distributed on both, so
// A's change record reaches B's L1. Waits for both views to show two members up first:
// a change sent before B is up on A is not promised to reach B.
#include <catch2/catch.hpp>

#include <thread>

#include <nlohmann/json.hpp>

#include "support/process.hpp"
#include "test/sidecar/resp_client.hpp"

using namespace warp::test;
using namespace std::chrono_literals;

namespace {

// Members `up` in the view of the node listening on `node_port` (via warpctl members).
std::size_t members_up(std::uint16_t node_port) {
  auto r = run({binary("apps/warpctl/warpctl"), "--node", "127.0.0.1:" + std::to_string(node_port),
                "--json", "--timeout", "2s", "members"},
               10s);
  if (r.exit_code != 0) return 0;
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded()) return 0;
  std::size_t up = 0;
  for (auto& m : doc["members"]) up += m.value("state", "") == "up";
  return up;
}

template <class F>
bool eventually(F&& cond, std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return cond();
}

}  // namespace

TEST_CASE("a write through node A's sidecar invalidates a tracking client on node B",
          "[cluster][sidecar][tracking]") {
  temp_dir dir{"warp-sidecar-cluster"};
  auto bin = binary("apps/warpd/warpd");
  auto node_port_a = free_port(), node_port_b = free_port();
  auto resp_a = free_port(), resp_b = free_port();
  auto storage = "sqlite:" + dir.str() + "/shared.db";
  auto args = [&](std::uint16_t node_port, std::uint16_t resp, const std::string& name,
                  std::uint16_t peer) {
    return std::vector<std::string>{
        bin, "--name", name, "--listen", "127.0.0.1:" + std::to_string(node_port), "--http", "",
        "--storage", storage, "--data-dir", dir.str() + "/" + name, "--resp",
        "127.0.0.1:" + std::to_string(resp), "--pattern", "k:*=eventual_distributed",
        "--peers", "127.0.0.1:" + std::to_string(peer), "--log-level", "warn"};
  };
  child_process a{args(node_port_a, resp_a, "a", node_port_b), dir.str() + "/a.log"};
  REQUIRE(wait_for_port(resp_a, 20s));
  child_process b{args(node_port_b, resp_b, "b", node_port_a), dir.str() + "/b.log"};
  REQUIRE(wait_for_port(resp_b, 20s));
  INFO("a.log:\n" << a.log() << "\nb.log:\n" << b.log());
  REQUIRE(eventually([&] { return members_up(node_port_a) == 2 && members_up(node_port_b) == 2; }));

  resp_conn on_a{resp_a};
  resp_conn tracker{resp_b};
  resp_conn plain_b{resp_b};  // no tracking: what any client of B reads
  CHECK(on_a.cmd({"SET", "k:k", "v1"}) == "OK");
  CHECK(tracker.cmd({"HELLO", "3"}).rfind("{server", 0) == 0);
  CHECK(tracker.cmd({"CLIENT", "TRACKING", "ON"}) == "OK");
  CHECK(tracker.cmd({"GET", "k:k"}) == "v1");  // B caches it in L1, tracker tracks it
  CHECK(on_a.cmd({"SET", "k:k", "v2"}) == "OK");
  CHECK(tracker.read(10000ms) == ">[invalidate,[k:k]]");
  // Once B has dropped v1, every client of B reads the new value.
  CHECK(plain_b.cmd({"GET", "k:k"}) == "v2");
  CHECK(tracker.cmd({"GET", "k:k"}) == "v2");
  // Keyspace notifications on B carry A's writes as well.
  resp_conn sub{resp_b};
  CHECK(sub.cmd({"SUBSCRIBE", "__keyspace@0__:k:k"}) == "[subscribe,__keyspace@0__:k:k,:1]");
  CHECK(on_a.cmd({"INCR", "k:n"}) == ":1");
  CHECK(on_a.cmd({"DEL", "k:k"}) == ":1");
  auto msg = sub.read(10000ms);
  CHECK((msg == "[message,__keyspace@0__:k:k,del]" ||
         msg == "[message,__keyspace@0__:k:k,invalidated]"));
  CHECK(tracker.read(10000ms) == ">[invalidate,[k:k]]");
  CHECK(plain_b.cmd({"GET", "k:k"}) == "nil");
}
