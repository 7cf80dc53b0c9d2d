// Integration: real warpd processes driven by the real warpctl (and an HTTP client).
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using namespace warp::test;

namespace {

// Polls `cond` for up to `timeout`: TTLs and restarts take however long the box needs.
std::vector<std::string> memory_args(const temp_dir& dir) {
  return {"--storage", "memory", "--data-dir", dir.str() + "/data", "--name", "itest"};
}

}  // namespace

TEST_CASE("warpd --help lists every flag") {
  auto r = run({warpd_bin(), "--help"});
  REQUIRE(r.exit_code == 0);
  for (auto flag :
       {"--name", "--listen", "--peers", "--storage", "--data-dir", "--http", "--resp",
        "--resp-password", "--pattern", "--default-mode", "--default-ttl", "--config",
        "--log-level", "--l1-max-entries", "--l1-max-bytes", "--max-key-size", "--max-value-size",
        "--threads",
        // cluster_options
        "--discovery-dns", "--discovery-dns-server", "--discovery-interval", "--heartbeat-interval",
        "--failure-timeout", "--ranges", "--batching", "--batch-max-records", "--batch-max-bytes",
        "--batch-max-delay", "--batch-busy-rate", "--batch-target-records", "--compress-above",
        "--owner-fetch-timeout", "--read-replicas",
        // storage protection (key_policy::protection)
        "--storage-rate", "--storage-breaker", "--storage-breaker-cooldown", "--max-stale",
        "--soft-timeout", "--refresh-ahead",
        // strong_options
        "--replication-factor", "--strong-timeout", "--strong-members", "--anti-entropy-interval",
        "--strong-engine", "--strong-groups", "--raft-tick",
        // the sidecar's resp_options
        "--resp-max-clients", "--resp-idle-timeout", "--resp-max-bulk-length",
        "--resp-max-multibulk-length", "--resp-max-inline-length", "--resp-max-output-buffer"}) {
    INFO(flag);
    CHECK(r.out.find(flag) != std::string::npos);
  }
}

TEST_CASE("warpctl --help lists the subcommands") {
  auto r = run({warpctl_bin(), "--help"});
  REQUIRE(r.exit_code == 0);
  for (auto word :
       {"get", "set", "del", "stats", "ping", "members", "--node", "--json", "--timeout"}) {
    INFO(word);
    CHECK(r.out.find(word) != std::string::npos);
  }
}

TEST_CASE("warpctl set/get/del/ping/stats against warpd with memory storage") {
  temp_dir dir{"warpd-mem"};
  warpd_process d{memory_args(dir)};
  REQUIRE(d.wait_ready());
  INFO(d.log());

  auto set = d.ctl({"set", "user:1", "Ada Lovelace"});
  CHECK(set.exit_code == 0);
  CHECK(set.out == "OK\n");

  auto get = d.ctl({"get", "user:1"});
  CHECK(get.exit_code == 0);
  CHECK(get.out == "Ada Lovelace\n");

  SECTION("--json output parses") {
    auto j = d.ctl({"--json", "get", "user:1"});
    REQUIRE(j.exit_code == 0);
    auto doc = json::parse(j.out);
    CHECK(doc["ok"] == true);
    CHECK(doc["key"] == "user:1");
    CHECK(doc["value"] == "Ada Lovelace");
    // Global flags may follow the subcommand.
    auto j2 = d.ctl({"get", "user:1", "--json"});
    REQUIRE(j2.exit_code == 0);
    CHECK(json::parse(j2.out)["value"] == "Ada Lovelace");
  }

  SECTION("del removes; get of an absent key exits 1") {
    auto del = d.ctl({"del", "user:1"});
    CHECK(del.exit_code == 0);
    auto miss = d.ctl({"get", "user:1"});
    CHECK(miss.exit_code == 1);
    CHECK(miss.err.find("not_found") != std::string::npos);
    auto jmiss = d.ctl({"--json", "get", "user:1"});
    CHECK(jmiss.exit_code == 1);
    CHECK(json::parse(jmiss.out)["error"] == "not_found");
    // Removing an absent key succeeds.
    CHECK(d.ctl({"del", "user:1"}).exit_code == 0);
  }

  SECTION("ping names the node and the protocol version") {
    auto ping = d.ctl({"ping"});
    CHECK(ping.exit_code == 0);
    CHECK(ping.out.find("pong from itest") != std::string::npos);
    auto jping = d.ctl({"--json", "ping"});
    REQUIRE(jping.exit_code == 0);
    auto doc = json::parse(jping.out);
    CHECK(doc["name"] == "itest");
    CHECK(doc["protocol_version"] == 1);
  }

  SECTION("stats reports L1 and storage counters") {
    auto stats = d.ctl({"--json", "stats"});
    REQUIRE(stats.exit_code == 0);
    auto doc = json::parse(stats.out);
    CHECK(doc["node"]["name"] == "itest");
    CHECK(doc["l1"]["sets"].get<std::uint64_t>() >= 1);
    CHECK(doc["l1"].contains("hits"));
    CHECK(doc["storage"]["keys"] == 1);
    auto human = d.ctl({"stats"});
    CHECK(human.exit_code == 0);
    CHECK(human.out.find("l1.hits: ") != std::string::npos);
  }

  SECTION("binary-ish and empty values round-trip") {
    CHECK(d.ctl({"set", "k:empty", ""}).exit_code == 0);
    auto e = d.ctl({"get", "k:empty"});
    CHECK(e.exit_code == 0);
    CHECK(e.out == "\n");
    CHECK(d.ctl({"set", "k:utf8", "h\xc3\xa9llo w\xc3\xb6rld"}).exit_code == 0);
    CHECK(d.ctl({"get", "k:utf8"}).out == "h\xc3\xa9llo w\xc3\xb6rld\n");
  }

  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("a TTL set through warpctl expires") {
  temp_dir dir{"warpd-ttl"};
  warpd_process d{memory_args(dir)};
  REQUIRE(d.wait_ready());
  REQUIRE(d.ctl({"set", "session:1", "tok", "--ttl", "300ms"}).exit_code == 0);
  CHECK(eventually([&] { return d.ctl({"get", "session:1"}).exit_code == 1; }));
  // --ttl 0 = no expiry.
  REQUIRE(d.ctl({"set", "session:2", "tok", "--ttl", "0"}).exit_code == 0);
  CHECK(d.ctl({"get", "session:2"}).exit_code == 0);
  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("a pattern's TTL bounds how long L1 holds a key, storage keeps the value") {
  // The policy TTL is a cache TTL (see docs/architecture.md): once it passes, the next get
  // reads storage again; the value itself expires only with an explicit --ttl.
  temp_dir dir{"warpd-pattern"};
  auto args = memory_args(dir);
  args.insert(args.end(),
              {"--pattern", "tmp:*=strong_local:300ms", "--pattern", "user:*=strong_local"});
  warpd_process d{args};
  REQUIRE(d.wait_ready());
  REQUIRE(d.ctl({"set", "tmp:1", "x"}).exit_code == 0);
  auto fetches = [&] {
    return json::parse(d.ctl({"--json", "stats"}).out)["storage"]["fetches"].get<std::uint64_t>();
  };
  auto before = fetches();
  CHECK(eventually([&] {
    auto get = d.ctl({"get", "tmp:1"});
    return get.exit_code == 0 && get.out == "x\n" && fetches() > before;
  }));
  auto stats = json::parse(d.ctl({"--json", "stats"}).out);
  REQUIRE(stats["patterns"].size() == 2);
  CHECK(stats["patterns"][0]["ttl_ms"].get<int>() + stats["patterns"][1]["ttl_ms"].get<int>() ==
        300);
}

TEST_CASE("a value survives a warpd restart with SQLite") {
  temp_dir dir{"warpd-sqlite"};
  std::vector<std::string> args{"--storage",         "sqlite", "--data-dir",
                                dir.str() + "/data", "--name", "durable"};
  {
    warpd_process d{args};
    REQUIRE(d.wait_ready());
    CHECK(d.log().find("sqlite") != std::string::npos);
    REQUIRE(d.ctl({"set", "order:7", "shipped"}).exit_code == 0);
    REQUIRE(d.ctl({"set", "order:8", "gone"}).exit_code == 0);
    REQUIRE(d.ctl({"del", "order:8"}).exit_code == 0);
    CHECK(d.process().stop(SIGTERM, 20s) == 0);
  }
  {
    warpd_process d{args};
    REQUIRE(d.wait_ready());
    auto get = d.ctl({"get", "order:7"});
    CHECK(get.exit_code == 0);
    CHECK(get.out == "shipped\n");
    CHECK(d.ctl({"get", "order:8"}).exit_code == 1);
    // SIGINT shuts down as cleanly as SIGTERM.
    CHECK(d.process().stop(SIGINT, 20s) == 0);
  }
}

TEST_CASE("oversized keys and values are rejected with a clear error") {
  temp_dir dir{"warpd-limits"};
  auto args = memory_args(dir);
  args.insert(args.end(), {"--max-key-size", "16", "--max-value-size", "64"});
  warpd_process d{args};
  REQUIRE(d.wait_ready());

  auto big_key = d.ctl({"set", std::string(17, 'k'), "v"});
  CHECK(big_key.exit_code == 4);
  CHECK(big_key.err.find("key_too_large") != std::string::npos);
  auto big_get = d.ctl({"get", std::string(100, 'k')});
  CHECK(big_get.exit_code == 4);
  CHECK(big_get.err.find("key_too_large") != std::string::npos);
  auto big_value = d.ctl({"--json", "set", "k", std::string(65, 'v')});
  CHECK(big_value.exit_code == 4);
  CHECK(big_value.err.find("value_too_large") != std::string::npos);
  CHECK(json::parse(big_value.out)["error"] == "value_too_large");
  // At the bound is fine, and the node is still healthy afterwards.
  CHECK(d.ctl({"set", std::string(16, 'k'), std::string(64, 'v')}).exit_code == 0);
  CHECK(d.ctl({"ping"}).exit_code == 0);
}

TEST_CASE("warpd rejects unknown flags and bad values") {
  auto unknown = run({warpd_bin(), "--bogus-flag"});
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.err.find("--bogus-flag") != std::string::npos);

  auto bad_mode = run({warpd_bin(), "--storage", "memory", "--default-mode", "sometimes"});
  CHECK(bad_mode.exit_code == 2);
  CHECK(bad_mode.err.find("sometimes") != std::string::npos);

  auto bad_pattern = run({warpd_bin(), "--storage", "memory", "--pattern", "user:*=nope"});
  CHECK(bad_pattern.exit_code == 2);
  CHECK(bad_pattern.err.find("user:*=nope") != std::string::npos);

  auto bad_listen = run({warpd_bin(), "--storage", "memory", "--listen", "localhost"});
  CHECK(bad_listen.exit_code == 2);
  CHECK(bad_listen.err.find("listen") != std::string::npos);

  auto bad_number = run({warpd_bin(), "--storage", "memory", "--l1-max-entries", "many"});
  CHECK(bad_number.exit_code == 2);
  CHECK(bad_number.err.find("--l1-max-entries") != std::string::npos);
}

TEST_CASE("warpd fails clearly when storage cannot be opened") {
  auto r = run({warpd_bin(), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--resp", "",
                "--storage", "sqlite:/nonexistent/dir/x.db"},
               20s);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("/nonexistent/dir/x.db") != std::string::npos);
  CHECK(r.out.find("ready") == std::string::npos);
}

TEST_CASE("warpd fails clearly when its port is in use") {
  temp_dir dir{"warpd-port"};
  warpd_process first{memory_args(dir)};
  REQUIRE(first.wait_ready());
  auto taken_node = first.node();
  // Short timeouts: should warpd wrongly start, the test fails instead of hanging.
  auto r = run({warpd_bin(), "--storage", "memory", "--listen", taken_node, "--http", "127.0.0.1:0",
                "--resp", ""},
               20s);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(taken_node) != std::string::npos);

  auto taken_http = first.http();
  auto h = run({warpd_bin(), "--storage", "memory", "--listen", "127.0.0.1:0", "--http", taken_http,
                "--resp", ""},
               20s);
  CHECK(h.exit_code == 1);
  CHECK(h.err.find(taken_http) != std::string::npos);
  // The first one is unharmed.
  CHECK(first.ctl({"ping"}).exit_code == 0);
}

TEST_CASE("warpctl against a closed port exits 3") {
  auto port = free_port();
  auto node = "127.0.0.1:" + std::to_string(port);
  auto r = run({warpctl_bin(), "--node", node, "get", "k"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("cannot reach " + node) != std::string::npos);
  auto p = run({warpctl_bin(), "--node", node, "--json", "ping"});
  CHECK(p.exit_code == 3);
  CHECK(json::parse(p.out)["ok"] == false);
}

TEST_CASE("warpctl usage errors exit 2") {
  CHECK(run({warpctl_bin()}).exit_code == 2);
  CHECK(run({warpctl_bin(), "frobnicate"}).exit_code == 2);
  CHECK(run({warpctl_bin(), "get"}).exit_code == 2);
  CHECK(run({warpctl_bin(), "--node", "nohost", "ping"}).exit_code == 2);
  CHECK(run({warpctl_bin(), "--timeout", "soon", "ping"}).exit_code == 2);
}

TEST_CASE("a CAF config file sets warp options and the command line overrides one") {
  temp_dir dir{"warpd-config"};
  auto file = dir.str() + "/warpd.conf";
  {
    std::ofstream out{file};
    out << "; comments start with a semicolon in CAF's format\n"
           "warp {\n"
           "  name = \"from-file\"\n"
           "  default-ttl = 45s ; a CAF duration literal\n"
           "  listen = \"127.0.0.1:0\"\n"
           "  http = \"127.0.0.1:0\"\n"
           "  resp = \"\"\n"
           "  storage = \"memory\"\n"
           "  data-dir = \""
        << dir.str()
        << "/data\"\n"
           "  patterns = [\"user:*=eventual_distributed:30s\", \"tmp:*=strong_local:1s\"]\n"
           "  max-key-size = 10\n"
           "  log-level = \"warn\"\n"
           "}\n"
           "scheduler {\n"
           "  max-threads = 2\n"
           "}\n";
  }
  warpd_process d{{"--config", file, "--name", "from-cli"}, false};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  auto ping = json::parse(d.ctl({"--json", "ping"}).out);
  CHECK(ping["name"] == "from-cli");  // the command line wins
  auto stats = json::parse(d.ctl({"--json", "stats"}).out);
  CHECK(stats["patterns"].size() == 2);  // from the file
  CHECK(stats["default_policy"]["ttl_ms"] == 45000);
  auto big = d.ctl({"set", "k12345678901", "v"});
  CHECK(big.exit_code == 4);  // max-key-size = 10 from the file
  CHECK(big.err.find("key_too_large") != std::string::npos);

  SECTION("an unknown option in the file is an error") {
    auto bad = dir.str() + "/bad.conf";
    std::ofstream{bad} << "warp {\n  lisen = \"127.0.0.1:0\"\n}\n";
    auto r = run({warpd_bin(), "--config", bad});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("warp.lisen") != std::string::npos);
  }
  SECTION("a wrongly typed value in the file is an error") {
    auto bad = dir.str() + "/bad.conf";
    std::ofstream{bad} << "warp {\n  max-key-size = \"big\"\n}\n";
    auto r = run({warpd_bin(), "--config", bad});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("max-key-size") != std::string::npos);
  }
  SECTION("a missing config file is an error") {
    auto r = run({warpd_bin(), "--config", dir.str() + "/nope.conf"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("nope.conf") != std::string::npos);
  }
}
