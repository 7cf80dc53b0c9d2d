// warp-bench: dispatches to the subcommands registered by the other files of this folder.
#include <iostream>

#include "apps/warp-bench/bench.hpp"

int main(int argc, char** argv) {
  CLI::App app{"warp-bench: Warp benchmarks (each prints its figures; --json adds one JSON line)"};
  for (warp_bench::subcommand_setup setup : warp_bench::subcommands()) setup(app);
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
