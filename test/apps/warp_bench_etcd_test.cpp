// warp-bench strong's etcd baseline (apps/warp-bench/strong_baseline.cpp): a tiny run
// against real warpd processes and a real 3-member etcd cluster. etcd is Debian's
// etcd-server (scripts/deps.sh): without it this test fails, it never skips.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

using namespace warp::test;

TEST_CASE("warp-bench strong: the etcd baseline runs in the same run and prints Warp/etcd ratios") {
  REQUIRE_FALSE(find_program("etcd").empty());
  temp_dir dir{"warp-bench-etcd"};
  auto r =
      run({binary("apps/warp-bench/warp-bench"), "strong", "--seconds", "0.2", "--baseline-seconds",
           "0.4", "--clients", "1,4", "--keys", "200", "--data-dir", dir.str(), "--json"},
          170s);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("warp/etcd") != std::string::npos);
  // The figures: one JSON object on the last line.
  std::string last, line;
  std::istringstream in{r.out};
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  auto j = nlohmann::json::parse(last);
  REQUIRE(j.contains("etcd_baseline"));
  auto& rows = j["etcd_baseline"];
  REQUIRE(rows.size() == 6);  // set, get, incr at 1 and 4 clients
  for (auto& row : rows) {
    INFO(row.dump());
    auto op = row["op"].get<std::string>();
    REQUIRE(row["etcd"].is_object());
    CHECK(row["etcd"]["ops_per_s"].get<double>() > 0);
    CHECK(row["etcd"]["errors"] == 0);
    if (op == "incr" && row["warp"].is_string()) {
      // ABD strong keys answer read-modify-write with `unsupported`: printed as such.
      CHECK(row["warp"] == "unsupported");
      CHECK_FALSE(row.contains("ops_ratio"));
      continue;
    }
    REQUIRE(row["warp"].is_object());
    CHECK(row["warp"]["ops_per_s"].get<double>() > 0);
    CHECK(row["warp"]["errors"] == 0);
    REQUIRE(row.contains("ops_ratio"));
    CHECK(row["ops_ratio"].get<double>() > 0);
    CHECK(row.contains("p99_ratio"));
  }
}

TEST_CASE("warp-bench strong: --warpd-arg reaches every warpd (a bad one fails the run)") {
  REQUIRE_FALSE(find_program("etcd").empty());
  temp_dir dir{"warp-bench-etcd"};
  auto r = run({binary("apps/warp-bench/warp-bench"), "strong", "--seconds", "0.1",
                "--baseline-seconds", "0.2", "--clients", "1", "--keys", "50", "--data-dir",
                dir.str(), "--warpd-arg=--no-such-flag"},
               170s);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("no-such-flag") != std::string::npos);  // warpd's own complaint, relayed
}
