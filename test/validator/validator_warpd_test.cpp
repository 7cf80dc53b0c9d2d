// The validator through the shipped binaries: warpd with --validator and a
// +validate= pattern over its SQLite file, changed behind its back with the sqlite3 CLI;
// `warpctl validate [PATTERN] --json` runs a pass and reports checked / inconsistent /
// healed; /admin/validator and /metrics show the same.
#include <catch2/catch.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using json = nlohmann::json;
using warp::test::warpd_process;

namespace {

void sqlite(const std::string& db, const std::string& sql) {
  auto r = warp::test::run({"sqlite3", "-cmd", ".timeout 5000", db, sql});
  INFO(sql << ": " << r.err);
  REQUIRE(r.exit_code == 0);
}

std::string http_get(std::uint16_t port, const std::string& path) {
  httplib::Client client{"127.0.0.1", port};
  auto res = client.Get(path.c_str());
  REQUIRE(res);
  REQUIRE(res->status == 200);
  return res->body;
}

}  // namespace

TEST_CASE("validator: warpctl validate --json reports checked, inconsistent and healed",
          "[validator][warpd]") {
  warp::test::temp_dir dir{"warp-validator-warpd"};
  const auto db = dir.str() + "/warp.db";
  // A long interval: the passes warpctl asks for are the only ones that see the changes.
  warpd_process d{{"--storage", "sqlite:" + db, "--validator", "noop", "--validator-interval", "1h",
                   "--validator-grace", "200ms", "--pattern", "h:*=strong_local+validate=heal"}};
  REQUIRE(d.wait_ready());
  for (auto kv : {std::pair{"n:1", "a"}, std::pair{"n:2", "b"}, std::pair{"h:1", "c"}})
    REQUIRE(d.ctl({"set", kv.first, kv.second}).exit_code == 0);

  auto clean = d.ctl({"validate", "--json"});
  INFO(clean.out << clean.err);
  REQUIRE(clean.exit_code == 0);
  auto doc = json::parse(clean.out);
  CHECK(doc["checked"] == 3);
  CHECK(doc["inconsistent"] == 0);
  CHECK(doc["healed"] == 0);

  sqlite(db,
         "UPDATE warp_kv SET value = CAST('x' AS BLOB), hlc = hlc + 65536 "
         "WHERE key IN (CAST('n:1' AS BLOB), CAST('h:1' AS BLOB))");
  // Only the keys of the pattern: n:1 (noop) is counted, not healed.
  auto n_only = d.ctl({"validate", "n:*", "--json"});
  INFO(n_only.out << n_only.err);
  REQUIRE(n_only.exit_code == 0);
  doc = json::parse(n_only.out);
  CHECK(doc["checked"] == 2);
  CHECK(doc["inconsistent"] == 1);
  CHECK(doc["healed"] == 0);
  REQUIRE(doc["found"].size() == 1);
  CHECK(doc["found"][0]["key"] == "n:1");
  CHECK(doc["found"][0]["finding"] == "older_than_storage");

  // h:1 (heal): healed; its cached copy now is storage's.
  auto all = d.ctl({"validate", "--json"});
  INFO(all.out << all.err);
  REQUIRE(all.exit_code == 0);
  doc = json::parse(all.out);
  CHECK(doc["inconsistent"] == 2);
  CHECK(doc["healed"] == 1);
  auto got = d.ctl({"get", "h:1"});
  CHECK(got.out == "x\n");

  // The plain output names the same numbers.
  auto plain = d.ctl({"validate", "h:*"});
  REQUIRE(plain.exit_code == 0);
  CHECK(plain.out.find("checked: 1\ninconsistent: 0\nhealed: 0\n") == 0);

  auto status = json::parse(http_get(d.http_port(), "/admin/validator"));
  CHECK(status["enabled"] == true);
  CHECK(status["mode"] == "noop");
  CHECK(status["inconsistent"] == 2);  // n:1 once, h:1 once: a repeat is not a new one
  CHECK(status["healed"] == 1);
  CHECK(status["windows"]["1m"]["checked"].get<int>() >= 5);
  CHECK(status["windows"]["10m"]["nines"].is_number());
  auto metrics = http_get(d.http_port(), "/metrics");
  CHECK(metrics.find("warp_validator_healed_total{") != std::string::npos);
  CHECK(metrics.find("warp_validator_consistency_nines{") != std::string::npos);

  // A bad --validator mode is refused at start with a clear message.
  warpd_process bad{{"--storage", "memory", "--validator", "fix"}};
  CHECK_FALSE(bad.wait_ready(std::chrono::seconds{10}));
  CHECK(bad.log().find("off, noop, alert or heal") != std::string::npos);
}
