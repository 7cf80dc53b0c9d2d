// The sidecar's metrics with real clients: commands by name, errors by kind, connected
// clients and client-side-caching keys, and per-command latency histograms; checked by
// promtool too.
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <regex>
#include <string>

#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

// The value of the sample `series` (the whole text before the space) or -1.
double sample(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace

TEST_CASE("sidecar metrics: commands by name, errors by kind, clients, tracking keys") {
  auto python = find_program("python3");
  REQUIRE_FALSE(python.empty());
  auto redis_cli = find_program("redis-cli");
  REQUIRE_FALSE(redis_cli.empty());
  auto promtool = find_program("promtool");
  REQUIRE_FALSE(promtool.empty());
  temp_dir dir{"sidecar-metrics"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str(), "--name", "sm"}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  auto port = d.resp().substr(d.resp().rfind(':') + 1);
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{redis_cli, "-p", port};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 30s);
  };
  for (int i = 0; i < 3; ++i) REQUIRE(cli({"SET", "k" + std::to_string(i), "v"}).out == "OK\n");
  for (int i = 0; i < 5; ++i) REQUIRE(cli({"GET", "k1"}).out == "v\n");
  REQUIRE(cli({"RPUSH", "list", "a"}).out == "1\n");
  CHECK(cli({"GET", "list"}).out.find("WRONGTYPE") != std::string::npos);
  CHECK(cli({"NOSUCHCOMMAND", "x"}).out.find("unknown command") != std::string::npos);
  CHECK(cli({"GET"}).out.find("wrong number of arguments") != std::string::npos);

  // A client that stays connected with tracking on, reading two keys; the metrics are read
  // while it is still connected (the script scrapes them itself).
  auto script = dir.str() + "/track.py";
  std::ofstream{script} << R"PY(
import socket, sys, urllib.request
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    return s.recv(65536)
cmd("HELLO", "3")
cmd("CLIENT", "TRACKING", "ON")
cmd("GET", "k0")
cmd("GET", "k2")
print(urllib.request.urlopen("http://" + sys.argv[2] + "/metrics", timeout=10).read().decode())
)PY";
  auto r = run({python, script, port, d.http()}, 30s);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto& text = r.out;
  INFO(text);
  const std::string node = "node=\"sm\"";
  CHECK(sample(text, "warp_resp_commands_total{" + node + ",command=\"set\"}") == 3);
  CHECK(sample(text, "warp_resp_commands_total{" + node + ",command=\"get\"}") >= 8);
  CHECK(sample(text, "warp_resp_commands_total{" + node + ",command=\"unknown\"}") == 1);
  CHECK(sample(text, "warp_resp_errors_total{" + node + ",kind=\"WRONGTYPE\"}") == 1);
  CHECK(sample(text, "warp_resp_errors_total{" + node + ",kind=\"ERR\"}") == 2);
  CHECK(sample(text, "warp_resp_connected_clients{" + node + "}") >= 1);
  CHECK(sample(text, "warp_resp_tracking_keys{" + node + "}") == 2);
  CHECK(sample(text, "warp_resp_command_duration_seconds_count{" + node + ",command=\"set\"}") ==
        3);
  CHECK(sample(text, "warp_resp_command_duration_seconds_bucket{" + node +
                         ",command=\"set\",le=\"+Inf\"}") == 3);
  // The node's own GET histogram saw the sidecar's reads (L1 hits included).
  CHECK(sample(text, "warp_get_duration_seconds_count{" + node + "}") >= 7);
  auto file = dir.str() + "/metrics.txt";
  std::ofstream{file} << text;
  auto check = run({"sh", "-c", promtool + " check metrics < " + file});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}
