// Starts a real warpd and drives it with the real warpctl.
#pragma once

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

namespace warp::test {

inline std::string warpd_bin() {
  return binary("apps/warpd/warpd");
}
inline std::string warpctl_bin() {
  return binary("apps/warpctl/warpctl");
}

/// One warpd process. Listens on port 0 (any free port) unless the args say otherwise and
/// learns the bound ports from its ready line.
class warpd_process {
 public:
  /// With `defaults`, `args` follow `--listen 127.0.0.1:0 --http 127.0.0.1:0 --resp
  /// 127.0.0.1:0 --log-level warn`; warpd rejects a repeated single-value flag, so pass `defaults =
  /// false` to give those flags yourself.
  explicit warpd_process(std::vector<std::string> args, bool defaults = true,
                         const std::string& log_dir = {})
      : log_dir_(log_dir.empty() ? own_log_dir_.str() : log_dir) {
    std::vector<std::string> argv{warpd_bin()};
    if (defaults) {
      for (auto& a : {"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--resp", "127.0.0.1:0",
                      "--log-level", "warn"})
        argv.emplace_back(a);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    static int counter = 0;
    log_path_ = log_dir_ + "/warpd-" + std::to_string(++counter) + ".log";
    proc_ = std::make_unique<child_process>(argv, log_path_);
  }

  /// Waits for the ready line; false if warpd exited (or stayed silent) instead.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds{30}) {
    static const std::regex ready_re{R"(ready: node (\S+) http (\S+)(?: resp (\S+))?)"};
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto text = proc_->log();
      std::smatch m;
      if (std::regex_search(text, m, ready_re)) {
        node_ = m[1];
        http_ = m[2];
        resp_ = m[3].matched ? std::string{m[3]} : std::string{"off"};
        return true;
      }
      if (!proc_->running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return false;
  }

  /// HOST:PORT of the control endpoint (for warpctl --node).
  const std::string& node() const { return node_; }
  /// HOST:PORT of the admin HTTP endpoint, or "off".
  const std::string& http() const { return http_; }
  /// HOST:PORT of the RESP sidecar, or "off".
  const std::string& resp() const { return resp_; }
  std::uint16_t http_port() const {
    return static_cast<std::uint16_t>(std::stoi(http_.substr(http_.rfind(':') + 1)));
  }
  std::string log() const { return proc_->log(); }
  child_process& process() { return *proc_; }

  /// warpctl --node <this> args...
  command_result ctl(std::vector<std::string> args) const {
    std::vector<std::string> argv{warpctl_bin(), "--node", node_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, std::chrono::seconds{30});
  }

 private:
  temp_dir own_log_dir_{"warpd-log"};
  std::string log_dir_;
  std::string log_path_;
  std::unique_ptr<child_process> proc_;
  std::string node_;
  std::string http_;
  std::string resp_;
};

/// Flags of member `i` of a test cluster whose members listen on `ports` (the other members
/// are its seeds): memory storage, admin HTTP on any free port, no sidecar, fast heartbeats.
/// For warpd_process{..., false}.
inline std::vector<std::string> cluster_member_args(const std::vector<std::uint16_t>& ports,
                                                    std::size_t i, const std::string& dir,
                                                    std::vector<std::string> extra = {}) {
  std::string peers;
  for (std::size_t j = 0; j < ports.size(); ++j) {
    if (j == i) continue;
    if (!peers.empty()) peers += ',';
    peers += "127.0.0.1:" + std::to_string(ports[j]);
  }
  std::vector<std::string> a{
      "--name", "n" + std::to_string(i), "--listen", "127.0.0.1:" + std::to_string(ports[i]),
      "--http", "127.0.0.1:0", "--resp", "", "--storage", "memory", "--data-dir",
      dir + "/n" + std::to_string(i), "--log-level", "warn", "--heartbeat-interval", "100ms",
      // Each member's memory storage is its own: these clusters test
      // the sync bus, not shared storage (docs/operations.md).
      "--allow-unshared-storage"};
  if (!peers.empty()) a.insert(a.end(), {"--peers", peers});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

/// Three warpd on loopback with the strong Raft engine and a sidecar each, driven by redis-py
/// scripts (Debian's python3-redis, under /usr/bin/python3). `extra` holds the flags after
/// the cluster's own (patterns, tick, timeouts); a node that never becomes ready throws with
/// its log.
class raft_redis_py_cluster {
 public:
  raft_redis_py_cluster(const std::string& prefix, const std::vector<std::string>& extra)
      : dir{prefix} {
    for (int i = 0; i < 3; ++i) ports.push_back(free_port());
    for (std::size_t i = 0; i < 3; ++i) {
      auto a = cluster_member_args(ports, i, dir.str(), extra);
      for (std::size_t k = 0; k + 1 < a.size(); ++k)
        if (a[k] == "--resp") a[k + 1] = "127.0.0.1:0";
      procs.push_back(std::make_unique<warpd_process>(a, false, dir.str()));
      if (!procs.back()->wait_ready())
        throw std::runtime_error("warpd " + std::to_string(i) + " not ready:\n" +
                                 procs.back()->log());
    }
  }

  std::string resp_port(std::size_t i) const {
    auto& resp = procs[i]->resp();
    return resp.substr(resp.rfind(':') + 1);
  }

  /// Runs a redis-py script that sees the nodes' RESP ports as `ports` and `conn(i)`.
  command_result py(const std::string& body, std::vector<std::string> args = {}) const {
    auto path = dir.str() + "/script" + std::to_string(scripts_++) + ".py";
    std::ofstream{path} << "import sys, redis, socket, random, threading\nports = [" << resp_port(0)
                        << ", " << resp_port(1) << ", " << resp_port(2) << "]\n"
                        << "def conn(i): return redis.Redis(host='127.0.0.1', port=ports[i], "
                           "socket_timeout=60, decode_responses=True)\n"
                        << body;
    std::vector<std::string> argv{"/usr/bin/python3", path};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, std::chrono::seconds{300});
  }

  /// Every node answers a SET of `key_prefix`probeN (a strong key once groups elected).
  bool wait_serving(const std::string& key_prefix) const {
    return eventually(
        [&] {
          auto r = py("for i in range(3): conn(i).set('" + key_prefix +
                      "probe%d' % i, 'p')\nprint('ok')\n");
          return r.exit_code == 0 && r.out == "ok\n";
        },
        std::chrono::seconds{60});
  }

  temp_dir dir;
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<warpd_process>> procs;

 private:
  mutable int scripts_ = 0;
};

}  // namespace warp::test
