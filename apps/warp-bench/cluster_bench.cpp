// warp-bench cluster: nodes in one process, each in its own actor system, talking over
// CAF's network layer on loopback (real TCP + BASP serialisation between the systems).
//   raw:      one-way CAF messages between the same two systems (the baseline)
//   delivered: change records published on A and received by B, batching off and on
//   latency:  hydrating writes on A at a fixed rate, until B's L1 has applied them
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
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

std::uint16_t pick_port() {
  static std::uint16_t next = static_cast<std::uint16_t>(20000 + (::getpid() % 20000));
  return next++;
}

std::unique_ptr<warp::node> start_node(const std::string& name, std::uint16_t port,
                                       std::uint16_t peer, bool batching) {
  warp::node_config cfg;
  cfg.name = name;
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  cfg.peers = {"127.0.0.1:" + std::to_string(peer)};
  cfg.storage = "memory";
  cfg.log_level = "warn";
  cfg.default_policy.consistency = warp::mode::eventual_distributed;
  cfg.patterns = {"lat:*=eventual_distributed+hydrate"};
  cfg.cluster.batching = batching;
  cfg.cluster.heartbeat_interval = 50ms;
  auto n = warp::node::start(std::move(cfg));
  if (!n) {
    std::cerr << "cannot start node: " << n.err().to_string() << "\n";
    std::exit(1);
  }
  return std::move(*n);
}

bool wait_up(warp::node& a, warp::node& b) {
  auto deadline = clk::now() + 10s;
  while (clk::now() < deadline) {
    auto ok = [](warp::node& n) {
      auto v = warp::view_of(n);
      return std::count_if(v.members.begin(), v.members.end(),
                           [](auto& m) { return m.state == warp::member_state::up; }) == 2;
    };
    if (ok(a) && ok(b)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
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

// Writes (invalidating) on A until B has received all their change records. The public
// write path: storage write-through (in-memory), L1, then the bus.
double delivered_rate(std::size_t n, bool batching) {
  auto pa = pick_port(), pb = pick_port();
  auto a = start_node("a", pa, pb, batching);
  auto b = start_node("b", pb, pa, batching);
  if (!wait_up(*a, *b)) return 0;
  auto before = warp::cluster_stats_of(*b).records_received;
  auto start = clk::now();
  for (std::size_t i = 0; i < n; ++i) (void)a->set("user:" + std::to_string(i), "v");
  while (warp::cluster_stats_of(*b).records_received - before < n && clk::now() - start < 60s)
    std::this_thread::sleep_for(100us);
  double secs = std::chrono::duration<double>(clk::now() - start).count();
  return static_cast<double>(warp::cluster_stats_of(*b).records_received - before) / secs;
}

struct latency {
  double p50 = 0, p99 = 0, p999 = 0;
  std::size_t samples = 0;
};

// Hydrating writes on A at `rate`/s for `seconds`; latency until B applied each one.
latency visibility(double rate, double seconds) {
  auto pa = pick_port(), pb = pick_port();
  auto a = start_node("a", pa, pb, true);
  auto b = start_node("b", pb, pa, true);
  if (!wait_up(*a, *b)) return {};
  auto total = static_cast<std::size_t>(rate * seconds);
  std::vector<clk::time_point> sent(total);
  std::vector<double> lat;
  lat.reserve(total);
  std::mutex mtx;
  b->watch([&](const warp::change_event& ev) {
    if (!ev.remote || ev.what != warp::change_event::kind::set) return;
    auto now = clk::now();
    auto i = std::stoul(ev.key.substr(4));
    std::lock_guard<std::mutex> g{mtx};
    if (i < total) lat.push_back(std::chrono::duration<double, std::micro>(now - sent[i]).count());
  });
  auto start = clk::now();
  auto period = std::chrono::duration<double>(1.0 / rate);
  for (std::size_t i = 0; i < total; ++i) {
    auto due = start + std::chrono::duration_cast<clk::duration>(period * static_cast<double>(i));
    while (clk::now() < due) {
    }
    sent[i] = clk::now();
    (void)a->set("lat:" + std::to_string(i), "payload-of-32-bytes-------------");
  }
  std::this_thread::sleep_for(500ms);
  std::lock_guard<std::mutex> g{mtx};
  std::sort(lat.begin(), lat.end());
  latency out;
  out.samples = lat.size();
  if (lat.empty()) return out;
  auto at = [&](double q) { return lat[std::min(lat.size() - 1, static_cast<std::size_t>(q * lat.size()))]; };
  out.p50 = at(0.50);
  out.p99 = at(0.99);
  out.p999 = at(0.999);
  return out;
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("cluster", "sync-bus throughput and write-to-remote latency");
  static bool json = false;
  static std::size_t records = 1'000'000;
  static double rate = 10'000;
  cmd->add_flag("--json", json, "print one JSON object on the last line");
  cmd->add_option("--records", records, "records per throughput run");
  cmd->add_option("--rate", rate, "updates/s for the latency run");
  cmd->callback([] {
    auto raw = raw_rate(std::min<std::size_t>(records, 300'000));
    std::printf("raw CAF one-way messages:        %10.0f msg/s\n", raw);
    auto off = delivered_rate(std::min<std::size_t>(records, 300'000), false);
    std::printf("delivered, batching off:         %10.0f updates/s (%.2fx raw)\n", off, off / raw);
    auto on = delivered_rate(records, true);
    std::printf("delivered, batching on:          %10.0f updates/s (%.2fx raw)\n", on, on / raw);
    auto lat = visibility(rate, 3.0);
    std::printf("write->remote visibility at %.0f/s: p50 %.0f us, p99 %.0f us, p999 %.0f us (%zu samples)\n",
                rate, lat.p50, lat.p99, lat.p999, lat.samples);
    if (json) {
      nlohmann::json j{{"raw_caf_msgs_per_s", raw},
                       {"delivered_batching_off_per_s", off},
                       {"delivered_batching_on_per_s", on},
                       {"batching_on_vs_raw", on / raw},
                       {"latency_rate_per_s", rate},
                       {"latency_p50_us", lat.p50},
                       {"latency_p99_us", lat.p99},
                       {"latency_p999_us", lat.p999},
                       {"latency_samples", lat.samples}};
      std::cout << j.dump() << std::endl;
    }
  });
}

const bool registered = warp_bench::register_subcommand(&setup);

}  // namespace
