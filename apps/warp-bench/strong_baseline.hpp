// warp-bench strong, second part: the same workload (SET, GET, INCR at 1, 16 and 64
// concurrent clients) against 3 warpd processes (strong_distributed keys through the RESP
// sidecar) and against a 3-member etcd cluster started in the same run (v3 JSON gateway,
// linearizable reads), printed side by side with Warp/etcd ratios. See docs/benchmarks.md,
// "Strong mode against etcd".
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace warp_bench {

struct baseline_args {
  double seconds = 3;
  std::vector<std::size_t> clients{1, 16, 64};
  std::size_t keys = 10'000;
  std::size_t value_size = 100;
  /// Extra arguments for every warpd started (e.g. --strong-engine=raft).
  std::vector<std::string> warpd_args;
  /// Binaries; empty: warpd next to this binary in the build tree, etcd from PATH.
  std::string warpd;
  std::string etcd;
  /// Parent of every data dir (Warp's and etcd's: the same medium); empty: /tmp.
  std::string data_dir;
};

/// Runs the comparison and prints it; the figures as JSON (for --json). Exits the process
/// with a message when a server cannot be started (etcd missing is an error, not a skip).
nlohmann::json run_etcd_baseline(const baseline_args& a);

}  // namespace warp_bench
