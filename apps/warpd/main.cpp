// warpd: one Warp node as a process. Parses flags and the CAF config file, starts the node
// inside warpd's own actor system, the admin HTTP endpoint and (optionally) the RESP
// sidecar, prints one ready line and runs until SIGTERM/SIGINT.
//
// Exit codes: 0 clean shutdown (also after --help), 1 startup failure (storage cannot be
// opened, port in use, ...), 2 usage error (bad or unknown flag, bad config file/value).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "apps/warpd/admin_http.hpp"
#include "apps/warpd/options.hpp"
#include "bus/node_fault.hpp"
#include "bus/node_transport.hpp"
#include "federation/cdc_ingest.hpp"
#include "runtime/modes/strong_raft.hpp"
#include "warp/build_info.hpp"
#include "warp/cluster.hpp"
#include "warp/l1.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"

#include "sidecar/resp_server.hpp"

namespace {

constexpr int exit_startup_failure = 1;
constexpr int exit_usage = 2;

int fail(int code, const std::string& message) {
  std::cerr << "warpd: " << message << std::endl;
  return code;
}

// The placeholder --help shows for an option's value.
std::string metavar(const warpd::option_def& def) {
  auto key = def.key;
  if (key == "warp.listen" || key == "warp.http" || key == "warp.resp") return "HOST:PORT";
  if (key == "warp.peers") return "HOST:PORT,...";
  if (key == "warp.storage") return "SPEC";
  if (key == "warp.data-dir") return "DIR";
  if (key == "warp.default-mode") return "MODE";
  if (key == "warp.log-level") return "LEVEL";
  if (key == "warp.name") return "NAME";
  if (key == "warp.resp-password") return "PASSWORD";
  if (key == "warp.resp-password-file" || key == "warp.resp-tls-cert" ||
      key == "warp.resp-tls-key" || key == "warp.resp-tls-ca")
    return "PATH";
  if (key == "warp.resp-tls-port") return "[HOST:]PORT";
  if (key == "warp.resp-tls-auth-clients") return "no|optional|yes";
  if (key == "warp.maxmemory-policy") return "POLICY";
  if (key == "warp.discovery-dns") return "NAME[:PORT]|srv:NAME";
  if (key == "warp.discovery-dns-server") return "HOST[:PORT]";
  if (key == "warp.admin-tls-cert" || key == "warp.admin-tls-key" || key == "warp.admin-token-file")
    return "FILE";
  if (def.kind == warpd::opt_kind::duration || def.kind == warpd::opt_kind::duration_us)
    return "DUR";
  if (def.kind == warpd::opt_kind::boolean) return "BOOL";
  if (def.kind == warpd::opt_kind::size) return "N";
  return "VALUE";
}

// Declares every option of the table on the CLI11 app; values the user passes land in `cli`.
void add_flags(CLI::App& app, warpd::cli_values& cli) {
  for (const auto& def : warpd::option_table()) {
    std::string key{def.key};
    std::string help{def.help};
    if (!def.fallback.empty()) help += " [default: " + std::string{def.fallback} + "]";
    auto flag = std::string{def.flag};
    switch (def.kind) {
      case warpd::opt_kind::string:
      case warpd::opt_kind::duration:
      case warpd::opt_kind::duration_us:
        // Taken as text: build_settings parses and validates it, whatever its source.
        app.add_option_function<std::string>(
               flag, [&cli, key](const std::string& v) { cli.strings[key] = v; }, help)
            ->type_name(metavar(def));
        break;
      case warpd::opt_kind::boolean:
        // `--insecure` alone means true; `--batching off` gives a value.
        app.add_option_function<std::string>(
               flag, [&cli, key](const std::string& v) { cli.strings[key] = v.empty() ? "true" : v; },
               help)
            ->expected(0, 1)
            ->type_name("[" + metavar(def) + "]");
        break;
      case warpd::opt_kind::size:
        // Parsed here, strictly: CLI11 turns "-1" into a huge size_t, and CAF refuses (with
        // a note on stderr, but no error) a value its declared type cannot hold.
        app.add_option_function<std::string>(
               flag,
               [&cli, key, flag](const std::string& v) {
                 std::uint64_t n = 0;
                 auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                 if (v.empty() || ec != std::errc{} || ptr != v.data() + v.size() ||
                     n > static_cast<std::uint64_t>(INT64_MAX))
                   throw CLI::ValidationError(flag,
                                              "expected a non-negative integer, got '" + v + "'");
                 cli.sizes[key] = static_cast<std::size_t>(n);
               },
               help)
            ->type_name(metavar(def));
        break;
      case warpd::opt_kind::string_list:
        if (def.flag == "--pattern" || def.flag.ends_with("-property")) {
          // Repeatable, never split: a GLOB and a librdkafka value (debug=cgrp,fetch) may
          // contain ','.
          app.add_option_function<std::vector<std::string>>(
                 flag, [&cli, key](const std::vector<std::string>& v) { cli.lists[key] = v; }, help)
              ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
              ->type_name(def.flag == "--pattern" ? "GLOB=MODE[:TTL]" : "NAME=VALUE");
        } else {
          app.add_option_function<std::vector<std::string>>(
                 flag, [&cli, key](const std::vector<std::string>& v) { cli.lists[key] = v; }, help)
              ->delimiter(',')
              ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
              ->type_name(metavar(def));
        }
        break;
    }
  }
}

void setup_logging(const std::string& level) {
  // Logs go to stderr: stdout carries only the ready line, which scripts wait for.
  auto logger = spdlog::stderr_color_mt("warpd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

std::string endpoint_text(const std::string& configured, std::uint16_t port) {
  auto ep = warpd::parse_endpoint(configured);
  return ep ? ep->first + ":" + std::to_string(port) : configured;
}

// /admin/config: the library's view of node_config plus what only warpd configures (the
// cluster options live in node_config but config_json predates them; the sidecar limits
// are warpd's own), so an operator sees every flag's effective value in one document.
std::string effective_config_json(const warpd::settings& s) {
  auto doc = nlohmann::json::parse(warp::config_json(s.node), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return warp::config_json(s.node);
  const auto& c = s.node.cluster;
  doc["cluster"] = {
      {"discovery_dns", c.discovery_dns},
      {"discovery_interval_ms", c.discovery_interval.count()},
      {"discovery_dns_server", c.discovery_dns_server},
      {"heartbeat_interval_ms", c.heartbeat_interval.count()},
      {"failure_timeout_ms", c.failure_timeout.count()},
      {"ranges", c.ranges},
      {"batching", c.batching},
      {"batch_max_records", c.batch_max_records},
      {"batch_max_bytes", c.batch_max_bytes},
      {"batch_max_delay_us", c.batch_max_delay.count()},
      {"batch_busy_rate", c.batch_busy_rate},
      {"batch_target_records", c.batch_target_records},
      {"compress_above", c.compress_above},
      {"owner_fetch_timeout_ms", c.owner_fetch_timeout.count()},
      {"read_replicas", c.read_replicas},
      {"allow_unshared_storage", c.allow_unshared_storage},
  };
  const auto& r = s.resp;
  doc["resp_limits"] = {
      {"max_clients", r.max_clients},
      {"idle_timeout_s", r.idle_timeout.count()},
      {"max_bulk_length", r.max_bulk_length},
      {"max_multibulk_length", r.max_multibulk_length},
      {"max_inline_length", r.max_inline_length},
      {"max_output_buffer", r.max_output_buffer},
      {"max_client_memory", r.max_client_memory},
      {"auth_max_failures", r.auth_max_failures},
      {"auth_failure_delay_ms", r.auth_failure_delay.count()},
      {"allow_flush", r.allow_flush},
      {"password_set", !s.resp_password.empty()},
      {"tls", !r.tls_cert.empty()},
      {"tls_port", r.tls_port},
      {"tls_auth_clients", r.tls_auth_clients},
  };
  // Whether a token is configured, never the token itself.
  const auto& a = s.admin;
  doc["admin"] = {
      {"tls", !a.tls_cert.empty()},
      {"tls_cert", a.tls_cert},
      {"token", !a.token.empty()},
      {"max_connections", a.max_connections},
      {"request_timeout_ms", a.request_timeout.count()},
      {"max_body", a.max_body},
  };
  doc["maxmemory"] = s.maxmemory;
  return doc.dump();
}

// The CDC ingest acts on the node through its normal write path, so the change reaches
// every member of the region: invalidate = remove (the next read loads the new row),
// hydrate = set. Called on the ingest's consumer thread, never a CAF scheduler thread.
class node_cdc_target final : public warp::federation::cdc_target {
 public:
  explicit node_cdc_target(warp::node& n) : node_(n) {}
  warp::result<void> invalidate(std::string_view key) override { return node_.remove(key); }
  warp::result<void> hydrate(std::string_view key, std::string_view row) override {
    return node_.set(key, row);
  }

 private:
  warp::node& node_;
};

// Takes SIGTERM/SIGINT on a thread of its own from the very start. Before the node is
// ready there is nothing to flush or hand over, and startup may wait a long time (storage
// busy or unreachable): the process exits at once, with 128 + the signal's number as if
// the signal had killed it. Once ready, the signal is handed to run() for a clean shutdown.
class signal_watch {
 public:
  explicit signal_watch(const sigset_t& set) : set_(set) {
    thread_ = std::thread{[this] {
      int sig = 0;
      sigwait(&set_, &sig);
      std::unique_lock lock{mtx_};
      if (!ready_) {
        std::cerr << "warpd: signal " << sig << " during startup: exiting" << std::endl;
        std::_Exit(128 + sig);
      }
      sig_ = sig;
      cv_.notify_all();
    }};
  }
  ~signal_watch() {
    // Only reached after wait() returned (the thread has ended) or on a startup failure,
    // where the thread still waits: detach it, the process is about to exit.
    if (thread_.joinable()) {
      if (sig_)
        thread_.join();
      else
        thread_.detach();
    }
  }
  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;

  void ready() {
    std::lock_guard lock{mtx_};
    ready_ = true;
  }
  int wait() {
    std::unique_lock lock{mtx_};
    cv_.wait(lock, [&] { return sig_ != 0; });
    return sig_;
  }
  /// wait() bounded by `limit`: 0 when no signal came.
  int wait_for(std::chrono::milliseconds limit) {
    std::unique_lock lock{mtx_};
    cv_.wait_for(lock, limit, [&] { return sig_ != 0; });
    return sig_;
  }

 private:
  sigset_t set_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool ready_ = false;
  int sig_ = 0;
  std::thread thread_;
};
// Protected mode for the front doors warpd adds (the node port's is in node::start): a
// RESP port on a non-loopback address without a password lets anyone read and write every
// key. Refused unless the operator says --insecure.
std::optional<std::string> exposed_without_secret(const warpd::settings& s) {
  const auto& n = s.node;
  if (n.transport.insecure || !s.resp_password.empty()) return std::nullopt;
  // --resp-tls-port may be a bare PORT on --resp's host.
  for (const auto* listen : {&n.resp, &s.resp.tls_port}) {
    if (listen->empty() || listen->find(':') == std::string::npos) continue;
    auto ep = warpd::parse_endpoint(*listen);
    if (!ep || warp::is_loopback_host(ep->first)) continue;
    return "refusing to serve RESP on " + *listen +
           " without a password: anyone who can reach it could read and write every key. Set "
           "--resp-password (or --resp-password-file), listen on 127.0.0.1, or pass --insecure";
  }
  return std::nullopt;
}

int run(int argc, char** argv) {
  // Block the shutdown signals before any thread exists, so every thread (CAF's, the admin
  // server's, storage's) inherits the mask and signal_watch alone takes them with sigwait.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  signal_watch signals{shutdown_signals};

  CLI::App app{"warpd: a Warp cache node", "warpd"};
  app.footer("Flags override the config file; see docs/warpd.md and docs/configuration.md.");
  warpd::cli_values cli;
  std::string config_file;
  app.add_option("--config", config_file,
                 "Config file in CAF's format: warp { listen = \"...\" ... } plus CAF sections "
                 "such as scheduler { max-threads = 2 }")
      ->type_name("FILE");
  add_flags(app, cli);
  app.set_version_flag("--version", warp::version_line("warpd"), "Print the version and commit, then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForVersion& v) {
    std::cout << v.what() << std::endl;
    return 0;
  } catch (const CLI::ParseError& e) {
    return fail(exit_usage, std::string{e.what()} + " (see warpd --help)");
  }

  warpd::warpd_config cfg;
  if (auto loaded = warpd::load_config_file(cfg, config_file); !loaded)
    return fail(exit_usage, loaded.err().message());
  warpd::apply_cli(cfg, cli);
  auto settings = warpd::build_settings(cfg);
  if (!settings) return fail(exit_usage, settings.err().message());
  auto& ncfg = settings->node;
  if (spdlog::level::from_str(ncfg.log_level) == spdlog::level::off && ncfg.log_level != "off")
    return fail(exit_usage, "log-level: unknown level '" + ncfg.log_level + "'");
  if (auto refusal = exposed_without_secret(*settings)) return fail(exit_usage, *refusal);
  setup_logging(ncfg.log_level);
  for (const auto& w : settings->warnings) spdlog::warn("{}", w);

  // --maxmemory: warpd builds the memory adapter itself to hand it its bounds. An evicted
  // key leaves L1 too, or reads would go on serving it from there.
  auto evict_target = std::make_shared<std::atomic<warp::node*>>(nullptr);
  if (settings->maxmemory > 0) {
    warp::memory_storage_options mo;
    mo.max_bytes = settings->maxmemory;
    mo.eviction = settings->maxmemory_policy;
    mo.on_evict = [evict_target](std::string_view key) {
      if (auto* n = evict_target->load(std::memory_order_acquire)) n->evict_from_l1(key);
    };
    ncfg.storage_adapter = warp::make_memory_storage(std::move(mo));
  }

  caf::actor_system sys{cfg};
  auto started = warp::node::start(sys, ncfg);
  if (!started)
    return fail(exit_startup_failure, "cannot start node: " + started.err().to_string());
  auto node = std::move(*started);
  evict_target->store(node.get(), std::memory_order_release);

  std::unique_ptr<warp::sidecar::resp_server> resp;
  if (!ncfg.resp.empty()) {
    warp::sidecar::resp_options ropts;
    ropts.listen = ncfg.resp;
    ropts.password = settings->resp_password;
    const auto& lim = settings->resp;
    ropts.max_clients = lim.max_clients;
    ropts.idle_timeout = lim.idle_timeout;
    ropts.max_bulk_length = lim.max_bulk_length;
    ropts.max_multibulk_length = lim.max_multibulk_length;
    ropts.max_inline_length = lim.max_inline_length;
    ropts.max_output_buffer = lim.max_output_buffer;
    ropts.max_client_memory = lim.max_client_memory;
    ropts.auth_max_failures = lim.auth_max_failures;
    ropts.auth_failure_delay = lim.auth_failure_delay;
    ropts.allow_flush = lim.allow_flush;
    ropts.tls_cert = lim.tls_cert;
    ropts.tls_key = lim.tls_key;
    ropts.tls_ca = lim.tls_ca;
    ropts.tls_listen = lim.tls_port;
    ropts.tls_auth_clients = lim.tls_auth_clients;
    auto r = warp::sidecar::resp_server::start(*node, ropts);
    if (!r) return fail(exit_startup_failure, "resp: " + r.err().to_string());
    resp = std::move(*r);
  }

  std::unique_ptr<node_cdc_target> cdc_target;
  std::unique_ptr<warp::federation::cdc_ingest> cdc;
  if (!settings->cdc.brokers.empty()) {
    cdc_target = std::make_unique<node_cdc_target>(*node);
    auto c = warp::federation::cdc_ingest::start(settings->cdc, *cdc_target);
    if (!c) return fail(exit_startup_failure, "cdc: " + c.err().to_string());
    cdc = std::move(*c);
    spdlog::info(
        "cdc: consuming {} from {} (group {}, key {}, mode {})", settings->cdc.topic,
        settings->cdc.brokers, settings->cdc.group, settings->cdc.key_template,
        settings->cdc.mode == warp::federation::cdc_mode::hydrate ? "hydrate" : "invalidate");
  }

  std::unique_ptr<warpd::admin_http> http;
  if (!ncfg.http.empty()) {
    // "Clustered" as config.hpp defines it: a listener plus peers (seeds or DNS). A node
    // without either still counts once somebody joined it (admin_http checks the view).
    bool seeded =
        !ncfg.listen.empty() && (!ncfg.peers.empty() || !ncfg.cluster.discovery_dns.empty());
    std::function<std::string()> extra;
    if (resp || cdc)
      extra = [r = resp.get(), c = cdc.get(), name = warp::display_name(node->config())] {
        std::string text = r ? r->prometheus_text(name) : std::string{};
        if (c) text += c->prometheus_text("{node=\"" + warp::prometheus_label(name) + "\"}");
        return text;
      };
    if (settings->fault_injection) {
      spdlog::warn(
          "--fault-injection: POST /admin/fault/partition cuts this node's links (test "
          "only)");
      settings->admin.partition =
          [sys = &node->system()](const std::string& body) -> warp::result<std::string> {
        std::vector<std::string> peers;
        for (std::size_t pos = 0; pos < body.size();) {
          auto comma = body.find(',', pos);
          auto end = comma == std::string::npos ? body.size() : comma;
          if (end > pos) peers.push_back(body.substr(pos, end - pos));
          pos = end + 1;
        }
        auto closed = warp::bus::set_partition(*sys, peers);
        if (!closed) return closed.err();
        return "{\"blocked\":" + std::to_string(peers.size()) +
               ",\"closed\":" + std::to_string(*closed) + "}";
      };
    }
    auto h = warpd::admin_http::start(*node, ncfg.http, effective_config_json(*settings), seeded,
                                      settings->admin, std::move(extra));
    if (!h) return fail(exit_startup_failure, "admin http: " + h.err().message());
    http = std::move(*h);
  }

  std::string ready = "warpd " + warp::display_name(node->config()) + " ready: node ";
  ready += node->listen_port() ? endpoint_text(ncfg.listen, node->listen_port()) : "off";
  ready += " http ";
  ready += http ? endpoint_text(ncfg.http, http->port()) : "off";
  if (resp) ready += " resp " + endpoint_text(ncfg.resp, resp->port());
  if (resp && resp->tls_port())
    ready += " resp-tls " + (ncfg.resp.empty() || !settings->resp.tls_port.empty()
                                 ? endpoint_text(settings->resp.tls_port, resp->tls_port())
                                 : endpoint_text(ncfg.resp, resp->tls_port()));
  ready += " storage " + node->storage().describe();
  if (http && http->tls()) ready += " admin-tls on";
  signals.ready();
  std::cout << ready << std::endl;

  // Besides signals, watch for the one fault that makes serving wrong rather than slow: a
  // member on other storage while eventual_distributed keys need one shared store (the
  // cluster actor finds it at join; docs/security.md, "Storage identity").
  int sig = 0;
  std::string refusal;
  while (sig == 0) {
    sig = signals.wait_for(std::chrono::milliseconds{100});
    if (sig != 0 || ncfg.cluster.allow_unshared_storage) continue;
    if (auto conflict = warp::view_of(*node).storage_conflict; !conflict.empty()) {
      refusal = std::move(conflict);
      break;
    }
  }
  if (!refusal.empty())
    spdlog::error(
        "refusing to run: {}. Give every member the same storage (one PostgreSQL database, or "
        "one SQLite file all members open), or pass --allow-unshared-storage",
        refusal);
  else
    spdlog::info("signal {}: shutting down", sig);
  // Front doors first, so no request arrives at a stopping node; then the node, which
  // stops its control actor and flushes storage; the actor system goes last (scope exit).
  if (http) http->stop();
  if (resp) resp->stop();
  cdc.reset();  // commits what it applied, before the node it applies to stops
  node->stop();
  evict_target->store(nullptr, std::memory_order_release);
  node.reset();
  spdlog::info("stopped");
  return refusal.empty() ? 0 : exit_startup_failure;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return fail(exit_startup_failure, std::string{"fatal: "} + e.what());
  }
}
