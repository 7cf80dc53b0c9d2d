// warp-bench cluster: THREE nodes in three processes, over CAF's network layer on loopback.
// Node a runs in this process (a service embedding the runtime); b and c are child
// processes (`warp-bench cluster-peer`, started and stopped by PID) that run a node each and
// publish a probe actor: a sink for the raw baseline, and the node's receive counters and
// visibility samples on request.
//   raw:       one-way CAF messages from this process to process b (the baseline, same run)
//   delivered: writes on node a (the public node::set path: storage write-through, L1, bus)
//              until b and c have both received every change record, batching off and on.
//              "delivered" counts records received by the other nodes (b + c): each write
//              is delivered twice. Per-receiver figures are printed beside it.
//   latency:   hydrating writes on a at a fixed rate; each value carries its send time
//              (CLOCK_MONOTONIC, one clock for every process of the machine) and b and c
//              record the time until their L1 applied it.
// --writers N drives node a from N threads, as a service does (one per request handler /
// worker); 1 reproduces the single-writer figure.
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "apps/warp-bench/bench.hpp"
#include "warp/cluster.hpp"
#include "warp/node.hpp"

extern char** environ;

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t node_count = 3;

using count_atom = caf::atom_constant<caf::atom("wbcount")>;
using received_atom = caf::atom_constant<caf::atom("wbrecv")>;
using samples_atom = caf::atom_constant<caf::atom("wbsamples")>;

/// A port on 127.0.0.1 nobody listens on right now.
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct node_settings {
  bool batching = true;
  bool fixed_delay = false;  ///< the pre-adaptive policy: always wait batch_max_delay
};

warp::node_config node_cfg(const std::string& name, std::uint16_t port,
                           const std::vector<std::uint16_t>& peers, node_settings s) {
  warp::node_config cfg;
  cfg.name = name;
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  for (auto p : peers) cfg.peers.push_back("127.0.0.1:" + std::to_string(p));
  cfg.storage = "memory";
  cfg.log_level = "warn";
  cfg.default_policy.consistency = warp::mode::eventual_distributed;
  cfg.patterns = {"lat:*=eventual_distributed+hydrate"};
  cfg.cluster.batching = s.batching;
  if (s.fixed_delay) cfg.cluster.batch_busy_rate = 0;
  cfg.cluster.heartbeat_interval = 50ms;
  return cfg;
}

// -- the peer process -------------------------------------------------------------------

/// State of the probe actor in a peer process.
struct probe_state {
  std::uint64_t raw = 0;  ///< raw baseline messages received
  static inline const char* name = "warp-bench.probe";
};

struct peer_samples {
  std::mutex mtx;
  std::vector<double> us;
};

caf::behavior probe(caf::stateful_actor<probe_state>* self, warp::node* n,
                    std::shared_ptr<peer_samples> samples) {
  return {
      [=](std::uint64_t) { ++self->state.raw; },
      [=](count_atom) { return self->state.raw; },
      [=](received_atom) { return warp::cluster_stats_of(*n).records_received; },
      [=](samples_atom) {
        std::lock_guard<std::mutex> g{samples->mtx};
        std::string out;
        for (auto v : samples->us) out += std::to_string(static_cast<std::int64_t>(v)) + ",";
        samples->us.clear();
        return out;
      },
  };
}

int run_peer(const std::string& name, std::uint16_t port, const std::vector<std::uint16_t>& peers,
             std::uint16_t probe_port, node_settings s) {
  auto n = warp::node::start(node_cfg(name, port, peers, s));
  if (!n) {
    std::cerr << "peer " << name << ": " << n.err().to_string() << "\n";
    return 1;
  }
  auto samples = std::make_shared<peer_samples>();
  // The event carries the key only: the value (the send time) is read from L1, where the
  // hydration just put it.
  auto& node = **n;
  node.watch([samples, &node](const warp::change_event& ev) {
    if (!ev.remote || ev.what != warp::change_event::kind::set || ev.key.rfind("lat:", 0) != 0)
      return;
    auto now = mono_ns();
    std::int64_t sent = 0;
    node.read_if_present(ev.key, [&](std::string_view v) {
      sent = std::strtoll(std::string{v.substr(0, 20)}.c_str(), nullptr, 10);
    });
    if (sent <= 0) return;
    std::lock_guard<std::mutex> g{samples->mtx};
    samples->us.push_back(static_cast<double>(now - sent) / 1000.0);
  });
  auto& sys = node.system();
  auto actor = sys.spawn(probe, &node, samples);
  auto published = sys.middleman().publish(actor, probe_port, "127.0.0.1");
  if (!published) {
    std::cerr << "peer " << name << ": cannot publish the probe on " << probe_port << "\n";
    return 1;
  }
  // Runs until the parent stops it (SIGTERM).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  node.stop();
  return 0;
}

// -- the parent process -----------------------------------------------------------------

/// A peer process, stopped (SIGTERM, then SIGKILL) by PID when it goes out of scope.
class peer_process {
 public:
  peer_process(const std::string& name, std::uint16_t port, const std::vector<std::uint16_t>& peers,
               std::uint16_t probe_port, node_settings s) {
    std::vector<std::string> args{
        "warp-bench", "cluster-peer",       "--name",       name,
        "--port",     std::to_string(port), "--probe-port", std::to_string(probe_port)};
    for (auto p : peers) {
      args.push_back("--peer");
      args.push_back(std::to_string(p));
    }
    if (!s.batching) args.push_back("--no-batching");
    if (s.fixed_delay) args.push_back("--fixed-delay");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0)
      pid_ = -1;
  }
  ~peer_process() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;
  bool ok() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

/// Node a in this process, b and c as peer processes, and a client actor system for the
/// probes (and the raw baseline).
struct bench_cluster {
  std::vector<std::unique_ptr<peer_process>> peers;
  std::unique_ptr<warp::node> a;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<caf::actor> probes;  ///< of b and c

  bool start(node_settings s) {
    std::vector<std::uint16_t> ports, probe_ports;
    for (std::size_t i = 0; i < node_count; ++i) ports.push_back(free_port());
    for (std::size_t i = 1; i < node_count; ++i) probe_ports.push_back(free_port());
    auto others = [&](std::size_t i) {
      std::vector<std::uint16_t> out;
      for (std::size_t j = 0; j < node_count; ++j)
        if (j != i) out.push_back(ports[j]);
      return out;
    };
    for (std::size_t i = 1; i < node_count; ++i) {
      peers.push_back(std::make_unique<peer_process>(std::string(1, static_cast<char>('a' + i)),
                                                     ports[i], others(i), probe_ports[i - 1], s));
      if (!peers.back()->ok()) return false;
    }
    auto n = warp::node::start(node_cfg("a", ports[0], others(0), s));
    if (!n) {
      std::cerr << "cannot start node a: " << n.err().to_string() << "\n";
      return false;
    }
    a = std::move(*n);
    cfg = std::make_unique<caf::actor_system_config>();
    cfg->load<caf::io::middleman>();
    cfg->set("scheduler.max-threads", 2);
    cfg->set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(*cfg);
    auto deadline = clk::now() + 20s;
    for (auto p : probe_ports) {
      caf::expected<caf::actor> probe = caf::sec::cannot_connect_to_node;
      while (clk::now() < deadline) {
        probe = sys->middleman().remote_actor("127.0.0.1", p);
        if (probe) break;
        std::this_thread::sleep_for(50ms);
      }
      if (!probe) {
        std::cerr << "peer probe on " << p << " unreachable\n";
        return false;
      }
      probes.push_back(*probe);
    }
    while (clk::now() < deadline) {
      auto v = warp::view_of(*a);
      auto up = std::count_if(v.members.begin(), v.members.end(),
                              [](auto& m) { return m.state == warp::member_state::up; });
      if (up == static_cast<std::ptrdiff_t>(node_count)) return true;
      std::this_thread::sleep_for(10ms);
    }
    std::cerr << "the 3-node view did not converge\n";
    return false;
  }

  template <class T, class Atom>
  T ask(const caf::actor& probe, Atom atom) {
    T out{};
    caf::scoped_actor self{*sys};
    self->request(probe, 10s, atom).receive([&](T& v) { out = std::move(v); }, [](caf::error&) {});
    return out;
  }

  ~bench_cluster() {
    probes.clear();
    if (a) a->stop();
    peers.clear();
  }
};

// Raw CAF: N one-way messages from this process to the probe in process b.
double raw_rate(bench_cluster& c, std::size_t n) {
  auto& probe = c.probes[0];
  auto before = c.ask<std::uint64_t>(probe, count_atom::value);
  auto start = clk::now();
  for (std::uint64_t i = 0; i < n; ++i) caf::anon_send(probe, i);
  std::uint64_t got = 0;
  while (clk::now() - start < 60s) {
    got = c.ask<std::uint64_t>(probe, count_atom::value) - before;
    if (got >= n) break;
    std::this_thread::sleep_for(1ms);
  }
  double secs = std::chrono::duration<double>(clk::now() - start).count();
  return static_cast<double>(got) / secs;
}

struct delivered {
  double total = 0;         ///< records received by b and c together, per second
  double per_receiver = 0;  ///< the slower of b and c
  double writes = 0;        ///< node::set calls per second on a (until the last returned)
};

// Invalidating writes on a from `writers` threads (distinct keys, built beforehand) until
// b and c have received every change record.
delivered delivered_rate(std::size_t n, bool batching, std::size_t writers) {
  bench_cluster c;
  if (!c.start({batching, false})) return {};
  auto& a = *c.a;
  std::vector<std::vector<std::string>> keys(writers);
  for (std::size_t i = 0; i < n; ++i) keys[i % writers].push_back("user:" + std::to_string(i));
  std::vector<std::uint64_t> before;
  for (auto& p : c.probes) before.push_back(c.ask<std::uint64_t>(p, received_atom::value));
  auto start = clk::now();
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < writers; ++w)
    threads.emplace_back([&a, &ks = keys[w]] {
      for (auto& k : ks) (void)a.set(k, "v");
    });
  for (auto& t : threads) t.join();
  auto written = clk::now();
  std::vector<std::uint64_t> got(c.probes.size(), 0);
  while (clk::now() - start < 60s) {
    bool done = true;
    for (std::size_t j = 0; j < c.probes.size(); ++j) {
      got[j] = c.ask<std::uint64_t>(c.probes[j], received_atom::value) - before[j];
      done = done && got[j] >= n;
    }
    if (done) break;
    std::this_thread::sleep_for(1ms);
  }
  double secs = std::chrono::duration<double>(clk::now() - start).count();
  delivered out;
  std::uint64_t sum = 0, least = n;
  for (auto g : got) {
    sum += g;
    least = std::min<std::uint64_t>(least, g);
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
  bench_cluster c;
  if (!c.start({true, fixed_delay})) return {};
  auto& a = *c.a;
  auto total = static_cast<std::size_t>(rate * seconds);
  std::vector<std::string> keys;
  keys.reserve(total);
  for (std::size_t i = 0; i < total; ++i) keys.push_back("lat:" + std::to_string(i));
  auto start = clk::now();
  auto period = std::chrono::duration<double>(1.0 / rate);
  char value[33];
  for (std::size_t i = 0; i < total; ++i) {
    auto due = start + std::chrono::duration_cast<clk::duration>(period * static_cast<double>(i));
    // Sleep until shortly before the due time and spin only the rest: a pacing loop that
    // spins the whole period holds one of the machine's cores, which the nodes need.
    auto early = due - 200us;
    if (clk::now() < early) std::this_thread::sleep_until(early);
    while (clk::now() < due) std::this_thread::yield();
    // 32 bytes: the send time, zero-padded to 20 digits, then padding.
    std::snprintf(value, sizeof value, "%020lld------------", static_cast<long long>(mono_ns()));
    (void)a.set(keys[i], std::string_view{value, 32});
  }
  std::this_thread::sleep_for(500ms);
  std::vector<double> lat;
  for (auto& p : c.probes) {
    auto text = c.ask<std::string>(p, samples_atom::value);
    std::size_t pos = 0;
    while (pos < text.size()) {
      auto comma = text.find(',', pos);
      if (comma == std::string::npos) break;
      lat.push_back(std::strtod(text.substr(pos, comma - pos).c_str(), nullptr));
      pos = comma + 1;
    }
  }
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
  auto* cmd = app.add_subcommand(
      "cluster", "sync-bus throughput and write-to-remote latency (3 nodes, 3 processes)");
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
    double raw = 0;
    {
      bench_cluster c;
      if (!c.start({true, false})) std::exit(1);
      raw = raw_rate(c, std::min<std::size_t>(records, 300'000));
    }
    std::printf("raw CAF one-way messages a->b:   %10.0f msg/s\n", raw);
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
                       {"processes", node_count},
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

  // The peer processes of `cluster` (started by it; not meant to be run by hand).
  auto* peer = app.add_subcommand("cluster-peer", "(internal) one node of `warp-bench cluster`");
  static std::string name;
  static std::uint16_t port = 0, probe_port = 0;
  static std::vector<std::uint16_t> peer_ports;
  static bool no_batching = false, fixed_delay = false;
  peer->add_option("--name", name)->required();
  peer->add_option("--port", port)->required();
  peer->add_option("--probe-port", probe_port)->required();
  peer->add_option("--peer", peer_ports);
  peer->add_flag("--no-batching", no_batching);
  peer->add_flag("--fixed-delay", fixed_delay);
  peer->group("");  // hidden from --help
  peer->callback([] {
    std::exit(run_peer(name, port, peer_ports, probe_port, {!no_batching, fixed_delay}));
  });
}

const bool registered = warp_bench::register_subcommand(&setup);

}  // namespace
