// warpctl: talks to a running warpd over CAF's network layer (the control actor's
// protocol, see actors/control_actor.hpp).
//
//   warpctl [--node HOST:PORT] [--json] [--timeout DUR] get KEY | set KEY VALUE [--ttl DUR]
//           | del KEY | stats | ping | members | hotkeys [--limit N]
//
// Exit codes: 0 ok, 1 not found (get), 2 usage, 3 node unreachable (or no answer in time),
// 4 any other error. Errors go to stderr; with --json an error object also goes to stdout.
#include <unistd.h>

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
#include "bus/node_transport.hpp"
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
  bool json = false;
  std::string timeout_text = "5s";
  std::chrono::milliseconds timeout{5000};
  std::string key;
  std::string value;
  std::string ttl_text;
  warp::transport_options transport;  ///< --tls-cert/--tls-key/--tls-ca
  std::uint32_t limit = 20;           ///< hotkeys --limit
};

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

int run_command(CLI::App& app, caf::actor_system& sys, const caf::actor& node, const options& opt) {
  using namespace warp::actors;
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
    auto err = request(
        sys, node, opt, [](caf::ok_atom) {}, caf::put_atom::value, opt.key, opt.value, ttl_ms);
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

int run(int argc, char** argv) {
  options opt;
  CLI::App app{"warpctl: talk to a running warpd", "warpctl"};
  app.require_subcommand(1);
  // Global flags may follow the subcommand too: `warpctl get k --json`.
  app.fallthrough();
  app.add_option("--node", opt.node, "warpd's --listen endpoint HOST:PORT")->capture_default_str();
  app.add_flag("--json", opt.json, "Machine-readable output (one JSON object)");
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
  auto* set = app.add_subcommand("set", "Store a value");
  set->add_option("KEY", opt.key, "Key")->required();
  set->add_option("VALUE", opt.value, "Value")->required();
  set->add_option("--ttl", opt.ttl_text,
                  "Expiry (30s, 10m, 2h, ms; 0 = none); default: the key pattern's TTL");
  auto* del = app.add_subcommand("del", "Remove a key");
  del->add_option("KEY", opt.key, "Key")->required();
  app.add_subcommand("stats", "Print the node's stats");
  app.add_subcommand("ping", "Check the node answers; print its name, id and round trip");
  app.add_subcommand("members",
                     "Print the node's cluster view: members, their state and key ranges");
  auto* hot = app.add_subcommand("hotkeys", "Print the node's hottest keys (estimated reads)");
  hot->add_option("--limit", opt.limit, "How many keys (0 = every key tracked)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100000u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return exit_ok;
  } catch (const CLI::ParseError& e) {
    std::cerr << "warpctl: " << e.what() << " (see warpctl --help)" << std::endl;
    return exit_usage;
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

  if (app.got_subcommand("members"))
    return run_members(sys, endpoint->first, endpoint->second, opt);

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
