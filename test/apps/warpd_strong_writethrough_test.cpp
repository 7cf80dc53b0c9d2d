// The Raft engine's storage write-through (docs/strong.md, "Storage write-through") on real
// processes: three warpd sharing one database (a SQLite file, or a throwaway PostgreSQL
// server), strong keys written through the sidecar with redis-cli, and the database read
// with its own client (the sqlite3 CLI, psql), not through Warp.
#include <catch2/catch.hpp>

#include <signal.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/apps/http_get.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/postgres.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

using kv_map = std::map<std::string, std::string>;

/// Three warpd with the Raft engine on one shared storage spec.
struct shared_storage_cluster {
  std::string redis_cli = find_program("redis-cli");
  temp_dir dir{"warpd-wthru"};
  std::string storage;
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<warpd_process>> procs;

  explicit shared_storage_cluster(std::string storage_spec) : storage(std::move(storage_spec)) {
    for (int i = 0; i < 3; ++i) ports.push_back(free_port());
    procs.resize(3);
  }

  std::vector<std::string> args(std::size_t i) const {
    auto a = cluster_member_args(ports, i, dir.str(),
                                 {"--pattern", "account:*=strong_distributed", "--strong-engine",
                                  "raft", "--raft-tick", "50ms", "--strong-timeout", "5s"});
    for (std::size_t k = 0; k + 1 < a.size(); ++k) {
      if (a[k] == "--resp") a[k + 1] = "127.0.0.1:0";
      if (a[k] == "--storage") a[k + 1] = storage;
    }
    return a;
  }
  void start(std::size_t i) {
    procs[i] = std::make_unique<warpd_process>(args(i), false, dir.str());
    INFO(procs[i]->log());
    REQUIRE(procs[i]->wait_ready());
  }
  void kill9(std::size_t i) {
    procs[i]->process().signal(SIGKILL);
    procs[i]->process().wait(10s);
    procs[i].reset();
  }
  command_result cli(std::size_t i, std::vector<std::string> a) const {
    auto& resp = procs[i]->resp();
    std::vector<std::string> argv{redis_cli, "-h", "127.0.0.1", "-p",
                                  resp.substr(resp.rfind(':') + 1)};
    argv.insert(argv.end(), a.begin(), a.end());
    return run(argv, 30s);
  }
  /// A command that must be acknowledged with `want` (Raft committed it).
  void must(std::size_t i, std::vector<std::string> a, const std::string& want = "OK") {
    auto r = cli(i, a);
    INFO(a[0] << " " << a[1] << " on node " << i << ": " << r.out << r.err);
    REQUIRE(r.out == want + "\n");
  }
  bool wait_serving() const {
    return eventually(
        [&] {
          for (std::size_t i = 0; i < procs.size(); ++i)
            if (procs[i] && cli(i, {"SET", "account:probe" + std::to_string(i), "p"}).out != "OK\n")
              return false;
          return true;
        },
        60s);
  }
  /// The Raft state of `keys` as the sidecar of node i reads it (absent keys left out).
  kv_map raft_state(std::size_t i, const std::vector<std::string>& keys) const {
    kv_map out;
    for (const auto& k : keys) {
      auto r = cli(i, {"GET", k});
      if (r.exit_code == 0 && r.out != "\n") out[k] = r.out.substr(0, r.out.size() - 1);
    }
    return out;
  }
};

/// "key=value" lines -> map.
kv_map parse_rows(const std::string& text) {
  kv_map out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

/// The live account:* rows of a SQLite file, read by the sqlite3 CLI.
kv_map sqlite_rows(const std::string& path) {
  auto r = run({find_program("sqlite3"), "-cmd", ".timeout 5000", path,
                "SELECT CAST(key AS TEXT) || '=' || CAST(value AS TEXT) FROM warp_kv WHERE "
                "CAST(key AS TEXT) LIKE 'account:%' AND (expires_at = 0 OR expires_at > "
                "CAST(strftime('%s','now') AS INTEGER) * 1000) ORDER BY 1"},
               30s);
  return r.exit_code == 0 ? parse_rows(r.out) : kv_map{{"<sqlite3 failed>", r.err}};
}

/// The live account:* rows of the PostgreSQL database, read by psql.
kv_map pg_rows(const postgres_server& pg) {
  auto r = run({find_program("psql"), pg.uri(), "-At", "-c",
                "SELECT convert_from(key, 'UTF8') || '=' || convert_from(value, 'UTF8') FROM "
                "warp_kv WHERE convert_from(key, 'UTF8') LIKE 'account:%' AND (expires_at = 0 "
                "OR expires_at > (extract(epoch from now()) * 1000)::bigint) ORDER BY 1"},
               30s);
  return r.exit_code == 0 ? parse_rows(r.out) : kv_map{{"<psql failed>", r.err}};
}

std::string show(const kv_map& m) {
  std::string s;
  for (auto& [k, v] : m) s += k + "=" + v + " ";
  return s;
}

std::vector<std::string> keys_of(const kv_map& a, const std::vector<std::string>& more = {}) {
  std::vector<std::string> out = more;
  for (auto& [k, v] : a) out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("warpd strong raft write-through: SET, INCR and DEL reach the shared SQLite file") {
  temp_dir db_dir{"wthru-sqlite"};
  const std::string db = db_dir.str() + "/shared.db";
  shared_storage_cluster c{"sqlite:" + db};
  REQUIRE_FALSE(c.redis_cli.empty());
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  REQUIRE(c.wait_serving());
  kv_map want{{"account:probe0", "p"}, {"account:probe1", "p"}, {"account:probe2", "p"}};
  for (int k = 0; k < 15; ++k) {
    auto key = "account:" + std::to_string(k);
    c.must(k % 3, {"SET", key, "v" + std::to_string(k)});
    want[key] = "v" + std::to_string(k);
  }
  for (int n = 1; n <= 9; ++n) c.must(n % 3, {"INCR", "account:counter"}, std::to_string(n));
  want["account:counter"] = "9";
  c.must(0, {"DEL", "account:3"}, "1");
  c.must(1, {"DEL", "account:7"}, "1");
  c.must(2, {"GETDEL", "account:5"}, "v5");
  c.must(0, {"SET", "account:12", "changed"});
  c.must(1, {"SET", "account:ttl", "lives", "EX", "600"});
  for (auto k : {"account:3", "account:7", "account:5"}) want.erase(k);
  want["account:12"] = "changed";
  want["account:ttl"] = "lives";
  // The Raft state is what was acknowledged...
  REQUIRE(c.raft_state(2, keys_of(want, {"account:3", "account:7", "account:5"})) == want);
  // ...and the database shows exactly it: values, the counter, no deleted key.
  kv_map rows;
  CHECK(eventually([&] { return (rows = sqlite_rows(db)) == want; }, 60s));
  INFO("database: " << show(rows) << "\nwanted: " << show(want));
  CHECK(rows == want);
  // The TTL travelled with the value.
  auto ttl = run({find_program("sqlite3"), "-cmd", ".timeout 5000", db,
                  "SELECT expires_at > 0 FROM warp_kv WHERE key = CAST('account:ttl' AS BLOB)"},
                 30s);
  CHECK(ttl.out == "1\n");
}

TEST_CASE(
    "warpd strong raft write-through: writes during a PostgreSQL outage are acknowledged and "
    "stored once it returns") {
  postgres_server pg;
  shared_storage_cluster c{pg.uri()};
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  REQUIRE(c.wait_serving());
  kv_map want{{"account:probe0", "p"}, {"account:probe1", "p"}, {"account:probe2", "p"}};
  for (int k = 0; k < 10; ++k) {
    c.must(k % 3, {"SET", "account:a" + std::to_string(k), "before"});
    want["account:a" + std::to_string(k)] = "before";
  }
  REQUIRE(eventually([&] { return pg_rows(pg) == want; }, 60s));

  pg.stop();
  // Raft acknowledges every write as before: storage is behind it, not in its way.
  for (int k = 0; k < 15; ++k) {
    c.must(k % 3, {"SET", "account:b" + std::to_string(k), "during" + std::to_string(k)});
    want["account:b" + std::to_string(k)] = "during" + std::to_string(k);
  }
  for (int n = 1; n <= 6; ++n) c.must(n % 3, {"INCR", "account:counter"}, std::to_string(n));
  want["account:counter"] = "6";
  for (int k = 0; k < 3; ++k) {
    c.must(k, {"DEL", "account:a" + std::to_string(k)}, "1");
    want.erase("account:a" + std::to_string(k));
  }
  // The changes wait, listed in the groups' replicated state; the leaders' writes fail
  // and say so (once, not per retry).
  CHECK(eventually(
      [&] {
        for (std::size_t i = 0; i < 3; ++i)
          if (c.procs[i]->log().find("storage write-through failed") != std::string::npos)
            return true;
        return false;
      },
      30s));

  pg.start();
  kv_map rows;
  CHECK(eventually([&] { return (rows = pg_rows(pg)) == want; }, 90s));
  INFO("database: " << show(rows) << "\nwanted: " << show(want));
  CHECK(rows == want);
  // The final database state is the Raft state.
  CHECK(c.raft_state(0, keys_of(want, {"account:a0", "account:a1", "account:a2"})) == rows);
}

TEST_CASE(
    "warpd strong raft write-through: after kill -9 of a leader with unstored writes the "
    "new leader stores them") {
  using nlohmann::json;
  postgres_server pg;
  shared_storage_cluster c{pg.uri()};
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  REQUIRE(c.wait_serving());
  REQUIRE(eventually([&] { return pg_rows(pg).size() == 3; }, 60s));  // the probes
  pg.stop();
  kv_map want{{"account:probe0", "p"}, {"account:probe1", "p"}, {"account:probe2", "p"}};
  for (int k = 0; k < 24; ++k) {
    c.must(k % 3, {"SET", "account:c" + std::to_string(k), "unstored" + std::to_string(k)});
    want["account:c" + std::to_string(k)] = "unstored" + std::to_string(k);
  }
  // The node leading the most groups: its groups hold unstored writes (storage is down).
  std::size_t victim = 0, most = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    auto r = http_get(c.procs[i]->http_port(), "/admin/strong");
    REQUIRE(r);
    const auto doc = json::parse(r->body);
    std::size_t led = 0;
    for (auto& g : doc["groups"]) led += g["role"] == "leader";
    if (led > most) {
      most = led;
      victim = i;
    }
  }
  INFO("node " << victim << " leads " << most << " groups");
  REQUIRE(most > 0);
  // Its leaders had tried: the writes are pending, not lost with it.
  REQUIRE(eventually(
      [&] {
        return c.procs[victim]->log().find("storage write-through failed") != std::string::npos;
      },
      30s));
  c.kill9(victim);
  pg.start();
  const std::size_t other = (victim + 1) % 3;
  kv_map rows;
  CHECK(eventually([&] { return (rows = pg_rows(pg)) == want; }, 90s));
  INFO("database: " << show(rows) << "\nwanted: " << show(want));
  CHECK(rows == want);
  // Written by the survivors alone (the victim is dead): its groups' new leaders.
  CHECK(c.raft_state(other, keys_of(want)) == rows);
}
