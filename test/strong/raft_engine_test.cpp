// strong_distributed on Raft groups (strong.engine = raft; runtime/modes/strong_raft.*,
// actors/raft_host_actor.*), on in-process nodes (each its own actor system, over CAF's
// network layer on loopback): get/set/delete from every node (requests to a follower are
// forwarded to the leader), read-modify-write (node::update) that stays exact under
// concurrent increments from every node, durability of the log across a restart of every
// node, and the async API completing from the host actor.
#include <catch2/catch.hpp>

#include <atomic>
#include <charconv>
#include <future>
#include <thread>

#include "test/support/process.hpp"
#include "warp/node.hpp"

using namespace warp;
using namespace std::chrono_literals;

namespace {

struct raft_cluster {
  test::temp_dir dir{"warp-raft-engine"};
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<node>> nodes;

  explicit raft_cluster(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) ports.push_back(test::free_port());
    nodes.resize(n);
    for (std::size_t i = 0; i < n; ++i) start(i);
  }
  ~raft_cluster() {
    for (auto& n : nodes)
      if (n) n->stop();
  }
  node_config config(std::size_t i) const {
    node_config cfg;
    cfg.name = "r" + std::to_string(i);
    cfg.listen = "127.0.0.1:" + std::to_string(ports[i]);
    for (std::size_t j = 0; j < ports.size(); ++j)
      if (j != i) cfg.peers.push_back("127.0.0.1:" + std::to_string(ports[j]));
    cfg.storage = "memory";
    cfg.data_dir = dir.str() + "/n" + std::to_string(i);
    cfg.patterns = {"s:*=strong_distributed"};
    cfg.log_level = "warn";
    cfg.strong.engine = strong_engine::raft;
    cfg.strong.raft_tick = 50ms;
    cfg.strong.timeout = 5s;
    return cfg;
  }
  void start(std::size_t i) {
    auto n = node::start(config(i));
    REQUIRE(n);
    nodes[i] = std::move(*n);
  }
  void stop(std::size_t i) {
    nodes[i]->stop();
    nodes[i].reset();
  }
  /// Until a write through every node succeeds (links up, every group led).
  bool wait_serving(std::chrono::seconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      for (std::size_t i = 0; i < nodes.size() && all; ++i)
        for (int k = 0; k < 16 && all; ++k)
          all = !nodes[i] || nodes[i]->set("s:probe" + std::to_string(k), "x");
      if (all) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
};

result<mutation> incr(const buffer* cur, std::int64_t exp) {
  long long v = 0;
  if (cur) {
    auto s = view(*cur);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size())
      return error{errc::invalid_argument, "not an integer"};
  }
  return mutation::put(std::to_string(v + 1), exp);
}

}  // namespace

TEST_CASE("strong raft: a write on one node is read on every node, deletes too") {
  raft_cluster c{3};
  REQUIRE(c.wait_serving());
  for (int k = 0; k < 30; ++k) {
    auto key = "s:k" + std::to_string(k);
    REQUIRE(c.nodes[k % 3]->set(key, "v" + std::to_string(k)));
  }
  for (int k = 0; k < 30; ++k)
    for (auto& n : c.nodes) {
      auto v = n->get("s:k" + std::to_string(k));
      REQUIRE(v);
      CHECK(view(*v) == "v" + std::to_string(k));
    }
  CHECK_FALSE(c.nodes[0]->l1().contains("s:k0"));
  REQUIRE(c.nodes[2]->remove("s:k0"));
  for (auto& n : c.nodes) CHECK(n->get("s:k0").code() == errc::not_found);
  CHECK(c.nodes[1]->remove("s:never"));
  // A TTL is kept with the value: an expired value reads as absent.
  // 3 s, not less: a loaded machine took over 200 ms between this write and the read.
  REQUIRE(c.nodes[0]->set("s:ttl", "short", 3s));
  CHECK(view(*c.nodes[1]->get("s:ttl")) == "short");
  std::this_thread::sleep_for(3100ms);
  CHECK(c.nodes[2]->get("s:ttl").code() == errc::not_found);
}

TEST_CASE("strong raft: async get, set and remove complete from the host actor") {
  raft_cluster c{3};
  REQUIRE(c.wait_serving());
  auto& n = *c.nodes[1];
  REQUIRE(n.set_async("s:async", "v1").get());
  auto got = c.nodes[2]->get_async("s:async").get();
  REQUIRE(got);
  CHECK(view(*got) == "v1");
  REQUIRE(n.remove_async("s:async").get());
  CHECK(c.nodes[0]->get_async("s:async").get().code() == errc::not_found);
}

TEST_CASE("strong raft: read-modify-write (node::update) from every node sums exactly") {
  raft_cluster c{3};
  REQUIRE(c.wait_serving());
  constexpr int threads_per_node = 3;
  constexpr int increments = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < c.nodes.size(); ++i)
    for (int t = 0; t < threads_per_node; ++t)
      threads.emplace_back([&, i] {
        for (int k = 0; k < increments; ++k)
          if (!c.nodes[i]->update("s:counter", incr)) ++failures;
      });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  auto v = c.nodes[0]->get("s:counter");
  REQUIRE(v);
  CHECK(view(*v) == std::to_string(3 * threads_per_node * increments - failures.load()));
  // SET NX semantics through update: only the first of two creates wins.
  auto nx = [](const buffer* cur, std::int64_t) -> result<mutation> {
    if (cur) return mutation::keep();
    return mutation::put("first", 0);
  };
  REQUIRE(c.nodes[0]->update("s:nx", nx));
  REQUIRE(c.nodes[1]->update("s:nx", [](const buffer* cur, std::int64_t) -> result<mutation> {
    if (cur) return mutation::keep();
    return mutation::put("second", 0);
  }));
  CHECK(view(*c.nodes[2]->get("s:nx")) == "first");
  // An update that erases (GETDEL).
  REQUIRE(c.nodes[2]->update(
      "s:nx", [](const buffer*, std::int64_t) -> result<mutation> { return mutation::erase(); }));
  CHECK(c.nodes[0]->get("s:nx").code() == errc::not_found);
}

TEST_CASE("strong raft: every acknowledged write survives a restart of every node") {
  raft_cluster c{3};
  REQUIRE(c.wait_serving());
  for (int k = 0; k < 50; ++k)
    REQUIRE(c.nodes[k % 3]->set("s:d" + std::to_string(k), "v" + std::to_string(k)));
  for (std::size_t i = 0; i < 3; ++i) c.stop(i);
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  std::optional<result<buffer>> last;
  for (int k = 0; k < 50; ++k) {
    auto key = "s:d" + std::to_string(k);
    // The first reads may wait for the groups' elections.
    result<buffer> v{errc::timeout};
    for (int attempt = 0; attempt < 50; ++attempt) {
      v = c.nodes[(k + 1) % 3]->get(key);
      if (v || v.code() == errc::not_found) break;
      std::this_thread::sleep_for(100ms);
    }
    INFO(key << ": " << (v ? std::string{"ok"} : v.err().to_string()));
    REQUIRE(v);
    CHECK(view(*v) == "v" + std::to_string(k));
  }
}
