// warp-bench l1: the L1 store against std::unordered_map (no lock) and the same map under
// one std::shared_mutex, measured in the same run on the same keys and access sequences.
//
// Workloads: get-hit (L1 via read(): no refcount; and via get(): shared buffer copy) and
// set (replace an existing key), 1 and 2 threads, uniform and Zipf(0.99) keys, 100k and 1M
// entries of 16 B keys and 100 B values. Each figure is the best of --repeat runs of
// --seconds each, repeats interleaved across variants so machine noise hits all alike
// (many short runs catch the quiet moments of a shared machine better than a few long
// ones). Every figure is given by wall clock and normalised by thread CPU time.
// The unlocked map only runs set on one thread (concurrent writes would be a data race).
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "apps/warp-bench/bench.hpp"
#include "runtime/core/hot_keys.hpp"
#include "warp/l1.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using plain_map = std::unordered_map<std::string, std::string>;

struct l1_bench_options {
  bool json = false;
  double seconds = 0.05;
  int repeat = 7;
  std::vector<std::size_t> entries{100'000, 1'000'000};
  std::size_t memory_entries = 1'000'000;
  // The admission section: hit ratio of sampled LRU vs TinyLFU on Zipf traces.
  bool hit_ratio = true;
  bool hit_ratio_only = false;
  std::size_t trace_keys = 100'000;
  std::size_t trace_length = 2'000'000;
};

constexpr std::size_t key_size = 16;
constexpr std::size_t value_size = 100;
constexpr std::size_t sequence_length = std::size_t{1} << 20;

std::string make_key(std::size_t i) {
  char text[32];
  std::snprintf(text, sizeof text, "user:%011zu", i % 100'000'000'000);
  return std::string(text, key_size);
}

std::string make_value(std::size_t i) {
  std::string v(value_size, 'v');
  for (std::size_t j = 0; j < 8; ++j) v[j] = static_cast<char>('a' + (i >> (j * 3)) % 26);
  return v;
}

/// Key index sequences, precomputed so generating keys costs nothing during the runs.
/// Zipf ranks are mapped through a random permutation: hot keys are spread over memory
/// and shards, not the first keys inserted.
std::vector<std::uint32_t> make_sequence(std::size_t n, bool zipf, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::vector<std::uint32_t> seq(sequence_length);
  if (!zipf) {
    std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(n - 1));
    for (auto& s : seq) s = pick(rng);
    return seq;
  }
  std::vector<double> cdf(n);
  double sum = 0;
  for (std::size_t k = 0; k < n; ++k) cdf[k] = (sum += 1.0 / std::pow(double(k + 1), 0.99));
  std::vector<std::uint32_t> perm(n);
  for (std::size_t i = 0; i < n; ++i) perm[i] = static_cast<std::uint32_t>(i);
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64{seed ^ 0x5bd1e995});
  std::uniform_real_distribution<double> u(0.0, sum);
  for (auto& s : seq) {
    const std::size_t rank = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    s = perm[std::min(rank, n - 1)];
  }
  return seq;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct throughput {
  double wall = 0;  ///< operations per wall-clock second, all threads together
  /// Sum over threads of operations per CPU-second of that thread: the throughput had
  /// every thread kept a core to itself. Other processes' load shrinks the wall figure,
  /// not this one; contention between our threads (shared lines, locks) still shows.
  double cpu = 0;
};

/// Runs `op(thread_index, sequence_position)` on `threads` threads for `seconds`.
template <class Op>
throughput measure(int threads, double seconds, Op op) {
  std::atomic<bool> go{false}, stop{false};
  std::atomic<int> ready{0};
  std::vector<std::uint64_t> done(static_cast<std::size_t>(threads) * 8);  // padded slots
  std::vector<double> cpu(static_cast<std::size_t>(threads) * 8);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const double cpu_start = thread_cpu_seconds();
      std::uint64_t n = 0;
      std::size_t pos = static_cast<std::size_t>(t) * 7919;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 256; ++i) op(t, pos++ & (sequence_length - 1));
        n += 256;
      }
      done[static_cast<std::size_t>(t) * 8] = n;
      cpu[static_cast<std::size_t>(t) * 8] = thread_cpu_seconds() - cpu_start;
    });
  while (ready.load() != threads) std::this_thread::yield();
  const auto start = clock_type::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  throughput out;
  std::uint64_t total = 0;
  for (std::size_t t = 0; t < static_cast<std::size_t>(threads); ++t) {
    total += done[t * 8];
    out.cpu += double(done[t * 8]) / std::max(cpu[t * 8], 1e-9);
  }
  out.wall = double(total) / elapsed;
  return out;
}

struct cell {
  std::string op;       // get / set
  std::string variant;  // l1_read, l1_get, l1, map, shared_mutex
  std::string dist;     // uniform / zipf
  int threads;
  std::size_t entries;
  throughput best;  // best of the repeats, each field separately
};

double rss_growth_for(std::size_t n, bool l1) {
  return warp_bench::run_in_child([n, l1] {
    std::vector<std::string> keys(n), values(n);
    for (std::size_t i = 0; i < n; ++i) keys[i] = make_key(i), values[i] = make_value(i);
    malloc_trim(0);
    const std::size_t before = warp_bench::rss_bytes();
    double after = 0;
    if (l1) {
      warp::l1_options o;
      o.purge_interval = std::chrono::milliseconds{0};
      auto store = std::make_unique<warp::l1_store>(o);
      for (std::size_t i = 0; i < n; ++i) store->put(keys[i], warp::make_buffer(values[i]));
      after = double(warp_bench::rss_bytes());
      store.release();  // the child exits right away: do not spend time freeing
    } else {
      auto map = std::make_unique<plain_map>();
      for (std::size_t i = 0; i < n; ++i) map->emplace(keys[i], values[i]);
      after = double(warp_bench::rss_bytes());
      map.release();
    }
    return after - double(before);
  });
}

/// The admission section: the hit ratio a bounded L1 reaches on a Zipf trace (a miss
/// fills, as the read-through does), sampled LRU alone vs TinyLFU in front of it, over
/// several skews and cache sizes; the first 10% of the trace warms the cache up and is not
/// counted. Also the time per lookup+fill, which includes TinyLFU's sketch update.
nlohmann::json run_hit_ratio(const l1_bench_options& opt) {
  using nlohmann::json;
  json rows = json::array();
  const std::size_t n = opt.trace_keys;
  std::vector<std::string> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = make_key(i);
  std::printf("\nhit ratio on a Zipf trace: %zu keys, %zu lookups (a miss fills), first 10%% not "
              "counted\n",
              n, opt.trace_length);
  std::printf("%-6s %-9s %-7s | %-10s %-10s %-8s | %-9s %-9s | %s\n", "skew", "cache", "% keys",
              "LRU hits", "TinyLFU", "gain", "LRU ns", "TLFU ns", "winner");
  for (double skew : {0.6, 0.8, 0.99, 1.2}) {
    const auto trace = warp_bench::zipf_trace(n, skew, opt.trace_length,
                                              4242 + static_cast<std::uint64_t>(skew * 100));
    for (double fraction : {0.005, 0.02, 0.1}) {
      const auto capacity =
          std::max<std::size_t>(16, static_cast<std::size_t>(double(n) * fraction));
      const auto m = warp_bench::measure_hit_ratio(keys, trace, capacity);
      const double gain = m.tinylfu - m.lru;
      // "Wins" = at least half a point of hit ratio: below that the sketch's cost on every
      // lookup buys nothing measurable.
      const char* winner = gain >= 0.005 ? "tinylfu" : (gain <= -0.005 ? "lru" : "tie");
      std::printf("%-6.2f %-9zu %-7.1f | %-10.4f %-10.4f %+8.4f | %-9.1f %-9.1f | %s\n", skew,
                  capacity, fraction * 100, m.lru, m.tinylfu, gain, m.lru_ns, m.tinylfu_ns, winner);
      rows.push_back({{"skew", skew},
                      {"cache_entries", capacity},
                      {"cache_fraction", fraction},
                      {"lru_hit_ratio", m.lru},
                      {"tinylfu_hit_ratio", m.tinylfu},
                      {"gain", gain},
                      {"lru_ns_per_lookup", m.lru_ns},
                      {"tinylfu_ns_per_lookup", m.tinylfu_ns},
                      {"tinylfu_rejects", m.tinylfu_rejects},
                      {"winner", winner}});
    }
  }
  std::fflush(stdout);
  return rows;
}

int run_l1_bench(const l1_bench_options& opt) {
  using nlohmann::json;
  json out;
  if (opt.hit_ratio_only) {
    out["benchmark"] = "l1";
    out["hit_ratio"] = run_hit_ratio(opt);
    if (opt.json) std::cout << out.dump() << std::endl;
    return 0;
  }
  out["benchmark"] = "l1";
  out["key_bytes"] = key_size;
  out["value_bytes"] = value_size;
  out["seconds_per_run"] = opt.seconds;
  out["repeat"] = opt.repeat;
  out["hardware_threads"] = std::thread::hardware_concurrency();

  // Memory first, in forked children, while this process's heap is still small and equal
  // for both.
  {
    const double l1_bytes = rss_growth_for(opt.memory_entries, true);
    const double map_bytes = rss_growth_for(opt.memory_entries, false);
    const double n = double(opt.memory_entries);
    std::printf(
        "memory, %zu entries: L1 %.1f MiB (%.0f B/entry), unordered_map %.1f MiB (%.0f B/entry), "
        "ratio %.2f\n",
        opt.memory_entries, l1_bytes / 1048576, l1_bytes / n, map_bytes / 1048576, map_bytes / n,
        l1_bytes / map_bytes);
    out["memory"] = {
        {"entries", opt.memory_entries},        {"l1_rss_bytes", l1_bytes},
        {"map_rss_bytes", map_bytes},           {"l1_bytes_per_entry", l1_bytes / n},
        {"map_bytes_per_entry", map_bytes / n}, {"ratio_l1_over_map", l1_bytes / map_bytes}};
  }

  // Control: a register-only loop on 1 and 2 threads. If even this does not scale to ~2x,
  // the machine has no idle second core (other load) and the 2-thread figures below say
  // more about the machine than about the data structures.
  throughput spin_best[2];
  std::vector<std::uint64_t> spin_state(16, 1);
  auto spin = [&](int t, std::size_t p) {
    std::uint64_t x = spin_state[static_cast<std::size_t>(t) * 8] + p;
    for (int i = 0; i < 64; ++i) x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    spin_state[static_cast<std::size_t>(t) * 8] = x;
  };

  std::vector<cell> cells;
  for (std::size_t n : opt.entries) {
    std::vector<std::string> keys(n), values(n);
    for (std::size_t i = 0; i < n; ++i) keys[i] = make_key(i), values[i] = make_value(i);

    warp::l1_store store;
    plain_map map;
    plain_map locked_map;
    std::shared_mutex lock;
    map.reserve(n);  // both maps sized once, as a service preloading its cache would
    locked_map.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      store.put(keys[i], warp::make_buffer(values[i]));
      map.emplace(keys[i], values[i]);
      locked_map.emplace(keys[i], values[i]);
    }
    // Per-thread value pools for set: buffers already built (as a codec would hand them
    // over) and strings to copy-assign, so neither side pays for building the value.
    std::vector<std::vector<warp::buffer>> buffers(2);
    std::vector<std::vector<std::string>> strings(2);
    for (int t = 0; t < 2; ++t)
      for (int i = 0; i < 64; ++i) {
        buffers[t].push_back(warp::make_buffer(make_value(i * 2 + t)));
        strings[t].push_back(make_value(i * 2 + t));
      }

    std::map<std::pair<std::string, int>, std::vector<std::uint32_t>> sequences;
    for (const char* dist : {"uniform", "zipf"})
      for (int t = 0; t < 2; ++t)
        sequences[{dist, t}] = make_sequence(n, std::string{dist} == "zipf", 1000 + t * 17 + n);

    // What node::get adds for hot-key tracking (runtime/modes/node_state.hpp, read_seen):
    // a per-thread draw, and one sampled read in 64 recorded under the tracker's mutex.
    warp::detail::hot_key_tracker hot{warp::detail::hot_key_options{}};

    std::vector<cell> local;
    for (const char* dist : {"uniform", "zipf"})
      for (int threads : {1, 2}) {
        for (const char* v : {"l1_read", "l1_get", "l1_get_hot", "map", "shared_mutex"})
          local.push_back({"get", v, dist, threads, n, {}});
        for (const char* v : {"l1", "map", "shared_mutex"})
          if (!(std::string{v} == "map" && threads == 2))
            local.push_back({"set", v, dist, threads, n, {}});
      }

    std::atomic<std::uint64_t> sink{0};
    for (int rep = 0; rep < opt.repeat; ++rep) {
      for (int th = 1; th <= 2; ++th) {
        const throughput r = measure(th, opt.seconds, spin);
        spin_best[th - 1].wall = std::max(spin_best[th - 1].wall, r.wall);
        spin_best[th - 1].cpu = std::max(spin_best[th - 1].cpu, r.cpu);
      }
      for (cell& c : local) {
        const std::vector<std::uint32_t>* seq[2] = {&sequences[{c.dist, 0}],
                                                    &sequences[{c.dist, 1}]};
        throughput ops;
        if (c.op == "get" && c.variant == "l1_read") {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            const std::string& k = keys[(*seq[t])[p]];
            std::uint64_t s = 0;
            store.read(k, [&](std::string_view v, const warp::l1_entry_info&) {
              s = v.size() + static_cast<unsigned char>(v[0]);
            });
            if (s == 0) sink.fetch_add(1, std::memory_order_relaxed);  // never: keeps the read
          });
        } else if (c.op == "get" && c.variant == "l1_get") {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            auto b = store.get(keys[(*seq[t])[p]]);
            if (!b || (*b)->size() + static_cast<unsigned char>((**b)[0]) == 0) sink.fetch_add(1);
          });
        } else if (c.op == "get" && c.variant == "l1_get_hot") {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            const std::string& k = keys[(*seq[t])[p]];
            if (hot.sampled()) [[unlikely]]
              hot.record(k, std::chrono::duration_cast<std::chrono::milliseconds>(
                                clock_type::now().time_since_epoch()));
            auto b = store.get(k);
            if (!b || (*b)->size() + static_cast<unsigned char>((**b)[0]) == 0) sink.fetch_add(1);
          });
        } else if (c.op == "get" && c.variant == "map") {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            auto it = map.find(keys[(*seq[t])[p]]);
            if (it == map.end() ||
                it->second.size() + static_cast<unsigned char>(it->second[0]) == 0)
              sink.fetch_add(1);
          });
        } else if (c.op == "get") {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            std::shared_lock guard{lock};
            auto it = locked_map.find(keys[(*seq[t])[p]]);
            if (it == locked_map.end() ||
                it->second.size() + static_cast<unsigned char>(it->second[0]) == 0)
              sink.fetch_add(1);
          });
        } else if (c.variant == "l1") {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            store.put(keys[(*seq[t])[p]], buffers[t][p & 63]);
          });
        } else if (c.variant == "map") {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            map.find(keys[(*seq[t])[p]])->second = strings[t][p & 63];
          });
        } else {
          ops = measure(c.threads, opt.seconds, [&](int t, std::size_t p) {
            std::unique_lock guard{lock};
            locked_map.find(keys[(*seq[t])[p]])->second = strings[t][p & 63];
          });
        }
        c.best.wall = std::max(c.best.wall, ops.wall);
        c.best.cpu = std::max(c.best.cpu, ops.cpu);
      }
    }
    if (sink.load() != 0)
      std::fprintf(stderr, "warning: %llu lookups missed\n",
                   static_cast<unsigned long long>(sink.load()));
    cells.insert(cells.end(), local.begin(), local.end());
  }

  // Figures by clock: "wall" is what this run got from the machine; "cpu" normalises by
  // each thread's CPU time (see `throughput`). Both are printed; on an idle machine they
  // agree, on a loaded one the cpu figures are the fair comparison of the structures.
  auto find = [&](bool cpu, const std::string& op, const std::string& v, const std::string& d,
                  int th, std::size_t n) -> double {
    for (const cell& c : cells)
      if (c.op == op && c.variant == v && c.dist == d && c.threads == th && c.entries == n)
        return cpu ? c.best.cpu : c.best.wall;
    return 0;
  };

  json results = json::array();
  std::printf("\n%-4s %-8s %-8s %-13s %3s | %9s %8s %7s %7s | %9s %8s %7s %7s\n", "op", "entries",
              "dist", "variant", "thr", "wall ns", "Mops/s", "vs map", "2t/1t", "cpu ns", "Mops/s",
              "vs map", "2t/1t");
  for (const cell& c : cells) {
    json j = {{"op", c.op},
              {"variant", c.variant},
              {"dist", c.dist},
              {"threads", c.threads},
              {"entries", c.entries}};
    std::printf("%-4s %-8zu %-8s %-13s %3d", c.op.c_str(), c.entries, c.dist.c_str(),
                c.variant.c_str(), c.threads);
    for (bool cpu : {false, true}) {
      const double ops = cpu ? c.best.cpu : c.best.wall;
      const double ns = 1e9 * c.threads / ops;  // per-operation latency of one thread
      // Time per op relative to the unlocked map at the same thread count (for set, the
      // map only runs on one thread: compared per thread).
      const double map_ops =
          find(cpu, c.op, "map", c.dist, c.op == "set" ? 1 : c.threads, c.entries);
      const double vs_map = map_ops / ops * (c.op == "set" ? c.threads : 1);
      const double own_1 = find(cpu, c.op, c.variant, c.dist, 1, c.entries);
      const double scaling = c.threads == 2 ? ops / own_1 : 0;
      char scaling_text[16] = "-";
      if (scaling > 0) std::snprintf(scaling_text, sizeof scaling_text, "%.2f", scaling);
      std::printf(" | %9.1f %8.2f %7.2f %7s", ns, ops / 1e6, vs_map, scaling_text);
      const std::string prefix = cpu ? "cpu_" : "wall_";
      j[prefix + "ns_per_op"] = ns;
      j[prefix + "ops_per_sec"] = ops;
      j[prefix + "time_ratio_vs_map"] = vs_map;
      if (scaling > 0) j[prefix + "scaling_2thr_over_1thr"] = scaling;
    }
    std::printf("\n");
    results.push_back(j);
  }
  out["results"] = results;

  const double control_wall = spin_best[1].wall / spin_best[0].wall;
  const double control_cpu = spin_best[1].cpu / spin_best[0].cpu;
  std::printf(
      "\ncontrol: a CPU-only loop scales %.2fx (wall) / %.2fx (cpu) from 1 to 2 threads "
      "on this machine now; a wall figure well below 2 means no idle second core\n",
      control_wall, control_cpu);
  out["control_cpu_loop_scaling"] = {{"wall", control_wall}, {"cpu", control_cpu}};

  // The targets, for each size and distribution.
  json targets = json::array();
  std::printf(
      "targets: get-hit 1 thread <= 1.5x map time; 2 threads >= 1.7x 1 thread; memory <= 1.5x "
      "map\n");
  for (bool cpu : {false, true})
    for (std::size_t n : opt.entries)
      for (const char* d : {"uniform", "zipf"}) {
        auto ratio = [&](const char* v) {
          return find(cpu, "get", "map", d, 1, n) / find(cpu, "get", v, d, 1, n);
        };
        auto scaling = [&](const char* v) {
          return find(cpu, "get", v, d, 2, n) / find(cpu, "get", v, d, 1, n);
        };
        std::printf(
            "  %-4s %7zu %-7s  time vs map: L1 read %.2fx, L1 get %.2fx | 2thr/1thr: L1 read %.2f, "
            "L1 get %.2f, map %.2f, shared_mutex %.2f\n",
            cpu ? "cpu" : "wall", n, d, ratio("l1_read"), ratio("l1_get"), scaling("l1_read"),
            scaling("l1_get"), scaling("map"), scaling("shared_mutex"));
        targets.push_back({{"clock", cpu ? "cpu" : "wall"},
                           {"entries", n},
                           {"dist", d},
                           {"get_l1_read_time_over_map", ratio("l1_read")},
                           {"get_l1_get_time_over_map", ratio("l1_get")},
                           {"get_l1_read_scaling", scaling("l1_read")},
                           {"get_l1_get_scaling", scaling("l1_get")},
                           {"get_map_scaling", scaling("map")},
                           {"get_shared_mutex_scaling", scaling("shared_mutex")}});
      }
  out["targets"] = targets;
  // Hot-key tracking's price on the read path: get with the tracker's sampled record vs
  // plain get, same keys, same run.
  json hot_cost = json::array();
  for (std::size_t n : opt.entries)
    for (const char* d : {"uniform", "zipf"})
      for (int th : {1, 2}) {
        const double plain = find(true, "get", "l1_get", d, th, n);
        const double tracked = find(true, "get", "l1_get_hot", d, th, n);
        if (plain <= 0 || tracked <= 0) continue;
        const double overhead = plain / tracked - 1.0;  // time per op, relative
        std::printf("  hot-key tracking, %7zu %-7s %d thr: get %+.1f%% time per op (cpu clock)\n",
                    n, d, th, overhead * 100);
        hot_cost.push_back(
            {{"entries", n}, {"dist", d}, {"threads", th}, {"get_time_overhead", overhead}});
      }
  out["hot_key_tracking_overhead"] = hot_cost;
  if (opt.hit_ratio) out["hit_ratio"] = run_hit_ratio(opt);
  std::fflush(stdout);
  if (opt.json) std::cout << out.dump() << std::endl;
  return 0;
}

void setup(CLI::App& app) {
  auto opt = std::make_shared<l1_bench_options>();
  CLI::App* cmd = app.add_subcommand(
      "l1", "L1 store vs std::unordered_map (no lock, shared_mutex): get-hit, set, memory");
  cmd->add_flag("--json", opt->json, "also print the figures as one JSON object (last line)");
  cmd->add_option("--seconds", opt->seconds, "seconds per measured run")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--repeat", opt->repeat, "runs per figure (the best is kept)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--entries", opt->entries, "entry counts to test")->expected(1, -1);
  cmd->add_option("--memory-entries", opt->memory_entries, "entries for the RSS comparison");
  cmd->add_flag("!--no-hit-ratio", opt->hit_ratio,
                "skip the admission section (sampled LRU vs TinyLFU hit ratio)");
  cmd->add_flag("--hit-ratio-only", opt->hit_ratio_only,
                "run only the admission section (sampled LRU vs TinyLFU hit ratio)");
  cmd->add_option("--trace-keys", opt->trace_keys, "distinct keys of the hit-ratio traces")
      ->check(CLI::Range(std::size_t{1000}, std::size_t{10'000'000}));
  cmd->add_option("--trace-length", opt->trace_length, "lookups per hit-ratio trace")
      ->check(CLI::Range(std::size_t{10'000}, std::size_t{100'000'000}));
  cmd->callback([opt] {
    if (const int rc = run_l1_bench(*opt); rc != 0) throw CLI::RuntimeError(rc);
  });
}

const bool registered = warp_bench::register_subcommand(&setup);

}  // namespace
