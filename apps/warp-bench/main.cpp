// warp-bench: dispatches to the subcommands registered by the other files of this folder.
#include <iostream>

#include "apps/warp-bench/bench.hpp"
#include "warp/build_info.hpp"

int main(int argc, char** argv) {
  CLI::App app{"warp-bench: Warp benchmarks (each prints its figures; --json adds one JSON line)"};
  for (warp_bench::subcommand_setup setup : warp_bench::subcommands()) setup(app);
  app.set_version_flag("--version", warp::version_line("warp-bench"), "Print the version and commit, then exit");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
