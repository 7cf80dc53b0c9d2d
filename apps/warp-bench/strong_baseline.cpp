#include "apps/warp-bench/strong_baseline.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <httplib.h>

#include "test/support/process.hpp"

namespace warp_bench {

namespace {

namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

// -- a minimal blocking RESP2 client: one connection, one command at a time ------------------

struct resp_reply {
  bool ok = false;   ///< a reply arrived and it is not an error
  std::string text;  ///< the error text, or a simple/bulk string, or the integer
};

class resp_client {
 public:
  static constexpr long max_bulk = 16 << 20;

  explicit resp_client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A server that stops answering ends the call instead of hanging the bench.
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~resp_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  resp_client(const resp_client&) = delete;
  resp_client& operator=(const resp_client&) = delete;

  bool connected() const { return fd_ >= 0; }

  resp_reply call(std::initializer_list<std::string_view> args) {
    out_.clear();
    out_ += '*' + std::to_string(args.size()) + "\r\n";
    for (auto a : args) {
      out_ += '$' + std::to_string(a.size()) + "\r\n";
      out_.append(a);
      out_ += "\r\n";
    }
    std::size_t sent = 0;
    while (sent < out_.size()) {
      auto n = ::send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return {};
      sent += static_cast<std::size_t>(n);
    }
    return read_reply();
  }

 private:
  bool fill() {
    if (pos_ > 0) {
      in_.erase(0, pos_);
      pos_ = 0;
    }
    char buf[16384];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    // A status line with no end is as bad as an oversized bulk string.
    if (in_.size() > static_cast<std::size_t>(max_bulk) + 64) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  std::optional<std::string> line() {
    for (;;) {
      auto end = in_.find("\r\n", pos_);
      if (end != std::string::npos) {
        std::string l = in_.substr(pos_, end - pos_);
        pos_ = end + 2;
        return l;
      }
      if (!fill()) return std::nullopt;
    }
  }
  resp_reply read_reply() {
    auto l = line();
    if (!l || l->empty()) return {};
    char kind = (*l)[0];
    std::string rest = l->substr(1);
    switch (kind) {
      case '+':
      case ':':
        return {true, rest};
      case '-':
        return {false, rest};
      case '$': {
        long len = std::strtol(rest.c_str(), nullptr, 10);
        if (len < 0) return {true, {}};  // nil
        // Bounded before anything is buffered for it: the bench's values are small.
        if (len > max_bulk) return {};
        while (in_.size() - pos_ < static_cast<std::size_t>(len) + 2)
          if (!fill()) return {};
        std::string v = in_.substr(pos_, static_cast<std::size_t>(len));
        pos_ += static_cast<std::size_t>(len) + 2;
        return {true, std::move(v)};
      }
      default:
        return {};  // nothing the bench sends answers with anything else
    }
  }

  int fd_ = -1;
  std::string out_, in_;
  std::size_t pos_ = 0;
};

// -- etcd's v3 JSON gateway ---------------------------------------------------------------------

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

class etcd_client {
 public:
  static constexpr std::size_t max_body = 1 << 20;

  explicit etcd_client(std::uint16_t port) : cli_("127.0.0.1", port) {
    cli_.set_keep_alive(true);  // one connection per client thread, reused
    // Headers and body leave in separate writes: without this, Nagle + delayed ACK add
    // ~40 ms to every call.
    cli_.set_tcp_nodelay(true);
    cli_.set_connection_timeout(5, 0);
    cli_.set_read_timeout(5, 0);
    cli_.set_write_timeout(5, 0);
  }

  std::optional<nlohmann::json> post(const char* path, const nlohmann::json& body) {
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    // The answer is bounded while it arrives: a key range of the bench's own small values.
    std::string in;
    bool too_big = false;
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (in.size() + n > max_body) {
        too_big = true;
        return false;
      }
      in.append(data, n);
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    if (!cli_.send(req, res, err) || too_big || res.status != 200) return std::nullopt;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  bool put(const std::string& key, const std::string& value) {
    return post("/v3/kv/put", {{"key", b64(key)}, {"value", b64(value)}}).has_value();
  }

  /// Linearizable (the gateway's default: serializable=false).
  bool get(const std::string& key) { return post("/v3/kv/range", {{"key", b64(key)}}).has_value(); }

  /// What a counter costs on etcd: read value and mod_revision, write value + 1 if the
  /// key's mod_revision is still the one read, else again. `conflicts` counts the retries.
  bool incr(const std::string& key, std::uint64_t& conflicts) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      auto r = post("/v3/kv/range", {{"key", b64(key)}});
      if (!r) return false;
      std::int64_t n = 0;
      std::string mod = "0";  // a missing key's mod_revision
      if (auto kvs = r->find("kvs"); kvs != r->end() && kvs->is_array() && !kvs->empty()) {
        auto& kv = (*kvs)[0];
        n = std::strtoll(unb64(kv.value("value", "")).c_str(), nullptr, 10);
        mod = kv.value("mod_revision", "0");
      }
      nlohmann::json txn = {
          {"compare",
           {{{"key", b64(key)}, {"result", "EQUAL"}, {"target", "MOD"}, {"mod_revision", mod}}}},
          {"success",
           {{{"request_put", {{"key", b64(key)}, {"value", b64(std::to_string(n + 1))}}}}}}};
      auto t = post("/v3/kv/txn", txn);
      if (!t) return false;
      // The gateway leaves false booleans out: no "succeeded" is a failed compare.
      if (t->value("succeeded", false)) return true;
      ++conflicts;
    }
    return false;
  }

 private:
  httplib::Client cli_;
};

// -- the clusters ------------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& msg) {
  std::cerr << "warp-bench strong: " << msg << "\n";
  std::exit(1);
}

/// Waits until `port` accepts connections; false when the process exited first or 30 s
/// passed.
bool wait_up(warp::test::child_process& p, std::uint16_t port) {
  auto deadline = clk::now() + 30s;
  while (clk::now() < deadline) {
    if (warp::test::wait_for_port(port, 200ms)) return true;
    if (!p.running()) return false;
  }
  return false;
}

struct warp_cluster {
  std::vector<std::uint16_t> resp_ports;
  std::vector<std::unique_ptr<warp::test::child_process>> procs;
};

void start_warp(warp_cluster& c, const baseline_args& a, const fs::path& dir) {
  std::string warpd = a.warpd;
  if (warpd.empty()) {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) warpd = (self.parent_path() / "../warpd/warpd").lexically_normal().string();
  }
  if (warpd.empty() || !fs::exists(warpd)) fail("warpd not found (give --warpd PATH)");
  std::vector<std::uint16_t> node_ports;
  for (int i = 0; i < 3; ++i) {
    node_ports.push_back(warp::test::free_port());
    c.resp_ports.push_back(warp::test::free_port());
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
                                  "127.0.0.1:0",
                                  "--resp",
                                  "127.0.0.1:" + std::to_string(c.resp_ports[i]),
                                  "--data-dir",
                                  data.string(),
                                  "--pattern",
                                  "s:*=strong_distributed",
                                  "--log-level",
                                  "warn"};
    argv.insert(argv.end(), a.warpd_args.begin(), a.warpd_args.end());
    c.procs.push_back(std::make_unique<warp::test::child_process>(
        argv, (dir / ("warpd" + std::to_string(i) + ".log")).string()));
  }
  for (std::size_t i = 0; i < 3; ++i)
    if (!wait_up(*c.procs[i], c.resp_ports[i]))
      fail("warpd " + std::to_string(i) + " did not start; its log:\n" + c.procs[i]->log());
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
  if (streak < 10) fail("the warpd cluster never accepted strong writes (last: " + last + ")");
}

struct etcd_cluster {
  std::vector<std::uint16_t> client_ports;
  std::vector<std::unique_ptr<warp::test::child_process>> procs;
};

void start_etcd(etcd_cluster& c, const baseline_args& a, const fs::path& dir) {
  std::string etcd = a.etcd.empty() ? warp::test::find_program("etcd") : a.etcd;
  if (etcd.empty() || !fs::exists(etcd))
    fail("etcd not found: install Debian's etcd-server (scripts/deps.sh) or give --etcd PATH");
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
      fail("etcd " + std::to_string(i) + " did not start; its log:\n" + c.procs[i]->log());
  auto deadline = clk::now() + 60s;
  int streak = 0;
  while (streak < 10 && clk::now() < deadline) {
    bool ok = true;
    for (auto p : c.client_ports) ok = ok && etcd_client{p}.put("warmup", "x");
    streak = ok ? streak + 1 : 0;
    if (!ok) std::this_thread::sleep_for(100ms);
  }
  if (streak < 10) fail("the etcd cluster never accepted writes; log:\n" + c.procs[0]->log());
}

// -- one cell: an operation at a number of clients, for a while -------------------------------

enum class outcome { ok, error, unsupported };

struct cell {
  std::uint64_t ops = 0, errors = 0, conflicts = 0;
  double seconds = 0, p50_us = 0, p99_us = 0;
  bool unsupported = false;
  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

/// `make(t)` builds client thread t's operation (it owns that thread's connection).
cell run_cell(std::size_t clients, double seconds,
              const std::function<std::function<outcome(std::uint64_t k, std::uint64_t& conflicts)>(
                  std::size_t)>& make,
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

}  // namespace

nlohmann::json run_etcd_baseline(const baseline_args& a) {
  fs::path parent = a.data_dir.empty() ? fs::path{"/tmp"} : fs::path{a.data_dir};
  fs::create_directories(parent);
  // Every data dir under one fresh directory: Warp's and etcd's on the same medium.
  auto tmpl = (parent / "warp-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) fail("cannot create a directory under " + parent.string());
  fs::path dir{tmpl};
  struct cleanup {
    fs::path p;
    ~cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } rm{dir};

  warp_cluster warp;
  etcd_cluster etcd;
  start_warp(warp, a, dir);
  start_etcd(etcd, a, dir);
  std::string value(a.value_size, 'v');

  const char* ops[] = {"set", "get", "incr"};
  nlohmann::json out = nlohmann::json::array();
  struct row {
    std::string op;
    std::size_t clients;
    cell w, e;
  };
  std::vector<row> rows;
  for (const char* op : ops) {
    std::string o = op;
    for (auto n : a.clients) {
      row r{o, n, {}, {}};
      r.w = run_cell(
          n, a.seconds,
          [&](std::size_t t) {
            auto conn = std::make_shared<resp_client>(warp.resp_ports[t % 3]);
            return [conn, o, &value](std::uint64_t k, std::uint64_t&) {
              if (!conn->connected()) return outcome::error;
              resp_reply rep;
              if (o == "set")
                rep = conn->call({"SET", "s:" + std::to_string(k), value});
              else if (o == "get")
                rep = conn->call({"GET", "s:" + std::to_string(k)});
              else
                rep = conn->call({"INCR", "s:c:" + std::to_string(k)});
              if (rep.ok) return outcome::ok;
              // Strong keys answer `unsupported` to read-modify-write while they are ABD
              // registers: a cell to print as such, not a failure.
              if (rep.text.find("unsupported") != std::string::npos) return outcome::unsupported;
              return outcome::error;
            };
          },
          a.keys);
      r.e = run_cell(
          n, a.seconds,
          [&](std::size_t t) {
            auto conn = std::make_shared<etcd_client>(etcd.client_ports[t % 3]);
            return [conn, o, &value](std::uint64_t k, std::uint64_t& conflicts) {
              bool ok;
              if (o == "set")
                ok = conn->put("s:" + std::to_string(k), value);
              else if (o == "get")
                ok = conn->get("s:" + std::to_string(k));
              else
                ok = conn->incr("s:c:" + std::to_string(k), conflicts);
              return ok ? outcome::ok : outcome::error;
            };
          },
          a.keys);
      rows.push_back(std::move(r));
    }
  }

  std::printf(
      "\nWarp vs etcd, same run: 3 warpd processes (strong_distributed keys, RESP sidecar, one "
      "connection per client)\nvs a 3-member etcd cluster (v3 JSON gateway, linearizable reads, "
      "one keep-alive connection per client; INCR = range + txn on mod_revision, retried);\n"
      "%zu keys, %zu-byte values, %.1f s per cell, data dirs under %s\n",
      a.keys, a.value_size, a.seconds, parent.c_str());
  std::printf("%-5s %7s | %10s %8s %8s %6s | %10s %8s %8s %6s | %11s %11s\n", "op", "clients",
              "warp ops/s", "p50 us", "p99 us", "errors", "etcd ops/s", "p50 us", "p99 us",
              "errors", "warp/etcd", "p99 w/e");
  for (auto& r : rows) {
    char wcol[64], ratio[32], p99r[32];
    if (r.w.unsupported) {
      std::snprintf(wcol, sizeof wcol, "%10s %8s %8s %6s", "unsupported", "-", "-", "-");
      std::snprintf(ratio, sizeof ratio, "n/a");
      std::snprintf(p99r, sizeof p99r, "n/a");
    } else {
      std::snprintf(wcol, sizeof wcol, "%10.0f %8.0f %8.0f %6llu", r.w.rate(), r.w.p50_us,
                    r.w.p99_us, static_cast<unsigned long long>(r.w.errors));
      if (r.e.rate() > 0)
        std::snprintf(ratio, sizeof ratio, "%.2f", r.w.rate() / r.e.rate());
      else
        std::snprintf(ratio, sizeof ratio, "n/a");
      if (r.e.p99_us > 0 && r.w.ops > 0)
        std::snprintf(p99r, sizeof p99r, "%.2f", r.w.p99_us / r.e.p99_us);
      else
        std::snprintf(p99r, sizeof p99r, "n/a");
    }
    std::printf("%-5s %7zu | %s | %10.0f %8.0f %8.0f %6llu | %11s %11s\n", r.op.c_str(), r.clients,
                wcol, r.e.rate(), r.e.p50_us, r.e.p99_us,
                static_cast<unsigned long long>(r.e.errors), ratio, p99r);
    nlohmann::json j = {
        {"op", r.op}, {"clients", r.clients}, {"warp", cell_json(r.w)}, {"etcd", cell_json(r.e)}};
    if (!r.w.unsupported && r.e.rate() > 0) j["ops_ratio"] = r.w.rate() / r.e.rate();
    if (!r.w.unsupported && r.e.p99_us > 0 && r.w.ops > 0) j["p99_ratio"] = r.w.p99_us / r.e.p99_us;
    out.push_back(std::move(j));
  }
  std::uint64_t conflicts = 0;
  for (auto& r : rows) conflicts += r.e.conflicts;
  std::printf("etcd INCR compare conflicts retried: %llu\n",
              static_cast<unsigned long long>(conflicts));
  for (auto& p : warp.procs) p->stop();
  for (auto& p : etcd.procs) p->stop();
  return out;
}

}  // namespace warp_bench
