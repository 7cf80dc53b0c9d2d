// warp-bench coord, short: it starts 3 warpd and a 3-member etcd itself, both systems run
// every lock and lease cell and the watch fan-out, and it prints one JSON object of the
// documented shape (docs/benchmarks.md, "Coordination against etcd"). Structure only:
// no figure is compared with a bound.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

using nlohmann::json;

TEST_CASE("warp-bench coord runs locks, leases and watch fan-out on warpd and etcd",
          "[bench][coord]") {
  auto r = warp::test::run({warp::test::binary("apps/warp-bench/warp-bench"), "coord", "--seconds",
                            "0.5", "--contenders", "4", "--lease-clients", "2", "--watchers", "6",
                            "--watch-rate", "20", "--watch-seconds", "1", "--json"},
                           std::chrono::seconds{170});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  auto doc = json::parse(last);
  CHECK(doc["bench"] == "coord");
  CHECK(doc["etcd_lock_api"] == "v3lock gateway");
  std::vector<std::pair<std::string, std::size_t>> seen;
  for (auto& c : doc["cells"]) {
    seen.emplace_back(c["case"].get<std::string>(), c["clients"].get<std::size_t>());
    INFO(c.dump());
    for (const char* sys : {"warp", "etcd"}) {
      auto& s = c[sys];
      REQUIRE(s.is_object());
      CHECK(s["ops_per_s"].get<double>() > 0);  // it ran and completed operations
      CHECK(s["p99_us"].get<double>() >= s["p50_us"].get<double>());
      CHECK(s.contains("errors"));
    }
    CHECK(c.contains("ops_ratio"));
    CHECK(c.contains("p99_ratio"));
  }
  CHECK(seen == std::vector<std::pair<std::string, std::size_t>>{{"lock uncontended", 1},
                                                                 {"lock contended", 4},
                                                                 {"lease grant", 2},
                                                                 {"lease keepalive", 2}});
  auto& w = doc["watch"];
  CHECK(w["watchers"] == 6);
  for (const char* sys : {"warp", "etcd"}) {
    INFO(sys);
    auto& s = w[sys];
    CHECK(s["writes"].get<std::size_t>() > 0);
    CHECK(s["expected"].get<std::uint64_t>() == s["writes"].get<std::uint64_t>() * 6);
    CHECK(s["delivered"].get<std::uint64_t>() > 0);
    CHECK(s["events_per_s"].get<double>() > 0);
    CHECK(s["p99_us"].get<double>() >= s["p50_us"].get<double>());
  }
  CHECK(w.contains("events_ratio"));
  CHECK(r.out.find("warp/etcd") != std::string::npos);
}
