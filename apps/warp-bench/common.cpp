// Helpers shared by the benchmarks (registry, memory measurement).
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "apps/warp-bench/bench.hpp"
#include "warp/l1.hpp"

namespace warp_bench {

namespace {
std::vector<subcommand_setup>& registry() {
  static std::vector<subcommand_setup> setups;
  return setups;
}
}  // namespace

std::vector<std::uint32_t> zipf_trace(std::size_t n, double skew, std::size_t length,
                                      std::uint64_t seed) {
  std::vector<double> cdf(n);
  double sum = 0;
  for (std::size_t k = 0; k < n; ++k) cdf[k] = (sum += 1.0 / std::pow(double(k + 1), skew));
  std::vector<std::uint32_t> perm(n);
  for (std::size_t i = 0; i < n; ++i) perm[i] = static_cast<std::uint32_t>(i);
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64{seed ^ 0x5bd1e995});
  std::mt19937_64 rng{seed};
  std::uniform_real_distribution<double> u(0.0, sum);
  std::vector<std::uint32_t> seq(length);
  for (auto& s : seq) {
    const std::size_t rank = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    s = perm[std::min(rank, n - 1)];
  }
  return seq;
}

hit_ratio_result measure_hit_ratio(const std::vector<std::string>& keys,
                                   const std::vector<std::uint32_t>& trace, std::size_t capacity) {
  hit_ratio_result out;
  const auto value = warp::make_buffer(std::string(100, 'v'));
  for (int policy = 0; policy < 2; ++policy) {
    warp::l1_options o;
    o.purge_interval = std::chrono::milliseconds{0};
    o.max_entries = capacity;
    o.admission = policy == 0 ? warp::l1_admission::none : warp::l1_admission::tinylfu;
    warp::l1_store store{o};
    std::size_t hits = 0, counted = 0;
    const std::size_t warm = trace.size() / 10;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < trace.size(); ++i) {
      const std::string& k = keys[trace[i]];
      const bool hit = store.read(k, [](std::string_view, const warp::l1_entry_info&) {});
      if (!hit) store.put(k, value);
      if (i >= warm) {
        ++counted;
        hits += hit;
      }
    }
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
        double(std::max<std::size_t>(trace.size(), 1));
    const double ratio = double(hits) / double(std::max<std::size_t>(counted, 1));
    if (policy == 0) {
      out.lru = ratio;
      out.lru_ns = ns;
    } else {
      out.tinylfu = ratio;
      out.tinylfu_ns = ns;
      out.tinylfu_rejects = store.stats().admission_rejects;
    }
  }
  return out;
}

bool register_subcommand(subcommand_setup setup) {
  registry().push_back(setup);
  return true;
}

const std::vector<subcommand_setup>& subcommands() {
  return registry();
}

std::size_t rss_bytes() {
  std::ifstream statm{"/proc/self/statm"};
  std::size_t total_pages = 0, resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

double run_in_child(const std::function<double()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    const double result = fn();
    [[maybe_unused]] auto n = write(fds[1], &result, sizeof result);
    _exit(0);  // skip destructors: the figure is taken, tearing down 1M entries is waste
  }
  close(fds[1]);
  double result = -1;
  if (read(fds[0], &result, sizeof result) != static_cast<ssize_t>(sizeof result)) result = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return result;
}

}  // namespace warp_bench
