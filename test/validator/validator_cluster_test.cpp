// The validator in a cluster: two nodes in one process over one shared storage, the sync
// bus between them. A lost invalidation (the cluster's fault hook drops one) leaves a stale
// copy that no change event will ever point at: the validator's random sample finds it,
// and heal mode fixes it.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>

#include "runtime/modes/cluster.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "validator/validator.hpp"
#include "warp/cluster.hpp"
#include "warp/node.hpp"

using namespace std::chrono_literals;
using warp::test::eventually;

namespace {

std::string cached(warp::node& n, const std::string& key) {
  auto v = n.get_if_present(key);
  return v ? std::string{warp::view(*v)} : "<absent>";
}

struct pair_fixture {
  std::shared_ptr<warp::storage> store{warp::make_memory_storage()};
  std::vector<std::uint16_t> ports{warp::test::free_port(), warp::test::free_port()};
  std::vector<std::unique_ptr<warp::node>> nodes;

  explicit pair_fixture(warp::validate_mode mode) {
    for (std::size_t i = 0; i < 2; ++i) {
      warp::node_config cfg;
      cfg.name = "n" + std::to_string(i);
      cfg.listen = "127.0.0.1:" + std::to_string(ports[i]);
      cfg.peers = {"127.0.0.1:" + std::to_string(ports[1 - i])};
      cfg.storage_adapter = store;
      cfg.log_level = "warn";
      cfg.patterns = {"e:*=eventual_distributed+validate=" + std::string{warp::to_string(mode)}};
      cfg.cluster.heartbeat_interval = 50ms;
      cfg.validator.interval = 100ms;
      cfg.validator.grace = 300ms;
      auto n = warp::node::start(std::move(cfg));
      REQUIRE(n);
      nodes.push_back(std::move(*n));
    }
    REQUIRE(eventually(
        [&] {
          for (auto& n : nodes) {
            std::size_t up = 0;
            for (auto& m : warp::view_of(*n).members) up += m.state == warp::member_state::up;
            if (up != 2) return false;
          }
          return true;
        },
        10s));
  }
  ~pair_fixture() {
    for (auto& n : nodes) n->stop();
  }
  warp::detail::cluster& cl(std::size_t i) { return *warp::detail::cluster_of(*nodes[i]); }

  /// a writes `key` = `value` and b caches it. b first waits for a's invalidation of the
  /// write: arriving after b's fill, it would drop b's copy (and the test would then lose
  /// a different invalidation than the one it means to).
  void write_and_cache(const std::string& key, const std::string& value) {
    // Shared: a notification already under way may still run the watcher after unwatch.
    auto heard = std::make_shared<std::atomic<int>>(0);
    auto id = nodes[1]->watch([heard, key](const warp::change_event& ev) {
      if (ev.key == key && ev.remote) heard->fetch_add(1);
    });
    REQUIRE(nodes[0]->set(key, value));
    REQUIRE(eventually([&] { return heard->load() >= 1; }, 10s));
    nodes[1]->unwatch(id);
    REQUIRE(eventually([&] {
      auto v = nodes[1]->get(key);
      return v && warp::view(*v) == value && nodes[1]->l1().contains(key);
    }));
  }
};

}  // namespace

TEST_CASE("validator: a lost invalidation is detected and healed on the node that lost it",
          "[validator][cluster]") {
  pair_fixture f{warp::validate_mode::heal};
  auto& a = *f.nodes[0];
  auto& b = *f.nodes[1];
  f.write_and_cache("e:1", "v1");
  // The next invalidation b receives is lost on the way.
  f.cl(1).drop_next_invalidations(1);
  REQUIRE(a.set("e:1", "v2"));
  REQUIRE(eventually([&] { return f.cl(1).invalidations_dropped() == 1; }, 10s));
  CHECK(cached(b, "e:1") == "v1");  // stale, and no change event on b points at it
  REQUIRE(eventually([&] { return b.stats().validator.healed >= 1; }, 10s));
  auto s = b.stats().validator;
  CHECK(s.older_than_storage == 1);
  CHECK(s.inconsistent == 1);
  CHECK(cached(b, "e:1") != "v1");
  auto v = b.get("e:1");
  REQUIRE(v);
  CHECK(warp::view(*v) == "v2");
  // a never held a wrong copy.
  CHECK(a.stats().validator.inconsistent == 0);
}

TEST_CASE("validator: noop counts a lost invalidation and leaves the copy",
          "[validator][cluster]") {
  pair_fixture f{warp::validate_mode::noop};
  auto& a = *f.nodes[0];
  auto& b = *f.nodes[1];
  f.write_and_cache("e:2", "v1");
  f.cl(1).drop_next_invalidations(1);
  REQUIRE(a.set("e:2", "v2"));
  REQUIRE(eventually([&] { return f.cl(1).invalidations_dropped() == 1; }, 10s));
  REQUIRE(eventually([&] { return b.stats().validator.inconsistent >= 1; }, 10s));
  CHECK(b.stats().validator.healed == 0);
  CHECK(cached(b, "e:2") == "v1");
}
