// warpd with its RESP sidecar: a Redis client and warpctl see the same node.
#include <catch2/catch.hpp>

#include <signal.h>

#include <string>

#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

TEST_CASE("warpd --resp serves Redis clients over the same node warpctl talks to") {
  auto redis_cli = find_program("redis-cli");
  // A missing client fails the test: scripts/deps.sh installs redis-tools.
  REQUIRE_FALSE(redis_cli.empty());
  temp_dir dir{"warpd-resp"};
  warpd_process d{
      {"--storage", "memory", "--data-dir", dir.str() + "/data", "--resp-password", "s3cret"}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  REQUIRE(d.resp() != "off");
  auto port = d.resp().substr(d.resp().rfind(':') + 1);
  auto cli = [&](std::vector<std::string> args, bool auth = true) {
    std::vector<std::string> argv{redis_cli, "-h", "127.0.0.1", "-p", port};
    if (auth) argv.insert(argv.end(), {"--no-auth-warning", "-a", "s3cret"});
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 30s);
  };

  auto set = cli({"SET", "greeting", "hello"});
  CHECK(set.out == "OK\n");
  auto get = d.ctl({"get", "greeting"});
  CHECK(get.exit_code == 0);
  CHECK(get.out == "hello\n");

  REQUIRE(d.ctl({"set", "from:ctl", "42"}).exit_code == 0);
  CHECK(cli({"GET", "from:ctl"}).out == "42\n");

  // --resp-password makes AUTH mandatory.
  auto noauth = cli({"GET", "from:ctl"}, false);
  CHECK(noauth.out.find("NOAUTH") != std::string::npos);

  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}
