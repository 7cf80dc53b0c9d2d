// warpd with its RESP sidecar: a Redis client and warpctl see the same node.
#include <catch2/catch.hpp>

#include <signal.h>

#include <memory>
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

TEST_CASE("warpd --resp-allow-flush=false refuses FLUSHDB and FLUSHALL and keeps the keys") {
  auto redis_cli = find_program("redis-cli");
  REQUIRE_FALSE(redis_cli.empty());
  temp_dir dir{"warpd-noflush"};
  auto start = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"--storage", "memory", "--data-dir", dir.str() + "/data"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<warpd_process>(args);
  };
  auto cli_for = [&](const warpd_process& d) {
    auto port = d.resp().substr(d.resp().rfind(':') + 1);
    return [redis_cli, port](std::vector<std::string> args) {
      std::vector<std::string> argv{redis_cli, "-h", "127.0.0.1", "-p", port};
      argv.insert(argv.end(), args.begin(), args.end());
      return run(argv, 30s);
    };
  };

  {
    auto d = start({"--resp-allow-flush=false"});
    REQUIRE(d->wait_ready());
    INFO(d->log());
    auto cli = cli_for(*d);
    REQUIRE(cli({"SET", "keep", "me"}).out == "OK\n");
    for (auto cmd : {"FLUSHDB", "FLUSHALL", "flushall"}) {
      INFO(cmd);
      auto r = cli({cmd});
      CHECK(r.out.find("disabled") != std::string::npos);
      CHECK(r.out.find("--resp-allow-flush") != std::string::npos);
    }
    CHECK(cli({"GET", "keep"}).out == "me\n");
    CHECK(cli({"DBSIZE"}).out == "1\n");
    CHECK(d->process().stop(SIGTERM, 20s) == 0);
  }
  {
    // The default keeps Redis's behaviour.
    auto d = start({});
    REQUIRE(d->wait_ready());
    INFO(d->log());
    auto cli = cli_for(*d);
    REQUIRE(cli({"SET", "gone", "soon"}).out == "OK\n");
    CHECK(cli({"FLUSHALL"}).out == "OK\n");
    CHECK(cli({"DBSIZE"}).out == "0\n");
    CHECK(d->process().stop(SIGTERM, 20s) == 0);
  }
}
