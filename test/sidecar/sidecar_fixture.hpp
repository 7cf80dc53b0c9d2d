// Starts a real warpd with the RESP sidecar on a free port (memory storage by default), and
// a real redis-server to compare it with.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test/support/process.hpp"

namespace warp::test {

struct warpd_sidecar {
  temp_dir dir{"warp-sidecar"};
  std::uint16_t port = 0;
  std::unique_ptr<child_process> proc;

  /// `storage`: warpd's --storage spec (memory, sqlite:PATH, a PostgreSQL URI).
  explicit warpd_sidecar(std::vector<std::string> extra = {}, std::string storage = "memory") {
    auto bin = binary("apps/warpd/warpd");
    INFO("warpd binary: " << bin);
    REQUIRE(std::filesystem::exists(bin));
    port = free_port();
    std::vector<std::string> argv = {bin,
                                     "--listen",
                                     "",
                                     "--http",
                                     "",
                                     "--storage",
                                     storage,
                                     "--data-dir",
                                     dir.str(),
                                     "--resp",
                                     "127.0.0.1:" + std::to_string(port),
                                     "--log-level",
                                     "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<child_process>(argv, dir.str() + "/warpd.log");
    bool up = wait_for_port(port, std::chrono::seconds{20});
    INFO("warpd log:\n" << proc->log());
    REQUIRE(up);
  }
  ~warpd_sidecar() {
    if (proc) proc->stop();
  }

  /// redis-cli with `args` (non-interactive), stdout+stderr.
  std::string cli(const std::vector<std::string>& args) const {
    auto rc = find_program("redis-cli");
    REQUIRE_FALSE(rc.empty());  // redis-tools must be installed: fail loudly
    std::vector<std::string> argv = {rc, "-p", std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    return r.out + r.err;
  }
};

/// A real redis-server on a free port, no persistence: the reference the sidecar's replies
/// are compared with.
struct redis_server {
  temp_dir dir{"warp-redis"};
  std::uint16_t port = 0;
  std::unique_ptr<child_process> proc;
  redis_server() {
    auto bin = find_program("redis-server");
    REQUIRE_FALSE(bin.empty());  // redis-server must be installed: fail loudly
    port = free_port();
    proc = std::make_unique<child_process>(
        std::vector<std::string>{bin, "--port", std::to_string(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", dir.str()},
        dir.str() + "/redis.log");
    REQUIRE(wait_for_port(port, 10s));
  }
  ~redis_server() {
    if (proc) proc->stop();
  }
};

}  // namespace warp::test
