// warpd's configuration is strict: numeric flags are bounded (exit 2, naming the flag and its
// range), config files with unknown sections or keys, directories and unreadable files are
// refused, conflicting duplicate key patterns are refused, and SIGTERM is honoured during a
// slow startup.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "warp/node.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

command_result run_warpd(std::vector<std::string> args) {
  std::vector<std::string> argv{warpd_bin(), "--storage", "memory", "--http", "", "--resp", ""};
  if (std::find(args.begin(), args.end(), "--listen") == args.end())
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, 30s);
}

void expect_usage(std::vector<std::string> args, const std::string& needle) {
  auto start = std::chrono::steady_clock::now();
  auto r = run_warpd(args);
  std::string shown;
  for (auto& a : args) shown += a + ' ';
  INFO(shown << "-> exit " << r.exit_code << ", stderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(r.out.find("ready") == std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
}

std::string config_file(const temp_dir& dir, const std::string& name, const std::string& text) {
  auto path = dir.str() + "/" + name;
  std::ofstream{path} << text;
  return path;
}

}  // namespace

TEST_CASE("warpd bounds every numeric flag, naming the flag and its range") {
  expect_usage({"--threads", "100000"}, "--threads: must be between 1 and 256, got 100000");
  expect_usage({"--threads", "0"}, "--threads: must be between 1 and 256");
  expect_usage({"--max-value-size", "0"}, "--max-value-size: must be between 1 and");
  expect_usage({"--max-value-size", "2000000000"}, "--max-value-size: must be between 1 and");
  expect_usage({"--max-key-size", "0"}, "--max-key-size: must be between 1 and");
  expect_usage({"--l1-max-bytes", "9000000000000000"}, "--l1-max-bytes: must be between 0 and");
  expect_usage({"--resp-max-clients", "0"}, "--resp-max-clients: must be between 1 and");
  expect_usage({"--resp-max-inline-length", "999999999999"}, "--resp-max-inline-length");
  expect_usage({"--admin-max-connections", "0"}, "--admin-max-connections");
  expect_usage({"--admin-max-body", "999999999"}, "--admin-max-body");
  expect_usage({"--admin-request-timeout", "10ms"},
               "--admin-request-timeout: must be between 100ms and 300000ms, got 10ms");
  expect_usage({"--heartbeat-interval", "2h"}, "--heartbeat-interval: must be between 1ms and");
  expect_usage({"--strong-timeout", "1d"}, "--strong-timeout");
  expect_usage({"--default-ttl", "100000d"}, "--default-ttl");
  expect_usage({"--threads", "-3"}, "--threads");
  expect_usage({"--listen", "127.0.0.1:70000"}, "port must be a number 0-65535");
}

TEST_CASE("bounds apply to config-file values as to flags") {
  temp_dir dir{"warpd-cfg-bounds"};
  auto f = config_file(dir, "big.conf", "scheduler { max-threads = 100000 }\n");
  expect_usage({"--config", f}, "--threads: must be between 1 and 256");
  auto g = config_file(dir, "zero.conf", "warp { max-value-size = 0 }\n");
  expect_usage({"--config", g}, "--max-value-size");
}

TEST_CASE("a config file with an unknown section or key is refused") {
  temp_dir dir{"warpd-cfg-unknown"};
  expect_usage({"--config", config_file(dir, "wrap.conf", "wrap {\n  resp-password = \"x\"\n}\n")},
               "unknown section 'wrap'");
  expect_usage({"--config", config_file(dir, "sched.conf", "scheduler {\n  max-thread = 4\n}\n")},
               "unknown option 'scheduler.max-thread'");
  expect_usage({"--config", config_file(dir, "top.conf", "resp-password = \"x\"\n")},
               "unknown option 'resp-password'");
  expect_usage({"--config", config_file(dir, "warp.conf", "warp {\n  resp-pasword = \"x\"\n}\n")},
               "resp-pasword");
  // Known sections of CAF and warp's own keys are fine.
  auto good = config_file(dir, "good.conf",
                          "warp {\n  resp-password = \"x\"\n  max-key-size = 100\n}\n"
                          "scheduler {\n  max-threads = 2\n}\n"
                          "middleman {\n  heartbeat-interval = 1s\n}\n");
  warpd_process d{{"--config", good, "--storage", "memory"}};
  INFO(d.log());
  CHECK(d.wait_ready());
}

TEST_CASE("a directory, a missing or an unreadable file as --config is refused") {
  temp_dir dir{"warpd-cfg-dir"};
  expect_usage({"--config", dir.str()}, "is not a regular file");
  expect_usage({"--config", dir.str() + "/missing.conf"}, "cannot open config file");
  auto locked = config_file(dir, "locked.conf", "warp { max-key-size = 100 }\n");
  ::chmod(locked.c_str(), 0);
  if (::geteuid() != 0) {  // root reads a mode-000 file anyway
    expect_usage({"--config", locked}, "cannot open config file");
  }
}

TEST_CASE("the same glob with two policies is refused, with the same policy it counts once") {
  expect_usage({"--pattern", "user:*=strong_local", "--pattern", "user:*=eventual_distributed"},
               "conflicts with");
  expect_usage({"--pattern", "user:*=strong_local:1m", "--pattern", "user:*=strong_local:2m"},
               "conflicts with");
  temp_dir dir{"warpd-dup-glob"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str(), "--pattern",
                   "user:*=strong_local:1m", "--pattern", "user:*=strong_local:1m"}};
  INFO(d.log());
  CHECK(d.wait_ready());
}

TEST_CASE("warpd honours SIGTERM while its startup waits for a locked SQLite file") {
  temp_dir dir{"warpd-sigterm-start"};
  auto db = dir.str() + "/warp.db";
  // Another process holds the database's write lock: warpd's open waits its busy timeout.
  auto python = find_program("python3");
  REQUIRE_FALSE(python.empty());
  auto holder_script = config_file(dir, "hold.py",
                                   "import sqlite3, sys, time\n"
                                   "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                                   "c.execute('CREATE TABLE t (x)')\n"
                                   "c.execute('BEGIN EXCLUSIVE')\n"
                                   "print('locked', flush=True)\n"
                                   "time.sleep(60)\n");
  child_process holder{{python, holder_script, db}, dir.str() + "/holder.log"};
  REQUIRE(eventually([&] { return holder.log().find("locked") != std::string::npos; }, 20s));
  warpd_process d{{"--storage", "sqlite:" + db, "--data-dir", dir.str()}};
  std::this_thread::sleep_for(500ms);
  REQUIRE(d.process().running());  // still starting (waiting for the lock)
  auto t0 = std::chrono::steady_clock::now();
  d.process().signal(SIGTERM);
  auto code = d.process().wait(10s);
  auto took = std::chrono::steady_clock::now() - t0;
  INFO(d.log());
  CHECK(code == 128 + SIGTERM);
  CHECK(took < 1s);
  CHECK(d.log().find("during startup") != std::string::npos);
}

TEST_CASE("node::start refuses the same glob with two policies (embedded configuration)") {
  warp::node_config cfg;
  cfg.listen = "";
  cfg.storage = "memory";
  cfg.scheduler_threads = 1;
  cfg.patterns = {"a*=strong_local", "b*=strong_local:1s", "a*=eventual_distributed"};
  auto refused = warp::node::start(cfg);
  REQUIRE_FALSE(refused);
  CHECK(refused.err().message().find("conflicts with 'a*=strong_local'") != std::string::npos);
  cfg.patterns = {"a*=strong_local:5s", "a*=strong_local:5s"};
  auto started = warp::node::start(cfg);
  REQUIRE(started);
  auto entries = (*started)->patterns().entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].policy.ttl == std::chrono::seconds{5});
}
