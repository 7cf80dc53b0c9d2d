// warp-bench strong: quorum (strong_distributed) writes and reads on three nodes in one
// process, each in its own actor system, talking over CAF's network layer on loopback;
// beside eventual_distributed writes on the same nodes in the same run.
//   moderate: a few closed-loop client threads (latency at moderate load)
//   loaded:   many closed-loop client threads over many keys (throughput)
// Every client thread calls node::set/get on one of the three nodes (round robin), so
// every node coordinates operations and every quorum crosses the network.
// Then, unless --no-etcd, the same workload as a user sees it (SET, GET, INCR at 1, 16
// and 64 clients) against 3 warpd processes and a 3-member etcd cluster started in the
// same run, with Warp/etcd ratios (strong_baseline.cpp).
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/warp-bench/bench.hpp"
#include "apps/warp-bench/strong_baseline.hpp"
#include "warp/node.hpp"

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct strong_args {
  double seconds = 3;
  std::size_t moderate_threads = 4;
  std::size_t loaded_threads = 64;
  std::size_t keys = 10'000;
  std::size_t value_size = 100;
  bool json = false;
  bool etcd = true;
  double baseline_seconds = 3;
  warp_bench::baseline_args baseline;
  std::string engine = "raft";  ///< strong engine: raft or abd
};

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct phase_result {
  std::string name;
  std::size_t threads = 0;
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

enum class op_kind { strong_set, strong_get, eventual_set };

phase_result run_phase(const std::string& name, std::vector<std::unique_ptr<warp::node>>& nodes,
                       const strong_args& a, std::size_t threads, op_kind kind) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::uint32_t>> lat(threads);  // microseconds
  std::vector<std::uint64_t> errors(threads);
  std::vector<std::thread> ts;
  std::string value(a.value_size, 'v');
  auto start = clk::now();
  for (std::size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng{t * 7919 + 1};
      auto& n = *nodes[t % nodes.size()];
      std::string key;
      lat[t].reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        auto k = rng() % a.keys;
        key = (kind == op_kind::eventual_set ? "e:" : "s:") + std::to_string(k);
        auto t0 = clk::now();
        bool ok = true;
        switch (kind) {
          case op_kind::strong_set:
          case op_kind::eventual_set:
            ok = n.set(key, value).has_value();
            break;
          case op_kind::strong_get: {
            auto r = n.get(key);
            ok = r || r.code() == warp::errc::not_found;
            break;
          }
        }
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - t0).count();
        if (ok)
          lat[t].push_back(static_cast<std::uint32_t>(us));
        else
          ++errors[t];
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (auto& th : ts) th.join();
  phase_result r;
  r.name = name;
  r.threads = threads;
  r.seconds = std::chrono::duration<double>(clk::now() - start).count();
  std::vector<std::uint32_t> all;
  for (std::size_t t = 0; t < threads; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    r.errors += errors[t];
  }
  r.ops = all.size();
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
      return static_cast<double>(all[std::min(
          all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))]);
    };
    r.p50_us = pct(0.50);
    r.p99_us = pct(0.99);
    r.p999_us = pct(0.999);
  }
  return r;
}

void run(const strong_args& a) {
  std::vector<std::uint16_t> ports{free_port(), free_port(), free_port()};
  // The Raft engine's logs (fsync'd) go to a fresh directory per run, removed at the end.
  char tmpl[] = "/tmp/warp-bench-strong-XXXXXX";
  const std::string data_root = ::mkdtemp(tmpl) ? tmpl : "/tmp";
  std::vector<std::unique_ptr<warp::node>> nodes;
  for (std::size_t i = 0; i < 3; ++i) {
    warp::node_config cfg;
    cfg.name = "b" + std::to_string(i);
    cfg.listen = "127.0.0.1:" + std::to_string(ports[i]);
    for (std::size_t j = 0; j < 3; ++j)
      if (j != i) cfg.peers.push_back("127.0.0.1:" + std::to_string(ports[j]));
    cfg.storage = "memory";
    cfg.log_level = "warn";
    cfg.patterns = {"s:*=strong_distributed", "e:*=eventual_distributed"};
    cfg.strong.engine = a.engine == "abd" ? warp::strong_engine::abd : warp::strong_engine::raft;
    cfg.data_dir = data_root + "/n" + std::to_string(i);
    auto n = warp::node::start(std::move(cfg));
    if (!n) {
      std::cerr << "cannot start node: " << n.err().to_string() << "\n";
      std::exit(1);
    }
    nodes.push_back(std::move(*n));
  }
  // Ready when a strong write succeeds from every node several times in a row.
  auto deadline = clk::now() + 30s;
  int streak = 0;
  while (streak < 30 && clk::now() < deadline) {
    bool ok = true;
    for (auto& n : nodes) ok = ok && n->set("s:warmup", "x").has_value();
    streak = ok ? streak + 1 : 0;
    if (!ok) std::this_thread::sleep_for(50ms);
  }
  if (streak < 30) {
    std::cerr << "the strong quorum never became available\n";
    std::exit(1);
  }
  std::this_thread::sleep_for(500ms);  // let every replica finish catching up

  std::vector<phase_result> results;
  results.push_back(
      run_phase("strong set (moderate)", nodes, a, a.moderate_threads, op_kind::strong_set));
  results.push_back(
      run_phase("eventual set (moderate)", nodes, a, a.moderate_threads, op_kind::eventual_set));
  results.push_back(
      run_phase("strong set (loaded)", nodes, a, a.loaded_threads, op_kind::strong_set));
  results.push_back(
      run_phase("strong get (loaded)", nodes, a, a.loaded_threads, op_kind::strong_get));
  results.push_back(
      run_phase("eventual set (loaded)", nodes, a, a.loaded_threads, op_kind::eventual_set));

  std::printf(
      "3 nodes in one process, loopback CAF, strong engine %s; %zu keys, %zu-byte values, %.1f s "
      "per phase\n",
      a.engine.c_str(), a.keys, a.value_size, a.seconds);
  std::printf("%-26s %7s %12s %9s %9s %9s %7s\n", "phase", "threads", "ops/s", "p50 us", "p99 us",
              "p999 us", "errors");
  nlohmann::json j;
  for (auto& r : results) {
    std::printf("%-26s %7zu %12.0f %9.0f %9.0f %9.0f %7llu\n", r.name.c_str(), r.threads, r.rate(),
                r.p50_us, r.p99_us, r.p999_us, static_cast<unsigned long long>(r.errors));
    std::string key = r.name;
    for (auto& ch : key)
      if (ch == ' ' || ch == '(' || ch == ')') ch = '_';
    while (!key.empty() && key.back() == '_') key.pop_back();
    std::string cleaned;
    for (auto ch : key)
      if (!(ch == '_' && !cleaned.empty() && cleaned.back() == '_')) cleaned += ch;
    j[cleaned] = {{"threads", r.threads}, {"ops_per_s", r.rate()}, {"p50_us", r.p50_us},
                  {"p99_us", r.p99_us},   {"p999_us", r.p999_us},  {"errors", r.errors}};
  }
  for (auto& n : nodes) n->stop();
  nodes.clear();
  if (a.etcd) {
    auto b = a.baseline;
    b.seconds = a.baseline_seconds;
    b.keys = a.keys;
    b.value_size = a.value_size;
    j["etcd_baseline"] = warp_bench::run_etcd_baseline(b);
  }
  j["engine"] = a.engine;
  if (a.json) std::cout << j.dump() << std::endl;
  std::error_code ec;
  if (data_root != "/tmp") std::filesystem::remove_all(data_root, ec);
}

void setup(CLI::App& app) {
  static strong_args args;
  auto* cmd = app.add_subcommand(
      "strong", "strong_distributed quorum writes/reads vs eventual writes on 3 local nodes");
  cmd->add_option("--seconds", args.seconds, "length of each phase");
  cmd->add_option("--moderate-threads", args.moderate_threads, "client threads at moderate load");
  cmd->add_option("--loaded-threads", args.loaded_threads, "client threads under load");
  cmd->add_option("--keys", args.keys, "distinct keys");
  cmd->add_option("--value-size", args.value_size, "bytes per value");
  cmd->add_flag("--json", args.json, "one JSON object on the last line");
  cmd->add_flag("!--no-etcd", args.etcd,
                "skip the comparison with 3 warpd processes and a 3-member etcd cluster");
  cmd->add_option("--baseline-seconds", args.baseline_seconds,
                  "length of each cell of the etcd comparison");
  cmd->add_option("--clients", args.baseline.clients,
                  "concurrent clients of the etcd comparison (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--warpd-arg", args.baseline.warpd_args,
                  "extra argument for every warpd of the etcd comparison (repeatable; "
                  "--warpd-arg=--strong-engine=raft)")
      ->allow_extra_args(false);
  cmd->add_option("--warpd", args.baseline.warpd, "warpd binary (default: next to this one)");
  cmd->add_option("--etcd-bin", args.baseline.etcd, "etcd binary (default: etcd on PATH)");
  cmd->add_option("--data-dir", args.baseline.data_dir,
                  "parent directory of the warpd and etcd data dirs (default /tmp)");
  cmd->add_option("--engine", args.engine, "strong engine: raft (durable log) or abd")
      ->check(CLI::IsMember({"raft", "abd"}));
  cmd->callback([] { run(args); });
}

}  // namespace

static const bool registered = warp_bench::register_subcommand(&setup);
