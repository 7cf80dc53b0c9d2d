// `warp-bench resp`: redis-benchmark against warpd's RESP sidecar and against a redis-server
// started in the same run (GET SET INCR MSET LPUSH LPOP ZADD ZRANGE, and a MULTI/EXEC of 5
// commands through `warp-bench resp-tx-load`; -c 50, with and without -P 50), the ratio per
// row, and with --json one JSON object on the last line. The work is done by
// sidecar/bench/resp_bench.sh (it manages both servers); this subcommand finds the script
// in the source tree and warpd next to this binary in the build tree.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "apps/warp-bench/bench.hpp"

namespace {

namespace fs = std::filesystem;

struct resp_args {
  std::string warpd;
  int requests = 200000;
  int pipelined_requests = 2000000;
  int repeat = 2;
  int keyspace = 0;
  bool json = false;
};

int run(const resp_args& a) {
  fs::path script = fs::path(__FILE__).parent_path() / "../../sidecar/bench/resp_bench.sh";
  if (!fs::exists(script)) {
    std::cerr << "warp-bench resp: " << script << " not found (run from a source checkout)\n";
    return 1;
  }
  std::string warpd = a.warpd;
  if (warpd.empty()) {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) warpd = (self.parent_path() / "../warpd/warpd").lexically_normal().string();
  }
  std::vector<std::string> args = {"bash",
                                   fs::canonical(script).string(),
                                   "--requests",
                                   std::to_string(a.requests),
                                   "--pipelined-requests",
                                   std::to_string(a.pipelined_requests),
                                   "--repeat",
                                   std::to_string(a.repeat),
                                   "--keyspace",
                                   std::to_string(a.keyspace)};
  if (!warpd.empty()) {
    args.push_back("--warpd");
    args.push_back(warpd);
  }
  {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {  // the MULTI/EXEC row's load generator (resp_tx_load.cpp)
      args.push_back("--warp-bench");
      args.push_back(self.string());
    }
  }
  if (a.json) args.push_back("--json");
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::cout.flush();
  ::execvp("bash", argv.data());
  std::cerr << "warp-bench resp: cannot run bash\n";
  return 1;
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("resp", "RESP sidecar vs redis-server under redis-benchmark");
  auto a = std::make_shared<resp_args>();
  cmd->add_option("--warpd", a->warpd, "warpd binary (default: the one of this build tree)");
  cmd->add_option("--requests", a->requests, "requests per unpipelined run");
  cmd->add_option("--pipelined-requests", a->pipelined_requests, "requests per -P 50 run");
  cmd->add_option("--repeat", a->repeat, "runs per row and server (the best counts)");
  cmd->add_option("--keyspace", a->keyspace, "random keys (-r); 0 = redis-benchmark's default");
  cmd->add_flag("--json", a->json, "only the JSON line");
  cmd->callback([a] { std::exit(run(*a)); });
}

const bool registered = warp_bench::register_subcommand(&setup);

}  // namespace
