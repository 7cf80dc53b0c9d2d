// warp-bench resilience: what clients see while storage is slow and while it is down, with
// and without the storage protection (stale-on-error, soft timeout, circuit breaker), all
// in the same run against the same PostgreSQL; and, beside it, the L1 hit ratio on a Zipf
// trace with sampled LRU alone and with TinyLFU admission.
//
// Four embedded nodes share one PostgreSQL (a throwaway server the bench starts, or
// --postgres URI): `none` (no protection), `stale` (max-stale + soft timeout), `breaker`
// (circuit breaker) and `stale+breaker`. Their L1 TTL is short, so reads keep going to
// storage. Each node runs the same Zipf GET load in three phases, one node at a time:
//   healthy   storage as it is;
//   slow      every fetch delayed by --slow-latency (a storage adapter wrapper around the
//             PostgreSQL adapter injects it: deterministic, unlike a table lock);
//   down      PostgreSQL stopped (a real outage: connections refused).
// Per node and phase: GETs, error rate, stale answers, p50/p99/max latency, breaker opens.
// Human-readable lines; with --json one JSON object on the last line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "apps/warp-bench/bench.hpp"
#include "test/support/postgres.hpp"
#include "warp/node.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct resilience_options {
  bool json = false;
  double phase_seconds = 3;
  std::size_t keys = 500;
  int threads = 2;
  std::chrono::milliseconds slow_latency{200};
  std::chrono::milliseconds l1_ttl{100};
  std::string postgres;  // empty = start a throwaway server
  // Hit-ratio section.
  std::size_t trace_keys = 100'000;
  std::size_t trace_length = 1'000'000;
};

/// The PostgreSQL adapter with a delay injected before each fetch while `slow` is set.
class slow_storage final : public warp::storage {
 public:
  slow_storage(std::unique_ptr<warp::storage> inner, const std::atomic<std::int64_t>& delay_ms)
      : inner_(std::move(inner)), delay_ms_(delay_ms) {}
  warp::result<std::optional<warp::record>> fetch(std::string_view key) override {
    if (auto d = delay_ms_.load(std::memory_order_relaxed); d > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{d});
    return inner_->fetch(key);
  }
  warp::result<void> store(std::string_view key, const warp::record& rec) override {
    return inner_->store(key, rec);
  }
  warp::result<void> remove(std::string_view key) override { return inner_->remove(key); }
  warp::result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    return inner_->scan(after, count);
  }
  warp::result<std::size_t> count() override { return inner_->count(); }
  warp::result<void> clear() override { return inner_->clear(); }
  warp::result<void> check() override { return inner_->check(); }
  std::string describe() const override { return "slow(" + inner_->describe() + ")"; }

 private:
  std::unique_ptr<warp::storage> inner_;
  const std::atomic<std::int64_t>& delay_ms_;
};

struct variant {
  std::string name;
  bool stale = false;
  bool breaker = false;
  std::unique_ptr<warp::node> node;
};

struct phase_result {
  std::uint64_t gets = 0, errors = 0, stale = 0, breaker_opens = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * double(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::uint64_t breaker_transitions(const warp::node_stats& s) {
  std::uint64_t out = 0;
  for (const auto& p : s.protection) out += p.transitions;
  return out;
}

phase_result run_phase(warp::node& n, const resilience_options& opt,
                       const std::vector<std::string>& keys,
                       const std::vector<std::uint32_t>& trace) {
  const auto before = n.stats();
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(opt.threads));
  std::vector<std::uint64_t> errors(static_cast<std::size_t>(opt.threads), 0);
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < opt.threads; ++t)
    workers.emplace_back([&, t] {
      std::size_t pos = static_cast<std::size_t>(t) * 7919;
      auto& mine = lat[static_cast<std::size_t>(t)];
      while (!stop.load(std::memory_order_relaxed)) {
        const auto& k = keys[trace[pos++ % trace.size()]];
        const auto start = clock_type::now();
        auto r = n.get(k);
        mine.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
        if (!r) ++errors[static_cast<std::size_t>(t)];
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.phase_seconds));
  stop = true;
  for (auto& w : workers) w.join();
  phase_result out;
  std::vector<double> all;
  for (std::size_t t = 0; t < lat.size(); ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    out.errors += errors[t];
  }
  out.gets = all.size();
  const auto after = n.stats();
  out.stale = after.stale_serves - before.stale_serves;
  out.breaker_opens = breaker_transitions(after) - breaker_transitions(before);
  if (!all.empty()) out.max_ms = *std::max_element(all.begin(), all.end());
  out.p50_ms = percentile(all, 0.50);
  out.p99_ms = percentile(all, 0.99);
  return out;
}

int run_resilience(const resilience_options& opt) {
  using nlohmann::json;
  json out;
  out["benchmark"] = "resilience";
  out["phase_seconds"] = opt.phase_seconds;
  out["keys"] = opt.keys;
  out["threads_per_node"] = opt.threads;
  out["slow_latency_ms"] = opt.slow_latency.count();
  out["l1_ttl_ms"] = opt.l1_ttl.count();

  // The storage adapters log through spdlog's default logger too.
  spdlog::set_level(spdlog::level::err);
  std::unique_ptr<warp::test::postgres_server> server;
  std::string uri = opt.postgres;
  if (uri.empty()) {
    // A loud failure when PostgreSQL is not installed or does not come up.
    try {
      server = std::make_unique<warp::test::postgres_server>("warp_bench");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "warp-bench resilience: cannot start PostgreSQL: %s\n", e.what());
      return 1;
    }
    uri = server->uri();
  }
  std::atomic<std::int64_t> delay_ms{0};

  std::vector<variant> variants;
  for (auto [name, stale, breaker] : {std::tuple{"none", false, false},
                                      std::tuple{"stale", true, false},
                                      std::tuple{"breaker", false, true},
                                      std::tuple{"stale+breaker", true, true}})
    variants.push_back({name, stale, breaker, nullptr});
  for (auto& v : variants) {
    auto pg = warp::make_postgres_storage(uri);
    if (!pg) {
      std::fprintf(stderr, "warp-bench resilience: %s\n", pg.err().to_string().c_str());
      return 1;
    }
    warp::node_config cfg;
    cfg.name = "bench-" + v.name;
    cfg.storage_adapter = std::make_shared<slow_storage>(std::move(*pg), delay_ms);
    cfg.default_policy.ttl = opt.l1_ttl;
    cfg.hot_keys.track = false;
    // The down phase makes every fetch log a connection warning: thousands of lines that
    // would bury the figures.
    cfg.log_level = "error";
    auto& g = cfg.default_policy.guard;
    if (v.stale) {
      g.max_stale = std::chrono::minutes{10};
      g.soft_timeout = std::chrono::milliseconds{20};
    }
    if (v.breaker) {
      g.breaker_failures = 5;
      g.breaker_cooldown = std::chrono::milliseconds{1000};
    }
    auto n = warp::node::start(cfg);
    if (!n) {
      std::fprintf(stderr, "warp-bench resilience: %s\n", n.err().to_string().c_str());
      return 1;
    }
    v.node = std::move(*n);
  }
  std::vector<std::string> keys(opt.keys);
  for (std::size_t i = 0; i < opt.keys; ++i) {
    keys[i] = "res:" + std::to_string(i);
    if (auto r = variants[0].node->set(keys[i], std::string(100, 'v')); !r) {
      std::fprintf(stderr, "warp-bench resilience: preload: %s\n", r.err().to_string().c_str());
      return 1;
    }
  }
  const auto trace = warp_bench::zipf_trace(opt.keys, 0.99, 1 << 16, 77);

  std::printf("resilience: %zu keys (Zipf 0.99), L1 TTL %lld ms, %d client threads per node, "
              "%.1f s per phase; slow = +%lld ms per fetch, down = PostgreSQL stopped\n",
              opt.keys, static_cast<long long>(opt.l1_ttl.count()), opt.threads,
              opt.phase_seconds, static_cast<long long>(opt.slow_latency.count()));
  std::printf("%-9s %-14s | %8s %9s %8s | %9s %9s %9s | %s\n", "phase", "protection", "GETs",
              "error %", "stale %", "p50 ms", "p99 ms", "max ms", "breaker changes");
  json rows = json::array();
  for (const char* phase : {"healthy", "slow", "down"}) {
    if (std::string{phase} == "slow") delay_ms = opt.slow_latency.count();
    if (std::string{phase} == "down") {
      delay_ms = 0;
      if (!server) {
        std::fprintf(stderr, "warp-bench resilience: the down phase stops PostgreSQL: it needs "
                             "the bench's own server (no --postgres)\n");
        break;
      }
      server->stop();
    }
    for (auto& v : variants) {
      // Each node's stale copies come from the healthy phase; a short settle lets the
      // previous phase's slow fetches finish.
      const auto r = run_phase(*v.node, opt, keys, trace);
      const double err = r.gets ? 100.0 * double(r.errors) / double(r.gets) : 0;
      const double stale = r.gets ? 100.0 * double(r.stale) / double(r.gets) : 0;
      std::printf("%-9s %-14s | %8llu %9.2f %8.2f | %9.2f %9.2f %9.1f | %llu\n", phase,
                  v.name.c_str(), static_cast<unsigned long long>(r.gets), err, stale, r.p50_ms,
                  r.p99_ms, r.max_ms, static_cast<unsigned long long>(r.breaker_opens));
      std::fflush(stdout);
      rows.push_back({{"phase", phase},
                      {"protection", v.name},
                      {"gets", r.gets},
                      {"errors", r.errors},
                      {"error_rate", r.gets ? double(r.errors) / double(r.gets) : 0.0},
                      {"stale", r.stale},
                      {"stale_rate", r.gets ? double(r.stale) / double(r.gets) : 0.0},
                      {"p50_ms", r.p50_ms},
                      {"p99_ms", r.p99_ms},
                      {"max_ms", r.max_ms},
                      {"breaker_transitions", r.breaker_opens}});
    }
  }
  out["phases"] = rows;
  for (auto& v : variants) v.node->stop();
  if (server && !server->running()) server->start();

  // L1 hit ratio beside it: sampled LRU alone vs TinyLFU, Zipf traces, a 1% and a 10% cache.
  std::vector<std::string> trace_keys(opt.trace_keys);
  for (std::size_t i = 0; i < opt.trace_keys; ++i) trace_keys[i] = "user:" + std::to_string(i);
  std::printf("\nL1 hit ratio, Zipf trace of %zu keys, %zu lookups (a miss fills):\n",
              opt.trace_keys, opt.trace_length);
  std::printf("%-6s %-9s | %-11s %-11s %s\n", "skew", "cache", "sampled LRU", "TinyLFU", "gain");
  json hit = json::array();
  for (double skew : {0.8, 0.99, 1.2}) {
    const auto t = warp_bench::zipf_trace(opt.trace_keys, skew, opt.trace_length,
                                          1000 + static_cast<std::uint64_t>(skew * 100));
    for (double fraction : {0.01, 0.1}) {
      const auto cap = std::max<std::size_t>(16, static_cast<std::size_t>(
                                                     double(opt.trace_keys) * fraction));
      const auto m = warp_bench::measure_hit_ratio(trace_keys, t, cap);
      std::printf("%-6.2f %-9zu | %-11.4f %-11.4f %+.4f\n", skew, cap, m.lru, m.tinylfu,
                  m.tinylfu - m.lru);
      hit.push_back({{"skew", skew},
                     {"cache_entries", cap},
                     {"lru_hit_ratio", m.lru},
                     {"tinylfu_hit_ratio", m.tinylfu}});
    }
  }
  out["l1_hit_ratio"] = hit;
  std::fflush(stdout);
  if (opt.json) std::cout << out.dump() << std::endl;
  return 0;
}

void setup(CLI::App& app) {
  auto opt = std::make_shared<resilience_options>();
  CLI::App* cmd = app.add_subcommand(
      "resilience",
      "GET p99 and error rate with storage slow and down, with and without stale-on-error and "
      "the breaker (PostgreSQL); L1 hit ratio with and without TinyLFU");
  cmd->add_flag("--json", opt->json, "also print the figures as one JSON object (last line)");
  cmd->add_option("--seconds", opt->phase_seconds, "seconds per phase and protection")
      ->check(CLI::Range(0.1, 600.0));
  cmd->add_option("--keys", opt->keys, "keys read (Zipf 0.99)")
      ->check(CLI::Range(std::size_t{10}, std::size_t{1'000'000}));
  cmd->add_option("--threads", opt->threads, "client threads per node")
      ->check(CLI::Range(1, 64));
  cmd->add_option_function<std::int64_t>(
         "--slow-latency-ms",
         [opt](std::int64_t ms) { opt->slow_latency = std::chrono::milliseconds{ms}; },
         "delay added to every fetch in the slow phase (default 200)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{60'000}));
  cmd->add_option_function<std::int64_t>(
         "--l1-ttl-ms", [opt](std::int64_t ms) { opt->l1_ttl = std::chrono::milliseconds{ms}; },
         "L1 TTL of the keys (default 100): how often reads go back to storage")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{3'600'000}));
  cmd->add_option("--postgres", opt->postgres,
                  "an existing PostgreSQL URI (default: start a throwaway server; the down "
                  "phase needs that one)");
  cmd->add_option("--trace-keys", opt->trace_keys, "distinct keys of the hit-ratio traces")
      ->check(CLI::Range(std::size_t{1000}, std::size_t{10'000'000}));
  cmd->add_option("--trace-length", opt->trace_length, "lookups per hit-ratio trace")
      ->check(CLI::Range(std::size_t{10'000}, std::size_t{100'000'000}));
  cmd->callback([opt] {
    if (const int rc = run_resilience(*opt); rc != 0) throw CLI::RuntimeError(rc);
  });
}

const bool registered = warp_bench::register_subcommand(&setup);

}  // namespace
