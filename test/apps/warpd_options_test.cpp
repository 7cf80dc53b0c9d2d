// warpd's cluster options (node_config.cluster) and sidecar limits (resp_options): flags,
// config-file keys, validation errors, and that the values reach the node (/admin/config)
// and the sidecar (limits enforced on real connections).
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "test/sidecar/resp_client.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using namespace warp::test;

namespace {

json admin_config(const warpd_process& d) {
  httplib::Client client{"127.0.0.1", d.http_port()};
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  auto r = client.Get("/admin/config");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return json::parse(r->body);
}

// warpd with `args` after a memory-storage base; must fail with exit 2 and name `needle`.
void expect_usage_error(std::vector<std::string> args, const std::string& needle) {
  std::vector<std::string> argv{warpd_bin(), "--storage", "memory", "--http", "", "--resp", ""};
  // warpd refuses a repeated --listen: add the base one only when the case has none.
  if (std::find(args.begin(), args.end(), "--listen") == args.end())
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv, 20s);
  std::string shown;
  for (auto& a : args) shown += a + ' ';
  INFO(shown << "-> exit " << r.exit_code << ", stderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(r.out.find("ready") == std::string::npos);
}

}  // namespace

TEST_CASE("warpd rejects bad cluster and sidecar option values, naming the option") {
  expect_usage_error({"--heartbeat-interval", "0"}, "heartbeat-interval");
  expect_usage_error({"--heartbeat-interval", "soon"}, "heartbeat-interval");
  expect_usage_error({"--heartbeat-interval", "200ms", "--failure-timeout", "300ms"},
                     "failure-timeout: must be at least twice heartbeat-interval");
  expect_usage_error({"--discovery-interval", "0"}, "discovery-interval");
  expect_usage_error({"--discovery-dns", "warp.svc:http"}, "discovery-dns");
  expect_usage_error({"--discovery-dns", "warp.svc", "--listen", ""}, "discovery-dns: needs");
  expect_usage_error({"--ranges", "0"}, "ranges");
  expect_usage_error({"--ranges", "1000000"}, "ranges");
  expect_usage_error({"--batching", "maybe"}, "warp.batching");
  expect_usage_error({"--batch-max-records", "0"}, "batch-max-records");
  expect_usage_error({"--batch-max-records", "1000000"}, "batch-max-records");
  expect_usage_error({"--batch-max-bytes", "0"}, "batch-max-bytes");
  expect_usage_error({"--batch-target-records", "0"}, "batch-target-records");
  expect_usage_error({"--batch-target-records", "5000"},
                     "batch-target-records: must be between 1 and batch-max-records (4096)");
  expect_usage_error({"--batch-busy-rate", "fast"}, "--batch-busy-rate");
  expect_usage_error({"--batch-max-delay", "5x"}, "batch-max-delay");
  expect_usage_error({"--batch-max-delay", "2s"}, "batch-max-delay");
  expect_usage_error({"--owner-fetch-timeout", "0"}, "owner-fetch-timeout");
  expect_usage_error({"--max-clock-skew", "0"}, "max-clock-skew");
  expect_usage_error({"--max-clock-skew", "soon"}, "max-clock-skew");
  expect_usage_error({"--refresh-ahead", "100"}, "refresh-ahead");
  expect_usage_error({"--storage-breaker-cooldown", "0"}, "storage-breaker-cooldown");
  expect_usage_error({"--storage-rate", "lots"}, "--storage-rate");
  expect_usage_error({"--max-stale", "5x"}, "max-stale");
  expect_usage_error({"--pattern", "k=strong_local+rate=0"}, "option '+rate=0'");
  expect_usage_error({"--read-replicas", "0"}, "read-replicas: must be between 1 and 16");
  expect_usage_error({"--read-replicas", "17"}, "read-replicas: must be between 1 and 16");
  expect_usage_error({"--compress-above", "-1"}, "--compress-above");
  expect_usage_error({"--resp-max-clients", "0"}, "resp-max-clients");
  expect_usage_error({"--resp-idle-timeout", "1500ms"}, "resp-idle-timeout: must be whole seconds");
  expect_usage_error({"--resp-max-bulk-length", "0"}, "resp-max-bulk-length");
  expect_usage_error({"--resp-max-multibulk-length", "0"}, "resp-max-multibulk-length");
  expect_usage_error({"--resp-max-inline-length", "0"}, "resp-max-inline-length");
  expect_usage_error({"--resp-max-output-buffer", "0"}, "resp-max-output-buffer");

  SECTION("in the config file too") {
    temp_dir dir{"warpd-badopts"};
    auto write = [&](const std::string& body) {
      auto file = dir.str() + "/bad.conf";
      std::ofstream{file} << "warp {\n" << body << "\n}\n";
      return file;
    };
    expect_usage_error({"--config", write("  batching = 3")},
                       "warp.batching: expected true or false");
    expect_usage_error({"--config", write("  failure-timeout = \"abc\"")}, "failure-timeout");
    expect_usage_error({"--config", write("  ranges = \"many\"")}, "warp.ranges");
    expect_usage_error({"--config", write("  batch-max-delay = [1]")}, "warp.batch-max-delay");
  }
}

TEST_CASE("cluster and sidecar flags reach the node, the config file sets them too") {
  temp_dir dir{"warpd-clusteropts"};
  SECTION("flags") {
    warpd_process d{{"--storage",
                     "memory",
                     "--data-dir",
                     dir.str() + "/data",
                     "--heartbeat-interval",
                     "150ms",
                     "--failure-timeout",
                     "3s",
                     "--ranges",
                     "64",
                     "--batching",
                     "off",
                     "--batch-max-records",
                     "100",
                     "--batch-max-bytes",
                     "65536",
                     "--batch-max-delay",
                     "250us",
                     "--batch-busy-rate",
                     "0",
                     "--batch-target-records",
                     "50",
                     "--compress-above",
                     "0",
                     "--owner-fetch-timeout",
                     "750ms",
                     "--read-replicas",
                     "3",
                     "--discovery-interval",
                     "30s",
                     "--resp-max-clients",
                     "7",
                     "--resp-idle-timeout",
                     "60s",
                     "--resp-max-bulk-length",
                     "1048576",
                     "--resp-max-multibulk-length",
                     "64",
                     "--resp-max-inline-length",
                     "1024",
                     "--resp-max-output-buffer",
                     "2097152"}};
    REQUIRE(d.wait_ready());
    INFO(d.log());
    auto cfg = admin_config(d);
    INFO(cfg.dump(2));
    auto& c = cfg["cluster"];
    CHECK(c["heartbeat_interval_ms"] == 150);
    CHECK(c["failure_timeout_ms"] == 3000);
    CHECK(c["ranges"] == 64);
    CHECK(c["batching"] == false);
    CHECK(c["batch_max_records"] == 100);
    CHECK(c["batch_max_bytes"] == 65536);
    CHECK(c["batch_max_delay_us"] == 250);
    CHECK(c["batch_busy_rate"] == 0.0);
    CHECK(c["batch_target_records"] == 50);
    CHECK(c["compress_above"] == 0);
    CHECK(c["owner_fetch_timeout_ms"] == 750);
    CHECK(c["read_replicas"] == 3);
    CHECK(c["discovery_interval_ms"] == 30000);
    CHECK(c["discovery_dns"] == "");
    auto& r = cfg["resp_limits"];
    CHECK(r["max_clients"] == 7);
    CHECK(r["idle_timeout_s"] == 60);
    CHECK(r["max_bulk_length"] == 1048576);
    CHECK(r["max_multibulk_length"] == 64);
    CHECK(r["max_inline_length"] == 1024);
    CHECK(r["max_output_buffer"] == 2097152);
    // The node's own view agrees on the number of ranges.
    auto members = d.ctl({"--json", "members"});
    REQUIRE(members.exit_code == 0);
    CHECK(json::parse(members.out)["ranges"] == 64);
  }
  SECTION("defaults are cluster_options' and resp_options'") {
    warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data"}};
    REQUIRE(d.wait_ready());
    auto cfg = admin_config(d);
    INFO(cfg.dump(2));
    auto& c = cfg["cluster"];
    CHECK(c["heartbeat_interval_ms"] == 200);
    CHECK(c["failure_timeout_ms"] == 2000);
    CHECK(c["ranges"] == 271);
    CHECK(c["batching"] == true);
    CHECK(c["batch_max_records"] == 4096);
    CHECK(c["batch_max_bytes"] == 1048576);
    CHECK(c["batch_max_delay_us"] == 500);
    CHECK(c["batch_busy_rate"] == 20000.0);
    CHECK(c["batch_target_records"] == 256);
    CHECK(c["compress_above"] == 65536);
    CHECK(c["owner_fetch_timeout_ms"] == 500);
    CHECK(c["discovery_interval_ms"] == 10000);
    auto& r = cfg["resp_limits"];
    CHECK(r["max_clients"] == 10000);
    CHECK(r["idle_timeout_s"] == 0);
    CHECK(r["max_bulk_length"] == 536870912);
    CHECK(r["max_multibulk_length"] == 1048576);
    CHECK(r["max_inline_length"] == 65536);
    CHECK(r["max_output_buffer"] == 67108864);
  }
  SECTION("config file, and a flag overrides it") {
    auto file = dir.str() + "/warpd.conf";
    std::ofstream{file} << "warp {\n"
                           "  heartbeat-interval = 100ms   ; CAF duration literal\n"
                           "  failure-timeout = \"4s\"\n"
                           "  ranges = 32\n"
                           "  batching = false\n"
                           "  batch-max-delay = 750us\n"
                           "  owner-fetch-timeout = 250\n"
                           "  resp-idle-timeout = 5s\n"
                           "  resp-max-clients = 3\n"
                           "}\n";
    warpd_process d{{"--config", file, "--storage", "memory", "--data-dir", dir.str() + "/data",
                     "--ranges", "16"}};
    REQUIRE(d.wait_ready());
    auto cfg = admin_config(d);
    INFO(cfg.dump(2));
    auto& c = cfg["cluster"];
    CHECK(c["heartbeat_interval_ms"] == 100);
    CHECK(c["failure_timeout_ms"] == 4000);
    CHECK(c["ranges"] == 16);  // the flag wins
    CHECK(c["batching"] == false);
    CHECK(c["batch_max_delay_us"] == 750);
    CHECK(c["owner_fetch_timeout_ms"] == 250);
    CHECK(cfg["resp_limits"]["idle_timeout_s"] == 5);
    CHECK(cfg["resp_limits"]["max_clients"] == 3);
  }
}

TEST_CASE("the sidecar enforces --resp-max-clients and --resp-max-inline-length") {
  temp_dir dir{"warpd-resplimits"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data", "--resp-max-clients",
                   "1", "--resp-max-inline-length", "32"}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  auto port = static_cast<std::uint16_t>(std::stoi(d.resp().substr(d.resp().rfind(':') + 1)));
  resp_conn first{port};
  CHECK(first.cmd({"PING"}) == "PONG");
  {
    // The second client is over the bound: an error, then the connection closes.
    resp_conn second{port};
    auto reply = second.read(10000ms);
    CHECK(reply.find("max number of clients") != std::string::npos);
  }
  CHECK(first.cmd({"PING"}) == "PONG");  // the first is unaffected

  // An inline command longer than the bound is refused.
  first.send_raw("PING " + std::string(100, 'x') + "\r\n");
  CHECK(first.read(10000ms).find("too big inline request") != std::string::npos);
}
