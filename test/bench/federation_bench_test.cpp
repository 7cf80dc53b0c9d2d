// warp-bench federation, short: it starts two single-node regions over the CAF link and over
// the Kafka transport (on warp-kafka-mock) next to raw CAF and raw librdkafka, every update
// and message arrives, and it prints one JSON object of the documented shape
// (docs/federation.md, "Benchmark"). Structure only: the figures are never asserted.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

using nlohmann::json;

TEST_CASE(
    "warp-bench federation runs both links beside raw CAF and raw librdkafka and prints the "
    "ratios",
    "[bench][federation]") {
  auto r = warp::test::run({warp::test::binary("apps/warp-bench/warp-bench"), "federation",
                            "--updates", "2000", "--rate", "200", "--seconds", "1", "--json"},
                           std::chrono::seconds{280});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  auto doc = json::parse(last);
  CHECK(doc["bench"] == "federation");
  CHECK(doc["complete"] == true);
  for (const char* link : {"caf", "kafka"}) {
    INFO(link);
    REQUIRE(doc.contains(link));
    const auto& l = doc[link];
    for (const char* f : {"raw_msgs_per_s", "link_updates_per_s", "throughput_ratio", "raw_p50_us",
                          "raw_p99_us", "link_p50_us", "link_p99_us"}) {
      INFO(f);
      REQUIRE(l.contains(f));
      CHECK(l[f].get<double>() > 0);
    }
    CHECK(l["raw_p99_us"].get<double>() >= l["raw_p50_us"].get<double>());
    CHECK(l["link_p99_us"].get<double>() >= l["link_p50_us"].get<double>());
  }
  CHECK(r.out.find("over the CAF link:") != std::string::npos);
  CHECK(r.out.find("over Kafka:") != std::string::npos);
}
