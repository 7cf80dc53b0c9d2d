// Cross-node: a write through node A's sidecar is seen through node B's sidecar and pushes
// an invalidation to a client tracking the key on B. Both nodes share one SQLite file as
// storage (as test/cluster's harness does) and `k:*` is eventual_distributed on both, so
// A's change record reaches B's L1. Waits for both views to show two members up first:
// a change sent before B is up on A is not promised to reach B.
#include <catch2/catch.hpp>

#include <csignal>
#include <memory>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/support/view.hpp"
#include "test/sidecar/resp_client.hpp"

using namespace warp::test;
using namespace std::chrono_literals;

namespace {

// `warpctl --json members` of the node listening on `node_port`; null when unreachable.
nlohmann::json members_json(std::uint16_t node_port) {
  auto r = run({binary("apps/warpctl/warpctl"), "--node", "127.0.0.1:" + std::to_string(node_port),
                "--json", "--timeout", "2s", "members"},
               10s);
  if (r.exit_code != 0) return nullptr;
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  return doc.is_discarded() ? nullptr : doc;
}

// Members `up` in that node's view.
std::size_t members_up(std::uint16_t node_port) {
  return members_in_state(members_json(node_port), "up");
}

// Change records that node has received from its peers.
std::uint64_t records_received(std::uint16_t node_port) {
  auto doc = members_json(node_port);
  if (doc.is_null()) return 0;
  return doc["stats"].value("records_received", std::uint64_t{0});
}

}  // namespace

// Two warpd processes a and b (sidecars on), seeds of each other, shared SQLite storage,
// `k:*` eventual_distributed on both; `extra_b` goes to b only. Waits until both are up in
// both views.
struct two_nodes {
  temp_dir dir{"warp-sidecar-cluster"};
  std::uint16_t node_a = free_port(), node_b = free_port();
  std::uint16_t resp_a = free_port(), resp_b = free_port();
  std::unique_ptr<child_process> a, b;

  explicit two_nodes(std::vector<std::string> extra_b = {}) {
    auto args = [&](std::uint16_t node_port, std::uint16_t resp, const std::string& name,
                    std::uint16_t peer) {
      return std::vector<std::string>{binary("apps/warpd/warpd"),
                                      "--name",
                                      name,
                                      "--listen",
                                      "127.0.0.1:" + std::to_string(node_port),
                                      "--http",
                                      "",
                                      "--storage",
                                      "sqlite:" + dir.str() + "/shared.db",
                                      "--data-dir",
                                      dir.str() + "/" + name,
                                      "--resp",
                                      "127.0.0.1:" + std::to_string(resp),
                                      "--pattern",
                                      "k:*=eventual_distributed",
                                      "--peers",
                                      "127.0.0.1:" + std::to_string(peer),
                                      "--log-level",
                                      "warn"};
    };
    a = std::make_unique<child_process>(args(node_a, resp_a, "a", node_b), dir.str() + "/a.log");
    REQUIRE(wait_for_port(resp_a, 20s));
    auto bargs = args(node_b, resp_b, "b", node_a);
    bargs.insert(bargs.end(), extra_b.begin(), extra_b.end());
    b = std::make_unique<child_process>(bargs, dir.str() + "/b.log");
    REQUIRE(wait_for_port(resp_b, 20s));
    INFO("a.log:\n" << a->log() << "\nb.log:\n" << b->log());
    REQUIRE(eventually([&] { return members_up(node_a) == 2 && members_up(node_b) == 2; }));
  }
};

TEST_CASE("a write through node A's sidecar invalidates a tracking client on node B",
          "[cluster][sidecar][tracking]") {
  two_nodes nodes;
  auto resp_a = nodes.resp_a, resp_b = nodes.resp_b;
  resp_conn on_a{resp_a};
  resp_conn tracker{resp_b};
  resp_conn plain_b{resp_b};  // no tracking: what any client of B reads
  auto received_before = records_received(nodes.node_b);
  CHECK(on_a.cmd({"SET", "k:k", "v1"}) == "OK");
  // Let B apply v1's own invalidation first: arriving after the tracker's GET it would
  // (rightly) push an invalidation that this test would mistake for v2's.
  REQUIRE(eventually([&] { return records_received(nodes.node_b) > received_before; }));
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

// On nodes started with --l1-max-entries 1 --l1-admission none on b (sampled LRU: a new key
// always evicts; TinyLFU could keep it out instead): A writes `key` = v1 (and another key), B
// applies both writes' own invalidations, then `tracker` (RESP3) tracks `key` by reading
// it through B, and `plain_b` reads the other key, which evicts `key` from B's L1.
void tracked_but_evicted(two_nodes& nodes, resp_conn& on_a, resp_conn& tracker, resp_conn& plain_b,
                         const std::string& key) {
  auto received_before = records_received(nodes.node_b);
  CHECK(on_a.cmd({"SET", key, "v1"}) == "OK");
  CHECK(on_a.cmd({"SET", "k:other", "x"}) == "OK");
  REQUIRE(eventually([&] { return records_received(nodes.node_b) >= received_before + 2; }));
  CHECK(tracker.cmd({"HELLO", "3"}).rfind("{server", 0) == 0);
  CHECK(tracker.cmd({"CLIENT", "TRACKING", "ON"}) == "OK");
  CHECK(tracker.cmd({"GET", key}) == "v1");
  CHECK(plain_b.cmd({"GET", "k:other"}) == "x");
}

// The tracked key need not be in B's L1 when A's change arrives: B's L1 evicted it (here:
// --l1-max-entries 1), its pattern TTL ran out, or B's read-through fill was superseded by
// an earlier record of the same key. Redis's promise (and issue 5's) is an invalidation
// whenever a tracked key changes anywhere, so B must still push one.
TEST_CASE("a tracking client on node B is invalidated even when B's L1 no longer holds the key",
          "[cluster][sidecar][tracking]") {
  two_nodes nodes{{"--l1-max-entries", "1", "--l1-admission", "none"}};
  resp_conn on_a{nodes.resp_a};
  resp_conn tracker{nodes.resp_b};
  resp_conn plain_b{nodes.resp_b};
  tracked_but_evicted(nodes, on_a, tracker, plain_b, "k:e");
  CHECK(on_a.cmd({"SET", "k:e", "v2"}) == "OK");
  CHECK(tracker.read(10000ms) == ">[invalidate,[k:e]]");
  CHECK(tracker.cmd({"GET", "k:e"}) == "v2");
}

// A change B never received (B was paused while A held it down, so A did not send it) must
// still reach B's trackers once B notices the gap, also for a key B's L1 no longer holds:
// such a key leaves nothing in L1 for the gap to drop.
TEST_CASE("after a gap, node B invalidates tracked keys its L1 no longer holds",
          "[cluster][sidecar][tracking]") {
  two_nodes nodes{{"--l1-max-entries", "1", "--l1-admission", "none"}};
  resp_conn on_a{nodes.resp_a};
  resp_conn tracker{nodes.resp_b};
  resp_conn plain_b{nodes.resp_b};
  tracked_but_evicted(nodes, on_a, tracker, plain_b, "k:g");
  nodes.b->signal(SIGSTOP);
  bool held_down =
      eventually([&] { return members_in_state(members_json(nodes.node_a), "down") == 1; }, 20s);
  if (held_down) CHECK(on_a.cmd({"SET", "k:g", "v2"}) == "OK");  // never sent to B
  nodes.b->signal(SIGCONT);
  REQUIRE(held_down);
  CHECK(tracker.read(15000ms) == ">[invalidate,[k:g]]");
  CHECK(tracker.cmd({"GET", "k:g"}) == "v2");
}
