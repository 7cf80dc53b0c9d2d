// warp-bench cluster: THREE nodes in one process, each in its own actor system, talking
// over CAF's network layer on loopback (real TCP + BASP serialisation between the systems).
//   raw:       one-way CAF messages between two such systems (the baseline, same run)
//   delivered: writes on node a (the public node::set path: storage write-through, L1, bus)
//              until b and c have both received every change record, batching off and on.
//              "delivered" counts records received by the other nodes (b + c): each write
//              is delivered twice. Per-receiver figures are printed beside it.
//   latency:   hydrating writes on a at a fixed rate, until b's and c's L1 applied each one.
// --writers N drives node a from N threads, as a service does (one per request handler /
// worker); 1 reproduces the single-writer figure.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "bench.hpp"
#include "warp/cluster.hpp"
#include "warp/node.hpp"

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t node_count = 3;

std::uint16_t pick_port() {
  static std::uint16_t next = static_cast<std::uint16_t>(20000 + (::getpid() % 20000));
  return next++;
}

std::unique_ptr<warp::node> start_node(const std::string& name, std::uint16_t port,
                                       const std::vector<std::uint16_t>& peers, bool batching,
                                       bool fixed_delay) {
  warp::node_config cfg;
  cfg.name = name;
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  for (auto p : peers) cfg.peers.push_back("127.0.0.1:" + std::to_string(p));
  cfg.storage = "memory";
  cfg.log_level = "warn";
  cfg.default_policy.consistency = warp::mode::eventual_distributed;
  cfg.patterns = {"lat:*=eventual_distributed+hydrate"};
  cfg.cluster.batching = batching;
  // The pre-adaptive policy, for a same-run comparison: wait batch_max_delay whenever a
  // batch left less than that ago, whatever the load.
  if (fixed_delay) cfg.cluster.batch_busy_rate = 0;
  cfg.cluster.heartbeat_interval = 50ms;
  auto n = warp::node::start(std::move(cfg));
  if (!n) {
    std::cerr << "cannot start node: " << n.err().to_string() << "\n";
    std::exit(1);
  }
  return std::move(*n);
}

/// Three nodes a, b, c, each seeded with the other two; empty when the view never converged.
std::vector<std::unique_ptr<warp::node>> start_cluster(bool batching, bool fixed_delay = false) {
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < node_count; ++i) ports.push_back(pick_port());
  std::vector<std::unique_ptr<warp::node>> nodes;
  for (std::size_t i = 0; i < node_count; ++i) {
    std::vector<std::uint16_t> peers;
    for (std::size_t j = 0; j < node_count; ++j)
      if (j != i) peers.push_back(ports[j]);
    nodes.push_back(start_node(std::string(1, static_cast<char>('a' + i)), ports[i], peers,
                               batching, fixed_delay));
  }
  auto deadline = clk::now() + 10s;
  while (clk::now() < deadline) {
    bool all = std::all_of(nodes.begin(), nodes.end(), [](auto& n) {
      auto v = warp::view_of(*n);
      return std::count_if(v.members.begin(), v.members.end(), [](auto& m) {
               return m.state == warp::member_state::up;
             }) == static_cast<std::ptrdiff_t>(node_count);
    });
    if (all) return nodes;
    std::this_thread::sleep_for(10ms);
  }
  std::cerr << "the 3-node view did not converge\n";
  return {};
}

// Raw CAF: N one-way messages from system A to an actor published by system B.
double raw_rate(std::size_t n) {
  caf::actor_system_config ca, cb;
  ca.load<caf::io::middleman>();
  cb.load<caf::io::middleman>();
  ca.set("scheduler.max-threads", 2);
  cb.set("scheduler.max-threads", 2);
  caf::actor_system sa{ca}, sb{cb};
  auto count = std::make_shared<std::atomic<std::size_t>>(0);
  auto sink = sb.spawn([count](caf::event_based_actor*) -> caf::behavior {
    return {[count](std::uint64_t) { count->fetch_add(1, std::memory_order_relaxed); }};
  });
  auto port = sb.middleman().publish(sink, 0, "127.0.0.1");
  if (!port) return 0;
  auto remote = sa.middleman().remote_actor("127.0.0.1", *port);
  if (!remote) return 0;
  auto start = clk::now();
  for (std::uint64_t i = 0; i < n; ++i) caf::anon_send(*remote, i);
  while (count->load() < n && clk::now() - start < 60s) std::this_thread::sleep_for(100us);
  double secs = std::chrono::duration<double>(clk::now() - start).count();
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  return static_cast<double>(count->load()) / secs;
}

struct delivered {
  double total = 0;         ///< records received by b and c together, per second
  double per_receiver = 0;  ///< the slower of b and c
  double writes = 0;        ///< node::set calls per second on a (until the last returned)
};

std::uint64_t received(warp::node& n) {
  return warp::cluster_stats_of(n).records_received;
}

// Invalidating writes on a from `writers` threads (distinct keys, built beforehand) until
// b and c have received every change record.
delivered delivered_rate(std::size_t n, bool batching, std::size_t writers) {
  auto nodes = start_cluster(batching);
  if (nodes.empty()) return {};
  auto& a = *nodes[0];
  std::vector<std::vector<std::string>> keys(writers);
  for (std::size_t i = 0; i < n; ++i) keys[i % writers].push_back("user:" + std::to_string(i));
  std::uint64_t before[node_count];
  for (std::size_t j = 1; j < node_count; ++j) before[j] = received(*nodes[j]);
  auto start = clk::now();
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < writers; ++w)
    threads.emplace_back([&a, &ks = keys[w]] {
      for (auto& k : ks) (void)a.set(k, "v");
    });
  for (auto& t : threads) t.join();
  auto written = clk::now();
  auto got = [&](std::size_t j) { return received(*nodes[j]) - before[j]; };
  auto done = [&] {
    for (std::size_t j = 1; j < node_count; ++j)
      if (got(j) < n) return false;
    return true;
  };
  while (!done() && clk::now() - start < 60s) std::this_thread::sleep_for(100us);
  double secs = std::chrono::duration<double>(clk::now() - start).count();
  delivered out;
  std::uint64_t sum = 0, least = n;
  for (std::size_t j = 1; j < node_count; ++j) {
    sum += got(j);
    least = std::min<std::uint64_t>(least, got(j));
  }
  out.total = static_cast<double>(sum) / secs;
  out.per_receiver = static_cast<double>(least) / secs;
  out.writes = static_cast<double>(n) / std::chrono::duration<double>(written - start).count();
  return out;
}

struct latency {
  double p50 = 0, p99 = 0, p999 = 0;
  std::size_t samples = 0;
};

// Hydrating writes on a at `rate`/s for `seconds`; latency until b and c applied each one.
latency visibility(double rate, double seconds, bool fixed_delay) {
  auto nodes = start_cluster(true, fixed_delay);
  if (nodes.empty()) return {};
  auto& a = *nodes[0];
  auto total = static_cast<std::size_t>(rate * seconds);
  // Written before the set() that publishes the change, read after the remote apply (which
  // happens after the change crossed the network): ordered through the transport.
  std::vector<clk::time_point> sent(total);
  std::vector<double> lat;
  lat.reserve(total * (node_count - 1));
  std::mutex mtx;
  for (std::size_t j = 1; j < node_count; ++j)
    nodes[j]->watch([&](const warp::change_event& ev) {
      if (!ev.remote || ev.what != warp::change_event::kind::set) return;
      auto now = clk::now();
      auto i = std::stoul(ev.key.substr(4));
      std::lock_guard<std::mutex> g{mtx};
      if (i < total)
        lat.push_back(std::chrono::duration<double, std::micro>(now - sent[i]).count());
    });
  std::vector<std::string> keys;
  keys.reserve(total);
  for (std::size_t i = 0; i < total; ++i) keys.push_back("lat:" + std::to_string(i));
  auto start = clk::now();
  auto period = std::chrono::duration<double>(1.0 / rate);
  for (std::size_t i = 0; i < total; ++i) {
    auto due = start + std::chrono::duration_cast<clk::duration>(period * static_cast<double>(i));
    // Sleep until shortly before the due time and spin only the rest: a pacing loop that
    // spins the whole period holds one of the machine's cores, which the nodes need.
    auto early = due - 200us;
    if (clk::now() < early) std::this_thread::sleep_until(early);
    while (clk::now() < due) std::this_thread::yield();
    sent[i] = clk::now();
    (void)a.set(keys[i], "payload-of-32-bytes-------------");
  }
  std::this_thread::sleep_for(500ms);
  std::lock_guard<std::mutex> g{mtx};
  std::sort(lat.begin(), lat.end());
  latency out;
  out.samples = lat.size();
  if (lat.empty()) return out;
  auto at = [&](double q) {
    return lat[std::min(lat.size() - 1, static_cast<std::size_t>(q * lat.size()))];
  };
  out.p50 = at(0.50);
  out.p99 = at(0.99);
  out.p999 = at(0.999);
  return out;
}

void setup(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("cluster", "sync-bus throughput and write-to-remote latency (3 nodes)");
  static bool json = false;
  static std::size_t records = 1'000'000;
  static std::size_t writers = 2;
  static double rate = 10'000;
  static double seconds = 3.0;
  cmd->add_flag("--json", json, "print one JSON object on the last line");
  cmd->add_option("--records", records, "records per throughput run");
  cmd->add_option("--writers", writers, "writer threads on node a (a service's request threads)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--rate", rate, "updates/s for the latency run");
  cmd->add_option("--seconds", seconds, "length of the latency run");
  cmd->callback([] {
    auto raw = raw_rate(std::min<std::size_t>(records, 300'000));
    std::printf("raw CAF one-way messages:        %10.0f msg/s\n", raw);
    auto off = delivered_rate(std::min<std::size_t>(records, 300'000), false, writers);
    std::printf(
        "delivered to b+c, batching off:  %10.0f updates/s (%.2fx raw; per receiver %.0f/s, writes "
        "on a %.0f/s)\n",
        off.total, off.total / raw, off.per_receiver, off.writes);
    auto on = delivered_rate(records, true, writers);
    std::printf(
        "delivered to b+c, batching on:   %10.0f updates/s (%.2fx raw; per receiver %.0f/s = %.2fx "
        "raw, writes on a %.0f/s)\n",
        on.total, on.total / raw, on.per_receiver, on.per_receiver / raw, on.writes);
    auto fixed = visibility(rate, seconds, true);
    std::printf(
        "write->remote visibility at %.0f/s, fixed %lld us delay: p50 %.0f us, p99 %.0f us, p999 "
        "%.0f us (%zu samples)\n",
        rate, static_cast<long long>(warp::cluster_options{}.batch_max_delay.count()), fixed.p50,
        fixed.p99, fixed.p999, fixed.samples);
    auto lat = visibility(rate, seconds, false);
    std::printf(
        "write->remote visibility at %.0f/s, adaptive:       p50 %.0f us, p99 %.0f us, p999 %.0f "
        "us (%zu samples)\n",
        rate, lat.p50, lat.p99, lat.p999, lat.samples);
    if (json) {
      nlohmann::json j{{"nodes", node_count},
                       {"writers", writers},
                       {"raw_caf_msgs_per_s", raw},
                       {"delivered_batching_off_per_s", off.total},
                       {"delivered_batching_off_per_receiver_per_s", off.per_receiver},
                       {"delivered_batching_on_per_s", on.total},
                       {"delivered_batching_on_per_receiver_per_s", on.per_receiver},
                       {"writes_batching_on_per_s", on.writes},
                       {"batching_on_vs_raw", on.total / raw},
                       {"batching_on_per_receiver_vs_raw", on.per_receiver / raw},
                       {"latency_rate_per_s", rate},
                       {"latency_p50_us", lat.p50},
                       {"latency_p99_us", lat.p99},
                       {"latency_p999_us", lat.p999},
                       {"latency_samples", lat.samples},
                       {"latency_fixed_delay_p50_us", fixed.p50},
                       {"latency_fixed_delay_p99_us", fixed.p99},
                       {"latency_fixed_delay_p999_us", fixed.p999}};
      std::cout << j.dump() << std::endl;
    }
  });
}

const bool registered = warp_bench::register_subcommand(&setup);

}  // namespace
