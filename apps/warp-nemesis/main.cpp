// warp-nemesis: starts its own warpd cluster with every key strong_distributed, runs
// concurrent clients on a few keys recording invoke/return times on one monotonic clock,
// injects faults at random with a fixed seed (kill -9 + restart, SIGSTOP/SIGCONT), then
// checks the history for linearizability (test/support/linearizability.hpp) and counts
// acknowledged writes lost. With --json the last line of stdout is one JSON object with
// ops_checked, faults, errors, violations, lost_writes (and more).
//
// Exit code: 0 when no violation, no lost write and the checker did not give up.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/control_actor.hpp"
#include "actors/quorum_actor.hpp"
#include "test/support/linearizability.hpp"
#include "test/support/process.hpp"
#include "warp/build_info.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using warp::test::register_op;

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

struct options {
  std::size_t nodes = 3;
  int seconds = 30;
  std::uint64_t seed = 1;
  bool json = false;
  std::size_t clients = 0;  // 0 = nodes + 2
  std::size_t keys = 6;
  int request_timeout_ms = 3000;
  int think_us = 500;
  bool kills = true;
  bool pauses = true;
  std::string warpd;
  std::string keep_dir;
  std::string log_level = "warn";
};

/// The cluster under test: N warpd processes, restartable at the same address.
class cluster {
 public:
  cluster(const options& opt, const std::string& dir) : opt_(opt), dir_(dir) {
    for (std::size_t i = 0; i < opt.nodes; ++i) ports_.push_back(warp::test::free_port());
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
    return {opt_.warpd,
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
            "",
            "--resp",
            "",
            "--pattern",
            "*=strong_distributed",
            // The checker polls the quorum actor's status and its faults target ABD's
            // recovery; the Raft engine's workloads are not written yet (docs/strong.md).
            "--strong-engine",
            "abd",
            "--log-level",
            opt_.log_level};
  }

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
  void signal(std::size_t i, int sig) { procs_[i]->signal(sig); }
  std::uint16_t port(std::size_t i) const { return ports_[i]; }
  std::size_t size() const { return ports_.size(); }

 private:
  const options& opt_;
  std::string dir_;
  std::vector<std::uint16_t> ports_;
  std::vector<std::unique_ptr<warp::test::child_process>> procs_;
};

/// Whether node i reports every range it replicates caught up.
std::atomic<std::uint64_t> status_fallbacks{0};

bool recovered(caf::actor_system& sys, std::uint16_t port) {
  auto js = warp::actors::fetch_strong_status(sys, "127.0.0.1", port, 2s);
  if (!js) {
    // Our own CAF system may be the one that cannot reach the restarted process (a registry
    // lookup that never answers): ask through a fresh one before calling the node behind.
    js = warp::actors::fetch_strong_status_fresh("127.0.0.1", port, 2s);
    if (js) status_fallbacks.fetch_add(1);
  }
  if (!js) return false;
  auto j = nlohmann::json::parse(*js, nullptr, false);
  return j.is_object() && j.value("recovered", false) &&
         j.value("peers_connected", 0) + 1 >= static_cast<int>(j["members"].size());
}

bool wait_recovered(caf::actor_system& sys, cluster& c, std::size_t i, std::chrono::seconds limit) {
  auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    if (recovered(sys, c.port(i))) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
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
    // The node said "timeout": its write never reached the store phase, nothing applied.
    if (warp_error && err.code() == warp::errc::timeout) return std::nullopt;
    // Anything else (unknown_outcome, client timeout, connection lost): may have applied.
    op.return_ns = register_op::unknown_return;
    return op;
  }

 private:
  caf::actor_system& sys_;
  cluster& c_;
  const options& opt_;
  int id_;
  std::vector<caf::actor> handles_;
};

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
  app.add_option("--nodes", opt.nodes, "warpd processes to start")->check(CLI::Range(2, 9));
  app.add_option("--seconds", opt.seconds, "length of the recorded workload")
      ->check(CLI::Range(1, 86400));
  app.add_option("--seed", opt.seed, "seed of the fault schedule and the workload");
  app.add_flag("--json", opt.json, "print one JSON object on the last line");
  app.add_option("--clients", opt.clients, "concurrent clients (default: nodes + 2)");
  app.add_option("--keys", opt.keys, "keys the clients work on")->check(CLI::Range(1, 1000));
  app.add_option("--request-timeout-ms", opt.request_timeout_ms,
                 "client-side timeout of one request");
  app.add_option("--think-us", opt.think_us, "pause of a client between operations");
  app.add_flag("!--no-kill", opt.kills, "do not kill -9 nodes");
  app.add_flag("!--no-pause", opt.pauses, "do not SIGSTOP nodes");
  app.add_option("--warpd", opt.warpd, "warpd binary (default: next to this one)");
  app.add_option("--keep-logs", opt.keep_dir, "copy the nodes' logs into this directory");
  app.add_option("--log-level", opt.log_level, "warpd's --log-level (default warn)");
  std::string status_of;
  app.add_option("--status", status_of,
                 "only print the strong-mode status JSON of the node at HOST:PORT");
  app.set_version_flag("--version", warp::version_line("warp-nemesis"), "Print the version and commit, then exit");
  CLI11_PARSE(app, argc, argv);
  if (!status_of.empty()) {
    caf::actor_system_config cfg;
    cfg.load<caf::io::middleman>();
    cfg.set("logger.verbosity", caf::atom("quiet"));
    caf::actor_system sys{cfg};
    auto colon = status_of.rfind(':');
    if (colon == std::string::npos) return 2;
    auto js = warp::actors::fetch_strong_status(
        sys, status_of.substr(0, colon),
        static_cast<std::uint16_t>(std::stoi(status_of.substr(colon + 1))), 3s);
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
  cfg.load<caf::io::middleman>();
  warp::actors::register_control_protocol(cfg);
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  cluster c{opt, dir.str()};
  for (std::size_t i = 0; i < c.size(); ++i)
    if (!c.start(i)) {
      std::cerr << "warp-nemesis: node " << i << " did not start (" << opt.warpd << ")\n";
      return 2;
    }
  for (std::size_t i = 0; i < c.size(); ++i)
    if (!wait_recovered(sys, c, i, 30s)) {
      std::cerr << "warp-nemesis: node " << i << " never became ready\n";
      return 2;
    }
  say("cluster of " + std::to_string(opt.nodes) + " nodes ready; " + std::to_string(opt.clients) +
      " clients on " + std::to_string(opt.keys) + " keys for " + std::to_string(opt.seconds) +
      " s, seed " + std::to_string(opt.seed));

  std::vector<std::string> keys;
  for (std::size_t k = 0; k < opt.keys; ++k) keys.push_back("nem:" + std::to_string(k));

  std::mutex hist_mtx;
  std::vector<register_op> history;
  std::atomic<std::uint64_t> errors{0}, unknown{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (std::size_t ci = 0; ci < opt.clients; ++ci) {
    clients.emplace_back([&, ci] {
      std::mt19937_64 rng{opt.seed * 1000003u + ci};
      client cl{sys, c, opt, static_cast<int>(ci)};
      std::uint64_t n = 0, errs = 0;
      std::vector<register_op> mine;
      while (!stop.load()) {
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
        auto node = static_cast<std::size_t>(rng() % c.size());
        if (auto rec = cl.run(node, op, errs)) {
          if (rec->return_ns == register_op::unknown_return) unknown.fetch_add(1);
          mine.push_back(std::move(*rec));
        }
        if (opt.think_us > 0)
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % (2 * opt.think_us + 1)));
      }
      errors.fetch_add(errs);
      std::lock_guard<std::mutex> g{hist_mtx};
      for (auto& op : mine) history.push_back(std::move(op));
    });
  }

  // The nemesis: one fault at a time, so a majority of every range stays up and a killed
  // node catches up before the next fault (two replicas losing memory at once would make
  // their ranges unavailable by design; see docs/strong.md).
  std::uint64_t kills = 0, pauses = 0;
  std::mt19937_64 rng{opt.seed};
  auto uniform_ms = [&](int lo, int hi) {
    return std::chrono::milliseconds{
        lo + static_cast<int>(rng() % static_cast<std::uint64_t>(hi - lo + 1))};
  };
  auto run_end = steady::now() + std::chrono::seconds{opt.seconds};
  bool healthy = true;
  std::int64_t max_catch_up_ms = 0;  // restart (process start) to "recovered"
  while (steady::now() + 1500ms < run_end && (opt.kills || opt.pauses)) {
    std::this_thread::sleep_for(uniform_ms(300, 1500));
    if (steady::now() + 1500ms >= run_end) break;
    auto node = static_cast<std::size_t>(rng() % c.size());
    bool kill = opt.kills && (!opt.pauses || rng() % 2 == 0);
    if (kill) {
      ++kills;
      say("fault: kill -9 n" + std::to_string(node));
      c.kill9(node);
      std::this_thread::sleep_for(uniform_ms(200, 1500));
      auto t0 = steady::now();
      if (!c.start(node) || !wait_recovered(sys, c, node, 30s)) {
        std::cerr << "warp-nemesis: n" << node << " did not come back (caught up) within 30 s\n";
        say("  n" + std::to_string(node) + " NOT caught up within 30 s");
        for (std::size_t i = 0; i < c.size(); ++i) {  // what every node reports, for the logs
          auto js = warp::actors::fetch_strong_status(sys, "127.0.0.1", c.port(i), 2s);
          if (!js) js = warp::actors::fetch_strong_status_fresh("127.0.0.1", c.port(i), 2s);
          say("  status n" + std::to_string(i) + ": " + (js ? *js : js.err().to_string()));
        }
        healthy = false;
        break;
      }
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
      max_catch_up_ms = std::max<std::int64_t>(max_catch_up_ms, ms);
      say("  n" + std::to_string(node) + " restarted and caught up in " + std::to_string(ms) +
          " ms");
    } else {
      ++pauses;
      say("fault: SIGSTOP n" + std::to_string(node));
      c.signal(node, SIGSTOP);
      std::this_thread::sleep_for(uniform_ms(200, 2500));
      c.signal(node, SIGCONT);
      say("  n" + std::to_string(node) + " resumed");
    }
  }
  std::this_thread::sleep_until(run_end);
  stop = true;
  for (auto& t : clients) t.join();

  // Final reads from every node, after every fault healed: part of the checked history.
  for (std::size_t i = 0; i < c.size(); ++i) wait_recovered(sys, c, i, 30s);
  std::map<std::string, std::optional<std::string>> final_values;
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
    errors.fetch_add(errs);
  }

  // Check, key by key (linearizability is compositional).
  std::uint64_t ops_checked = 0, violations = 0, gave_up = 0, lost = 0;
  std::vector<std::string> notes;
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
    }
  }
  for (auto& n : notes) say(n);
  if (!opt.keep_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.keep_dir, ec);
    for (std::size_t i = 0; i < c.size(); ++i)
      std::filesystem::copy_file(dir.str() + "/n" + std::to_string(i) + ".log",
                                 opt.keep_dir + "/n" + std::to_string(i) + ".log",
                                 std::filesystem::copy_options::overwrite_existing, ec);
  }

  say("operations recorded " + std::to_string(history.size()) + ", checked " +
      std::to_string(ops_checked) + "; faults " + std::to_string(kills + pauses) + " (" +
      std::to_string(kills) + " kill -9, " + std::to_string(pauses) + " SIGSTOP); errors " +
      std::to_string(errors.load()) + " (" + std::to_string(unknown.load()) +
      " unknown outcomes); violations " + std::to_string(violations) + "; lost writes " +
      std::to_string(lost) +
      (gave_up ? "; checker gave up on " + std::to_string(gave_up) + " key(s)" : ""));
  if (opt.json) {
    nlohmann::json j{{"nodes", opt.nodes},
                     {"seconds", opt.seconds},
                     {"seed", opt.seed},
                     {"clients", opt.clients},
                     {"keys", opt.keys},
                     {"ops_recorded", history.size()},
                     {"ops_checked", ops_checked},
                     {"faults", kills + pauses},
                     {"kills", kills},
                     {"pauses", pauses},
                     {"errors", errors.load()},
                     {"unknown_outcomes", unknown.load()},
                     {"violations", violations},
                     {"lost_writes", lost},
                     {"checker_gave_up", gave_up},
                     {"max_catch_up_ms", max_catch_up_ms},
                     {"status_fallbacks", status_fallbacks.load()},
                     {"healthy", healthy}};
    std::cout << j.dump() << std::endl;
  }
  return violations == 0 && lost == 0 && gave_up == 0 && healthy ? 0 : 1;
}
