#include "apps/warp-bench/baseline_clusters.hpp"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <random>
#include <thread>

namespace warp_bench {

namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string b64(std::string_view in) {
  static const char* tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    auto v = (std::uint32_t(std::uint8_t(in[i])) << 16) |
             (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += tab[(v >> 6) & 63];
    out += tab[v & 63];
  }
  if (i < in.size()) {
    auto v = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += i + 1 < in.size() ? tab[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string unb64(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

void die(const std::string& msg) {
  std::cerr << "warp-bench: " << msg << "\n";
  std::exit(1);
}

/// Waits until `port` accepts connections; false when the process exited first or 30 s
/// passed.
namespace {
bool wait_up(warp::test::child_process& p, std::uint16_t port) {
  auto deadline = clk::now() + 30s;
  while (clk::now() < deadline) {
    if (warp::test::wait_for_port(port, 200ms)) return true;
    if (!p.running()) return false;
  }
  return false;
}

}  // namespace

void warp_cluster::stop() {
  for (auto& p : procs) p->stop();
}

void start_warp(warp_cluster& c, const std::string& warpd_path,
                const std::vector<std::string>& extra_args, const fs::path& dir) {
  std::string warpd = warpd_path;
  if (warpd.empty()) {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) warpd = (self.parent_path() / "../warpd/warpd").lexically_normal().string();
  }
  if (warpd.empty() || !fs::exists(warpd)) die("warpd not found (give --warpd PATH)");
  std::vector<std::uint16_t> node_ports;
  for (int i = 0; i < 3; ++i) {
    node_ports.push_back(warp::test::free_port());
    c.resp_ports.push_back(warp::test::free_port());
    c.admin_ports.push_back(warp::test::free_port());
  }
  for (std::size_t i = 0; i < 3; ++i) {
    std::string peers;
    for (std::size_t j = 0; j < 3; ++j)
      if (j != i)
        peers += (peers.empty() ? "" : ",") + ("127.0.0.1:" + std::to_string(node_ports[j]));
    auto data = dir / ("warp" + std::to_string(i));
    fs::create_directories(data);
    std::vector<std::string> argv{warpd,
                                  "--name",
                                  "w" + std::to_string(i),
                                  "--listen",
                                  "127.0.0.1:" + std::to_string(node_ports[i]),
                                  "--peers",
                                  peers,
                                  "--http",
                                  "127.0.0.1:" + std::to_string(c.admin_ports[i]),
                                  "--resp",
                                  "127.0.0.1:" + std::to_string(c.resp_ports[i]),
                                  "--data-dir",
                                  data.string(),
                                  "--pattern",
                                  "s:*=strong_distributed",
                                  "--log-level",
                                  "warn"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    c.procs.push_back(std::make_unique<warp::test::child_process>(
        argv, (dir / ("warpd" + std::to_string(i) + ".log")).string()));
  }
  for (std::size_t i = 0; i < 3; ++i)
    if (!wait_up(*c.procs[i], c.resp_ports[i]))
      die("warpd " + std::to_string(i) + " did not start; its log:\n" + c.procs[i]->log());
  // Ready when a strong write succeeds through every node several times in a row.
  auto deadline = clk::now() + 60s;
  int streak = 0;
  std::string last;
  while (streak < 10 && clk::now() < deadline) {
    bool ok = true;
    for (auto p : c.resp_ports) {
      resp_client r{p};
      auto rep = r.call({"SET", "s:warmup", "x"});
      if (!rep.ok) last = rep.text;
      ok = ok && rep.ok;
    }
    streak = ok ? streak + 1 : 0;
    if (!ok) std::this_thread::sleep_for(100ms);
  }
  if (streak < 10) die("the warpd cluster never accepted strong writes (last: " + last + ")");
}

void etcd_cluster::stop() {
  for (auto& p : procs) p->stop();
}

void start_etcd(etcd_cluster& c, const std::string& etcd_path, const fs::path& dir) {
  std::string etcd = etcd_path.empty() ? warp::test::find_program("etcd") : etcd_path;
  if (etcd.empty() || !fs::exists(etcd))
    die("etcd not found: install Debian's etcd-server (scripts/deps.sh) or give --etcd PATH");
  std::vector<std::uint16_t> peer_ports;
  for (int i = 0; i < 3; ++i) {
    c.client_ports.push_back(warp::test::free_port());
    peer_ports.push_back(warp::test::free_port());
  }
  std::string initial;
  for (std::size_t i = 0; i < 3; ++i)
    initial += (i ? "," : "") +
               ("e" + std::to_string(i) + "=http://127.0.0.1:" + std::to_string(peer_ports[i]));
  for (std::size_t i = 0; i < 3; ++i) {
    auto client = "http://127.0.0.1:" + std::to_string(c.client_ports[i]);
    auto peer = "http://127.0.0.1:" + std::to_string(peer_ports[i]);
    std::vector<std::string> argv{etcd,
                                  "--name",
                                  "e" + std::to_string(i),
                                  "--data-dir",
                                  (dir / ("etcd" + std::to_string(i))).string(),
                                  "--listen-client-urls",
                                  client,
                                  "--advertise-client-urls",
                                  client,
                                  "--listen-peer-urls",
                                  peer,
                                  "--initial-advertise-peer-urls",
                                  peer,
                                  "--initial-cluster",
                                  initial,
                                  "--initial-cluster-token",
                                  "warp-bench",
                                  "--initial-cluster-state",
                                  "new",
                                  "--log-level",
                                  "error"};
    c.procs.push_back(std::make_unique<warp::test::child_process>(
        argv, (dir / ("etcd" + std::to_string(i) + ".log")).string()));
  }
  for (std::size_t i = 0; i < 3; ++i)
    if (!wait_up(*c.procs[i], c.client_ports[i]))
      die("etcd " + std::to_string(i) + " did not start; its log:\n" + c.procs[i]->log());
  auto deadline = clk::now() + 60s;
  int streak = 0;
  while (streak < 10 && clk::now() < deadline) {
    bool ok = true;
    for (auto p : c.client_ports) ok = ok && etcd_client{p}.put("warmup", "x");
    streak = ok ? streak + 1 : 0;
    if (!ok) std::this_thread::sleep_for(100ms);
  }
  if (streak < 10) die("the etcd cluster never accepted writes; log:\n" + c.procs[0]->log());
}

cell run_cell(std::size_t clients, double seconds, const std::function<cell_op(std::size_t)>& make,
              std::size_t keys) {
  std::atomic<bool> stop{false}, unsupported{false};
  std::vector<std::vector<std::uint32_t>> lat(clients);
  std::vector<std::uint64_t> errors(clients), conflicts(clients);
  std::vector<std::thread> ts;
  auto start = clk::now();
  for (std::size_t t = 0; t < clients; ++t)
    ts.emplace_back([&, t] {
      auto op = make(t);
      std::mt19937_64 rng{t * 7919 + 3};
      lat[t].reserve(1 << 14);
      while (!stop.load(std::memory_order_relaxed)) {
        auto t0 = clk::now();
        auto o = op(rng() % keys, conflicts[t]);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - t0).count();
        if (o == outcome::ok)
          lat[t].push_back(static_cast<std::uint32_t>(us));
        else if (o == outcome::unsupported) {
          unsupported = true;
          return;
        } else
          ++errors[t];
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : ts) th.join();
  cell c;
  c.seconds = std::chrono::duration<double>(clk::now() - start).count();
  c.unsupported = unsupported;
  std::vector<std::uint32_t> all;
  for (std::size_t t = 0; t < clients; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    c.errors += errors[t];
    c.conflicts += conflicts[t];
  }
  c.ops = all.size();
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
      return static_cast<double>(all[std::min(
          all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))]);
    };
    c.p50_us = pct(0.50);
    c.p99_us = pct(0.99);
  }
  return c;
}

nlohmann::json cell_json(const cell& c) {
  if (c.unsupported) return "unsupported";
  return {{"ops_per_s", c.rate()},
          {"p50_us", c.p50_us},
          {"p99_us", c.p99_us},
          {"errors", c.errors},
          {"conflicts", c.conflicts}};
}

scratch_dir::scratch_dir(const std::string& parent)
    : parent_{parent.empty() ? fs::path{"/tmp"} : fs::path{parent}} {
  fs::create_directories(parent_);
  auto tmpl = (parent_ / "warp-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) die("cannot create a directory under " + parent_.string());
  path_ = tmpl;
}

scratch_dir::~scratch_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace warp_bench
