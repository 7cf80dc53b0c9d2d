// Test harness: N `warpd` processes on free loopback ports forming one cluster over a
// shared SQLite database, a CAF client to drive them (the control protocol), and fault
// injection: kill -9 and restart, SIGSTOP/SIGCONT (a paused node is a partitioned node).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test/support/process.hpp"
#include "warp/error.hpp"

namespace caf {
class actor_system;
class actor_system_config;
}  // namespace caf

namespace warp::test {

class warpd_cluster {
 public:
  /// Starts `n` nodes (all seeds of each other); extra flags go to every node.
  explicit warpd_cluster(std::size_t n, std::vector<std::string> extra_flags = {});
  ~warpd_cluster();

  std::size_t size() const { return ports_.size(); }
  std::uint16_t port(std::size_t i) const { return ports_[i]; }
  child_process* proc(std::size_t i) { return procs_[i].get(); }

  /// (Re)starts node i (same name, port and storage) and waits for its listener.
  void start(std::size_t i);
  void kill9(std::size_t i);
  void pause(std::size_t i);
  void resume(std::size_t i);

  /// True once every running, unpaused node sees exactly `up` members up.
  bool wait_converged(std::size_t up, std::chrono::milliseconds limit = std::chrono::seconds(20));
  /// The view of node i as JSON (members + stats), or an error.
  result<std::string> members(std::size_t i);

  // -- the control protocol ---------------------------------------------------------
  result<std::string> get(std::size_t i, const std::string& key);
  result<void> set(std::size_t i, const std::string& key, const std::string& value);
  /// What node i serves for key: the value, "<not_found>" or "<error code>".
  std::string read(std::size_t i, const std::string& key);

 private:
  std::vector<std::string> argv(std::size_t i) const;

  temp_dir dir_{"warp-cluster"};
  std::vector<std::uint16_t> ports_;
  std::vector<std::uint16_t> http_ports_;
  std::vector<std::uint16_t> resp_ports_;
  std::vector<std::unique_ptr<child_process>> procs_;
  std::vector<bool> paused_;
  std::vector<std::string> extra_;
  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
};

}  // namespace warp::test
