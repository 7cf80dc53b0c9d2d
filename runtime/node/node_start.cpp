// warp::node's life: start (in its own actor system or the host's), the wiring of the
// modes, the control actor and the node port, and stop in the reverse order.
#include "warp/node.hpp"

#include <charconv>
#include <cstdio>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/control_actor.hpp"
#include "bus/node_transport.hpp"
#include "runtime/core/log.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/strong.hpp"
#include "runtime/modes/warmup.hpp"
#include "runtime/node/node_impl.hpp"
#include "runtime/node/pattern_table.hpp"
#include "warp/cluster.hpp"
#include "warp/endpoint.hpp"
#include "warp/metrics.hpp"

namespace warp {

namespace {

/// The control actor's view of the node (actors/control_actor.hpp).
class node_control_backend final : public actors::control_backend {
 public:
  explicit node_control_backend(node& n) : n_(n) {}
  std::string name() const override { return display_name(n_.config()); }
  std::uint32_t id() const override { return n_.id(); }
  const warp::limits& limits() const override { return n_.config().limits; }
  std::optional<buffer> get_if_present(std::string_view key) const override {
    return n_.get_if_present(key);
  }
  result<buffer> get(std::string_view key) override { return n_.get(key); }
  result<void> set(std::string_view key, std::string_view value,
             std::optional<std::chrono::milliseconds> ttl) override {
    return n_.set(key, value, ttl);
  }
  result<void> remove(std::string_view key) override { return n_.remove(key); }
  std::string stats_json() override { return warp::stats_json(n_); }
  result<std::string> validate_json(std::string_view glob) override {
    auto rep = n_.validate(glob);
    if (!rep) return rep.err();
    return validation_json(*rep);
  }
  result<std::string> patterns_json() override { return to_json(n_.pattern_table()); }
  result<std::string> set_pattern(std::string_view spec) override {
    if (auto ok = n_.set_pattern(spec); !ok) return ok.err();
    return to_json(n_.pattern_table());
  }
  result<std::string> remove_pattern(std::string_view glob) override {
    if (auto ok = n_.remove_pattern(glob); !ok) return ok.err();
    return to_json(n_.pattern_table());
  }
  result<std::int64_t> expiry(std::string_view key) override { return n_.expiry(key); }
  result<bool> contains(std::string_view key) override { return n_.contains(key); }
  result<std::int64_t> incr(std::string_view key, std::int64_t by) override {
    std::int64_t out = 0;
    error bad;
    auto r = n_.update(key, [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
      std::int64_t v = 0;
      if (cur) {
        auto text = view(*cur);
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc{} || p != text.data() + text.size() || text.empty()) {
          bad = error{errc::invalid_argument, "value is not an integer"};
          return mutation::keep();
        }
      }
      if ((by > 0 && v > std::numeric_limits<std::int64_t>::max() - by) ||
          (by < 0 && v < std::numeric_limits<std::int64_t>::min() - by)) {
        bad = error{errc::invalid_argument, "increment would overflow"};
        return mutation::keep();
      }
      out = v + by;
      return mutation::put(std::to_string(out), cur ? exp : 0);  // keeps the TTL, like INCR
    });
    if (!r) return r.err();
    if (!bad.ok()) return bad;
    return out;
  }
  result<scan_page> scan(std::string_view after, std::size_t count,
                         std::string_view glob) override {
    auto page = n_.scan(after, count, glob);
    if (!page) return page.err();
    return scan_page{std::move(page->keys), std::move(page->next_after), page->done};
  }
  result<std::string> strong_members(std::string_view op, std::string_view target) override {
    auto* engine = detail::strong_raft_of(n_);
    if (!engine) return error{errc::unsupported, "members: this node runs no strong Raft engine"};
    return engine->members(op, target);
  }
  result<std::string> strong_json() override {
    auto strong = n_.strong_state();
    if (!strong) return error{errc::unsupported, "this node runs no strong mode"};
    return warp::strong_json(*strong);
  }
  result<std::string> coordination(std::string_view verb,
                                   const std::vector<std::string>& args) override {
    return coordination_request(n_, verb, args);
  }
  result<std::string> health_json() override {
    auto storage = n_.check_storage();
    auto view = view_of(n_);
    std::size_t up = 0;
    for (const auto& m : view.members)
      if (m.state == member_state::up) ++up;
    char id[16];
    std::snprintf(id, sizeof id, "%08x", n_.id());
    nlohmann::json doc{{"name", display_name(n_.config())},
                       {"id", id},
                       {"alive", true},
                       {"ready", storage.has_value()},
                       {"storage", storage ? std::string{"ok"} : storage.err().message()},
                       {"members", view.members.size()},
                       {"members_up", up}};
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string hot_keys_json(std::size_t limit) override { return warp::hot_keys_json(n_, limit); }

 private:
  node& n_;
};

}  // namespace

namespace {

using detail::log;

std::uint32_t random_node_id() {
  std::random_device rd;
  std::uint32_t id = 0;
  while (id == 0) id = rd();
  return id;
}

}  // namespace

node::node(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

node::~node() {
  stop();
}

result<std::unique_ptr<node>> node::start(node_config config) {
  auto p = std::make_unique<impl>();
  p->own_config = std::make_unique<caf::actor_system_config>();
  p->own_config->load<caf::io::middleman>();
  actors::register_control_protocol(*p->own_config);
  p->own_config->set("scheduler.max-threads", std::max<std::size_t>(1, config.scheduler_threads));
  p->own_config->set("logger.verbosity", caf::atom("quiet"));
  p->own_system = std::make_unique<caf::actor_system>(*p->own_config);
  p->system = p->own_system.get();
  p->config = std::move(config);
  return start_impl(std::move(p));
}

result<std::unique_ptr<node>> node::start(caf::actor_system& host, node_config config) {
  auto p = std::make_unique<impl>();
  p->system = &host;
  p->config = std::move(config);
  return start_impl(std::move(p));
}

result<std::unique_ptr<node>> node::start_impl(std::unique_ptr<impl> p) {
  auto& host = *p->system;
  auto& cfg = p->config;
  p->name = display_name(cfg);
  p->id = random_node_id();

  if (auto valid = cfg.validate(); !valid.has_value()) return valid.err();
  auto logger = log();
  logger->set_level(spdlog::level::from_str(cfg.log_level));
  p->clock.set_max_ahead_ms(cfg.max_clock_skew.count());

  // The run-time table (a newer one persisted under the data dir replaces the command
  // line's) before anything reads the patterns, strong_coordinator::wanted included.
  p->pattern_table = std::make_unique<detail::pattern_table_keeper>(*p);
  auto start_specs = p->pattern_table->load_start_table();
  if (!start_specs) return start_specs.err();
  cfg.patterns = std::move(*start_specs);
  auto entries = pattern_registry::parse_specs(cfg.patterns);
  if (!entries) return entries.err();
  for (auto& entry : *entries)
    if (auto st = p->patterns.add(entry.glob, entry.policy); !st.has_value()) return st.err();
  p->patterns.set_default(cfg.default_policy);
  p->refresh_ahead_on = cfg.default_policy.guard.refresh_ahead_pct > 0;
  for (auto& entry : *entries)
    if (entry.policy.guard.refresh_ahead_pct > 0) p->refresh_ahead_on = true;

  if (cfg.storage_adapter) {
    p->store = cfg.storage_adapter;
  } else {
    auto store = open_storage(cfg.storage, cfg.data_dir);
    if (!store) return store.err();
    p->store = std::move(*store);
  }
  p->l1 = std::make_unique<l1_store>(cfg.l1);
  if (cfg.hot_keys.track) {
    detail::hot_key_options ho;
    ho.capacity = cfg.hot_keys.capacity;
    ho.sample_every = cfg.hot_keys.sample_every;
    ho.half_life = cfg.hot_keys.half_life;
    p->hot = std::make_unique<detail::hot_key_tracker>(ho);
  }
  p->executor = std::make_unique<detail::work_pool>(cfg.executor_threads);

  auto n = std::unique_ptr<node>(new node(std::move(p)));
  auto& st = *n->impl_;
  // A lease's end deletes its keys through the normal delete path (on the executor): L1 on
  // every node, storage and replicas see an ordinary delete.
  st.on_lease_ended = [np = n.get()](std::uint64_t lease, const std::vector<std::string>& keys) {
    bool all = true;
    for (const auto& k : keys)
      if (auto r = np->remove(k); !r && r.code() != errc::not_found) {
        all = false;
        log()->warn("lease {}: deleting attached key failed (retried): {}", lease,
                    r.err().to_string());
      }
    return all;
  };
  if (!st.config.listen.empty()) {
    auto endpoint = parse_endpoint(st.config.listen);
    if (!endpoint) return endpoint.err();
    if (!host.has_middleman())
      return error{errc::invalid_argument,
                   "the host actor system has no middleman: load caf::io::middleman to listen"};
    // validate() refused a plain listener off loopback and a message bound below a value.
    const auto& tr = st.config.transport;
    auto transport = bus::install_node_transport(host, tr);
    if (!transport) return transport.err();
    st.transport = std::move(*transport);
    // Peers dial the address we listen on, with the port actually bound.
    auto address_of = [&](std::uint16_t port) {
      if (endpoint->first.find(':') != std::string::npos)
        return "[" + endpoint->first + "]:" + std::to_string(port);
      return endpoint->first + ":" + std::to_string(port);
    };
    // strong_distributed keys must reach the quorum coordinator from the very first
    // request: without it they would take the local path (L1 + local storage), where a set
    // is acknowledged without a quorum and the control actor's L1 fast path would keep
    // answering that value. So the coordinator exists before the control actor is
    // published (a port of 0 is only known after publish; such a node cannot be in other
    // nodes' member lists anyway).
    bool strong = detail::strong_coordinator::wanted(st.config);
    if (strong && endpoint->second != 0) {
      st.strong = std::make_unique<detail::strong_coordinator>(st, address_of(endpoint->second));
      if (auto started = st.strong->start(); !started) return started.err();
      st.strong_mode = detail::make_strong_distributed_mode(*st.strong);
    }
    st.control_backend = std::make_unique<node_control_backend>(*n);
    st.control = actors::spawn_control_actor(host, *st.control_backend, *st.executor);
    auto port = bus::publish_on_node_port(host, st.control, endpoint->second, endpoint->first,
                                          std::chrono::seconds{30});
    if (!port)
      return error{errc::unreachable,
                   "cannot listen on " + st.config.listen + ": " + port.err().message()};
    st.listen_port = *port;
    auto address = address_of(st.listen_port);
    st.cluster = std::make_unique<detail::cluster>(st, address);
    auto* table = st.pattern_table.get();
    auto* pool = st.executor.get();
    st.cluster->set_patterns(table->version(), table->encoded(),
                             [table, pool](bus::pattern_table t) {
                               // Parsing, L1 and the file: not on the actor's thread.
                               pool->post([table, t = std::move(t)] { table->apply_remote(t); });
                             });
    st.cluster->start();
    st.eventual_mode = detail::make_eventual_mode(st.writes, *st.cluster);
    if (strong && !st.strong) {
      st.strong = std::make_unique<detail::strong_coordinator>(st, address);
      if (auto started = st.strong->start(); !started) return started.err();
      st.strong_mode = detail::make_strong_distributed_mode(*st.strong);
    }
  }
  if (st.config.federation.enabled()) {
    if (st.listen_port == 0)
      return error{errc::invalid_argument, "federation needs a listener: other regions reach it"};
    auto f = federation::start_federation(st);
    if (!f) return f.err();
    st.federation_link = std::move(*f);
  }
  start_validator(*n, st);
  logger->info("node {} (id {:08x}) started: storage {}, listen {}", st.name, st.id,
               st.store->describe(), st.listen_port ? st.config.listen : std::string{"off"});
  // A node that expects peers warms up when it takes its ranges over from them (cluster.cpp);
  // one that starts alone warms up now, while it already serves.
  if (st.config.hot_keys.warmup && st.config.peers.empty() &&
      st.config.cluster.discovery_dns.empty())
    detail::start_warmup(st);
  return n;
}

void node::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  auto& st = *impl_;
  stop_validator(*this, st);         // its jobs still queued on the executor finish below
  if (st.federation_link) st.federation_link->stop();  // no more shipping; apply jobs drain below
  detail::save_hot_keys(st);  // for the next start's warm-up
  if (st.strong) st.strong->stop();  // calls in flight fail fast
  if (st.cluster) {
    // Sends what is queued and says goodbye while the network is still up.
    st.cluster->stop();
  }
  if (st.control) {
    if (st.listen_port != 0) bus::unpublish_from_node_port(*st.system, st.control, st.listen_port);
    // Waits for the control actor: it holds a reference to this node.
    actors::stop_control_actor(*st.system, st.control);
    st.control = nullptr;
  }
  // Nothing posts any more but the async API, which now fails fast: finish what is queued.
  if (st.executor) st.executor->shutdown();
  if (st.store) {
    if (auto err = st.store->flush(); !err.has_value())
      log()->error("storage flush on stop failed: {}", err.err().to_string());
  }
  if (st.transport) bus::uninstall_node_transport(*st.system);
  if (st.own_system) {
    st.own_system.reset();  // waits for the node's actors
    st.own_config.reset();
  }
}


}  // namespace warp
