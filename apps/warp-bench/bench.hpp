// warp-bench: one executable, one subcommand per benchmark. Each subcommand lives in its
// own .cpp and registers itself at static-initialisation time:
//
//   namespace { void setup(CLI::App& app) { auto* cmd = app.add_subcommand("l1", "...");
//                                           cmd->callback([] { ... }); } }
//   static const bool registered = warp_bench::register_subcommand(&setup);
//
// so adding `warp-bench cluster` is adding cluster_bench.cpp (the folder is globbed).
// Convention for every benchmark: human-readable lines, and with --json the same figures
// as ONE JSON object on the last line of stdout.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace warp_bench {

using subcommand_setup = void (*)(CLI::App& app);

/// Registers a subcommand; returns true so it can initialise a static.
bool register_subcommand(subcommand_setup setup);
const std::vector<subcommand_setup>& subcommands();

/// Resident set size of this process in bytes (from /proc/self/statm).
std::size_t rss_bytes();

/// Zipf(`skew`) indexes over `n` keys, `length` long, ranks through a random permutation
/// (hot keys spread over the key space, not the first ones).
std::vector<std::uint32_t> zipf_trace(std::size_t n, double skew, std::size_t length,
                                      std::uint64_t seed);

/// The hit ratio a bounded L1 of `capacity` entries reaches on `trace` (indexes into
/// `keys`; a miss fills, as the read-through does), with sampled LRU alone and with TinyLFU
/// in front of it. The first 10% of the trace warms the cache and is not counted.
struct hit_ratio_result {
  double lru = 0, tinylfu = 0;        ///< hit ratios
  double lru_ns = 0, tinylfu_ns = 0;  ///< time per lookup (+ fill on a miss)
  std::uint64_t tinylfu_rejects = 0;
};
hit_ratio_result measure_hit_ratio(const std::vector<std::string>& keys,
                                   const std::vector<std::uint32_t>& trace, std::size_t capacity);

/// Runs `fn` in a forked child and returns the number it produced (or -1 if the child
/// failed). Memory benchmarks use it so each measurement starts from the same heap.
double run_in_child(const std::function<double()>& fn);

}  // namespace warp_bench
