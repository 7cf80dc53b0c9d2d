// CDC ingest end to end with real parts: librdkafka's mock cluster in its own process,
// warpd processes with --cdc-* flags, and a Node.js producer (kafkajs from npm) writing
// Debezium-shaped events. Node and npm must be installed (loud failure if not); the npm
// install happens once into the build tree.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/kafka/kafka_mock.hpp"
#include "test/support/eventually.hpp"

using namespace warp::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string topic = "dbserver1.public.users";

// The kafkajs producer, installed once per build tree.
std::string kafkajs_dir() {
  auto npm = find_program("npm");
  INFO("npm not found: scripts/deps.sh installs nodejs and npm");
  REQUIRE_FALSE(npm.empty());
  fs::path src = fs::path(WARP_SOURCE_DIR) / "test/kafka/node";
  fs::path work = fs::path(binary("test/kafka-node"));
  fs::create_directories(work);
  for (auto name : {"package.json", "cdc_producer.mjs"})
    fs::copy_file(src / name, work / name, fs::copy_options::overwrite_existing);
  if (!fs::exists(work / "node_modules/kafkajs/package.json")) {
    auto install =
        run({"/bin/sh", "-c",
             "cd '" + work.string() + "' && '" + npm + "' install --no-audit --no-fund 2>&1"},
            240s);
    INFO("npm install output:\n" << install.out << install.err);
    REQUIRE(install.exit_code == 0);
  }
  return work.string();
}

void produce(const std::string& brokers, const json& events) {
  auto node = find_program("node");
  REQUIRE_FALSE(node.empty());
  auto dir = kafkajs_dir();
  static int n = 0;
  auto file = dir + "/events-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".json";
  std::ofstream{file} << events.dump();
  auto r = run({node, dir + "/cdc_producer.mjs", brokers, topic, file}, 120s);
  INFO("kafkajs output:\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("PRODUCED " + std::to_string(events.size())) != std::string::npos);
}

json row(int id, const std::string& name) {
  return {{"id", id}, {"name", name}};
}

// The "name" column of a hydrated row, or "" when the value is not such a row (yet).
std::string name_in(const std::string& value) {
  auto j = json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return {};
  return j["name"];
}

// warpctl get: the value, or "<absent>" when the key has none.
std::string get(const warpd_process& d, const std::string& key) {
  auto r = d.ctl({"get", key});
  if (r.exit_code == 1) return "<absent>";
  if (r.exit_code != 0) return "<error " + r.err + ">";
  return r.out.substr(0, r.out.size() - (r.out.ends_with('\n') ? 1 : 0));
}

std::uint64_t metric(const warpd_process& d, const std::string& family) {
  httplib::Client client{"127.0.0.1", d.http_port()};
  client.set_read_timeout(10);
  auto r = client.Get("/metrics");
  if (!r || r->status != 200) return 0;
  std::regex re{family + R"(\{[^}]*\} (\d+))"};
  std::smatch m;
  if (!std::regex_search(r->body, m, re)) return 0;
  return std::stoull(m[1]);
}

std::vector<std::string> cdc_flags(const std::string& brokers, const std::string& mode,
                                   std::vector<std::string> extra = {}) {
  std::vector<std::string> a{
      "--cdc-brokers", brokers,    "--cdc-topic",    topic,
      "--cdc-group",   "region-a", "--cdc-key",      "user:{id}",
      "--cdc-mode",    mode,       "--cdc-property", "session.timeout.ms=6000"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

}  // namespace

TEST_CASE("cdc: Debezium events from kafkajs update, add and invalidate keys on every node",
          "[kafka][cdc]") {
  kafka_mock mock{{topic + ":3"}};
  temp_dir dir{"warp-cdc"};
  std::vector<std::uint16_t> ports{free_port(), free_port(), free_port()};
  std::vector<std::unique_ptr<warpd_process>> nodes;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    auto args = cluster_member_args(
        ports, i, dir.str(),
        cdc_flags(mock.bootstrap(), "hydrate", {"--pattern", "user:*=eventual_distributed"}));
    // One SQLite file for the whole region: the shared storage a cluster is meant to have.
    for (std::size_t j = 0; j + 1 < args.size(); ++j)
      if (args[j] == "--storage") args[j + 1] = "sqlite:" + dir.str() + "/region.db";
    nodes.push_back(std::make_unique<warpd_process>(args, false));
  }
  for (auto& n : nodes) {
    INFO(n->log());
    REQUIRE(n->wait_ready());
  }
  // Two keys cached on every node before the database changes.
  REQUIRE(nodes[0]->ctl({"set", "user:1", "cached-ann"}).exit_code == 0);
  REQUIRE(nodes[0]->ctl({"set", "user:3", "cached-carl"}).exit_code == 0);
  for (auto& n : nodes) {
    REQUIRE(eventually([&] { return get(*n, "user:1") == "cached-ann"; }, 30s));
    REQUIRE(eventually([&] { return get(*n, "user:3") == "cached-carl"; }, 30s));
  }

  produce(mock.bootstrap(),
          json::array({
              {{"op", "c"}, {"before", nullptr}, {"after", row(2, "bea")}},
              {{"op", "u"}, {"before", row(1, "ann")}, {"after", row(1, "bob")}},
              {{"op", "d"}, {"before", row(3, "carl")}, {"after", nullptr}},
              {{"tombstone", {{"id", 3}}}},
              {{"raw", "this is not JSON"}},
              {{"raw", R"({"payload":{"op":"u","after":{"name":"no id"}}})"}},
              // Same Kafka key as the malformed ones: the partition is not stuck behind them.
              {{"op", "c"}, {"before", nullptr}, {"after", row(0, "zed")}},
          }));

  for (auto& n : nodes) {
    INFO(n->log());
    CHECK(eventually([&] { return name_in(get(*n, "user:1")) == "bob"; }, 60s));
    CHECK(eventually([&] { return name_in(get(*n, "user:2")) == "bea"; }, 30s));
    CHECK(eventually([&] { return name_in(get(*n, "user:0")) == "zed"; }, 30s));
    CHECK(eventually([&] { return get(*n, "user:3") == "<absent>"; }, 30s));
  }
  std::uint64_t malformed = 0, consumed = 0, tombstones = 0;
  std::string logs;
  for (auto& n : nodes) {
    malformed += metric(*n, "warp_cdc_malformed_total");
    consumed += metric(*n, "warp_cdc_consumed_total");
    tombstones += metric(*n, "warp_cdc_tombstones_total");
    logs += n->log();
    CHECK(n->process().running());
  }
  // At least once, not exactly: offsets are committed after apply, so a consumer-group
  // rebalance under load (a node joining the group late) redelivers what was applied but
  // not yet committed (ctest -j2 once counted 12 consumed, 3 tombstones). The values above
  // are what must be exact.
  CHECK(malformed >= 2);
  CHECK(consumed >= 7);
  CHECK(tombstones >= 1);
  CHECK(logs.find("skipped: malformed CDC event") != std::string::npos);
  {  // The warp_cdc_* families are valid exposition beside the node's own.
    httplib::Client client{"127.0.0.1", nodes[0]->http_port()};
    auto r = client.Get("/metrics");
    REQUIRE(r);
    CHECK(r->body.find("# TYPE warp_cdc_commit_lag_records gauge") != std::string::npos);
    auto promtool = find_program("promtool");
    INFO("promtool not found: install Debian's prometheus package (scripts/deps.sh does)");
    REQUIRE_FALSE(promtool.empty());
    auto file = dir.str() + "/metrics.txt";
    std::ofstream{file} << r->body;
    auto check = run({"sh", "-c", promtool + " check metrics < " + file});
    INFO(check.out << check.err);
    CHECK(check.exit_code == 0);
  }
  for (auto& n : nodes) CHECK(n->process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("cdc: a warpd killed before committing re-applies those events when restarted",
          "[kafka][cdc]") {
  kafka_mock mock{{topic + ":2"}};
  temp_dir dir{"warp-cdc-restart"};
  auto start = [&](const std::string& interval) {
    auto d = std::make_unique<warpd_process>(std::vector<std::string>{"--storage",
                                                                      "memory",
                                                                      "--data-dir",
                                                                      dir.str() + "/data",
                                                                      "--name",
                                                                      "solo",
                                                                      "--cdc-brokers",
                                                                      mock.bootstrap(),
                                                                      "--cdc-topic",
                                                                      topic,
                                                                      "--cdc-key",
                                                                      "user:{id}",
                                                                      "--cdc-mode",
                                                                      "hydrate",
                                                                      "--cdc-group",
                                                                      "solo",
                                                                      "--cdc-commit-interval",
                                                                      interval,
                                                                      "--cdc-property",
                                                                      "session.timeout.ms=6000"});
    INFO(d->log());
    REQUIRE(d->wait_ready());
    return d;
  };
  json first = json::array();
  for (int i = 1; i <= 5; ++i)
    first.push_back({{"op", "c"}, {"before", nullptr}, {"after", row(i, "v1")}});
  produce(mock.bootstrap(), first);

  {  // Applies all five, never commits (the interval is an hour), and is killed.
    auto d = start("3600s");
    for (int i = 1; i <= 5; ++i)
      REQUIRE(eventually([&] { return get(*d, "user:" + std::to_string(i)) != "<absent>"; }, 60s));
    CHECK(metric(*d, "warp_cdc_commits_total") == 0);
    d->process().stop(SIGKILL);
  }
  {  // Memory storage starts empty: the keys come back only because the events come again.
    auto d = start("100ms");
    for (int i = 1; i <= 5; ++i) {
      INFO(d->log());
      CHECK(eventually([&] { return get(*d, "user:" + std::to_string(i)) != "<absent>"; }, 60s));
    }
    CHECK(metric(*d, "warp_cdc_consumed_total") == 5);
    CHECK(eventually([&] { return metric(*d, "warp_cdc_commits_total") >= 1; }, 10s));
    CHECK(eventually([&] { return metric(*d, "warp_cdc_commit_lag_records") == 0; }, 10s));
    CHECK(d->process().stop(SIGTERM, 20s) == 0);
  }
  produce(mock.bootstrap(),
          json::array({{{"op", "c"}, {"before", nullptr}, {"after", row(6, "v1")}}}));
  {  // Committed before: only the new event comes.
    auto d = start("100ms");
    CHECK(eventually([&] { return get(*d, "user:6") != "<absent>"; }, 60s));
    std::this_thread::sleep_for(1s);
    CHECK(get(*d, "user:1") == "<absent>");
    CHECK(metric(*d, "warp_cdc_consumed_total") == 1);
    CHECK(d->process().stop(SIGTERM, 20s) == 0);
  }
}

TEST_CASE("cdc: half-given or bad --cdc-* flags are usage errors", "[kafka][cdc]") {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--cdc-topic", "t"},
           {"--cdc-brokers", "127.0.0.1:1", "--cdc-topic", "t", "--cdc-key", "user"},
           {"--cdc-brokers", "127.0.0.1:1", "--cdc-topic", "t", "--cdc-key", "u:{id}", "--cdc-mode",
            "x"},
           {"--cdc-brokers", "127.0.0.1:1", "--cdc-topic", "t", "--cdc-key", "u:{id}",
            "--cdc-property", "novalue"}}) {
    std::vector<std::string> argv{warpd_bin(), "--storage", "memory", "--http", "", "--resp", ""};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, 30s);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("cdc") != std::string::npos);
  }
}

TEST_CASE("kafka property flags keep a value's commas: debug=cgrp,x reaches librdkafka whole",
          "[kafka][cdc]") {
  // The flags are repeatable and never split: split, `debug=cgrp,nonsense` was refused as a
  // property `nonsense` without a value, and no comma-separated librdkafka value could be set.
  for (auto args : std::vector<std::vector<std::string>>{
           {"--cdc-brokers", "127.0.0.1:1", "--cdc-topic", "t", "--cdc-key", "u:{id}",
            "--cdc-property", "debug=cgrp,nonsense"},
           {"--region", "A", "--federation-kafka", "127.0.0.1:1", "--federation-link", "B=kafka",
            "--federation-kafka-property", "debug=cgrp,nonsense"}}) {
    std::vector<std::string> argv{warpd_bin(), "--storage", "memory", "--http", "", "--resp", ""};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, 30s);
    INFO(r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("Invalid value \"nonsense\" for configuration property \"debug\"") !=
          std::string::npos);
  }
}
