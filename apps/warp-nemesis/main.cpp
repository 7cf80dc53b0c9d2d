// warp-nemesis: starts its own warpd cluster with every key strong_distributed (the Raft
// engine by default, `--engine abd` for the ABD registers), runs concurrent clients on a
// few register keys (get/set/delete) and, on Raft, a few counter keys (INCR/GET), recording
// invoke/return times on one monotonic clock, injects faults with a fixed seed, then checks
// the registers for linearizability (test/support/linearizability.hpp), the counters with
// test/support/counter_check.hpp, and counts acknowledged writes lost.
// Faults, one at a time: ABD kill -9 + restart or SIGSTOP/SIGCONT of a random node; Raft
// kill -9 of a random node, kill -9 of the leader of a workload key's group, kill -9 of
// every node at once then a restart of all, SIGSTOP of a leader beyond the election timeout.
// With --json the last line of stdout is one JSON object with ops_checked, faults, errors,
// violations, lost_writes (and more).
//
// Exit code: 0 when no violation, no lost write and the checker did not give up.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/control_actor.hpp"
#include "actors/quorum_actor.hpp"
#include "actors/raft_host_actor.hpp"
#include "runtime/membership/ring.hpp"
#include "test/support/coord_check.hpp"
#include "test/support/counter_check.hpp"
#include "test/support/linearizability.hpp"
#include "test/support/process.hpp"
#include "warp/build_info.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using warp::test::counter_op;
using warp::test::register_op;

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

enum class engine_kind { raft, abd };

struct options {
  engine_kind engine = engine_kind::raft;
  std::size_t nodes = 3;
  int seconds = 30;
  std::uint64_t seed = 1;
  bool json = false;
  std::size_t clients = 0;  // 0 = nodes + 2
  std::size_t keys = 6;
  int request_timeout_ms = 3000;
  int think_us = 500;
  /// Counter keys (INCR/GET); Raft only (ABD registers have no read-modify-write).
  std::size_t counter_keys = 2;
  bool kills = true;
  bool pauses = true;
  bool kill_all = true;
  /// Partitions: the nodes run with --fault-injection and an admin port, and the nemesis
  /// cuts the links between a minority and a majority (docs/strong.md, "Partition fault").
  bool partitions = false;
  /// register (registers and counters), lock or lease (docs/coordination.md, "Checkers").
  std::string workload = "register";
  /// How long a lease may be seen after TTL past its last keep-alive: one election
  /// timeout (2 s at most), the checkpoint's second, the leader's delete of its keys.
  std::int64_t lease_extension_ms = 4000;
  std::string warpd;
  std::string keep_dir;
  std::string log_level = "warn";
};

/// The cluster under test: N warpd processes, restartable at the same address.
class cluster {
 public:
  cluster(const options& opt, const std::string& dir) : opt_(opt), dir_(dir) {
    for (std::size_t i = 0; i < opt.nodes; ++i) ports_.push_back(warp::test::free_port());
    if (opt.partitions)
      for (std::size_t i = 0; i < opt.nodes; ++i) http_ports_.push_back(warp::test::free_port());
    procs_.resize(opt.nodes);
  }
  ~cluster() {
    for (auto& p : procs_)
      if (p) {
        p->signal(SIGCONT);
        p->stop(SIGKILL, 5s);
      }
  }

  std::vector<std::string> argv(std::size_t i) const {
    std::string peers;
    for (std::size_t j = 0; j < ports_.size(); ++j) {
      if (j == i) continue;
      if (!peers.empty()) peers += ',';
      peers += "127.0.0.1:" + std::to_string(ports_[j]);
    }
    std::vector<std::string> a{
        opt_.warpd,
        "--name",
        "n" + std::to_string(i),
        "--listen",
        "127.0.0.1:" + std::to_string(ports_[i]),
        "--peers",
        peers,
        "--storage",
        "memory",
        "--data-dir",
        dir_ + "/n" + std::to_string(i),
        "--http",
        opt_.partitions ? "127.0.0.1:" + std::to_string(http_ports_[i]) : std::string{},
        "--resp",
        "",
        "--pattern",
        "*=strong_distributed",
        "--log-level",
        opt_.log_level};
    if (opt_.partitions) a.push_back("--fault-injection");
    if (opt_.engine == engine_kind::abd) {
      a.insert(a.end(), {"--strong-engine", "abd"});
    } else {
      // The group count is given, not defaulted, so the nemesis computes a key's group the
      // way the nodes do (range_map over the groups) to find and kill its leader.
      a.insert(a.end(),
               {"--strong-engine", "raft", "--strong-groups", std::to_string(raft_groups())});
    }
    return a;
  }
  std::size_t raft_groups() const { return 4 * opt_.nodes; }
  bool running(std::size_t i) const { return procs_[i] != nullptr; }

  bool start(std::size_t i) {
    std::filesystem::create_directories(dir_ + "/n" + std::to_string(i));
    procs_[i] = std::make_unique<warp::test::child_process>(
        argv(i), dir_ + "/n" + std::to_string(i) + ".log");
    return warp::test::wait_for_port(ports_[i], 20s);
  }
  void kill9(std::size_t i) {
    procs_[i]->signal(SIGKILL);
    procs_[i]->wait(10s);
  }
  /// The node listening on `port`, or size() when none.
  std::size_t index_of_port(std::uint16_t port) const {
    for (std::size_t i = 0; i < ports_.size(); ++i)
      if (ports_[i] == port) return i;
    return ports_.size();
  }
  void signal(std::size_t i, int sig) { procs_[i]->signal(sig); }
  std::uint16_t port(std::size_t i) const { return ports_[i]; }
  std::size_t size() const { return ports_.size(); }

  /// Node i cuts its links to `peers` (indexes; empty heals): true when it said so.
  bool cut(std::size_t i, const std::vector<std::size_t>& peers) {
    std::string body;
    for (auto p : peers)
      body += (body.empty() ? "" : ",") + ("127.0.0.1:" + std::to_string(ports_[p]));
    return http_post(http_ports_[i], "/admin/fault/partition", body) == 200;
  }

 private:
  /// A minimal HTTP/1.1 POST to 127.0.0.1:port (the admin port is plain HTTP on loopback,
  /// no token): the status code, -1 when there was no answer within 5 s.
  static int http_post(std::uint16_t port, const std::string& path, const std::string& body) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      auto req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[64] = {};
        auto n = ::recv(fd, buf, sizeof buf - 1, 0);
        if (n > 12 && std::string_view{buf, 5} == "HTTP/") status = std::atoi(buf + 9);
      }
    }
    ::close(fd);
    return status;
  }

  const options& opt_;
  std::string dir_;
  std::vector<std::uint16_t> http_ports_;
  std::vector<std::uint16_t> ports_;
  std::vector<std::unique_ptr<warp::test::child_process>> procs_;
};

/// The Raft engine's status JSON of the node on `port` (node::strong_json, the same as
/// `warpctl strong status --output json`), asked of the control actor published there.
/// Every step is bounded and has a scoped_actor of its own (see fetch_strong_status in
/// actors/quorum_actor.cpp for the CAF 0.17 leak a shared one causes).
warp::result<std::string> fetch_raft_status(caf::actor_system& sys, std::uint16_t port,
                                            std::chrono::milliseconds timeout) {
  caf::actor control;
  {
    caf::scoped_actor self{sys};
    self->request(sys.middleman().actor_handle(), timeout, caf::connect_atom::value,
                  std::string{"127.0.0.1"}, port)
        .receive(
            [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
              if (ptr) control = caf::actor_cast<caf::actor>(ptr);
            },
            [](caf::error&) {});
  }
  if (!control)
    return warp::error{warp::errc::unreachable, "cannot connect to port " + std::to_string(port)};
  warp::result<std::string> out{warp::errc::timeout, "no answer"};
  caf::scoped_actor self{sys};
  self->request(control, timeout, warp::actors::control_strong_atom::value)
      .receive([&](std::string& json) { out = std::move(json); },
               [&](caf::error& err) { out = warp::actors::from_caf_error(err); });
  return out;
}

/// A quiet client actor system that speaks the control protocol over CAF's network layer.
void configure_client(caf::actor_system_config& cfg, std::size_t threads) {
  cfg.load<caf::io::middleman>();
  warp::actors::register_control_protocol(cfg);
  cfg.set("scheduler.max-threads", threads);
  cfg.set("logger.verbosity", caf::atom("quiet"));
}

warp::result<std::string> fetch_raft_status_fresh(std::uint16_t port,
                                                  std::chrono::milliseconds timeout) {
  caf::actor_system_config cfg;
  configure_client(cfg, 1);
  caf::actor_system sys{cfg};
  return fetch_raft_status(sys, port, timeout);
}

std::atomic<std::uint64_t> status_fallbacks{0};

/// The node's strong status JSON, through a fresh CAF system when ours cannot reach it.
warp::result<std::string> strong_status(caf::actor_system& sys, engine_kind engine,
                                        std::uint16_t port) {
  auto js = engine == engine_kind::abd
                ? warp::actors::fetch_strong_status(sys, "127.0.0.1", port, 2s)
                : fetch_raft_status(sys, port, 2s);
  if (!js) {
    // Our own CAF system may be the one that cannot reach the restarted process (a registry
    // lookup that never answers): ask through a fresh one before calling the node behind.
    js = engine == engine_kind::abd ? warp::actors::fetch_strong_status_fresh("127.0.0.1", port, 2s)
                                    : fetch_raft_status_fresh(port, 2s);
    if (js) status_fallbacks.fetch_add(1);
  }
  return js;
}

/// Whether node i reports itself caught up: ABD, every range it replicates recovered;
/// Raft, every group it is a member of answering with a leader and a working log (the
/// /readyz rule). Either way with a link to every other node.
bool recovered(caf::actor_system& sys, const options& opt, std::uint16_t port) {
  auto js = strong_status(sys, opt.engine, port);
  if (!js) return false;
  auto j = nlohmann::json::parse(*js, nullptr, false);
  if (!j.is_object()) return false;
  if (opt.engine == engine_kind::abd)
    return j.value("recovered", false) &&
           j.value("peers_connected", 0) + 1 >= static_cast<int>(j["members"].size());
  if (!j.value("ready", false) || !j.contains("host") || !j["host"].is_object()) return false;
  return j["host"].value("peers_connected", 0) + 1 >= static_cast<int>(opt.nodes);
}

bool wait_recovered(caf::actor_system& sys, const options& opt, cluster& c, std::size_t i,
                    std::chrono::seconds limit) {
  auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    if (recovered(sys, opt, c.port(i))) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

/// The node that leads Raft group `group`, as the live nodes report it (the entry with
/// the highest term wins: a deposed leader may still believe it leads); nullopt when none
/// knows a leader.
std::optional<std::size_t> raft_leader(caf::actor_system& sys, cluster& c, std::uint64_t group) {
  std::uint64_t best_term = 0;
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    auto js = fetch_raft_status(sys, c.port(i), 2s);
    if (!js) continue;
    auto j = nlohmann::json::parse(*js, nullptr, false);
    if (!j.is_object() || !j.contains("groups") || !j["groups"].is_array()) continue;
    const auto& groups = j["groups"];
    for (const auto& g : groups) {
      if (!g.is_object() || g.value("group", std::uint64_t{0}) != group) continue;
      auto addr = g.value("leader_address", std::string{});
      auto term = g.value("term", std::uint64_t{0});
      auto colon = addr.rfind(':');
      if (g.value("leader", std::uint64_t{0}) == 0 || colon == std::string::npos) continue;
      auto idx = c.index_of_port(
          static_cast<std::uint16_t>(std::strtoul(addr.c_str() + colon + 1, nullptr, 10)));
      if (idx < c.size() && (!best || term > best_term)) {
        best = idx;
        best_term = term;
      }
    }
  }
  return best;
}

/// One client: its own CAF handles to the nodes (re-resolved after failures).
class client {
 public:
  client(caf::actor_system& sys, cluster& c, const options& opt, int id)
      : sys_(sys), c_(c), opt_(opt), id_(id), handles_(c.size()) {}

  caf::actor handle(std::size_t node) {
    if (!handles_[node]) {
      // The actor published on the port (the control actor), with a bounded wait: a
      // blocking remote_actor() can wait forever on a paused or restarting node.
      caf::scoped_actor self{sys_};
      self->request(sys_.middleman().actor_handle(),
                    std::chrono::milliseconds{opt_.request_timeout_ms}, caf::connect_atom::value,
                    std::string{"127.0.0.1"}, c_.port(node))
          .receive(
              [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
                if (ptr) handles_[node] = caf::actor_cast<caf::actor>(ptr);
              },
              [](caf::error&) {});
    }
    return handles_[node];
  }
  void forget(std::size_t node) { handles_[node] = nullptr; }

  /// Runs one operation against `node` and returns its record (nullopt: drop it, it is
  /// known to have had no effect).
  std::optional<register_op> run(std::size_t node, register_op op, std::uint64_t& errors) {
    auto h = handle(node);
    if (!h) {
      ++errors;
      return std::nullopt;  // never sent
    }
    caf::scoped_actor self{sys_};
    auto timeout = std::chrono::milliseconds{opt_.request_timeout_ms};
    op.client = id_;
    op.invoke_ns = mono_ns();
    std::optional<caf::error> failure;
    std::optional<std::string> got;
    switch (op.what) {
      case register_op::kind::get:
        self->request(h, timeout, caf::get_atom::value, op.key)
            .receive([&](std::string& v) { got = std::move(v); },
                     [&](caf::error& e) { failure = e; });
        break;
      case register_op::kind::set:
        self->request(h, timeout, caf::put_atom::value, op.key, op.input, std::int64_t{0})
            .receive([&](caf::ok_atom) {}, [&](caf::error& e) { failure = e; });
        break;
      case register_op::kind::del:
        self->request(h, timeout, caf::delete_atom::value, op.key)
            .receive([&](caf::ok_atom) {}, [&](caf::error& e) { failure = e; });
        break;
    }
    op.return_ns = mono_ns();
    if (!failure) {
      if (op.what == register_op::kind::get) op.output = std::move(got);
      return op;
    }
    auto err = warp::actors::from_caf_error(*failure);
    bool warp_error = failure->category() == warp::actors::control_error_category();
    if (!warp_error) forget(node);  // connection trouble: resolve again next time
    if (op.what == register_op::kind::get) {
      if (warp_error && err.code() == warp::errc::not_found) {
        op.output.reset();
        return op;
      }
      ++errors;
      return std::nullopt;  // a failed read has no effect
    }
    ++errors;
    // The node said "timeout": its write never reached the store phase (ABD) or was never
    // proposed (Raft, docs/strong.md "Failure behaviour"), nothing applied.
    if (warp_error && err.code() == warp::errc::timeout) return std::nullopt;
    // Anything else (unknown_outcome, client timeout, connection lost): may have applied.
    op.return_ns = register_op::unknown_return;
    return op;
  }

  /// A counter operation: INCR by 1 (the control protocol's incr, a read-modify-write on
  /// the strong key) or GET of the counter's decimal value (absent = 0). nullopt: no effect.
  std::optional<counter_op> run_counter(std::size_t node, const std::string& key,
                                        counter_op::kind what, std::uint64_t& errors,
                                        std::atomic<std::uint64_t>& malformed_reads) {
    auto h = handle(node);
    if (!h) {
      ++errors;
      return std::nullopt;
    }
    caf::scoped_actor self{sys_};
    auto timeout = std::chrono::milliseconds{opt_.request_timeout_ms};
    counter_op op;
    op.what = what;
    op.client = id_;
    op.invoke_ns = mono_ns();
    std::optional<caf::error> failure;
    bool malformed = false;
    if (what == counter_op::kind::incr) {
      self->request(h, timeout, warp::actors::incr_atom::value, key, std::int64_t{1})
          .receive([&](std::int64_t v) { op.value = v; }, [&](caf::error& e) { failure = e; });
    } else {
      self->request(h, timeout, caf::get_atom::value, key)
          .receive(
              [&](std::string& v) {
                char* end = nullptr;
                op.value = std::strtoll(v.c_str(), &end, 10);
                malformed = v.empty() || *end != '\0';
              },
              [&](caf::error& e) { failure = e; });
    }
    op.return_ns = mono_ns();
    if (malformed) {
      malformed_reads.fetch_add(1);  // only INCR writes counters: a violation
      return std::nullopt;
    }
    if (!failure) return op;
    auto err = warp::actors::from_caf_error(*failure);
    bool warp_error = failure->category() == warp::actors::control_error_category();
    if (!warp_error) forget(node);
    if (what == counter_op::kind::get) {
      if (warp_error && err.code() == warp::errc::not_found) {
        op.value = 0;
        return op;
      }
      ++errors;
      return std::nullopt;
    }
    ++errors;
    if (warp_error && err.code() == warp::errc::timeout) return std::nullopt;
    op.return_ns = counter_op::unknown_return;
    return op;
  }

  /// What a coordination request (the control protocol's coord verbs) came back with.
  struct coord_answer {
    enum class kind { ok, refused, unknown } what = kind::unknown;
    std::string value;
    /// The node's own error code when it answered one (not_found, conflict, timeout...).
    std::optional<warp::errc> code;
    std::int64_t invoke_ns = 0, return_ns = 0;
    bool ok() const { return what == kind::ok; }
    bool is(warp::errc c) const { return code && *code == c; }
  };

  /// A coord request; `refused` when the node answered an error that says nothing was
  /// done (any code but unknown_outcome), `unknown` for unknown_outcome, a client timeout or
  /// a lost connection.
  coord_answer coord(std::size_t node, const std::string& verb, std::vector<std::string> args,
                     std::uint64_t& errors) {
    coord_answer a;
    a.invoke_ns = mono_ns();
    auto h = handle(node);
    if (!h) {
      ++errors;
      a.what = coord_answer::kind::refused;  // never sent
      a.return_ns = mono_ns();
      return a;
    }
    caf::scoped_actor self{sys_};
    std::optional<caf::error> failure;
    self->request(h, std::chrono::milliseconds{opt_.request_timeout_ms},
                  warp::actors::coord_atom::value, verb, std::move(args))
        .receive([&](std::string& v) { a.value = std::move(v); },
                 [&](caf::error& e) { failure = e; });
    a.return_ns = mono_ns();
    if (!failure) {
      a.what = coord_answer::kind::ok;
      return a;
    }
    bool warp_error = failure->category() == warp::actors::control_error_category();
    if (!warp_error) {
      forget(node);
      ++errors;
      return a;
    }
    auto err = warp::actors::from_caf_error(*failure);
    a.code = err.code();
    if (err.code() != warp::errc::not_found && err.code() != warp::errc::conflict) ++errors;
    a.what = err.code() == warp::errc::unknown_outcome ? coord_answer::kind::unknown
                                                       : coord_answer::kind::refused;
    return a;
  }

 private:
  caf::actor_system& sys_;
  cluster& c_;
  const options& opt_;
  int id_;
  std::vector<caf::actor> handles_;
};

/// What the coordination workloads share with the nemesis thread and the checkers.
struct coord_run {
  static constexpr const char* lock_name = "nemlock";
  static constexpr const char* register_key = "nemlock:register";
  std::int64_t ttl_ms = 3000;
  std::atomic<bool>* stop = nullptr;
  /// Per client: set by the nemesis, the holder sleeps this long inside its next critical
  /// section, sending nothing (no keep-alive): a paused holder, as a GC pause or SIGSTOP
  /// of a client process is.
  std::vector<std::atomic<std::int64_t>> stall_ms;
  std::vector<std::atomic<bool>> holding;
  std::mutex mtx;
  std::vector<warp::test::lock_hold> holds;
  std::vector<warp::test::lease_record> leases;
  std::vector<warp::test::lease_read> lease_reads;
  std::atomic<std::uint64_t> stalls_done{0}, unknown{0};
  explicit coord_run(std::size_t clients) : stall_ms(clients), holding(clients) {}
};

/// A session (a lease the client keeps alive every TTL/3) for the lock workload.
struct session {
  std::uint64_t id = 0;
  std::int64_t last_keepalive_invoke_ns = 0;  ///< of the grant or last acknowledged keep-alive
};

/// The lock workload's client: session, lock (FIFO wait), read the fenced register, append
/// the token with a fenced write, unlock. Any outcome that leaves the session's state in
/// doubt (an unknown lock or unlock, a lost keep-alive) abandons the session: it expires
/// within its TTL and releases whatever it held.
void lock_client(client& cl, std::size_t nodes, std::size_t ci, std::mt19937_64& rng,
                 coord_run& run, std::uint64_t& errs) {
  using wo = warp::test::lock_hold::write_outcome;
  const std::string owner = "c" + std::to_string(ci);
  std::optional<session> s;
  std::vector<warp::test::lock_hold> mine;
  auto pick = [&](bool home) {
    return home ? ci % nodes : static_cast<std::size_t>(rng() % nodes);
  };
  bool home = true;
  auto abandon = [&] {
    if (s) cl.coord(pick(false), "lease.revoke", {std::to_string(s->id)}, errs);
    s.reset();
  };
  while (!run.stop->load()) {
    auto node = pick(home);
    home = true;
    if (!s) {
      auto g = cl.coord(node, "lease.grant", {std::to_string(run.ttl_ms)}, errs);
      if (!g.ok()) {
        home = false;
        std::this_thread::sleep_for(50ms);
        continue;
      }
      s = session{std::stoull(g.value), g.invoke_ns};
    } else if (mono_ns() - s->last_keepalive_invoke_ns > run.ttl_ms * 1'000'000 / 3) {
      auto k = cl.coord(node, "lease.keepalive", {std::to_string(s->id)}, errs);
      if (k.ok()) {
        s->last_keepalive_invoke_ns = k.invoke_ns;
      } else {
        abandon();
        home = false;
        continue;
      }
    }
    auto l = cl.coord(node, "lock", {run.lock_name, std::to_string(s->id), "1000", owner}, errs);
    if (!l.ok()) {
      // timeout: the wait ran out (not held); anything else: in doubt, or the session is
      // gone (not_found) or holds the lock already (conflict).
      if (!l.is(warp::errc::timeout)) abandon();
      home = l.is(warp::errc::timeout);
      continue;
    }
    run.holding[ci] = true;
    warp::test::lock_hold h;
    h.client = static_cast<int>(ci);
    h.token = std::stoull(l.value);
    h.acquire_invoke_ns = l.invoke_ns;
    h.acquire_return_ns = l.return_ns;
    auto r = cl.coord(node, "fencedget", {run.register_key}, errs);
    if (r.ok() || r.is(warp::errc::not_found)) {
      auto list = warp::test::parse_token_list(r.ok() ? r.value : std::string{});
      h.read_done = true;
      h.read_invoke_ns = r.invoke_ns;
      h.read_return_ns = r.return_ns;
      if (!list) {
        // Not a token list: record it as a token nobody wrote (0), a violation.
        h.read = {0};
      } else {
        h.read = *list;
      }
      if (auto pause = run.stall_ms[ci].exchange(0); pause > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds{pause});
        run.stalls_done.fetch_add(1);
      }
      auto written = h.read;
      written.push_back(h.token);
      h.session_safe_until_ns = s->last_keepalive_invoke_ns + run.ttl_ms * 1'000'000;
      auto w = cl.coord(node, "fencedset",
                        {run.register_key, warp::test::format_token_list(written), run.lock_name,
                         std::to_string(h.token)},
                        errs);
      h.write_invoke_ns = w.invoke_ns;
      h.write_return_ns = w.return_ns;
      if (w.ok()) {
        h.write = wo::ok;
      } else if (w.is(warp::errc::conflict)) {
        h.write = wo::refused;
      } else if (w.is(warp::errc::timeout) || (w.code && !w.is(warp::errc::unknown_outcome))) {
        h.write = wo::none;  // known not applied
      } else {
        h.write = wo::unknown;
        h.write_return_ns = warp::test::lock_hold::unknown_return;
        run.unknown.fetch_add(1);
      }
    }
    mine.push_back(std::move(h));
    auto u = cl.coord(node, "unlock", {run.lock_name, std::to_string(s->id), l.value, owner}, errs);
    run.holding[ci] = false;
    if (!u.ok() && !u.is(warp::errc::conflict)) abandon();
    if (!u.ok()) home = false;
  }
  abandon();
  std::lock_guard<std::mutex> g{run.mtx};
  run.holds.insert(run.holds.end(), mine.begin(), mine.end());
}

/// The lease workload's client: grant a lease, attach two keys of its own with SET ...
/// LEASE (values unique to the lease), read them from random nodes while keeping the lease
/// alive, then revoke it (and read again at once), or, one lease in five, stop keeping it
/// alive and read until it is gone.
void lease_client(client& cl, std::size_t nodes, std::size_t ci, std::mt19937_64& rng,
                  coord_run& run, std::int64_t extension_ms, std::uint64_t& errs) {
  std::vector<warp::test::lease_record> mine;
  std::vector<warp::test::lease_read> reads;
  auto node = [&] { return static_cast<std::size_t>(rng() % nodes); };
  auto read_all = [&](const std::vector<std::string>& keys) {
    for (auto& key : keys) {
      register_op op;
      op.key = key;
      op.what = register_op::kind::get;
      if (auto rec = cl.run(node(), op, errs))
        reads.push_back({key, rec->output, rec->invoke_ns, rec->return_ns});
    }
  };
  const std::int64_t ttl_ms = run.ttl_ms - 1000 + static_cast<std::int64_t>(rng() % 2001);
  while (!run.stop->load()) {
    auto g = cl.coord(node(), "lease.grant", {std::to_string(ttl_ms)}, errs);
    if (!g.ok()) {
      std::this_thread::sleep_for(50ms);
      continue;
    }
    warp::test::lease_record l;
    l.id = std::stoull(g.value);
    l.ttl_ms = ttl_ms;
    l.grant_return_ns = g.return_ns;
    std::vector<std::string> keys;
    for (int j = 0; j < 2; ++j) {
      auto key = "ls:" + std::to_string(ci) + ":" + std::to_string(j);
      auto value = "lease-" + g.value + "-" + std::to_string(j);
      // Only an acknowledged SET ... LEASE is known attached: one of unknown outcome may
      // apply after the revoke, unattached (the node deletes it again once its attach is
      // refused), so its value seen after the revoke is no violation.
      if (cl.coord(node(), "set", {key, value, g.value}, errs).ok())
        l.keys.emplace_back(key, value);
      keys.push_back(key);
    }
    bool revoke = rng() % 5 != 0;
    auto rounds = 1 + rng() % 4;
    bool ok = true;
    for (std::size_t i = 0; i < rounds && !run.stop->load() && ok; ++i) {
      read_all(keys);
      auto k = cl.coord(node(), "lease.keepalive", {g.value}, errs);
      if (k.ok()) {
        l.keepalives.push_back(k.return_ns);
      } else if (k.what == client::coord_answer::kind::unknown) {
        l.unbounded = true;  // it may commit later and renew the lease then
        ok = false;
      } else if (!k.is(warp::errc::timeout)) {
        ok = false;  // ended (not_found) or the node did not take it
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{100 + rng() % 300});
    }
    if (revoke) {
      auto r = cl.coord(node(), "lease.revoke", {g.value}, errs);
      if (r.ok()) l.revoke_return_ns = r.return_ns;
      if (r.what == client::coord_answer::kind::unknown) run.unknown.fetch_add(1);
      read_all(keys);
    } else {
      // Let it expire: ask for it (lease.ttl) until it is gone, at most TTL + extension +
      // 2 s after its last keep-alive; every answer that found it is an observation the
      // checker bounds. The keys are read too (the revoke rule only uses them).
      auto until = mono_ns() + (ttl_ms + extension_ms + 2000) * 1'000'000;
      while (mono_ns() < until && !run.stop->load()) {
        auto t = cl.coord(node(), "lease.ttl", {g.value}, errs);
        if (t.ok()) l.alive_seen.push_back(t.invoke_ns);
        if (t.is(warp::errc::not_found)) break;
        read_all(keys);
        std::this_thread::sleep_for(200ms);
      }
    }
    mine.push_back(std::move(l));
  }
  std::lock_guard<std::mutex> g{run.mtx};
  run.leases.insert(run.leases.end(), mine.begin(), mine.end());
  run.lease_reads.insert(run.lease_reads.end(), reads.begin(), reads.end());
}

struct lost_report {
  std::uint64_t lost = 0;
  std::string detail;
};

/// Acknowledged writes overwritten by an older state: the final value (read after the run,
/// faults healed) must come from a write that does not precede any acknowledged write.
lost_report count_lost(const std::vector<register_op>& history, const std::string& key,
                       const std::optional<std::string>& final_value) {
  lost_report out;
  std::vector<const register_op*> acked;
  std::int64_t source_return = -1;  // return time of the write that produced the final state
  bool source_found = false;
  for (auto& op : history) {
    if (op.key != key || op.what == register_op::kind::get) continue;
    if (op.return_ns != register_op::unknown_return) acked.push_back(&op);
    bool produces = final_value ? (op.what == register_op::kind::set && op.input == *final_value)
                                : op.what == register_op::kind::del;
    if (produces) {
      source_found = true;
      source_return = std::max(source_return, op.return_ns);  // most favourable candidate
    }
  }
  if (!source_found) {
    if (final_value) return out;  // a value nobody wrote: the checker reports it
    // Absent and never deleted: every acknowledged set is lost.
    for (auto* op : acked)
      if (op->what == register_op::kind::set) ++out.lost;
    if (out.lost) out.detail = key + ": absent at the end, never deleted";
    return out;
  }
  for (auto* op : acked)
    if (source_return != register_op::unknown_return && source_return < op->invoke_ns) ++out.lost;
  if (out.lost)
    out.detail =
        key + ": final state is older than " + std::to_string(out.lost) + " acknowledged write(s)";
  return out;
}

std::string default_warpd() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto p = self.parent_path().parent_path() / "warpd" / "warpd";
    if (std::filesystem::exists(p)) return p.string();
  }
  return warp::test::binary("apps/warpd/warpd");
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{
      "warp-nemesis: linearizability of strong_distributed keys under kill -9 and "
      "SIGSTOP, checked"};
  std::string engine = "raft";
  app.add_option("--engine", engine, "strong engine of the nodes: raft (default) or abd")
      ->check(CLI::IsMember({"raft", "abd"}));
  app.add_option("--nodes", opt.nodes, "warpd processes to start")->check(CLI::Range(2, 9));
  app.add_option("--seconds", opt.seconds, "length of the recorded workload")
      ->check(CLI::Range(1, 86400));
  app.add_option("--seed", opt.seed, "seed of the fault schedule and the workload");
  app.add_flag("--json", opt.json, "print one JSON object on the last line");
  app.add_option("--clients", opt.clients, "concurrent clients (default: nodes + 2)");
  app.add_option("--keys", opt.keys, "register keys the clients work on")
      ->check(CLI::Range(1, 1000));
  app.add_option("--counter-keys", opt.counter_keys,
                 "counter keys (INCR/GET) the clients work on; Raft only (default 2)")
      ->check(CLI::Range(0, 1000));
  app.add_option("--request-timeout-ms", opt.request_timeout_ms,
                 "client-side timeout of one request");
  app.add_option("--think-us", opt.think_us, "pause of a client between operations");
  app.add_flag("!--no-kill", opt.kills, "do not kill -9 nodes");
  app.add_flag("!--no-pause", opt.pauses, "do not SIGSTOP nodes");
  app.add_flag("--partitions", opt.partitions,
               "Raft: also partition the nodes (a minority, sometimes holding the leader, cut "
               "off from the majority, then healed); the nodes run with --fault-injection");
  app.add_flag("!--no-kill-all", opt.kill_all,
               "Raft: never kill -9 every node at once (then restart them)");
  app.add_option("--workload", opt.workload,
                 "register (default: registers and counters), lock (a fenced lock taken by every "
                 "client) or lease (leases with attached keys, kept alive and revoked); Raft only")
      ->check(CLI::IsMember({"register", "lock", "lease"}));
  app.add_option("--lease-extension-ms", opt.lease_extension_ms,
                 "lease workload: how long past TTL after its last keep-alive a lease may still "
                 "be seen (default 4000: an election timeout, a checkpoint, the key deletes)");
  app.add_option("--warpd", opt.warpd, "warpd binary (default: next to this one)");
  app.add_option("--keep-logs", opt.keep_dir, "copy the nodes' logs into this directory");
  app.add_option("--log-level", opt.log_level, "warpd's --log-level (default warn)");
  std::string status_of;
  app.add_option("--status", status_of,
                 "only print the strong-mode status JSON of the node at HOST:PORT");
  app.set_version_flag("--version", warp::version_line("warp-nemesis"),
                       "Print the version and commit, then exit");
  CLI11_PARSE(app, argc, argv);
  opt.engine = engine == "abd" ? engine_kind::abd : engine_kind::raft;
  if (opt.engine == engine_kind::abd) opt.counter_keys = 0;  // ABD answers INCR unsupported
  const bool coord_workload = opt.workload != "register";
  if (coord_workload) {
    if (opt.engine == engine_kind::abd) {
      std::cerr << "warp-nemesis: the lock and lease workloads need --engine raft\n";
      return 2;
    }
    opt.keys = 0;
    opt.counter_keys = 0;
  }
  if (!status_of.empty()) {
    caf::actor_system_config cfg;
    cfg.load<caf::io::middleman>();
    warp::actors::register_control_protocol(cfg);
    cfg.set("logger.verbosity", caf::atom("quiet"));
    caf::actor_system sys{cfg};
    auto colon = status_of.rfind(':');
    if (colon == std::string::npos) return 2;
    auto port = static_cast<std::uint16_t>(std::stoi(status_of.substr(colon + 1)));
    auto js = opt.engine == engine_kind::abd
                  ? warp::actors::fetch_strong_status(sys, status_of.substr(0, colon), port, 3s)
                  : fetch_raft_status(sys, port, 3s);
    if (!js) {
      std::cerr << js.err().to_string() << "\n";
      return 1;
    }
    std::cout << *js << std::endl;
    return 0;
  }
  if (opt.clients == 0) opt.clients = opt.nodes + 2;
  if (opt.warpd.empty()) opt.warpd = default_warpd();
  auto say = [&](const std::string& line) { std::cout << line << std::endl; };

  warp::test::temp_dir dir{"warp-nemesis"};
  caf::actor_system_config cfg;
  configure_client(cfg, 2);
  caf::actor_system sys{cfg};

  cluster c{opt, dir.str()};
  for (std::size_t i = 0; i < c.size(); ++i)
    if (!c.start(i)) {
      std::cerr << "warp-nemesis: node " << i << " did not start (" << opt.warpd << ")\n";
      return 2;
    }
  auto keep_logs = [&] {
    if (opt.keep_dir.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(opt.keep_dir, ec);
    for (std::size_t i = 0; i < c.size(); ++i)
      std::filesystem::copy_file(dir.str() + "/n" + std::to_string(i) + ".log",
                                 opt.keep_dir + "/n" + std::to_string(i) + ".log",
                                 std::filesystem::copy_options::overwrite_existing, ec);
  };
  // 60 s: a first start on a loaded machine (every group's first election, the peers'
  // links) once took longer than 30 s for one node of three.
  for (std::size_t i = 0; i < c.size(); ++i)
    if (!wait_recovered(sys, opt, c, i, 60s)) {
      std::cerr << "warp-nemesis: node " << i << " never became ready\n";
      for (std::size_t k = 0; k < c.size(); ++k) {
        auto js = strong_status(sys, opt.engine, c.port(k));
        std::cerr << "  status n" << k << ": " << (js ? *js : js.err().to_string()) << "\n";
      }
      keep_logs();
      return 2;
    }
  say("cluster of " + std::to_string(opt.nodes) + " nodes (" + engine + ") ready; " +
      std::to_string(opt.clients) + " clients on " + std::to_string(opt.keys) +
      " register keys and " + std::to_string(opt.counter_keys) + " counter keys for " +
      std::to_string(opt.seconds) + " s, seed " + std::to_string(opt.seed));

  std::vector<std::string> keys, counters;
  for (std::size_t k = 0; k < opt.keys; ++k) keys.push_back("nem:" + std::to_string(k));
  for (std::size_t k = 0; k < opt.counter_keys; ++k) counters.push_back("cnt:" + std::to_string(k));

  std::mutex hist_mtx;
  std::vector<register_op> history;
  std::map<std::string, std::vector<counter_op>> counter_history;
  std::atomic<std::uint64_t> errors{0}, unknown{0}, malformed_reads{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  coord_run crun{opt.clients};
  crun.stop = &stop;
  for (std::size_t ci = 0; ci < opt.clients; ++ci) {
    clients.emplace_back([&, ci] {
      std::mt19937_64 rng{opt.seed * 1000003u + ci};
      client cl{sys, c, opt, static_cast<int>(ci)};
      std::uint64_t n = 0, errs = 0;
      if (coord_workload) {
        if (opt.workload == "lock")
          lock_client(cl, c.size(), ci, rng, crun, errs);
        else
          lease_client(cl, c.size(), ci, rng, crun, opt.lease_extension_ms, errs);
        errors.fetch_add(errs);
        return;
      }
      std::vector<register_op> mine;
      std::map<std::string, std::vector<counter_op>> mine_counters;
      // With counter keys, a quarter of the operations go to them (half INCR, half GET).
      const std::size_t counter_share = counters.empty() ? 0 : 25;
      while (!stop.load()) {
        auto node = static_cast<std::size_t>(rng() % c.size());
        if (rng() % 100 < counter_share) {
          const auto& key = counters[rng() % counters.size()];
          auto what = rng() % 2 == 0 ? counter_op::kind::incr : counter_op::kind::get;
          if (auto rec = cl.run_counter(node, key, what, errs, malformed_reads)) {
            if (rec->return_ns == counter_op::unknown_return) unknown.fetch_add(1);
            mine_counters[key].push_back(*rec);
          }
        } else {
          register_op op;
          op.key = keys[rng() % keys.size()];
          auto dice = rng() % 100;
          if (dice < 50) {
            op.what = register_op::kind::get;
          } else if (dice < 90) {
            op.what = register_op::kind::set;
            op.input = "c" + std::to_string(ci) + "-" + std::to_string(++n);
          } else {
            op.what = register_op::kind::del;
          }
          if (auto rec = cl.run(node, op, errs)) {
            if (rec->return_ns == register_op::unknown_return) unknown.fetch_add(1);
            mine.push_back(std::move(*rec));
          }
        }
        if (opt.think_us > 0)
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % (2 * opt.think_us + 1)));
      }
      errors.fetch_add(errs);
      std::lock_guard<std::mutex> g{hist_mtx};
      for (auto& op : mine) history.push_back(std::move(op));
      for (auto& [key, ops] : mine_counters)
        counter_history[key].insert(counter_history[key].end(), ops.begin(), ops.end());
    });
  }

  // The nemesis: one fault at a time, and every node caught up before the next one, so a
  // majority of every range or group is up whenever only one node is faulty (two ABD
  // replicas losing memory at once would make their ranges unavailable by design; see
  // docs/strong.md). The one fault that takes everything down, kill -9 of all nodes, is a
  // Raft fault: its logs are fsync'd, so acknowledged writes must survive it.
  enum class fault {
    kill_random,
    pause_random,
    kill_leader,
    pause_leader,
    kill_all,
    stall_holder,
    partition_random,
    partition_leader
  };
  std::vector<fault> kinds;
  if (opt.engine == engine_kind::abd) {
    if (opt.kills) kinds.push_back(fault::kill_random);
    if (opt.pauses) kinds.push_back(fault::pause_random);
  } else {
    if (opt.kills) kinds.insert(kinds.end(), {fault::kill_leader, fault::kill_random});
    if (opt.pauses) kinds.push_back(fault::pause_leader);
    if (opt.kills && opt.kill_all) kinds.push_back(fault::kill_all);
    if (opt.pauses && opt.workload == "lock") kinds.push_back(fault::stall_holder);
    if (opt.partitions)
      kinds.insert(kinds.end(), {fault::partition_random, fault::partition_leader});
  }
  std::map<std::string, std::uint64_t> fault_counts;
  std::uint64_t faults = 0;
  // kill -9 of every node until all were back: no lease counts down meanwhile.
  std::vector<std::pair<std::int64_t, std::int64_t>> outages;
  std::int64_t outage_from = 0;
  std::uint64_t partitions_confirmed = 0;
  std::mt19937_64 rng{opt.seed};
  auto uniform_ms = [&](int lo, int hi) {
    return std::chrono::milliseconds{
        lo + static_cast<int>(rng() % static_cast<std::uint64_t>(hi - lo + 1))};
  };
  auto run_end = steady::now() + std::chrono::seconds{opt.seconds};
  bool healthy = true;
  std::int64_t max_catch_up_ms = 0;  // restart (process start) to "recovered"
  auto dump_status = [&] {
    for (std::size_t i = 0; i < c.size(); ++i) {  // what every node reports, for the logs
      auto js = strong_status(sys, opt.engine, c.port(i));
      say("  status n" + std::to_string(i) + ": " + (js ? *js : js.err().to_string()));
    }
  };
  // Waits until every node is caught up; false (and the run unhealthy) after `limit`.
  auto all_recovered = [&](std::chrono::seconds limit) {
    auto deadline = steady::now() + limit;
    for (std::size_t i = 0; i < c.size(); ++i) {
      auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - steady::now());
      if (!wait_recovered(sys, opt, c, i, std::max(left, std::chrono::seconds{1}))) {
        std::cerr << "warp-nemesis: n" << i << " not caught up within " << limit.count() << " s\n";
        say("  n" + std::to_string(i) + " NOT caught up within " + std::to_string(limit.count()) +
            " s");
        dump_status();
        return false;
      }
    }
    return true;
  };
  // Each round runs every enabled fault kind once, in an order the seed shuffles: a run
  // with at least as many faults as kinds has injected each.
  std::vector<fault> round;
  auto target_node = [&](bool leader, std::string& why) -> std::size_t {
    if (leader && coord_workload) {
      // Locks and leases live in the coordination group.
      if (auto l = raft_leader(sys, c, warp::actors::coord_group_id)) {
        why = " (leader of the coordination group)";
        return *l;
      }
      why = " (no leader known for the coordination group: a random node)";
    } else if (leader) {
      // The leader of the group of a workload key, from the nodes' own status.
      const auto& all = counters.empty() || rng() % 2 ? keys : counters;
      const auto& key = all[rng() % all.size()];
      auto group = warp::detail::range_map{c.raft_groups()}.range_of(key);
      if (auto l = raft_leader(sys, c, group)) {
        why = " (leader of group " + std::to_string(group) + ", key " + key + ")";
        return *l;
      }
      why = " (no leader known for group " + std::to_string(group) + ": a random node)";
    }
    return static_cast<std::size_t>(rng() % c.size());
  };
  while (!kinds.empty() && steady::now() + 1500ms < run_end) {
    std::this_thread::sleep_for(uniform_ms(300, 1500));
    if (steady::now() + 1500ms >= run_end) break;
    if (round.empty()) {
      round = kinds;
      std::shuffle(round.begin(), round.end(), rng);
    }
    auto f = round.back();
    round.pop_back();
    ++faults;
    auto t0 = steady::now();
    std::string why;
    switch (f) {
      case fault::kill_random:
      case fault::kill_leader: {
        auto node = target_node(f == fault::kill_leader, why);
        ++fault_counts[f == fault::kill_leader ? "kill_leader" : "kill_random"];
        say("fault: kill -9 n" + std::to_string(node) + why);
        c.kill9(node);
        std::this_thread::sleep_for(uniform_ms(200, 1500));
        t0 = steady::now();
        if (!c.start(node)) {
          say("  n" + std::to_string(node) + " did not restart");
          healthy = false;
        }
        break;
      }
      case fault::pause_random:
      case fault::pause_leader: {
        auto node = target_node(f == fault::pause_leader, why);
        ++fault_counts[f == fault::pause_leader ? "pause_leader" : "pause_random"];
        say("fault: SIGSTOP n" + std::to_string(node) + why);
        c.signal(node, SIGSTOP);
        // A paused Raft leader stays stopped beyond the election timeout (10-20 ticks of
        // 100 ms): the others elect a new leader, and the old one wakes up deposed.
        std::this_thread::sleep_for(f == fault::pause_leader ? uniform_ms(2500, 4000)
                                                             : uniform_ms(200, 2500));
        c.signal(node, SIGCONT);
        say("  n" + std::to_string(node) + " resumed");
        break;
      }
      case fault::stall_holder: {
        // A lock holder goes silent past its session's TTL (no keep-alive, no request),
        // then wakes and writes with its old token: the fence must refuse it.
        auto start = static_cast<std::size_t>(rng() % opt.clients);
        auto who = start;
        for (std::size_t k = 0; k < opt.clients; ++k)
          if (crun.holding[(start + k) % opt.clients]) {
            who = (start + k) % opt.clients;
            break;
          }
        auto pause = crun.ttl_ms + 1500;
        ++fault_counts["stall_holder"];
        say("fault: client c" + std::to_string(who) + " pauses " + std::to_string(pause) +
            " ms inside its next critical section");
        crun.stall_ms[who] = pause;
        std::this_thread::sleep_for(std::chrono::milliseconds{pause + 500});
        break;
      }
      case fault::partition_random:
      case fault::partition_leader: {
        // A minority (at least one node, fewer than half) cut off from the majority, by
        // each side dropping its links to the other: with the leader of a workload group
        // (or of the coordination group) inside the minority, or a random one.
        auto first = target_node(f == fault::partition_leader, why);
        std::vector<std::size_t> order(c.size());
        for (std::size_t i = 0; i < c.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<bool> minority(c.size(), false);
        minority[first] = true;
        const std::size_t size = std::max<std::size_t>(1, (c.size() - 1) / 2);
        for (std::size_t i = 0, n = 1; i < order.size() && n < size; ++i)
          if (!minority[order[i]]) {
            minority[order[i]] = true;
            ++n;
          }
        std::string names;
        for (std::size_t i = 0; i < c.size(); ++i)
          if (minority[i]) names += (names.empty() ? "n" : ", n") + std::to_string(i);
        ++fault_counts[f == fault::partition_leader ? "partition_leader" : "partition_random"];
        say("fault: partition {" + names + "} | the rest" + why);
        for (std::size_t i = 0; i < c.size(); ++i) {
          std::vector<std::size_t> other;
          for (std::size_t j = 0; j < c.size(); ++j)
            if (minority[j] != minority[i]) other.push_back(j);
          if (!c.cut(i, other)) {
            say("  n" + std::to_string(i) + " refused the partition (is --fault-injection on?)");
            healthy = false;
          }
        }
        // Evidence that the cut holds: every node's Raft host sees only its own side.
        auto cut_end = steady::now() + uniform_ms(2000, 5000);
        bool confirmed = false;
        while (!confirmed && steady::now() < cut_end) {
          confirmed = true;
          for (std::size_t i = 0; i < c.size() && confirmed; ++i) {
            auto side = static_cast<int>(std::count(minority.begin(), minority.end(), minority[i]));
            auto js = fetch_raft_status(sys, c.port(i), 1s);
            auto j = js ? nlohmann::json::parse(*js, nullptr, false) : nlohmann::json{};
            confirmed = j.is_object() && j.contains("host") && j["host"].is_object() &&
                        j["host"].value("peers_connected", -1) == side - 1;
          }
          if (!confirmed) std::this_thread::sleep_for(100ms);
        }
        if (confirmed) ++partitions_confirmed;
        say(confirmed ? "  every node sees only its own side"
                      : "  NOT confirmed: some node still reported a link across the cut");
        std::this_thread::sleep_until(cut_end);
        t0 = steady::now();
        for (std::size_t i = 0; i < c.size(); ++i)
          if (!c.cut(i, {})) {
            say("  n" + std::to_string(i) + " did not heal");
            healthy = false;
          }
        say("  healed");
        break;
      }
      case fault::kill_all: {
        ++fault_counts["kill_all"];
        say("fault: kill -9 of every node");
        outage_from = mono_ns();
        for (std::size_t i = 0; i < c.size(); ++i) c.signal(i, SIGKILL);
        for (std::size_t i = 0; i < c.size(); ++i) c.kill9(i);
        std::this_thread::sleep_for(uniform_ms(200, 1500));
        t0 = steady::now();
        for (std::size_t i = 0; i < c.size(); ++i)
          if (!c.start(i)) {
            say("  n" + std::to_string(i) + " did not restart");
            healthy = false;
          }
        break;
      }
    }
    if (!healthy || !all_recovered(f == fault::kill_all ? 60s : 30s)) {
      healthy = false;
      break;
    }
    if (f == fault::kill_all) outages.emplace_back(outage_from, mono_ns());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
    if (f != fault::pause_random && f != fault::pause_leader && f != fault::stall_holder &&
        f != fault::partition_random && f != fault::partition_leader)
      max_catch_up_ms = std::max<std::int64_t>(max_catch_up_ms, ms);
    say("  every node caught up " + std::to_string(ms) + " ms after the " +
        (f == fault::pause_random || f == fault::pause_leader || f == fault::stall_holder ? "resume"
         : f == fault::partition_random || f == fault::partition_leader                   ? "heal"
                                                                        : "restart"));
  }
  std::this_thread::sleep_until(run_end);
  stop = true;
  for (auto& t : clients) t.join();

  // Final reads from every node, after every fault healed: part of the checked history.
  if (healthy) all_recovered(30s);
  std::map<std::string, std::optional<std::string>> final_values;
  std::map<std::string, std::int64_t> final_counters;
  {
    client cl{sys, c, opt, static_cast<int>(opt.clients)};
    std::uint64_t errs = 0;
    for (auto& key : keys) {
      for (std::size_t i = 0; i < c.size(); ++i) {
        register_op op;
        op.key = key;
        op.what = register_op::kind::get;
        std::optional<register_op> rec;
        for (int attempt = 0; attempt < 5 && !rec; ++attempt) rec = cl.run(i, op, errs);
        if (!rec) continue;
        if (i == 0 || !final_values.count(key)) final_values[key] = rec->output;
        history.push_back(std::move(*rec));
      }
    }
    for (auto& key : counters) {
      for (std::size_t i = 0; i < c.size(); ++i) {
        std::optional<counter_op> rec;
        for (int attempt = 0; attempt < 5 && !rec; ++attempt)
          rec = cl.run_counter(i, key, counter_op::kind::get, errs, malformed_reads);
        if (!rec) continue;
        if (!final_counters.count(key)) final_counters[key] = rec->value;
        counter_history[key].push_back(*rec);
      }
    }
    errors.fetch_add(errs);
  }

  // Check, key by key (linearizability is compositional).
  std::uint64_t ops_checked = 0, violations = 0, gave_up = 0, lost = 0;
  std::uint64_t counter_ops = 0, counter_acked = 0;
  std::vector<std::string> notes;
  nlohmann::json coord_json = nlohmann::json::object();
  if (opt.workload == "lock") {
    // The register as it ends, from every node (the same linearizable read everywhere).
    client cl{sys, c, opt, static_cast<int>(opt.clients)};
    std::uint64_t errs = 0;
    std::optional<std::optional<std::string>> final_register;
    for (std::size_t i = 0; i < c.size() && !final_register; ++i)
      for (int attempt = 0; attempt < 5 && !final_register; ++attempt) {
        auto r = cl.coord(i, "fencedget", {coord_run::register_key}, errs);
        if (r.ok())
          final_register = std::optional<std::string>{r.value};
        else if (r.is(warp::errc::not_found))
          final_register = std::optional<std::string>{};
      }
    if (!final_register) {
      ++gave_up;
      notes.push_back("no final read of the fenced register succeeded: lost writes unchecked");
    }
    auto res = warp::test::check_locks(crun.holds, final_register ? *final_register : std::nullopt);
    ops_checked += res.holds;
    violations += res.violations;
    if (final_register) lost += res.lost;
    for (auto& n : res.notes) notes.push_back(n);
    notes.push_back("lock: " + std::to_string(res.holds) + " critical sections, fenced writes " +
                    std::to_string(res.writes_acknowledged) + " acknowledged, " +
                    std::to_string(res.writes_refused) + " refused, " +
                    std::to_string(res.writes_unknown) + " unknown; " +
                    std::to_string(crun.stalls_done.load()) + " holder(s) paused past their TTL");
    coord_json = {{"holds", res.holds},
                  {"fenced_writes_acknowledged", res.writes_acknowledged},
                  {"fenced_writes_refused", res.writes_refused},
                  {"fenced_writes_unknown", res.writes_unknown},
                  {"holders_paused", crun.stalls_done.load()}};
    errors.fetch_add(errs);
  } else if (opt.workload == "lease") {
    auto res =
        warp::test::check_leases(crun.leases, crun.lease_reads, opt.lease_extension_ms, outages);
    ops_checked += res.reads + res.leases;
    violations += res.violations;
    for (auto& n : res.notes) notes.push_back(n);
    notes.push_back("lease: " + std::to_string(res.leases) + " leases (" +
                    std::to_string(res.revoked) + " revoked), " + std::to_string(res.reads) +
                    " reads of attached keys");
    coord_json = {
        {"leases", res.leases}, {"leases_revoked", res.revoked}, {"lease_reads", res.reads}};
  }
  for (auto& key : keys) {
    std::vector<register_op> sub;
    for (auto& op : history)
      if (op.key == key) sub.push_back(op);
    auto res = warp::test::check_linearizable(sub, std::chrono::seconds{60});
    ops_checked += res.ops_checked;
    if (res.outcome == warp::test::check_result::verdict::violation) {
      ++violations;
      notes.push_back("VIOLATION " + key + ": " + res.explanation);
    } else if (res.outcome == warp::test::check_result::verdict::gave_up) {
      ++gave_up;
      notes.push_back("checker gave up on " + key + ": " + res.explanation);
    }
    auto fv = final_values.find(key);
    if (fv != final_values.end()) {
      auto l = count_lost(history, key, fv->second);
      lost += l.lost;
      if (l.lost) notes.push_back("LOST " + l.detail);
    } else {
      ++gave_up;
      notes.push_back("no final read of " + key + " succeeded: its lost writes are unchecked");
    }
  }
  for (auto& key : counters) {
    auto fv = final_counters.find(key);
    if (fv == final_counters.end()) {
      ++gave_up;
      notes.push_back("no final read of counter " + key + " succeeded: it is unchecked");
      continue;
    }
    auto res = warp::test::check_counter(counter_history[key], fv->second);
    ops_checked += res.ops_checked;
    counter_ops += res.ops_checked;
    counter_acked += res.acknowledged;
    violations += res.violations;
    lost += res.lost;
    for (auto& n : res.notes)
      notes.push_back(std::string{res.lost && !res.violations ? "LOST " : "VIOLATION "} + key +
                      ": " + n);
    notes.push_back("counter " + key + ": final " + std::to_string(fv->second) + ", " +
                    std::to_string(res.acknowledged) + " acknowledged INCR, " +
                    std::to_string(res.unknown) + " unknown");
  }
  if (malformed_reads.load()) {
    violations += malformed_reads.load();
    notes.push_back("VIOLATION: " + std::to_string(malformed_reads.load()) +
                    " counter read(s) were not a number");
  }
  for (auto& n : notes) say(n);
  keep_logs();

  std::string kinds_line;
  for (auto& [name, n] : fault_counts)
    kinds_line += (kinds_line.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  say("operations recorded " + std::to_string(history.size() + counter_ops) + ", checked " +
      std::to_string(ops_checked) + " (" + std::to_string(counter_ops) + " on counters, " +
      std::to_string(counter_acked) + " acknowledged INCR); faults " + std::to_string(faults) +
      " (" + kinds_line + "); errors " + std::to_string(errors.load()) + " (" +
      std::to_string(unknown.load() + crun.unknown.load()) + " unknown outcomes); violations " +
      std::to_string(violations) + "; lost writes " + std::to_string(lost) +
      (gave_up ? "; checker gave up on " + std::to_string(gave_up) + " key(s)" : ""));
  if (opt.json) {
    nlohmann::json j{
        {"engine", engine},
        {"nodes", opt.nodes},
        {"seconds", opt.seconds},
        {"seed", opt.seed},
        {"clients", opt.clients},
        {"keys", opt.keys},
        {"counter_keys", opt.counter_keys},
        {"ops_recorded", history.size() + counter_ops},
        {"ops_checked", ops_checked},
        {"counter_ops_checked", counter_ops},
        {"counter_incr_acknowledged", counter_acked},
        {"faults", faults},
        {"fault_kinds", fault_counts},
        {"kills", fault_counts["kill_random"] + fault_counts["kill_leader"]},
        {"kill_all", fault_counts["kill_all"]},
        {"pauses", fault_counts["pause_random"] + fault_counts["pause_leader"]},
        {"partitions", fault_counts["partition_random"] + fault_counts["partition_leader"]},
        {"partitions_confirmed", partitions_confirmed},
        {"errors", errors.load()},
        {"unknown_outcomes", unknown.load() + crun.unknown.load()},
        {"violations", violations},
        {"lost_writes", lost},
        {"checker_gave_up", gave_up},
        {"max_catch_up_ms", max_catch_up_ms},
        {"status_fallbacks", status_fallbacks.load()},
        {"workload", opt.workload},
        {"coordination", coord_json},
        {"healthy", healthy}};
    std::cout << j.dump() << std::endl;
  }
  return violations == 0 && lost == 0 && gave_up == 0 && healthy ? 0 : 1;
}
