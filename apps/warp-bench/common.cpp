// Helpers shared by the benchmarks (registry, memory measurement).
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "apps/warp-bench/bench.hpp"

namespace warp_bench {

namespace {
std::vector<subcommand_setup>& registry() {
  static std::vector<subcommand_setup> setups;
  return setups;
}
}  // namespace

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
