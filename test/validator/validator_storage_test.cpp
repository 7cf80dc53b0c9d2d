// The validator through a real node over real storage changed behind Warp's back: the
// sqlite3 CLI on the node's SQLite file and psql on a real PostgreSQL (test/support/
// postgres.hpp). Per mode: noop counts, alert counts and logs one structured line per
// inconsistency, heal also fixes the cached copy. And a newer write racing a heal is never
// overwritten (the validator's before_heal hook lets the test race one in deterministically).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>

#include "runtime/core/log.hpp"
#include "test/support/eventually.hpp"
#include "test/support/postgres.hpp"
#include "test/support/process.hpp"
#include "validator/validator.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"

using namespace std::chrono_literals;
using warp::test::eventually;

namespace {

std::unique_ptr<warp::node> start(warp::node_config cfg) {
  cfg.listen.clear();
  cfg.log_level = "warn";
  cfg.validator.interval = 100ms;
  cfg.validator.grace = 300ms;
  auto n = warp::node::start(std::move(cfg));
  REQUIRE(n);
  return std::move(*n);
}

std::string cached(warp::node& n, const std::string& key) {
  auto v = n.get_if_present(key);
  return v ? std::string{warp::view(*v)} : "<absent>";
}

void sqlite(const std::string& db, const std::string& sql) {
  auto r = warp::test::run({"sqlite3", "-cmd", ".timeout 5000", db, sql});
  INFO(sql << ": " << r.err);
  REQUIRE(r.exit_code == 0);
}

/// Captures what Warp logs while it lives.
struct log_capture {
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink =
      std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  log_capture() { warp::detail::log()->sinks().push_back(sink); }
  ~log_capture() {
    auto& sinks = warp::detail::log()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  }
  std::size_t count(const std::string& needle) {
    warp::detail::log()->flush();
    auto text = out.str();
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
      ++n;
    return n;
  }
};

// Time from a change behind Warp's back to the validator declaring it.
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("validator: SQLite row rewritten behind Warp's back (newer version) is healed",
          "[validator][sqlite]") {
  warp::test::temp_dir dir{"warp-validator"};
  const auto db = dir.str() + "/warp.db";
  warp::node_config cfg;
  cfg.storage = "sqlite:" + db;
  cfg.patterns = {"v:*=strong_local+validate=heal"};
  auto n = start(cfg);
  REQUIRE(n->set("v:1", "old"));
  REQUIRE(n->set("v:2", "fine"));
  REQUIRE(cached(*n, "v:1") == "old");

  // Another writer (a migration, a script) updates the row and bumps its version.
  const auto changed = std::chrono::steady_clock::now();
  sqlite(db,
         "UPDATE warp_kv SET value = CAST('new' AS BLOB), hlc = hlc + 65536 "
         "WHERE key = CAST('v:1' AS BLOB)");
  REQUIRE(eventually([&] { return n->stats().validator.healed >= 1; }, 10s));
  const auto took = seconds_since(changed);
  std::fprintf(stderr, "validator: sqlite change detected and healed after %.2f s\n", took);
  // Within a few ticks plus the grace window, not by luck of a TTL.
  CHECK(took < 5.0);
  auto s = n->stats().validator;
  CHECK(s.older_than_storage == 1);
  CHECK(s.inconsistent == 1);
  // Storage's newer version was rewritten into L1 (not only dropped), the other key kept.
  CHECK(cached(*n, "v:1") == "new");
  CHECK(cached(*n, "v:2") == "fine");
  CHECK(s.nines_1m.has_value());
  auto metrics = warp::prometheus_text(*n);
  CHECK(metrics.find("warp_validator_inconsistent_total{") != std::string::npos);
  CHECK(metrics.find("warp_validator_consistency_nines{") != std::string::npos);
  CHECK(metrics.find("window=\"10m\"") != std::string::npos);
}

TEST_CASE("validator: noop only counts a value changed at the same version",
          "[validator][sqlite]") {
  warp::test::temp_dir dir{"warp-validator"};
  const auto db = dir.str() + "/warp.db";
  warp::node_config cfg;
  cfg.storage = "sqlite:" + db;
  cfg.validator.mode = warp::validate_mode::noop;  // --validator noop: every key
  log_capture logs;
  auto n = start(cfg);
  REQUIRE(n->set("k:1", "old"));
  // The bytes change, the version does not: only a byte comparison can see it.
  sqlite(db, "UPDATE warp_kv SET value = CAST('tampered' AS BLOB) WHERE key = CAST('k:1' AS BLOB)");
  REQUIRE(eventually([&] { return n->stats().validator.inconsistent >= 1; }, 10s));
  auto s = n->stats().validator;
  CHECK(s.value_differs == 1);
  CHECK(s.healed == 0);
  CHECK(cached(*n, "k:1") == "old");  // counted, not touched
  CHECK(logs.count("validator: inconsistent") == 0);
}

TEST_CASE("validator: alert logs one structured line per inconsistency (row deleted)",
          "[validator][sqlite]") {
  warp::test::temp_dir dir{"warp-validator"};
  const auto db = dir.str() + "/warp.db";
  warp::node_config cfg;
  cfg.storage = "sqlite:" + db;
  cfg.patterns = {"a:*=strong_local+validate=alert", "quiet:*=strong_local+validate=off"};
  log_capture logs;
  auto n = start(cfg);
  REQUIRE(n->set("a:1", "v"));
  REQUIRE(n->set("quiet:1", "v"));
  sqlite(db, "DELETE FROM warp_kv WHERE key IN (CAST('a:1' AS BLOB), CAST('quiet:1' AS BLOB))");
  REQUIRE(eventually([&] { return n->stats().validator.inconsistent >= 1; }, 10s));
  // Several more ticks: the same inconsistency is declared once per look, and the key
  // keeps being sampled; a line per declaration, each naming key, versions and node.
  std::this_thread::sleep_for(300ms);
  auto s = n->stats().validator;
  CHECK(s.deleted_in_storage == s.inconsistent);
  CHECK(logs.count("validator: inconsistent") == s.inconsistent);
  CHECK(logs.count("key=\"a:1\" finding=deleted_in_storage l1_version=") >= 1);
  CHECK(logs.count("storage_version=none node=") >= 1);
  CHECK(logs.count("quiet:1") == 0);  // +validate=off
  CHECK(cached(*n, "a:1") == "v");    // alert does not heal
}

TEST_CASE("validator: PostgreSQL row changed with psql is detected and healed",
          "[validator][postgres]") {
  warp::test::postgres_server pg;
  warp::node_config cfg;
  cfg.storage = pg.uri();
  cfg.validator.mode = warp::validate_mode::heal;
  auto n = start(cfg);
  REQUIRE(n->set("p:1", "old"));
  REQUIRE(n->set("p:2", "doomed"));
  const auto changed = std::chrono::steady_clock::now();
  auto r =
      warp::test::run({"psql", pg.uri(), "-v", "ON_ERROR_STOP=1", "-c",
                       "UPDATE warp_kv SET value = convert_to('new', 'UTF8'), hlc = hlc + 65536 "
                       "WHERE key = convert_to('p:1', 'UTF8'); "
                       "DELETE FROM warp_kv WHERE key = convert_to('p:2', 'UTF8');"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(eventually([&] { return n->stats().validator.healed >= 2; }, 10s));
  std::fprintf(stderr, "validator: postgres changes detected and healed after %.2f s\n",
               seconds_since(changed));
  auto s = n->stats().validator;
  CHECK(s.older_than_storage == 1);
  CHECK(s.deleted_in_storage == 1);
  CHECK(cached(*n, "p:1") == "new");
  CHECK(cached(*n, "p:2") == "<absent>");
  auto v = n->get("p:2");
  CHECK(v.code() == warp::errc::not_found);
}

TEST_CASE("validator: a newer write racing a heal is never overwritten", "[validator]") {
  auto store = std::shared_ptr<warp::storage>(warp::make_memory_storage());
  warp::node_config cfg;
  cfg.storage_adapter = store;
  cfg.validator.mode = warp::validate_mode::heal;
  cfg.validator.interval = 1h;  // no ticks: the pass below is the only validation
  cfg.listen.clear();
  cfg.log_level = "warn";
  cfg.validator.grace = 100ms;
  auto made = warp::node::start(std::move(cfg));
  REQUIRE(made);
  auto& n = **made;
  REQUIRE(n.set("r:1", "v1"));
  auto v1 = n.l1().info("r:1")->ver;
  // Behind Warp's back: storage gets v2.
  warp::version v2{v1.hlc + (1 << 16), v1.node};
  REQUIRE(store->store("r:1", warp::record{"v2", 0, v2}));
  // Once the heal is decided, a newer write lands first (through the node: storage + L1).
  auto* core = warp::detail::validator_of(n);
  REQUIRE(core);
  int raced = 0;
  core->before_heal = [&](std::string_view key) {
    ++raced;
    REQUIRE(n.set(std::string{key}, "v3"));
  };
  auto rep = n.validate("r:*");
  REQUIRE(rep);
  CHECK(raced == 1);
  CHECK(rep->inconsistent == 1);
  CHECK(rep->healed == 0);  // the copy it meant to fix was replaced by a newer write
  // Neither L1 nor storage went back to v2.
  CHECK(cached(n, "r:1") == "v3");
  CHECK(v2 < n.l1().info("r:1")->ver);
  auto in_storage = store->fetch("r:1");
  REQUIRE(in_storage);
  REQUIRE(*in_storage);
  CHECK((*in_storage)->value == "v3");
}

TEST_CASE("validator: +validate= in a pattern spec", "[validator][patterns]") {
  auto e = warp::pattern_registry::parse_spec("u:*=strong_local:10m+validate=heal");
  REQUIRE(e);
  CHECK(e->glob == "u:*");
  CHECK(e->policy.validate == warp::validate_mode::heal);
  CHECK(e->policy.ttl == 10min);
  auto both = warp::pattern_registry::parse_spec("u:*=strong_local+rate=5+validate=alert");
  REQUIRE(both);
  CHECK(both->policy.guard.rate == 5);
  CHECK(both->policy.validate == warp::validate_mode::alert);
  auto bad = warp::pattern_registry::parse_spec("u:*=strong_local+validate=fix");
  REQUIRE_FALSE(bad);
  CHECK(bad.err().message().find("off, noop, alert or heal") != std::string::npos);
  CHECK(warp::pattern_registry::parse_spec("u:*=strong_local")->policy.validate ==
        warp::validate_mode::inherit);
  // The same glob with two validator modes is a conflict, not a silent pick.
  CHECK_FALSE(warp::pattern_registry::parse_specs(
      {"u:*=strong_local+validate=heal", "u:*=strong_local+validate=noop"}));
}

TEST_CASE("validator: a pass over 2000 cached SQLite keys checks each once",
          "[validator][sqlite]") {
  warp::test::temp_dir dir{"warp-validator"};
  warp::node_config cfg;
  cfg.storage = "sqlite:" + dir.str() + "/warp.db";
  cfg.validator.max_batch = 5000;
  cfg.validator.interval = 1h;  // only the pass below
  auto n = start(cfg);
  std::vector<warp::kv_write> items;
  std::vector<std::string> keys, values;  // kv_write holds views: the strings outlive it
  for (int i = 0; i < 2000; ++i) {
    keys.push_back("bulk:" + std::to_string(i));
    values.push_back("value-" + std::to_string(i));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) items.push_back({keys[i], values[i], 0});
  REQUIRE(n->set_many(items));
  const auto t0 = std::chrono::steady_clock::now();
  auto rep = n->validate();
  const auto took = seconds_since(t0);
  REQUIRE(rep);
  CHECK(rep->checked == 2000);
  CHECK(rep->inconsistent == 0);
  std::fprintf(stderr, "validator: pass over 2000 SQLite keys in %.3f s (%.0f keys/s)\n", took,
               2000 / took);
}
