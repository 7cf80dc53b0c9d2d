// warpctl: talks to a running warpd over CAF's network layer (the control actor's
// protocol, see actors/control_actor.hpp).
//
//   warpctl [--node HOST:PORT] [--output table|json] [--timeout DUR] COMMAND ...
//   COMMAND: get KEY | set KEY VALUE|- [--file F] [--ttl DUR] | del KEY | ttl KEY
//            | exists KEY... | incr KEY [BY] | mget KEY... | scan [PATTERN] | stats | ping
//            | members | regions | health [--cluster] | patterns list|set GLOB SPEC|rm GLOB
//            | validate [PATTERN] | hotkeys [--limit N] | help [COMMAND]
//   (docs/warpctl.md; completion scripts in apps/warpctl/completion/)
//
// Exit codes: 0 ok, 1 not found (get), 2 usage, 3 node unreachable (or no answer in time),
// 4 any other error. Errors go to stderr; with --json an error object also goes to stdout.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <iterator>
#include <memory>
#include <thread>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/cluster_actor.hpp"
#include "actors/control_actor.hpp"
#include "apps/warpctl/watch_client.hpp"
#include "bus/node_transport.hpp"
#include "federation/status.hpp"
#include "warp/build_info.hpp"
#include "warp/config.hpp"
#include "warp/endpoint.hpp"
#include "warp/error.hpp"
#include "warp/pattern.hpp"

namespace {

using json = nlohmann::json;
using warp::errc;

constexpr int exit_ok = 0;
constexpr int exit_not_found = 1;
constexpr int exit_usage = 2;
constexpr int exit_unreachable = 3;
constexpr int exit_error = 4;

struct options {
  std::string node = "127.0.0.1:4700";
  bool json = false;  ///< --json, or --output json
  std::string output = "table";
  std::string timeout_text = "5s";
  std::chrono::milliseconds timeout{5000};
  std::string key;
  std::string value;
  std::string ttl_text;
  std::string pattern;                ///< validate: glob of the keys to check ("" = all)
  std::string file;                   ///< set --file
  bool value_given = false;           ///< set: VALUE was on the command line (maybe "")
  std::vector<std::string> keys;      ///< exists, mget
  std::int64_t by = 1;                ///< incr
  std::string scan_pattern;           ///< scan (empty = every key)
  std::size_t scan_count = 100;       ///< keys per page
  std::size_t scan_limit = 0;         ///< stop after this many keys (0 = all)
  std::string scan_cursor;            ///< continue after this key
  bool cluster = false;               ///< health --cluster
  std::string glob;                   ///< patterns set/rm
  std::string spec;                   ///< patterns set
  std::string help_topic;             ///< help COMMAND
  warp::transport_options transport;  ///< --tls-cert/--tls-key/--tls-ca
  std::uint32_t limit = 20;           ///< hotkeys --limit
  std::string lease;                  ///< set --lease; lease keepalive|revoke|ttl ID
  std::string lease_ttl;              ///< lease grant TTL; lock --ttl
  std::string lock_name;              ///< lock NAME
  std::string lock_wait = "60s";      ///< lock --wait
  std::vector<std::string> command;   ///< lock NAME -- COMMAND...
  std::string rev;                    ///< get --rev N; watch --rev N|cursor
  warpctl::watch_options watch;       ///< watch PREFIX
  std::string admin_token_file;       ///< watch --admin-token-file
  std::string member;                 ///< members add|remove HOST:PORT or raft id
};

// Values from stdin or a file are read up to this bound (the node refuses what is over its
// own --max-value-size with a clear error; this only keeps warpctl from reading forever).
constexpr std::size_t max_input_bytes = 64u << 20;

// Reads all of `in` up to max_input_bytes; an error beyond.
warp::result<std::string> read_bounded(std::istream& in, const std::string& what) {
  std::string out;
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (out.size() > max_input_bytes)
      return warp::error{errc::value_too_large, what + " is larger than " +
                                                    std::to_string(max_input_bytes >> 20) + " MiB"};
  }
  if (in.bad()) return warp::error{errc::invalid_argument, "cannot read " + what};
  return out;
}

// Columns padded to their widest cell; the last column is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w;
  for (auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  }
  std::cout.flush();
}

std::string fmt_ms(std::int64_t ms) {
  char buf[32];
  if (ms < 10'000)
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  else
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

// Values are arbitrary bytes: never let a non-UTF-8 value make the JSON dump throw.
std::string dump(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

int exit_code_for(errc code) {
  switch (code) {
    case errc::ok:
      return exit_ok;
    case errc::not_found:
      return exit_not_found;
    case errc::unreachable:
    case errc::timeout:
      return exit_unreachable;
    default:
      return exit_error;
  }
}

// Reports `err` (stderr always; stdout too with --json) and returns the exit code.
int report(const options& opt, const std::string& what, const warp::error& err) {
  auto code = exit_code_for(err.code());
  if (code == exit_unreachable)
    std::cerr << "warpctl: cannot reach " << opt.node << ": "
              << (err.message().empty() ? err.to_string() : err.message()) << std::endl;
  else
    std::cerr << "warpctl: " << what << ": " << err.to_string() << std::endl;
  if (opt.json)
    std::cout << dump({{"ok", false},
                       {"error", std::string{warp::to_string(err.code())}},
                       {"message", err.message()}})
              << std::endl;
  return code;
}

// Sends one request and waits for the answer (or an error, or the timeout).
template <class OnValue, class... Ts>
warp::error request(caf::actor_system& sys, const caf::actor& node, const options& opt,
                    OnValue on_value, Ts&&... xs) {
  warp::error result;
  caf::scoped_actor self{sys};
  self->request(node, opt.timeout, std::forward<Ts>(xs)...).receive(on_value, [&](caf::error& err) {
    result = warp::actors::from_caf_error(err);
  });
  return result;
}

// `scan [PATTERN]`: pages of at most --count keys, each a request that continues after the
// last key of the one before (the cursor), until the walk ends or --limit keys were
// printed. On a terminal, progress goes to stderr; keys go to stdout as they arrive.
int run_scan(caf::actor_system& sys, const caf::actor& node, const options& opt) {
  using namespace warp::actors;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::string cursor = opt.scan_cursor;
  std::size_t printed = 0, pages = 0;
  bool done = false;
  json keys = json::array();
  while (!done && (opt.scan_limit == 0 || printed < opt.scan_limit)) {
    std::size_t want = opt.scan_count;
    if (opt.scan_limit) want = std::min(want, opt.scan_limit - printed);
    std::vector<std::string> page;
    std::string next;
    auto err = request(
        sys, node, opt,
        [&](std::vector<std::string>& k, std::string& n, bool d) {
          page = std::move(k);
          next = std::move(n);
          done = d;
        },
        scan_atom::value, cursor, static_cast<std::uint64_t>(want), opt.scan_pattern);
    if (err) {
      if (tty) std::cerr << "\r\033[K";
      return report(opt, "scan", err);
    }
    ++pages;
    for (auto& k : page) {
      if (opt.json)
        keys.push_back(k);
      else
        std::cout << k << '\n';
    }
    printed += page.size();
    if (!next.empty()) cursor = next;
    if (page.empty() && next.empty()) done = true;
    if (tty && !opt.json) std::cout.flush();
    if (tty)
      std::cerr << "\r\033[Kscan: " << printed << " keys, " << pages << " pages" << std::flush;
  }
  if (tty) std::cerr << "\r\033[K" << std::flush;
  if (opt.json) {
    std::cout << dump({{"ok", true},
                       {"keys", keys},
                       {"count", printed},
                       {"done", done},
                       {"cursor", done ? json(nullptr) : json(cursor)}})
              << std::endl;
  } else {
    std::cout.flush();
    // More left (--limit): say where to continue, off stdout so the key list stays clean.
    if (!done)
      std::cerr << "warpctl: more keys: continue with --cursor '" << cursor << "'" << std::endl;
  }
  return exit_ok;
}

// -- locks and leases (docs/coordination.md, "warpctl") --------------------------------------

// One coordination request (control protocol coord_atom); `extra` adds to --timeout (a
// lock wait).
warp::result<std::string> coord(caf::actor_system& sys, const caf::actor& node,
                                const options& opt, const std::string& verb,
                                std::vector<std::string> args,
                                std::chrono::milliseconds extra = std::chrono::milliseconds{0}) {
  std::string out;
  options o = opt;
  o.timeout += extra;
  auto err = request(
      sys, node, o, [&](std::string& v) { out = std::move(v); }, warp::actors::coord_atom::value,
      verb, std::move(args));
  if (err) return err;
  return out;
}

// A TTL or wait: "10" is seconds (as etcdctl), else a duration (500ms, 10s, 1m).
warp::result<std::chrono::milliseconds> seconds_or_duration(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return warp::parse_duration(text + "s");
  return warp::parse_duration(text);
}

int run_lease(CLI::App& lease, caf::actor_system& sys, const caf::actor& node, const options& opt) {
  auto done = [&](const std::string& what, const warp::result<std::string>& r,
                  auto&& print) -> int {
    if (!r) return report(opt, what, r.err());
    print(*r);
    return exit_ok;
  };
  if (lease.got_subcommand("grant")) {
    auto ttl = seconds_or_duration(opt.lease_ttl);
    if (!ttl || ttl->count() <= 0) {
      std::cerr << "warpctl: lease grant: TTL is seconds or a duration (10, 500ms, 1m)" << std::endl;
      return exit_usage;
    }
    return done("lease grant", coord(sys, node, opt, "lease.grant", {std::to_string(ttl->count())}),
                [&](const std::string& id) {
                  std::cout << (opt.json ? dump({{"ok", true}, {"id", std::stoull(id)}}) : id)
                            << std::endl;
                });
  }
  if (lease.got_subcommand("list"))
    return done("lease list", coord(sys, node, opt, "lease.list", {}), [&](const std::string& j) {
      auto ids = json::parse(j, nullptr, false);
      if (opt.json) {
        std::cout << dump({{"ok", true}, {"leases", ids}}) << std::endl;
        return;
      }
      if (ids.is_array())
        for (auto& id : ids) std::cout << id.dump() << '\n';
      std::cout.flush();
    });
  if (lease.got_subcommand("keepalive"))
    return done("lease keepalive", coord(sys, node, opt, "lease.keepalive", {opt.lease}),
                [&](const std::string& ttl) {
                  std::cout << (opt.json ? dump({{"ok", true}, {"ttl_ms", std::stoll(ttl)}})
                                         : "lease " + opt.lease + " kept alive, TTL " +
                                               fmt_ms(std::stoll(ttl)))
                            << std::endl;
                });
  if (lease.got_subcommand("revoke"))
    return done("lease revoke", coord(sys, node, opt, "lease.revoke", {opt.lease}),
                [&](const std::string&) {
                  std::cout << (opt.json ? dump({{"ok", true}}) : std::string{"OK"}) << std::endl;
                });
  return done("lease ttl", coord(sys, node, opt, "lease.ttl", {opt.lease}),
              [&](const std::string& j) {
                auto doc = json::parse(j, nullptr, false);
                if (opt.json || doc.is_discarded()) {
                  std::cout << j << std::endl;
                  return;
                }
                std::cout << "lease " << doc["id"] << ": TTL " << fmt_ms(doc["ttl_ms"].get<std::int64_t>())
                          << ", remaining " << fmt_ms(doc["remaining_ms"].get<std::int64_t>())
                          << ", keys";
                for (auto& k : doc["keys"]) std::cout << ' ' << k.get<std::string>();
                std::cout << std::endl;
              });
}

// `lock NAME -- COMMAND...`: as `etcdctl lock`: a session lease (--ttl), the lock (waiting
// up to --wait), the command with WARP_LOCK_TOKEN (and WARP_LOCK_NAME, WARP_LOCK_LEASE) in
// its environment while a thread keeps the lease alive every TTL/3; then unlock, revoke,
// and exit with the command's status. A lease lost meanwhile (the node unreachable past
// the TTL) means the lock is gone: the command gets SIGTERM and warpctl exits 1.
int run_lock(caf::actor_system& sys, const caf::actor& node, const options& opt) {
  auto ttl = seconds_or_duration(opt.lease_ttl.empty() ? "10s" : opt.lease_ttl);
  auto wait = seconds_or_duration(opt.lock_wait);
  if (!ttl || ttl->count() <= 0 || !wait) {
    std::cerr << "warpctl: lock: --ttl and --wait are seconds or durations (10, 500ms, 1m)"
              << std::endl;
    return exit_usage;
  }
  auto lease = coord(sys, node, opt, "lease.grant", {std::to_string(ttl->count())});
  if (!lease) return report(opt, "lock: lease grant", lease.err());
  auto token = coord(sys, node, opt, "lock",
                     {opt.lock_name, *lease, std::to_string(wait->count()), "warpctl"}, *wait);
  if (!token) {
    (void)coord(sys, node, opt, "lease.revoke", {*lease});
    return report(opt, "lock " + opt.lock_name, token.err());
  }
  ::setenv("WARP_LOCK_TOKEN", token->c_str(), 1);
  ::setenv("WARP_LOCK_NAME", opt.lock_name.c_str(), 1);
  ::setenv("WARP_LOCK_LEASE", lease->c_str(), 1);
  std::vector<char*> argv;
  for (const auto& a : opt.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t child = 0;
  if (int rc = ::posix_spawnp(&child, argv[0], nullptr, nullptr, argv.data(), environ); rc != 0) {
    std::cerr << "warpctl: lock: cannot run " << opt.command[0] << ": " << std::strerror(rc)
              << std::endl;
    (void)coord(sys, node, opt, "unlock", {opt.lock_name, *lease, *token, "warpctl"});
    (void)coord(sys, node, opt, "lease.revoke", {*lease});
    return exit_error;
  }
  std::mutex mtx;
  std::condition_variable cv;
  bool finished = false;
  std::atomic<bool> lost{false};
  std::thread keeper([&] {
    std::unique_lock<std::mutex> lk{mtx};
    while (!cv.wait_for(lk, *ttl / 3, [&] { return finished; })) {
      lk.unlock();
      auto r = coord(sys, node, opt, "lease.keepalive", {*lease});
      lk.lock();
      if (!r && r.code() == errc::not_found) {
        lost = true;
        std::cerr << "warpctl: lock: lease " << *lease
                  << " expired: the lock is lost, stopping the command" << std::endl;
        ::kill(child, SIGTERM);
        return;
      }
    }
  });
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard<std::mutex> lk{mtx};
    finished = true;
  }
  cv.notify_all();
  keeper.join();
  if (!lost) {
    if (auto r = coord(sys, node, opt, "unlock", {opt.lock_name, *lease, *token, "warpctl"}); !r)
      std::cerr << "warpctl: lock: unlock: " << r.err().to_string() << std::endl;
    (void)coord(sys, node, opt, "lease.revoke", {*lease});
  }
  if (lost) return exit_error;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return exit_error;
}

int run_command(CLI::App& app, caf::actor_system& sys, const caf::actor& node, const options& opt) {
  using namespace warp::actors;
  if (app.got_subcommand("lock")) return run_lock(sys, node, opt);
  if (app.got_subcommand("members")) {
    // members list|add|remove: the strong Raft groups' voters (docs/strong.md, Membership).
    auto* m = app.get_subcommand("members");
    std::string op = m->got_subcommand("add")      ? "add"
                     : m->got_subcommand("remove") ? "remove"
                                                   : "list";
    auto o = opt;
    // One configuration change per group, each waiting for the previous one's commit.
    o.timeout = std::max(opt.timeout, std::chrono::milliseconds{120'000});
    std::string text;
    auto err = request(
        sys, node, o, [&](std::string& s) { text = std::move(s); }, control_members_atom::value, op,
        op == "list" ? std::string{} : opt.member);
    if (err) return report(opt, "members " + op, err);
    if (opt.json)
      std::cout << dump({{"ok", true}, {"op", op}, {"report", text}}) << std::endl;
    else
      std::cout << text << std::flush;
    return exit_ok;
  }
  if (app.got_subcommand("lease")) return run_lease(*app.get_subcommand("lease"), sys, node, opt);
  if (app.got_subcommand("get") && !opt.rev.empty()) {
    // A strong key as of a revision of its group (docs/coordination.md, "History").
    auto r = coord(sys, node, opt, "get_at", {opt.key, opt.rev});
    if (!r) return report(opt, opt.key, r.err());
    auto v = json::parse(*r, nullptr, false);
    bool deleted = v.is_object() && v.value("deleted", false);
    if (opt.json) {
      v["ok"] = !deleted;
      v["key"] = opt.key;
      std::cout << v.dump() << std::endl;
    } else if (!deleted) {
      std::cout << v.value("value", "") << std::endl;
    } else {
      std::cerr << "warpctl: " << opt.key << ": no value at revision " << opt.rev << std::endl;
    }
    return deleted ? exit_not_found : exit_ok;
  }
  if (app.got_subcommand("history")) {
    auto r = coord(sys, node, opt, "history", {opt.key});
    if (!r) return report(opt, opt.key, r.err());
    auto h = json::parse(*r, nullptr, false);
    if (opt.json) {
      std::cout << dump({{"ok", true}, {"key", opt.key}, {"versions", h}}) << std::endl;
    } else if (h.is_array()) {
      for (auto& v : h)
        std::cout << v.value("group", 0u) << ':' << v.value("revision", 0ull) << ' '
                  << (v.value("deleted", false) ? std::string{"(deleted)"}
                                                : v.value("value", std::string{}))
                  << '\n';
      std::cout.flush();
    }
    return exit_ok;
  }
  if (app.got_subcommand("get")) {
    std::string value;
    auto err = request(
        sys, node, opt, [&](std::string& v) { value = std::move(v); }, caf::get_atom::value,
        opt.key);
    if (err) return report(opt, opt.key, err);
    if (opt.json)
      std::cout << dump({{"ok", true}, {"key", opt.key}, {"value", value}}) << std::endl;
    else
      std::cout << value << std::endl;
    return exit_ok;
  }
  if (app.got_subcommand("set")) {
    std::int64_t ttl_ms = -1;  // -1: the key's policy decides
    if (!opt.ttl_text.empty()) {
      auto ttl = warp::parse_duration(opt.ttl_text);
      if (!ttl) {
        std::cerr << "warpctl: --ttl: " << ttl.err().message() << std::endl;
        return exit_usage;
      }
      ttl_ms = ttl->count();
    }
    // The value: the argument, stdin (`-`) or a file (--file); exactly one of them.
    std::string value = opt.value;
    if (!opt.file.empty()) {
      if (opt.value_given) {
        std::cerr << "warpctl: set: give VALUE or --file, not both" << std::endl;
        return exit_usage;
      }
      std::ifstream in{opt.file, std::ios::binary};
      if (!in) return report(opt, opt.file, {errc::invalid_argument, "cannot open the file"});
      auto v = read_bounded(in, opt.file);
      if (!v) return report(opt, opt.file, v.err());
      value = std::move(*v);
    } else if (opt.value == "-") {
      auto v = read_bounded(std::cin, "stdin");
      if (!v) return report(opt, "stdin", v.err());
      value = std::move(*v);
    }
    if (!opt.lease.empty()) {
      // Attached to a lease: deleted everywhere when the lease ends (docs/coordination.md).
      if (!opt.ttl_text.empty()) {
        std::cerr << "warpctl: set: --lease and --ttl exclude each other" << std::endl;
        return exit_usage;
      }
      auto r = coord(sys, node, opt, "set", {opt.key, value, opt.lease});
      if (!r) return report(opt, opt.key, r.err());
      std::cout << (opt.json ? dump({{"ok", true}}) : std::string{"OK"}) << std::endl;
      return exit_ok;
    }
    auto err = request(
        sys, node, opt, [](caf::ok_atom) {}, caf::put_atom::value, opt.key, value, ttl_ms);
    if (err) return report(opt, opt.key, err);
    std::cout << (opt.json ? dump({{"ok", true}}) : std::string{"OK"}) << std::endl;
    return exit_ok;
  }
  if (app.got_subcommand("del")) {
    auto err = request(
        sys, node, opt, [](caf::ok_atom) {}, caf::delete_atom::value, opt.key);
    if (err) return report(opt, opt.key, err);
    std::cout << (opt.json ? dump({{"ok", true}}) : std::string{"OK"}) << std::endl;
    return exit_ok;
  }
  if (app.got_subcommand("validate")) {
    std::string text;
    auto err = request(
        sys, node, opt, [&](std::string& s) { text = std::move(s); }, validate_atom::value,
        opt.pattern);
    if (err) return report(opt, "validate", err);
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc["checked"].is_number() ||
        !doc["inconsistent"].is_number() || !doc["healed"].is_number())
      return report(opt, "validate", {errc::codec_error, "node sent malformed JSON"});
    if (opt.json) {
      std::cout << dump(doc) << std::endl;
    } else {
      std::cout << "checked: " << doc["checked"] << "\ninconsistent: " << doc["inconsistent"]
                << "\nhealed: " << doc["healed"] << '\n';
      if (doc["found"].is_array())
        for (auto& f : doc["found"])
          std::cout << "  " << (f["key"].is_string() ? f["key"].get<std::string>() : dump(f["key"]))
                    << ": " << (f["finding"].is_string() ? f["finding"].get<std::string>() : "")
                    << " (l1 " << dump(f["l1_version"]) << ", storage "
                    << dump(f["storage_version"]) << ")\n";
      std::cout.flush();
    }
    return exit_ok;
  }
  if (app.got_subcommand("stats")) {
    std::string text;
    auto err = request(
        sys, node, opt, [&](std::string& s) { text = std::move(s); }, stats_atom::value);
    if (err) return report(opt, "stats", err);
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded())
      return report(opt, "stats", {errc::codec_error, "node sent malformed JSON"});
    if (opt.json) {
      std::cout << dump(doc) << std::endl;
    } else {
      // Flattened "section.field: value" lines: greppable and readable.
      for (auto& [section, body] : doc.items()) {
        if (body.is_object()) {
          for (auto& [field, v] : body.items())
            std::cout << section << '.' << field << ": "
                      << (v.is_string() ? v.get<std::string>() : dump(v)) << '\n';
        } else {
          std::cout << section << ": " << dump(body) << '\n';
        }
      }
      std::cout.flush();
    }
    return exit_ok;
  }
  if (app.got_subcommand("ttl")) {
    std::int64_t expires = 0;
    auto err = request(
        sys, node, opt, [&](std::int64_t at) { expires = at; }, ttl_atom::value, opt.key);
    if (err) return report(opt, opt.key, err);
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    std::int64_t left = expires == 0 ? -1 : std::max<std::int64_t>(0, expires - now);
    if (opt.json)
      std::cout << dump({{"ok", true},
                         {"key", opt.key},
                         {"ttl_ms", left < 0 ? json(nullptr) : json(left)},
                         {"expires_at_ms", expires == 0 ? json(nullptr) : json(expires)}})
                << std::endl;
    else
      std::cout << (left < 0 ? std::string{"no expiry"} : fmt_ms(left)) << std::endl;
    return exit_ok;
  }
  if (app.got_subcommand("exists")) {
    std::string found;
    auto err = request(
        sys, node, opt, [&](std::string& f) { found = std::move(f); }, exists_atom::value,
        opt.keys);
    if (err) return report(opt, "exists", err);
    if (found.size() != opt.keys.size())
      return report(opt, "exists", {errc::codec_error, "node answered for other keys"});
    auto count = static_cast<std::size_t>(std::count(found.begin(), found.end(), '1'));
    if (opt.json) {
      json keys = json::object();
      for (std::size_t i = 0; i < found.size(); ++i) keys[opt.keys[i]] = found[i] == '1';
      std::cout << dump({{"ok", true}, {"count", count}, {"keys", keys}}) << std::endl;
    } else if (opt.keys.size() == 1) {
      std::cout << (count ? "yes" : "no") << std::endl;
    } else {
      std::vector<std::vector<std::string>> rows{{"KEY", "EXISTS"}};
      for (std::size_t i = 0; i < found.size(); ++i)
        rows.push_back({opt.keys[i], found[i] == '1' ? "yes" : "no"});
      print_table(rows);
      std::cout << "(" << count << " of " << found.size() << " exist)" << std::endl;
    }
    // Like `get`: exit 1 when a key asked for has no value, so scripts can test it.
    return count == opt.keys.size() ? exit_ok : exit_not_found;
  }
  if (app.got_subcommand("incr")) {
    std::int64_t value = 0;
    auto err = request(
        sys, node, opt, [&](std::int64_t v) { value = v; }, incr_atom::value, opt.key, opt.by);
    if (err) return report(opt, opt.key, err);
    if (opt.json)
      std::cout << dump({{"ok", true}, {"key", opt.key}, {"value", value}}) << std::endl;
    else
      std::cout << value << std::endl;
    return exit_ok;
  }
  if (app.got_subcommand("mget")) {
    std::vector<std::string> values;
    std::string found;
    auto err = request(
        sys, node, opt,
        [&](std::vector<std::string>& v, std::string& f) {
          values = std::move(v);
          found = std::move(f);
        },
        mget_atom::value, opt.keys);
    if (err) return report(opt, "mget", err);
    if (values.size() != opt.keys.size() || found.size() != opt.keys.size())
      return report(opt, "mget", {errc::codec_error, "node answered for other keys"});
    if (opt.json) {
      json out = json::array();
      for (std::size_t i = 0; i < values.size(); ++i)
        out.push_back(
            {{"key", opt.keys[i]}, {"value", found[i] == '1' ? json(values[i]) : json(nullptr)}});
      std::cout << dump({{"ok", true}, {"values", out}}) << std::endl;
    } else {
      std::vector<std::vector<std::string>> rows{{"KEY", "VALUE"}};
      for (std::size_t i = 0; i < values.size(); ++i)
        rows.push_back({opt.keys[i], found[i] == '1' ? values[i] : "(nil)"});
      print_table(rows);
    }
    return exit_ok;
  }
  if (app.got_subcommand("hotkeys")) {
    std::string text;
    auto err = request(
        sys, node, opt, [&](std::string& s) { text = std::move(s); },
        control_hotkeys_atom::value, opt.limit);
    if (err) return report(opt, "hotkeys", err);
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc["keys"].is_array())
      return report(opt, "hotkeys", {errc::codec_error, "node sent malformed JSON"});
    if (opt.json) {
      std::cout << dump(doc) << std::endl;
      return exit_ok;
    }
    if (!doc.value("tracking", true)) {
      std::cout << "hot-key tracking is off on this node (--hotkeys off)" << std::endl;
      return exit_ok;
    }
    std::size_t width = 3;
    for (auto& k : doc["keys"]) width = std::max(width, k.value("key", std::string{}).size());
    std::printf("%-*s  %s\n", static_cast<int>(width), "KEY", "READS (estimated)");
    for (auto& k : doc["keys"])
      std::printf("%-*s  %llu\n", static_cast<int>(width), k.value("key", std::string{}).c_str(),
                  static_cast<unsigned long long>(k.value("reads", std::uint64_t{0})));
    std::printf("(one read in %u sampled; counts halve every %lld ms)\n",
                doc.value("sample_every", 0u), doc.value("half_life_ms", 0LL));
    std::fflush(stdout);
    return exit_ok;
  }
  if (app.got_subcommand("scan")) return run_scan(sys, node, opt);
  if (app.got_subcommand("health")) {
    std::string text;
    auto err = request(
        sys, node, opt, [&](std::string& s) { text = std::move(s); }, health_atom::value);
    if (err) return report(opt, "health", err);
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return report(opt, "health", {errc::codec_error, "node sent malformed JSON"});
    bool ready = doc.value("ready", false);
    if (opt.json) {
      std::cout << dump(doc) << std::endl;
    } else {
      print_table({{"NAME", "ID", "ALIVE", "READY", "STORAGE", "MEMBERS UP"},
                   {doc.value("name", ""), doc.value("id", ""), "yes", ready ? "yes" : "no",
                    doc.value("storage", ""),
                    std::to_string(doc.value("members_up", 0)) + "/" +
                        std::to_string(doc.value("members", 0))}});
    }
    return ready ? exit_ok : exit_error;
  }
  if (app.got_subcommand("strong")) {
    std::string text;
    auto err = request(
        sys, node, opt, [&](std::string& s) { text = std::move(s); },
        warp::actors::control_strong_atom::value);
    if (err) return report(opt, "strong status", err);
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return report(opt, "strong status", {errc::codec_error, "node sent malformed JSON"});
    // The node judges readiness (strong_status::ready, as /readyz does).
    const bool ready = doc.value("ready", false);
    if (opt.json) {
      std::cout << dump(doc) << std::endl;
    } else if (doc.value("engine", "") == "abd") {
      print_table({{"ENGINE", "RANGES", "READY"},
                   {"abd", std::to_string(doc.value("replicated_ranges", 0u)),
                    std::to_string(doc.value("ready_ranges", 0u))}});
    } else {
      std::vector<std::vector<std::string>> rows{
          {"GROUP", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "ELECTIONS", "LOG"}};
      if (auto gs = doc.find("groups"); gs != doc.end() && gs->is_array())
        for (const auto& g : *gs) {
          auto leader = g.value("leader_address", "");
          rows.push_back({std::to_string(g.value("group", 0u)), g.value("role", ""),
                          std::to_string(g.value("term", 0ull)), leader.empty() ? "-" : leader,
                          std::to_string(g.value("commit", 0ull)),
                          std::to_string(g.value("applied", 0ull)),
                          std::to_string(g.value("last_index", 0ull)),
                          std::to_string(g.value("elections_won", 0ull)) + "/" +
                              std::to_string(g.value("elections_started", 0ull)),
                          g.value("log_failed", false) ? "FAILED" : "ok"});
        }
      print_table(rows);
      std::printf("(raft: %zu groups, this node leads %zu)\n", rows.size() - 1,
                  doc.value("leading", std::size_t{0}));
      std::fflush(stdout);
    }
    return ready ? exit_ok : exit_error;
  }
  if (auto* pats = app.get_subcommand("patterns"); pats->parsed()) {
    std::string text;
    auto on_json = [&](std::string& s) { text = std::move(s); };
    warp::error err;
    if (pats->got_subcommand("set")) {
      // `patterns set GLOB SPEC`: SPEC is MODE[:TTL]+options (or the whole GLOB=... spec).
      auto spec = opt.spec.starts_with(opt.glob + "=") ? opt.spec : opt.glob + "=" + opt.spec;
      err = request(sys, node, opt, on_json, patterns_atom::value, caf::put_atom::value, spec);
    } else if (pats->got_subcommand("rm")) {
      err =
          request(sys, node, opt, on_json, patterns_atom::value, caf::delete_atom::value, opt.glob);
    } else {
      err = request(sys, node, opt, on_json, patterns_atom::value);
    }
    if (err) return report(opt, "patterns", err);
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc["patterns"].is_array())
      return report(opt, "patterns", {errc::codec_error, "node sent malformed JSON"});
    if (opt.json) {
      std::cout << dump(doc) << std::endl;
      return exit_ok;
    }
    std::vector<std::vector<std::string>> rows{{"GLOB", "MODE", "TTL", "SPEC"}};
    for (auto& p : doc["patterns"]) {
      auto ttl = p.value("ttl_ms", std::int64_t{0});
      rows.push_back(
          {p.value("glob", ""), p.value("mode", ""), ttl ? fmt_ms(ttl) : "-", p.value("spec", "")});
    }
    print_table(rows);
    auto& v = doc["version"];
    std::cout << "(table version " << v.value("counter", std::uint64_t{0}) << "."
              << v.value("node", std::string{}) << ", " << doc["patterns"].size() << " patterns)"
              << std::endl;
    return exit_ok;
  }
  // ping
  auto start = std::chrono::steady_clock::now();
  std::string name;
  std::uint32_t id = 0;
  std::uint16_t version = 0;
  auto err = request(
      sys, node, opt,
      [&](caf::pong_atom, std::string& n, std::uint32_t i, std::uint16_t v) {
        name = std::move(n);
        id = i;
        version = v;
      },
      caf::ping_atom::value);
  if (err) return report(opt, "ping", err);
  auto rtt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  if (opt.json) {
    std::cout << dump({{"ok", true},
                       {"name", name},
                       {"node_id", id},
                       {"protocol_version", version},
                       {"rtt_ms", rtt.count()}})
              << std::endl;
  } else {
    char idbuf[16];
    std::snprintf(idbuf, sizeof idbuf, "%08x", id);
    std::cout << "pong from " << name << " (node " << idbuf << ", protocol v" << version << ") in "
              << rtt.count() << " ms" << std::endl;
  }
  if (version != control_protocol_version)
    std::cerr << "warpctl: note: node speaks control protocol v" << version << ", warpctl v"
              << control_protocol_version << std::endl;
  return exit_ok;
}

// Seconds (or ms) since a member was last heard from, for the table; "-" = never.
std::string heard_ago(std::int64_t last_heard_ms, std::int64_t now_ms, bool self) {
  if (self) return "-";
  if (last_heard_ms <= 0) return "never";
  auto ago = std::max<std::int64_t>(0, now_ms - last_heard_ms);
  char buf[32];
  if (ago < 10'000)
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ago));
  else
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ago / 1000));
  return buf;
}

// `members`: the node's cluster view. It goes to the node's cluster actor (registry name
// `warpclus`), not the control actor, so it has a connection of its own.
int run_members(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                const options& opt) {
  // fetch_members_json's connect and registry lookup have no deadline of their own (CAF
  // waits minutes for a lookup answer): run it aside and give up after --timeout.
  auto fetch = std::async(std::launch::async, [&] {
    return warp::actors::fetch_members_json(sys, host, port, opt.timeout);
  });
  if (fetch.wait_for(opt.timeout) != std::future_status::ready) {
    report(opt, "members", {errc::timeout, "no answer within " + opt.timeout_text});
    // As for connect in run(): the attempt holds a middleman thread; leave at once.
    std::cout.flush();
    std::_Exit(exit_unreachable);
  }
  auto text = fetch.get();
  if (!text) return report(opt, "members", text.err());
  auto doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc["members"].is_array())
    return report(opt, "members", {errc::codec_error, "node sent malformed JSON"});
  if (opt.json) {
    std::cout << dump(doc) << std::endl;
    return exit_ok;
  }
  struct row {
    std::string name, id, address, state, ranges, heard;
  };
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::vector<row> rows{{"NAME", "ID", "ADDRESS", "STATE", "RANGES", "LAST HEARD"}};
  for (auto& m : doc["members"]) {
    bool self = m.value("self", false);
    char idbuf[16];
    std::snprintf(idbuf, sizeof idbuf, "%08x", m.value("id", std::uint32_t{0}));
    rows.push_back({m.value("name", std::string{}) + (self ? " *" : ""), idbuf,
                    m.value("address", std::string{}), m.value("state", std::string{"?"}),
                    std::to_string(m.value("owned_ranges", std::size_t{0})),
                    heard_ago(m.value("last_heard_ms", std::int64_t{0}), now, self)});
  }
  std::size_t w[5] = {};
  for (auto& r : rows) {
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.id.size());
    w[2] = std::max(w[2], r.address.size());
    w[3] = std::max(w[3], r.state.size());
    w[4] = std::max(w[4], r.ranges.size());
  }
  auto pad = [](const std::string& s, std::size_t width) {
    return s + std::string(width - s.size() + 2, ' ');
  };
  for (auto& r : rows)
    std::cout << pad(r.name, w[0]) << pad(r.id, w[1]) << pad(r.address, w[2]) << pad(r.state, w[3])
              << pad(r.ranges, w[4]) << r.heard << '\n';
  std::cout << "(* = the node asked; " << doc.value("ranges", std::size_t{0}) << " key ranges)"
            << std::endl;
  return exit_ok;
}

// `regions`: the node's federation links (its federation actor, registry name `warpfed`).
int run_regions(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                const options& opt) {
  auto fetch = std::async(std::launch::async, [&] {
    return warp::federation::fetch_federation_json(sys, host, port, opt.timeout);
  });
  if (fetch.wait_for(opt.timeout) != std::future_status::ready) {
    report(opt, "regions", {errc::timeout, "no answer within " + opt.timeout_text});
    std::cout.flush();
    std::_Exit(exit_unreachable);
  }
  auto text = fetch.get();
  if (!text) return report(opt, "regions", text.err());
  auto doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc["links"].is_array())
    return report(opt, "regions", {errc::codec_error, "node sent malformed JSON"});
  if (opt.json) {
    std::cout << dump(doc) << std::endl;
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows{
      {"REGION", "STATE", "GATEWAY", "QUEUED", "LAG", "SHIPPED", "DROPPED", "REPAIRED"}};
  for (auto& l : doc["links"]) {
    char lag[32];
    std::snprintf(lag, sizeof lag, "%.3fs", l.value("lag_seconds", 0.0));
    rows.push_back({l.value("region", std::string{}), l.value("state", std::string{"?"}),
                    l.value("gateway", std::string{}).empty() ? "-" : l.value("gateway", std::string{}),
                    std::to_string(l.value("queue_depth", std::uint64_t{0})), lag,
                    std::to_string(l.value("shipped", std::uint64_t{0})),
                    std::to_string(l.value("dropped", std::uint64_t{0})),
                    std::to_string(l.value("repaired", std::uint64_t{0}))});
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  for (auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i)
      std::cout << r[i] << std::string(i + 1 < r.size() ? w[i] - r[i].size() + 2 : 0, ' ');
    std::cout << '\n';
  }
  std::cout << "(region " << doc.value("region", std::string{}) << "; LWW conflicts "
            << doc.value("conflicts_lww", std::uint64_t{0}) << ")" << std::endl;
  return exit_ok;
}

// `health --cluster`: the members of the node's view, then each member's own health (its
// control actor: alive, storage reachable) asked directly, in parallel, each within
// --timeout. A member that does not answer is a row saying so, not a failure of the table.
int run_health_cluster(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                       const options& opt) {
  auto fetch = std::async(std::launch::async, [&] {
    return warp::actors::fetch_members_json(sys, host, port, opt.timeout);
  });
  if (fetch.wait_for(opt.timeout) != std::future_status::ready) {
    report(opt, "health", {errc::timeout, "no answer within " + opt.timeout_text});
    std::cout.flush();
    std::_Exit(exit_unreachable);
  }
  auto text = fetch.get();
  if (!text) return report(opt, "health", text.err());
  auto view = json::parse(*text, nullptr, false);
  if (view.is_discarded() || !view.is_object() || !view["members"].is_array())
    return report(opt, "health", {errc::codec_error, "node sent malformed JSON"});
  struct probe {
    std::string name, address, state;
    std::promise<warp::result<std::string>> answer;
    std::future<warp::result<std::string>> done;
  };
  std::vector<std::shared_ptr<probe>> probes;
  for (auto& m : view["members"]) {
    auto p = std::make_shared<probe>();
    p->name = m.value("name", "");
    p->address = m.value("address", "");
    p->state = m.value("state", "");
    p->done = p->answer.get_future();
    probes.push_back(p);
    // Detached: a black-holed member must not hold the table (nor exit) hostage.
    std::thread([&sys, p, opt] {
      warp::result<std::string> out{errc::unreachable, "no address"};
      if (auto ep = warp::parse_endpoint(p->address); ep && ep->second != 0) {
        auto published = warp::bus::connect_to_node(sys, ep->first, ep->second, opt.timeout);
        if (!published) {
          out = published.err();
        } else if (!*published) {
          out = warp::error{errc::unreachable, "published no control actor"};
        } else {
          std::string text;
          auto err = request(
              sys, caf::actor_cast<caf::actor>(*published), opt,
              [&](std::string& s) { text = std::move(s); }, warp::actors::health_atom::value);
          if (err)
            out = err;
          else
            out = std::move(text);
        }
      }
      p->answer.set_value(std::move(out));
    }).detach();
  }
  auto deadline = std::chrono::steady_clock::now() + opt.timeout + std::chrono::milliseconds{500};
  bool all_ready = true, stuck = false;
  json rows_json = json::array();
  std::vector<std::vector<std::string>> rows{
      {"NAME", "ADDRESS", "STATE", "ALIVE", "READY", "STORAGE"}};
  for (auto& p : probes) {
    json row{{"name", p->name}, {"address", p->address}, {"state", p->state}};
    std::string alive = "no", ready = "no", storage;
    if (p->done.wait_until(deadline) != std::future_status::ready) {
      stuck = true;
      storage = "no answer within " + opt.timeout_text;
      row["alive"] = false;
      row["ready"] = false;
      row["error"] = storage;
    } else if (auto r = p->done.get(); !r) {
      storage = r.err().message().empty() ? r.err().to_string() : r.err().message();
      row["alive"] = false;
      row["ready"] = false;
      row["error"] = storage;
    } else {
      auto doc = json::parse(*r, nullptr, false);
      bool ok = !doc.is_discarded() && doc.is_object();
      bool rd = ok && doc.value("ready", false);
      alive = "yes";
      ready = rd ? "yes" : "no";
      storage = ok ? doc.value("storage", "") : "malformed answer";
      row["alive"] = true;
      row["ready"] = rd;
      row["storage"] = storage;
      if (ok) row["id"] = doc.value("id", "");
    }
    if (ready != "yes") all_ready = false;
    rows.push_back({p->name, p->address, p->state, alive, ready, storage});
    rows_json.push_back(std::move(row));
  }
  if (opt.json)
    std::cout << dump({{"ok", all_ready}, {"members", rows_json}}) << std::endl;
  else
    print_table(rows);
  int code = all_ready ? exit_ok : exit_error;
  if (stuck) {
    // A probe still holds a middleman thread: the system cannot shut down under it.
    std::cout.flush();
    std::_Exit(code);
  }
  return code;
}

int run(int argc, char** argv) {
  options opt;
  CLI::App app{"warpctl: talk to a running warpd", "warpctl"};
  app.require_subcommand(1);
  // Global flags may follow the subcommand too: `warpctl get k --json`.
  app.fallthrough();
  app.set_version_flag("--version", warp::version_line("warpctl"), "Print the version and commit, then exit");
  app.add_option("--node", opt.node, "warpd's --listen endpoint HOST:PORT")->capture_default_str();
  app.add_flag("--json", opt.json, "Machine-readable output (one JSON object): --output json");
  app.add_option("--output,-o", opt.output, "Output format: table (for people) or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", opt.timeout_text, "How long to wait for the node (250ms, 5s, ...)")
      ->capture_default_str();
  app.add_option("--tls-cert", opt.transport.tls_cert,
                 "PEM client certificate for a node that requires mutual TLS")
      ->type_name("FILE");
  app.add_option("--tls-key", opt.transport.tls_key, "PEM private key of --tls-cert")
      ->type_name("FILE");
  app.add_option("--tls-ca", opt.transport.tls_ca, "PEM CA that signed the node's certificate")
      ->type_name("FILE");
  auto* get = app.add_subcommand("get", "Print a key's value (exit 1 when absent)");
  get->add_option("KEY", opt.key, "Key")->required();
  get->add_option("--rev", opt.rev,
                  "A strong key as of this revision of its group (within the watch window)");
  auto* history = app.add_subcommand("history", "A strong key's retained versions, newest first");
  history->add_option("KEY", opt.key, "Key")->required();
  auto* watch = app.add_subcommand(
      "watch", "Stream changes of strong keys under PREFIX (a glob with * ? [), one per line");
  watch->add_option("PREFIX", opt.watch.prefix, "Key prefix or glob")->required();
  watch->add_option("--rev", opt.watch.from,
                    "Start after this revision (N in every group) or cursor (g:rev,...)");
  watch->add_flag("--prev", opt.watch.prev, "Also print the value each change replaced");
  watch->add_flag("--progress", opt.watch.progress, "Also print progress (idle) events");
  watch->add_option("--count", opt.watch.count, "Exit after this many changes");
  watch->add_option("--admin", opt.watch.admin, "warpd's admin HTTP endpoint (--http) HOST:PORT")
      ->capture_default_str();
  watch->add_option("--admin-token-file", opt.admin_token_file,
                    "File with the admin bearer token (warpd --admin-token-file)");
  auto* set = app.add_subcommand("set", "Store a value (VALUE, `-` for stdin, or --file)");
  set->add_option("KEY", opt.key, "Key")->required();
  auto* set_value = set->add_option("VALUE", opt.value, "Value; `-` reads it from stdin");
  set->add_option("--file", opt.file, "Read the value from this file")->type_name("FILE");
  set->add_option("--ttl", opt.ttl_text,
                  "Expiry (30s, 10m, 2h, ms; 0 = none); default: the key pattern's TTL");
  set->add_option("--lease", opt.lease,
                  "Attach the key to this lease: deleted on every node when the lease ends");
  auto* lease = app.add_subcommand("lease", "Leases: grant, keepalive, revoke, ttl, list");
  lease->require_subcommand(1);
  lease->add_subcommand("grant", "Grant a lease; print its id")
      ->add_option("TTL", opt.lease_ttl, "Seconds, or a duration (500ms, 1m); at least 1s")
      ->required();
  lease->add_subcommand("keepalive", "Reset a lease's countdown to its full TTL")
      ->add_option("ID", opt.lease, "Lease id")
      ->required();
  lease->add_subcommand("revoke", "End a lease now: its locks are released, its keys deleted")
      ->add_option("ID", opt.lease, "Lease id")
      ->required();
  lease->add_subcommand("ttl", "Print a lease's TTL, remaining time and attached keys")
      ->add_option("ID", opt.lease, "Lease id")
      ->required();
  lease->add_subcommand("list", "Print every lease id");
  auto* lock = app.add_subcommand(
      "lock", "Run COMMAND while holding lock NAME (fencing token in $WARP_LOCK_TOKEN)");
  lock->add_option("NAME", opt.lock_name, "Lock name")->required();
  lock->add_option("COMMAND", opt.command, "The command and its arguments, after --")->required();
  lock->add_option("--ttl", opt.lease_ttl, "Session lease TTL (default 10s)");
  lock->add_option("--wait", opt.lock_wait, "How long to wait for the lock")->capture_default_str();
  auto* del = app.add_subcommand("del", "Remove a key");
  del->add_option("KEY", opt.key, "Key")->required();
  auto* ttl = app.add_subcommand("ttl", "Print how long a key lives (exit 1 when absent)");
  ttl->add_option("KEY", opt.key, "Key")->required();
  auto* exists = app.add_subcommand("exists", "Tell which keys have a value (exit 1 if any not)");
  exists->add_option("KEY", opt.keys, "Keys (at most 1000)")->required();
  auto* incr = app.add_subcommand("incr", "Add BY (default 1) to an integer value; print it");
  incr->add_option("KEY", opt.key, "Key")->required();
  incr->add_option("BY", opt.by, "Increment (negative to decrement)");
  auto* mget = app.add_subcommand("mget", "Print the values of several keys");
  mget->add_option("KEY", opt.keys, "Keys (at most 1000)")->required();
  auto* scan = app.add_subcommand("scan", "List keys matching a glob, page by page");
  scan->add_option("PATTERN", opt.scan_pattern, "Glob (Redis syntax); default: every key");
  scan->add_option("--count", opt.scan_count, "Keys per page (request), 1..1000")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
      ->capture_default_str();
  scan->add_option("--limit", opt.scan_limit, "Stop after this many keys (0 = all)");
  scan->add_option("--cursor", opt.scan_cursor, "Continue after this key (from a --limit run)");
  auto* health = app.add_subcommand(
      "health", "Is the node alive and its storage reachable (exit 4 when not ready)");
  health->add_flag("--cluster", opt.cluster,
                   "Every member of the node's cluster view, each asked directly, in one table");
  auto* patterns = app.add_subcommand("patterns", "The key-pattern table, changed at run time");
  patterns->require_subcommand(1);
  patterns->add_subcommand("list", "Print the table (--output json: as /admin/patterns)");
  auto* pset = patterns->add_subcommand(
      "set", "Add or replace a pattern on every node: GLOB MODE[:TTL][+option=value...]");
  pset->add_option("GLOB", opt.glob, "Key glob, e.g. user:*")->required();
  pset->add_option("SPEC", opt.spec,
                   "MODE[:TTL] and options, e.g. eventual_distributed:10m+rate=200")
      ->required();
  auto* prm = patterns->add_subcommand("rm", "Remove a pattern on every node");
  prm->add_option("GLOB", opt.glob, "Key glob as it was set")->required();
  auto* help = app.add_subcommand("help", "Print the help of a command: help [COMMAND]");
  help->add_option("COMMAND", opt.help_topic, "Command");
  app.add_subcommand("stats", "Print the node's stats");
  auto* validate = app.add_subcommand(
      "validate",
      "Compare the node's cached keys (matching PATTERN, default all) with storage now; print "
      "keys checked, inconsistencies found and healed");
  validate->add_option("PATTERN", opt.pattern, "Glob of the keys to check");
  app.add_subcommand("ping", "Check the node answers; print its name, id and round trip");
  auto* members = app.add_subcommand(
      "members",
      "Print the node's cluster view: members, their state and key ranges; list|add|remove: "
      "the strong Raft groups' members (docs/strong.md, Membership)");
  members->add_subcommand("list", "Strong Raft members: id, address, link, groups voted in");
  members
      ->add_subcommand("add",
                       "Make the node at HOST:PORT (started with --strong-join) a "
                       "voter of every strong Raft group, one group at a time")
      ->add_option("MEMBER", opt.member, "HOST:PORT or a raft id")
      ->required();
  members
      ->add_subcommand("remove",
                       "Remove a member (HOST:PORT: every id seen there, or a "
                       "raft id) from every strong Raft group")
      ->add_option("MEMBER", opt.member, "HOST:PORT or a raft id")
      ->required();
  auto* strong = app.add_subcommand(
      "strong", "The strong mode on the node: status prints its Raft groups (or ABD ranges)");
  strong->require_subcommand(1);
  strong->add_subcommand("status",
                         "Each Raft group's role, term, leader and indexes (exit 4 when a group "
                         "has no leader or a failed log)");
  app.add_subcommand("regions",
                     "Print the node's federation links: region, state, gateway, queue, lag");
  auto* hot = app.add_subcommand("hotkeys", "Print the node's hottest keys (estimated reads)");
  hot->add_option("--limit", opt.limit, "How many keys (0 = every key tracked)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100000u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return exit_ok;
  } catch (const CLI::CallForVersion& v) {
    std::cout << v.what() << std::endl;
    return exit_ok;
  } catch (const CLI::ParseError& e) {
    std::cerr << "warpctl: " << e.what() << " (see warpctl --help)" << std::endl;
    return exit_usage;
  }
  if (opt.output == "json") opt.json = true;
  if (help->parsed()) {
    if (opt.help_topic.empty()) {
      // Not app.help(): once a subcommand was parsed it prints that subcommand's help.
      std::cout << app.get_formatter()->make_help(&app, "", CLI::AppFormatMode::Normal);
      return exit_ok;
    }
    CLI::App* topic = nullptr;
    try {
      topic = app.get_subcommand(opt.help_topic);
    } catch (const CLI::OptionNotFound&) {
    }
    if (!topic || topic == help) {
      std::cerr << "warpctl: help: no command '" << opt.help_topic << "' (see warpctl --help)"
                << std::endl;
      return exit_usage;
    }
    std::cout << topic->help("warpctl");
    return exit_ok;
  }
  // An empty VALUE ("") is a value: only a missing one is an error.
  opt.value_given = set_value->count() > 0;
  if (set->parsed() && !opt.value_given && opt.file.empty()) {
    std::cerr << "warpctl: set: give VALUE, `-` (stdin) or --file FILE" << std::endl;
    return exit_usage;
  }
  if (watch->parsed()) {
    opt.watch.json = opt.json || opt.output == "json";
    if (!opt.admin_token_file.empty()) {
      std::ifstream in{opt.admin_token_file};
      std::getline(in, opt.watch.token);
      if (!in && opt.watch.token.empty()) {
        std::cerr << "warpctl: cannot read " << opt.admin_token_file << std::endl;
        return exit_usage;
      }
    }
    return warpctl::run_watch(opt.watch);
  }
  auto timeout = warp::parse_duration(opt.timeout_text);
  if (!timeout || timeout->count() <= 0) {
    std::cerr << "warpctl: --timeout: expected a positive duration like 5s" << std::endl;
    return exit_usage;
  }
  opt.timeout = *timeout;
  auto endpoint = warp::parse_endpoint(opt.node);
  if (!endpoint || endpoint->second == 0) {
    std::cerr << "warpctl: --node: '" << opt.node << "' is not HOST:PORT" << std::endl;
    return exit_usage;
  }

  // A small system: warpctl makes one request and exits, so start-up cost matters.
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  warp::actors::register_control_protocol(cfg);
  cfg.set("scheduler.max-threads", std::int64_t{1});
  cfg.set("middleman.workers", std::int64_t{0});
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  // Every connection goes through Warp's guarded transport: TLS when certificates are
  // given, and the same bounds on what the node may send back.
  if (auto installed = warp::bus::install_node_transport(sys, opt.transport); !installed) {
    std::cerr << "warpctl: " << installed.err().message() << std::endl;
    return exit_usage;
  }
  struct uninstall {
    caf::actor_system& sys;
    ~uninstall() { warp::bus::uninstall_node_transport(sys); }
  } on_exit{sys};

  if (app.got_subcommand("members") && app.get_subcommand("members")->get_subcommands().empty())
    return run_members(sys, endpoint->first, endpoint->second, opt);
  if (app.got_subcommand("regions"))
    return run_regions(sys, endpoint->first, endpoint->second, opt);
  if (opt.cluster && health->parsed())
    return run_health_cluster(sys, endpoint->first, endpoint->second, opt);

  // remote_actor() has no timeout of its own (a black-holed host blocks for the kernel's
  // connect timeout): run it aside and give up after --timeout.
  auto connect = std::async(std::launch::async, [&] {
    return warp::bus::connect_to_node(sys, endpoint->first, endpoint->second, opt.timeout);
  });
  if (connect.wait_for(opt.timeout) != std::future_status::ready) {
    report(opt, "connect", {errc::timeout, "no connection within " + opt.timeout_text});
    // The connect attempt still owns a middleman thread; the system cannot shut down
    // cleanly under it, and there is nothing to flush: leave at once.
    std::cout.flush();
    std::_Exit(exit_unreachable);
  }
  auto published = connect.get();
  if (!published) return report(opt, "connect", published.err());
  if (!*published)
    return report(opt, "connect", {errc::unreachable, "the node at " + opt.node +
                                                          " published no control actor"});
  return run_command(app, sys, caf::actor_cast<caf::actor>(*published), opt);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "warpctl: " << e.what() << std::endl;
    return exit_error;
  }
}
