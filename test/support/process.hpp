// Test support: start real processes (warpd, redis-server, postgres, ...) on free loopback
// ports, wait for them, signal them by PID, run commands and capture their output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace warp::test {

using namespace std::chrono_literals;

/// A TCP port on 127.0.0.1 nobody listens on right now (and not handed out before by
/// this process).
std::uint16_t free_port();

/// A port on 127.0.0.1 bound but never listened on, for as long as the object lives:
/// connections to it are refused, and no other process (another test's server asking the
/// kernel for a free port) can take it meanwhile, as it could a free_port() number.
class refused_port {
 public:
  refused_port();
  ~refused_port();
  refused_port(const refused_port&) = delete;
  refused_port& operator=(const refused_port&) = delete;
  std::uint16_t port() const noexcept { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

/// True once something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout = 10s);

/// Path of a binary built in this tree, e.g. binary("apps/warpd/warpd").
std::string binary(const std::string& relative);

/// Full path of a program on PATH (or in the usual sbin/lib folders); empty if missing.
std::string find_program(const std::string& name);

/// A fresh directory under /tmp, removed (recursively) on destruction.
class temp_dir {
 public:
  explicit temp_dir(const std::string& prefix = "warp-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

/// A child process. Its stdout and stderr go to `log_path` (or /dev/null). Killed with
/// SIGKILL on destruction if still running.
class child_process {
 public:
  child_process(std::vector<std::string> argv, std::string log_path = {});
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  /// Sends `sig` and waits up to `timeout` for the exit; SIGKILL after that.
  /// Returns the exit code (128 + signal number when killed by a signal).
  int stop(int sig = 15, std::chrono::milliseconds timeout = 10s);
  /// Waits for exit; -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_path_; }
  std::string log() const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

struct command_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs argv to completion (killed after `timeout`), capturing stdout and stderr.
command_result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 60s);

}  // namespace warp::test
