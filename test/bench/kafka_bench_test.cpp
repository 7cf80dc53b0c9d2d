// warp-bench kafka, short: it starts warp-kafka-mock itself, runs both sides (raw librdkafka
// and the bridge) through both phases, every message arrives, and it prints one JSON object
// of the documented shape (docs/kafka.md, "Benchmark").
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

using nlohmann::json;

TEST_CASE("warp-bench kafka runs raw and bridge phases on the mock and prints the ratios",
          "[bench][kafka]") {
  auto r = warp::test::run({warp::test::binary("apps/warp-bench/warp-bench"), "kafka", "--messages",
                            "5000", "--rate", "500", "--seconds", "1", "--json"},
                           std::chrono::seconds{170});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  auto doc = json::parse(last);
  CHECK(doc["bench"] == "kafka");
  CHECK(doc["complete"] == true);
  for (const char* f : {"raw_msgs_per_s", "bridge_msgs_per_s", "throughput_ratio", "raw_p50_us",
                        "raw_p99_us", "bridge_p50_us", "bridge_p99_us"}) {
    INFO(f);
    REQUIRE(doc.contains(f));
    CHECK(doc[f].get<double>() > 0);
  }
  CHECK(doc["raw_p99_us"].get<double>() >= doc["raw_p50_us"].get<double>());
  CHECK(doc["bridge_p99_us"].get<double>() >= doc["bridge_p50_us"].get<double>());
  CHECK(r.out.find("ratio") != std::string::npos);
}
