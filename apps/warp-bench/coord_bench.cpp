// warp-bench coord: locks, leases and watch fan-out on 3 warpd processes (Raft engine)
// beside a 3-member etcd cluster started in the same run, with Warp/etcd ratios (issue #14,
// item 7; docs/benchmarks.md, "Coordination against etcd").
//   locks: WARP.LOCK + WARP.UNLOCK under a session of the client's own, vs etcd's v3lock
//          service through the JSON gateway (/v3/lock/lock with a lease, /v3/lock/unlock);
//          1 client on its own lock, and N contenders on one lock (each releases at once).
//   leases: WARP.LEASE GRANT / KEEPALIVE vs /v3/lease/grant, /v3/lease/keepalive.
//   watch: W watchers on one prefix (Warp: the admin port's SSE /v1/watch; etcd: /v3/watch
//          through the gateway), spread over the 3 nodes, and a writer paced at R writes/s;
//          events/s delivered to all watchers, delay from the write's acknowledgement to
//          each delivery.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "apps/warp-bench/baseline_clusters.hpp"
#include "apps/warp-bench/bench.hpp"

namespace {

using namespace warp_bench;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct coord_args {
  double seconds = 3;
  std::size_t contenders = 16;
  std::vector<std::size_t> lease_clients{1, 16};
  std::size_t watchers = 100;
  double watch_rate = 100;
  double watch_seconds = 3;
  bool json = false;
  std::string warpd, etcd, data_dir;
  std::vector<std::string> warpd_args;
};

// Long enough to outlive the run: no expiry (nor keep-alive thread) disturbs a cell.
constexpr int lease_ttl_s = 600;
// Below resp_client's 5 s receive timeout, so a wait that runs out is an answer, not a
// broken connection.
constexpr const char* lock_wait_ms = "4000";

// -- Warp through the sidecar -------------------------------------------------------------------

struct warp_session {
  std::unique_ptr<resp_client> conn;
  std::string lease;
};

warp_session warp_open(std::uint16_t port) {
  warp_session s{std::make_unique<resp_client>(port), {}};
  if (!s.conn->connected()) die("cannot connect to a warpd sidecar");
  auto r = s.conn->call({"WARP.LEASE", "GRANT", std::to_string(lease_ttl_s)});
  if (!r.ok) die("WARP.LEASE GRANT failed: " + r.text);
  s.lease = r.text;
  return s;
}

outcome warp_lock_pair(warp_session& s, const std::string& lock) {
  auto t = s.conn->call({"WARP.LOCK", lock, "TIMEOUT", lock_wait_ms, "SESSION", s.lease});
  if (!t.ok) return outcome::error;
  auto u = s.conn->call({"WARP.UNLOCK", lock, t.text, "SESSION", s.lease});
  return u.ok ? outcome::ok : outcome::error;
}

// -- etcd through the gateway -------------------------------------------------------------------

struct etcd_session {
  std::unique_ptr<etcd_client> conn;
  std::string lease;
};

std::string etcd_grant(etcd_client& c) {
  auto r = c.post("/v3/lease/grant", {{"TTL", lease_ttl_s}});
  if (!r) return {};
  return r->value("ID", "");
}

etcd_session etcd_open(std::uint16_t port) {
  etcd_session s{std::make_unique<etcd_client>(port), {}};
  s.lease = etcd_grant(*s.conn);
  if (s.lease.empty()) die("etcd /v3/lease/grant failed");
  return s;
}

outcome etcd_lock_pair(etcd_session& s, const std::string& lock) {
  auto l = s.conn->post("/v3/lock/lock", {{"name", b64(lock)}, {"lease", s.lease}});
  if (!l || !l->contains("key")) return outcome::error;
  auto u = s.conn->post("/v3/lock/unlock", {{"key", (*l)["key"]}});
  return u ? outcome::ok : outcome::error;
}

/// The gateway maps the KeepAlive stream onto one POST: one request object in, one
/// `{"result": ...}` out, then the stream ends with the request body.
outcome etcd_keepalive(etcd_session& s) {
  auto r = s.conn->post("/v3/lease/keepalive", {{"ID", s.lease}});
  if (!r || !r->contains("result")) return outcome::error;
  return (*r)["result"].contains("TTL") ? outcome::ok : outcome::error;
}

// -- the cells of locks and leases ---------------------------------------------------------------

struct row {
  std::string name;
  std::size_t clients;
  cell w, e;
};

/// Sessions are opened before the cell's clock starts; client t talks to node t % 3.
template <class Session, class Open, class Op>
cell sessions_cell(std::size_t clients, double seconds, const std::vector<std::uint16_t>& ports,
                   Open open, Op op) {
  std::vector<Session> sessions;
  for (std::size_t t = 0; t < clients; ++t) sessions.push_back(open(ports[t % ports.size()]));
  return run_cell(
      clients, seconds,
      [&](std::size_t t) -> cell_op {
        return [&s = sessions[t], &op](std::uint64_t, std::uint64_t&) { return op(s); };
      },
      1);
}

// -- watch fan-out -------------------------------------------------------------------------------

struct watch_result {
  std::size_t writes = 0;  ///< acknowledged
  std::uint64_t delivered = 0, expected = 0;
  double seconds = 0;  ///< first write to last delivery
  double p50_us = 0, p99_us = 0, max_us = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(delivered) / seconds : 0; }
};

nlohmann::json watch_json(const watch_result& r) {
  return {{"writes", r.writes},       {"delivered", r.delivered}, {"expected", r.expected},
          {"events_per_s", r.rate()}, {"p50_us", r.p50_us},       {"p99_us", r.p99_us},
          {"max_us", r.max_us}};
}

/// One watcher's stream: `deliver(key, value)` for each put it carries.
struct stream_spec {
  std::string method, path, body;
};

/// The value written under the warm-up key: every watcher has seen one before the clock
/// starts, and one more after the writer ends wakes every reader to notice the stop.
constexpr const char* warm_value = "warm";

/// Runs the fan-out: `watchers` streams (made by `spec(w)` on port `ports[w % 3]`; `parse`
/// turns the bytes of a stream into (key, value) puts), a writer `put(seq)` paced at
/// `rate` for `seconds`.
watch_result run_fanout(
    std::size_t watchers, double rate, double seconds, const std::vector<std::uint16_t>& ports,
    const stream_spec& spec,
    const std::function<void(std::string& buf, const std::function<void(std::string_view)>&)>&
        parse,
    const std::function<bool(const std::string& value)>& put) {
  const auto n_writes = static_cast<std::size_t>(rate * seconds);
  std::vector<std::int64_t> ack_ns(n_writes, -1);
  // recv[w][seq]: ns since the epoch of the delivery to watcher w, 0 if none (the epoch
  // precedes every delivery). Read by the writer's thread while the watchers write it.
  std::vector<std::vector<std::atomic<std::int64_t>>> recv(watchers);
  for (auto& v : recv) v = std::vector<std::atomic<std::int64_t>>(n_writes);
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> stop{false};
  const auto epoch = clk::now();
  auto now_ns = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - epoch).count();
  };
  std::vector<std::thread> ts;
  for (std::size_t w = 0; w < watchers; ++w)
    ts.emplace_back([&, w] {
      httplib::Client cli{"127.0.0.1", ports[w % ports.size()]};
      cli.set_tcp_nodelay(true);
      cli.set_connection_timeout(5, 0);
      cli.set_read_timeout(10, 0);
      httplib::Request req;
      req.method = spec.method;
      req.path = spec.path;
      req.body = spec.body;
      if (!spec.body.empty()) req.set_header("Content-Type", "application/json");
      std::string buf;
      bool seen_warm = false;
      auto on_put = [&](std::string_view value) {
        if (value == warm_value) {
          if (!seen_warm) ++ready;
          seen_warm = true;
          return;
        }
        auto seq = std::strtoull(std::string{value}.c_str(), nullptr, 10);
        if (seq < n_writes && recv[w][seq].load() == 0) recv[w][seq] = now_ns();
      };
      req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
        buf.append(data, n);
        parse(buf, on_put);
        // An unterminated line this long is not an event of this bench.
        return !stop.load() && buf.size() < (1u << 20);
      };
      httplib::Response res;
      httplib::Error err = httplib::Error::Success;
      cli.send(req, res, err);
    });
  auto deadline = clk::now() + 30s;
  while (ready.load() < watchers && clk::now() < deadline) {
    put(warm_value);
    std::this_thread::sleep_for(100ms);
  }
  if (ready.load() < watchers) {
    stop = true;
    put(warm_value);
    for (auto& t : ts) t.join();
    die("only " + std::to_string(ready.load()) + " of " + std::to_string(watchers) +
        " watchers saw the warm-up write within 30 s");
  }
  const auto start = clk::now();
  const std::int64_t start_ns = now_ns();
  for (std::size_t seq = 0; seq < n_writes; ++seq) {
    std::this_thread::sleep_until(start + std::chrono::duration<double>(double(seq) / rate));
    if (put(std::to_string(seq))) ack_ns[seq] = now_ns();
  }
  // Deliveries still in flight: wait for them (bounded), then stop the readers.
  auto all_in = [&] {
    for (std::size_t w = 0; w < watchers; ++w)
      for (std::size_t s = 0; s < n_writes; ++s)
        if (ack_ns[s] >= 0 && recv[w][s].load() == 0) return false;
    return true;
  };
  deadline = clk::now() + 10s;
  while (!all_in() && clk::now() < deadline) std::this_thread::sleep_for(50ms);
  stop = true;
  put(warm_value);
  for (auto& t : ts) t.join();

  watch_result r;
  std::vector<double> delays;
  std::int64_t last = start_ns;
  for (std::size_t s = 0; s < n_writes; ++s) {
    if (ack_ns[s] < 0) continue;
    ++r.writes;
    for (std::size_t w = 0; w < watchers; ++w) {
      ++r.expected;
      const std::int64_t at = recv[w][s].load();
      if (at == 0) continue;
      ++r.delivered;
      last = std::max(last, at);
      // A delivery may beat the writer's acknowledgement (the writer's reply and the
      // watcher's event leave the node independently): that is no delay.
      delays.push_back(static_cast<double>(std::max<std::int64_t>(0, at - ack_ns[s])) / 1e3);
    }
  }
  r.seconds = static_cast<double>(last - start_ns) / 1e9;
  if (!delays.empty()) {
    std::sort(delays.begin(), delays.end());
    auto pct = [&](double p) {
      return delays[std::min(delays.size() - 1,
                             static_cast<std::size_t>(p * static_cast<double>(delays.size())))];
    };
    r.p50_us = pct(0.5);
    r.p99_us = pct(0.99);
    r.max_us = delays.back();
  }
  return r;
}

/// SSE: complete lines; `data: {json}` of a put carries the key and value.
void parse_sse(std::string& buf, const std::function<void(std::string_view)>& on_put) {
  std::size_t pos = 0, nl;
  while ((nl = buf.find('\n', pos)) != std::string::npos) {
    std::string_view line{buf.data() + pos, nl - pos};
    pos = nl + 1;
    if (line.substr(0, 6) != "data: ") continue;
    auto j = nlohmann::json::parse(line.substr(6), nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == "put") on_put(j.value("value", ""));
  }
  buf.erase(0, pos);
}

/// The gateway's watch stream: one `{"result": {..., "events": [...]}}` per line; a put's
/// event has no "type" (PUT is the enum's zero, left out).
void parse_etcd_watch(std::string& buf, const std::function<void(std::string_view)>& on_put) {
  std::size_t pos = 0, nl;
  while ((nl = buf.find('\n', pos)) != std::string::npos) {
    std::string_view line{buf.data() + pos, nl - pos};
    pos = nl + 1;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("result")) continue;
    auto& res = j["result"];
    if (!res.contains("events")) continue;
    for (auto& ev : res["events"])
      if (ev.value("type", "PUT") == "PUT" && ev.contains("kv"))
        on_put(unb64(ev["kv"].value("value", "")));
  }
  buf.erase(0, pos);
}

// -- the run
// ---------------------------------------------------------------------------------------

std::string ratio(double a, double b) {
  char s[32];
  if (b > 0 && a > 0)
    std::snprintf(s, sizeof s, "%.2f", a / b);
  else
    std::snprintf(s, sizeof s, "n/a");
  return s;
}

void run(const coord_args& a) {
  if (a.contenders < 1 || a.watchers < 1 || a.watch_rate <= 0 || a.watch_seconds <= 0)
    die("--contenders, --watchers, --watch-rate and --watch-seconds must be positive");
  scratch_dir dir{a.data_dir};
  warp_cluster warp;
  etcd_cluster etcd;
  // The coordination group and the watch hub live on the Raft engine.
  std::vector<std::string> warpd_args{"--strong-engine=raft"};
  warpd_args.insert(warpd_args.end(), a.warpd_args.begin(), a.warpd_args.end());
  start_warp(warp, a.warpd, warpd_args, dir.path());
  start_etcd(etcd, a.etcd, dir.path());

  std::vector<row> rows;
  auto lock_row = [&](const char* name, std::size_t clients, const std::string& wlock,
                      const std::string& elock) {
    row r{name, clients, {}, {}};
    r.w = sessions_cell<warp_session>(clients, a.seconds, warp.resp_ports, warp_open,
                                      [&](warp_session& s) { return warp_lock_pair(s, wlock); });
    r.e = sessions_cell<etcd_session>(clients, a.seconds, etcd.client_ports, etcd_open,
                                      [&](etcd_session& s) { return etcd_lock_pair(s, elock); });
    rows.push_back(std::move(r));
  };
  lock_row("lock uncontended", 1, "cb:solo", "cb/solo");
  lock_row("lock contended", a.contenders, "cb:hot", "cb/hot");
  for (auto n : a.lease_clients) {
    row r{"lease grant", n, {}, {}};
    r.w =
        sessions_cell<warp_session>(n, a.seconds, warp.resp_ports, warp_open, [](warp_session& s) {
          auto g = s.conn->call({"WARP.LEASE", "GRANT", std::to_string(lease_ttl_s)});
          return g.ok ? outcome::ok : outcome::error;
        });
    r.e = sessions_cell<etcd_session>(
        n, a.seconds, etcd.client_ports, etcd_open,
        [](etcd_session& s) { return etcd_grant(*s.conn).empty() ? outcome::error : outcome::ok; });
    rows.push_back(std::move(r));
  }
  for (auto n : a.lease_clients) {
    row r{"lease keepalive", n, {}, {}};
    r.w =
        sessions_cell<warp_session>(n, a.seconds, warp.resp_ports, warp_open, [](warp_session& s) {
          auto k = s.conn->call({"WARP.LEASE", "KEEPALIVE", s.lease});
          return k.ok ? outcome::ok : outcome::error;
        });
    r.e = sessions_cell<etcd_session>(n, a.seconds, etcd.client_ports, etcd_open, etcd_keepalive);
    rows.push_back(std::move(r));
  }

  // Watch fan-out: Warp's writer goes through node 0's sidecar, etcd's through member 0.
  resp_client wwriter{warp.resp_ports[0]};
  watch_result ww =
      run_fanout(a.watchers, a.watch_rate, a.watch_seconds, warp.admin_ports,
                 {"GET", "/v1/watch?prefix=s:cw:", ""}, parse_sse, [&](const std::string& v) {
                   return wwriter.call({"SET", v == warm_value ? "s:cw:warm" : "s:cw:" + v, v}).ok;
                 });
  etcd_client ewriter{etcd.client_ports[0]};
  watch_result ew = run_fanout(
      a.watchers, a.watch_rate, a.watch_seconds, etcd.client_ports,
      {"POST", "/v3/watch",
       nlohmann::json{{"create_request", {{"key", b64("cw/")}, {"range_end", b64("cw0")}}}}.dump()},
      parse_etcd_watch, [&](const std::string& v) {
        return ewriter.put(v == warm_value ? "cw/warm" : "cw/" + v, v);
      });
  warp.stop();
  etcd.stop();

  std::printf(
      "\nCoordination, Warp vs etcd, same run: 3 warpd (Raft engine; RESP sidecar, admin-port SSE) "
      "vs a 3-member etcd %s\n(v3 JSON gateway: v3lock service, lease grant/keepalive, watch); "
      "client t on node t %% 3; %.1f s per cell; data dirs under %s\n",
      "cluster", a.seconds, dir.parent().c_str());
  std::printf("%-16s %7s | %10s %8s %8s %6s | %10s %8s %8s %6s | %9s %8s\n", "case", "clients",
              "warp ops/s", "p50 us", "p99 us", "errors", "etcd ops/s", "p50 us", "p99 us",
              "errors", "warp/etcd", "p99 w/e");
  nlohmann::json cells = nlohmann::json::array();
  for (auto& r : rows) {
    std::printf("%-16s %7zu | %10.0f %8.0f %8.0f %6llu | %10.0f %8.0f %8.0f %6llu | %9s %8s\n",
                r.name.c_str(), r.clients, r.w.rate(), r.w.p50_us, r.w.p99_us,
                static_cast<unsigned long long>(r.w.errors), r.e.rate(), r.e.p50_us, r.e.p99_us,
                static_cast<unsigned long long>(r.e.errors), ratio(r.w.rate(), r.e.rate()).c_str(),
                ratio(r.w.p99_us, r.e.p99_us).c_str());
    nlohmann::json j = {{"case", r.name},
                        {"clients", r.clients},
                        {"warp", cell_json(r.w)},
                        {"etcd", cell_json(r.e)}};
    if (r.w.rate() > 0 && r.e.rate() > 0) j["ops_ratio"] = r.w.rate() / r.e.rate();
    if (r.w.p99_us > 0 && r.e.p99_us > 0) j["p99_ratio"] = r.w.p99_us / r.e.p99_us;
    cells.push_back(std::move(j));
  }
  std::printf(
      "\nWatch fan-out: %zu watchers on one prefix (spread over the 3 nodes), a writer at %.0f "
      "writes/s for %.1f s;\ndelay = delivery - the write's acknowledgement\n",
      a.watchers, a.watch_rate, a.watch_seconds);
  std::printf("%-6s %7s %21s %10s %8s %8s %8s\n", "system", "writes", "delivered/expected",
              "events/s", "p50 us", "p99 us", "max us");
  for (auto* p : {&ww, &ew})
    std::printf("%-6s %7zu %10llu/%-10llu %10.0f %8.0f %8.0f %8.0f\n", p == &ww ? "warp" : "etcd",
                p->writes, static_cast<unsigned long long>(p->delivered),
                static_cast<unsigned long long>(p->expected), p->rate(), p->p50_us, p->p99_us,
                p->max_us);
  std::printf("warp/etcd: events/s %s, p99 delay %s\n", ratio(ww.rate(), ew.rate()).c_str(),
              ratio(ww.p99_us, ew.p99_us).c_str());

  nlohmann::json watch = {{"watchers", a.watchers},
                          {"rate", a.watch_rate},
                          {"seconds", a.watch_seconds},
                          {"warp", watch_json(ww)},
                          {"etcd", watch_json(ew)}};
  if (ww.rate() > 0 && ew.rate() > 0) watch["events_ratio"] = ww.rate() / ew.rate();
  if (ww.p99_us > 0 && ew.p99_us > 0) watch["p99_ratio"] = ww.p99_us / ew.p99_us;
  if (a.json) {
    nlohmann::json out = {{"bench", "coord"},
                          {"seconds", a.seconds},
                          {"etcd_lock_api", "v3lock gateway"},
                          {"cells", std::move(cells)},
                          {"watch", std::move(watch)}};
    std::cout << out.dump() << std::endl;
  }
}

void setup(CLI::App& app) {
  static coord_args args;
  auto* cmd = app.add_subcommand(
      "coord", "locks, leases and watch fan-out: 3 warpd (Raft) vs a 3-member etcd, same run");
  cmd->add_option("--seconds", args.seconds, "length of each lock and lease cell");
  cmd->add_option("--contenders", args.contenders, "clients on the one contended lock");
  cmd->add_option("--lease-clients", args.lease_clients,
                  "concurrent clients of the lease cells (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--watchers", args.watchers, "watchers on the one prefix");
  cmd->add_option("--watch-rate", args.watch_rate, "writes/s of the watch writer");
  cmd->add_option("--watch-seconds", args.watch_seconds, "how long the watch writer writes");
  cmd->add_flag("--json", args.json, "one JSON object on the last line");
  cmd->add_option("--warpd-arg", args.warpd_args,
                  "extra argument for every warpd (repeatable; --warpd-arg=--raft-tick=50ms)")
      ->allow_extra_args(false);
  cmd->add_option("--warpd", args.warpd, "warpd binary (default: next to this one)");
  cmd->add_option("--etcd-bin", args.etcd, "etcd binary (default: etcd on PATH)");
  cmd->add_option("--data-dir", args.data_dir,
                  "parent directory of the warpd and etcd data dirs (default /tmp)");
  cmd->callback([] { run(args); });
}

}  // namespace

static const bool registered = warp_bench::register_subcommand(&setup);
