// warp-bench resilience, short: it starts its own PostgreSQL (so it fails when PostgreSQL is
// missing), runs every phase with every protection, and prints one JSON object of the
// documented shape (docs/benchmarks.md, "Resilience").
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

using nlohmann::json;

TEST_CASE("warp-bench resilience runs every phase and protection and prints its figures",
          "[bench]") {
  auto r = warp::test::run({warp::test::binary("apps/warp-bench/warp-bench"), "resilience",
                            "--seconds", "0.4", "--keys", "50", "--slow-latency-ms", "50",
                            "--trace-keys", "2000", "--trace-length", "20000", "--json"},
                           std::chrono::seconds{150});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  auto doc = json::parse(last);
  CHECK(doc["benchmark"] == "resilience");
  REQUIRE(doc["phases"].size() == 12);
  std::set<std::string> seen;
  for (auto& row : doc["phases"]) {
    seen.insert(row["phase"].get<std::string>() + "/" + row["protection"].get<std::string>());
    for (const char* f : {"gets", "errors", "error_rate", "stale", "stale_rate", "p50_ms",
                          "p99_ms", "max_ms", "breaker_transitions"})
      CHECK(row.contains(f));
    CHECK(row["gets"].get<std::uint64_t>() > 0);
    CHECK(row["p99_ms"].get<double>() >= row["p50_ms"].get<double>());
  }
  for (const char* phase : {"healthy", "slow", "down"})
    for (const char* p : {"none", "stale", "breaker", "stale+breaker"})
      CHECK(seen.count(std::string{phase} + "/" + p) == 1);
  for (auto& row : doc["phases"]) {
    const auto id = row["phase"].get<std::string>() + "/" + row["protection"].get<std::string>();
    // Storage healthy: no errors. Storage down without protection: errors. Down with
    // stale-on-error: some answers are stale values.
    if (row["phase"] == "healthy") CHECK(row["errors"] == 0);
    if (id == "down/none") CHECK(row["error_rate"].get<double>() > 0);
    if (id == "down/stale" || id == "down/stale+breaker") CHECK(row["stale"].get<std::uint64_t>() > 0);
    if (id == "down/breaker" || id == "down/stale+breaker")
      CHECK(row["breaker_transitions"].get<std::uint64_t>() > 0);
  }
  REQUIRE(doc["l1_hit_ratio"].size() == 6);
  for (auto& row : doc["l1_hit_ratio"]) {
    CHECK(row["lru_hit_ratio"].get<double>() > 0);
    CHECK(row["lru_hit_ratio"].get<double>() < 1);
    CHECK(row["tinylfu_hit_ratio"].get<double>() > 0);
  }
}
