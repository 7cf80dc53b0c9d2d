// Hot keys and warm-up with real warpd processes (docs/hotkeys.md): the hot-key list over
// warpctl and /admin/hotkeys, a node joining a cluster that has the previous owner's hot
// keys of its ranges in L1 before the first client read, the start warm-up from the list
// saved at the last stop, and a warm-up held to the storage rate limit.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using warp::test::eventually;
using warp::test::find_program;
using warp::test::run;
using warp::test::temp_dir;
using warp::test::warpd_process;

namespace {

json get_json(const warpd_process& d, const std::string& path, int* status = nullptr) {
  httplib::Client client{"127.0.0.1", d.http_port()};
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  auto r = client.Get(path.c_str());
  REQUIRE(r);
  if (status) *status = r->status;
  if (r->status != 200) return json{};
  return json::parse(r->body);
}

/// Sends `commands` (one per line) through redis-cli to the node's sidecar in one process.
std::string resp(const warpd_process& d, const std::string& commands) {
  static const std::string cli = find_program("redis-cli");
  REQUIRE(!cli.empty());
  auto port = d.resp().substr(d.resp().rfind(':') + 1);
  auto r = run({"/bin/sh", "-c", "printf '%s' \"$0\" | " + cli + " -p " + port, commands});
  REQUIRE(r.exit_code == 0);
  return r.out;
}

std::string hot(int i) {
  return "hot:" + std::to_string(i);
}

}  // namespace

TEST_CASE("warpctl hotkeys and /admin/hotkeys list the hottest keys, hottest first",
          "[hotkeys]") {
  temp_dir dir{"warpd-hotkeys"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data", "--hotkeys-sample",
                   "1"}};
  REQUIRE(d.wait_ready());
  std::string cmds;
  for (int i = 0; i < 5; ++i) cmds += "SET " + hot(i) + " v\n";
  // hot:0 read 40 times, hot:1 20, hot:2 10, hot:3 once; hot:4 never.
  const int reads[] = {40, 20, 10, 1};
  for (int k = 0; k < 4; ++k)
    for (int r = 0; r < reads[k]; ++r) cmds += "GET " + hot(k) + "\n";
  resp(d, cmds);

  auto out = d.ctl({"hotkeys", "--json", "--limit", "3"});
  REQUIRE(out.exit_code == 0);
  auto doc = json::parse(out.out);
  REQUIRE(doc["keys"].size() == 3);
  CHECK(doc["keys"][0]["key"] == "hot:0");
  CHECK(doc["keys"][1]["key"] == "hot:1");
  CHECK(doc["keys"][2]["key"] == "hot:2");
  CHECK(doc["keys"][0]["reads"].get<std::uint64_t>() >= 40);
  CHECK(doc["keys"][0]["reads"].get<std::uint64_t>() >
        doc["keys"][1]["reads"].get<std::uint64_t>());
  CHECK(doc["sample_every"] == 1);

  auto table = d.ctl({"hotkeys"});
  REQUIRE(table.exit_code == 0);
  CHECK(table.out.find("hot:0") < table.out.find("hot:1"));
  CHECK(table.out.find("hot:4") == std::string::npos);

  auto http = get_json(d, "/admin/hotkeys?limit=1");
  REQUIRE(http["keys"].size() == 1);
  CHECK(http["keys"][0]["key"] == "hot:0");
  CHECK(get_json(d, "/admin/hotkeys")["keys"].size() == 4);  // hot:4 was never read
  int status = 0;
  get_json(d, "/admin/hotkeys?limit=lots", &status);
  CHECK(status == 400);
  get_json(d, "/admin/hotkeys?limit=100001", &status);
  CHECK(status == 400);
  CHECK(d.ctl({"hotkeys", "--limit", "-1"}).exit_code == 2);
}

TEST_CASE("a node joining takes over ranges with the previous owner's hot keys in L1",
          "[hotkeys][warmup]") {
  temp_dir dir{"warpd-warmup"};
  const std::string db = "sqlite:" + dir.str() + "/shared.db";
  auto member = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> a{"--name", name, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                               "--resp", "127.0.0.1:0", "--storage", db, "--data-dir",
                               dir.str() + "/" + name, "--log-level", "info",
                               "--heartbeat-interval", "100ms", "--pattern",
                               "*=eventual_distributed", "--hotkeys-sample", "1", "--warmup",
                               "on"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  warpd_process a{member("a", {}), false};
  REQUIRE(a.wait_ready());
  // 60 hot keys read on a (its owner of every range), 200 cold keys never read.
  std::string cmds;
  for (int i = 0; i < 60; ++i) cmds += "SET " + hot(i) + " v" + std::to_string(i) + "\n";
  for (int i = 0; i < 200; ++i) cmds += "SET cold:" + std::to_string(i) + " c\n";
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 60; ++i) cmds += "GET " + hot(i) + "\n";
  resp(a, cmds);
  REQUIRE(get_json(a, "/admin/hotkeys?limit=0")["keys"].size() == 60);

  warpd_process b{member("b", {"--peers", a.node()}), false};
  REQUIRE(b.wait_ready());
  // b's warm-up runs once it sees a and takes its share of the ranges over.
  REQUIRE(eventually([&] {
    auto w = get_json(b, "/admin/hotkeys")["warmup"];
    return w["runs"].get<std::uint64_t>() >= 1 && !w["running"].get<bool>();
  }));
  auto before = get_json(b, "/admin/stats");
  const auto loaded = before["warmup"]["loaded"].get<std::uint64_t>();
  INFO("b loaded " << loaded << " keys; log:\n" << b.log());
  // About half of the 60 hot keys fall in b's ranges (binomial: below 15 is 1 in 10^4),
  // and no cold key: the list came from a, not from a storage sample.
  CHECK(loaded >= 15);
  CHECK(loaded <= 60);
  CHECK(b.log().find("from node") != std::string::npos);
  CHECK(before["warmup"]["failed"] == 0);

  // The first client reads on b: every warmed key is an L1 hit.
  const auto hits0 = before["l1"]["hits"].get<std::uint64_t>();
  const auto fetches0 = before["storage"]["fetches"].get<std::uint64_t>();
  std::string reads;
  for (int i = 0; i < 60; ++i) reads += "GET " + hot(i) + "\n";
  auto answers = resp(b, reads);
  for (int i = 0; i < 60; ++i) CHECK(answers.find("v" + std::to_string(i) + "\n") != std::string::npos);
  auto after = get_json(b, "/admin/stats");
  CHECK(after["l1"]["hits"].get<std::uint64_t>() - hits0 >= loaded);
  // Only the keys a owns miss on b (they go to a, not to storage from b).
  CHECK(after["storage"]["fetches"].get<std::uint64_t>() - fetches0 <= 60 - loaded);
}

TEST_CASE("a restarted node warms up from the hot keys it saved at stop, within the rate limit",
          "[hotkeys][warmup]") {
  temp_dir dir{"warpd-warmup-start"};
  auto args = [&](std::vector<std::string> extra) {
    // Its own flags (defaults = false below): the info log carries the warm-up's lines.
    std::vector<std::string> a{"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--resp",
                               "127.0.0.1:0", "--storage", "sqlite", "--data-dir",
                               dir.str() + "/data", "--hotkeys-sample", "1", "--warmup", "on",
                               "--log-level", "info"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  {
    warpd_process d{args({}), false};
    REQUIRE(d.wait_ready());
    std::string cmds;
    for (int i = 0; i < 40; ++i) cmds += "SET " + hot(i) + " v\n";
    for (int i = 0; i < 300; ++i) cmds += "SET cold:" + std::to_string(i) + " c\n";
    for (int r = 0; r < 2; ++r)
      for (int i = 0; i < 40; ++i) cmds += "GET " + hot(i) + "\n";
    resp(d, cmds);
    REQUIRE(d.process().stop() == 0);
  }
  // Restarted with a storage rate limit of 10 fetches/s: the 40 saved hot keys take about
  // 3 s to load (burst 10, then 10/s), never more than the limit lets through.
  warpd_process d{args({"--storage-rate", "10"}), false};
  REQUIRE(d.wait_ready());
  REQUIRE(eventually([&] { return get_json(d, "/admin/stats")["warmup"]["loaded"] == 40; }, 20s));
  auto w = get_json(d, "/admin/stats");
  CHECK(w["warmup"]["failed"] == 0);
  const auto log = d.log();
  INFO(log);
  CHECK(log.find("hot keys saved at the last stop") != std::string::npos);
  // 40 fetches at 10/s with a burst of 10: at least 3 s, whatever the machine's speed.
  std::smatch m;
  REQUIRE(std::regex_search(log, m, std::regex{R"(done in (\d+) ms: 40 loaded)"}));
  CHECK(std::stol(m[1]) >= 2800);
  // Every saved key is in L1: reading them all hits.
  const auto hits0 = w["l1"]["hits"].get<std::uint64_t>();
  std::string reads;
  for (int i = 0; i < 40; ++i) reads += "GET " + hot(i) + "\n";
  resp(d, reads);
  // The sidecar's GET counts one L1 hit per key.
  CHECK(get_json(d, "/admin/stats")["l1"]["hits"].get<std::uint64_t>() - hits0 >= 40);
}
