#include "warp/node.hpp"

#include "warp/endpoint.hpp"

#include <unistd.h>

#include <charconv>
#include <random>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/control_actor.hpp"
#include "runtime/src/node_impl.hpp"
#include "runtime/src/strong.hpp"

namespace warp {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  if (auto existing = spdlog::get("warp")) return existing;
  try {
    return spdlog::stderr_color_mt("warp");
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("warp");  // another thread registered it first
  }
}

std::uint32_t random_node_id() {
  std::random_device rd;
  std::uint32_t id = 0;
  while (id == 0) id = rd();
  return id;
}

// L1 expiry of a value: its own expiry, shortened by the policy's cache TTL.
std::int64_t l1_expiry(std::int64_t value_expiry, const key_policy& policy) {
  if (policy.ttl.count() <= 0) return value_expiry;
  auto cache_expiry = now_ms() + policy.ttl.count();
  return value_expiry == 0 ? cache_expiry : std::min(value_expiry, cache_expiry);
}

}  // namespace

void node::impl::notify(const change_event& ev) {
  if (watcher_count.load(std::memory_order_acquire) == 0) return;
  std::shared_ptr<const watcher_list> list;
  {
    std::lock_guard<std::mutex> guard{watchers_mtx};
    list = watchers;
  }
  for (auto& [id, fn] : *list) {
    try {
      fn(ev);
    } catch (const std::exception& e) {
      logger()->warn("watcher {} threw: {}", id, e.what());
    }
  }
}

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
  p->name = cfg.name.empty() ? "warp-" + std::to_string(::getpid()) : cfg.name;
  p->id = random_node_id();

  auto log = logger();
  auto level = spdlog::level::from_str(cfg.log_level);
  if (level == spdlog::level::off && cfg.log_level != "off")
    return error{errc::invalid_argument, "unknown log level '" + cfg.log_level + "'"};
  log->set_level(level);

  for (auto& spec : cfg.patterns) {
    auto entry = pattern_registry::parse_spec(spec);
    if (!entry) return entry.err();
    if (auto st = p->patterns.add(entry->glob, entry->policy); !st.ok()) return st;
  }
  p->patterns.set_default(cfg.default_policy);

  if (cfg.storage_adapter) {
    p->store = cfg.storage_adapter;
  } else {
    auto store = open_storage(cfg.storage, cfg.data_dir);
    if (!store) return store.err();
    p->store = std::move(*store);
  }
  p->l1 = std::make_unique<l1_store>(cfg.l1);

  auto n = std::unique_ptr<node>(new node(std::move(p)));
  auto& st = *n->impl_;
  if (!st.config.listen.empty()) {
    auto endpoint = parse_endpoint(st.config.listen);
    if (!endpoint) return endpoint.err();
    if (!host.has_middleman())
      return error{errc::invalid_argument,
                   "the host actor system has no middleman: load caf::io::middleman to listen"};
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
      st.strong->start();
    }
    st.control = actors::spawn_control_actor(host, *n);
    auto port =
        host.middleman().publish(st.control, endpoint->second, endpoint->first.c_str(), true);
    if (!port)
      return error{errc::unreachable,
                   "cannot listen on " + st.config.listen + ": " + host.render(port.error())};
    st.listen_port = *port;
    auto address = address_of(st.listen_port);
    st.cluster = std::make_unique<detail::cluster>(*n, st, address);
    detail::register_cluster(*n, st.cluster.get());
    st.cluster->start();
    if (strong && !st.strong) {
      st.strong = std::make_unique<detail::strong_coordinator>(st, address);
      st.strong->start();
    }
  }
  log->info("node {} (id {:08x}) started: storage {}, listen {}", st.name, st.id,
            st.store->describe(), st.listen_port ? st.config.listen : std::string{"off"});
  return n;
}

void node::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  auto& st = *impl_;
  if (st.strong) st.strong->stop();  // calls in flight fail fast
  if (st.cluster) {
    // Sends what is queued and says goodbye while the network is still up.
    st.cluster->stop();
    detail::register_cluster(*this, nullptr);
  }
  if (st.control) {
    if (st.listen_port != 0) st.system->middleman().unpublish(st.control, st.listen_port);
    // Waits for the control actor: it holds a reference to this node.
    actors::stop_control_actor(*st.system, st.control);
    st.control = nullptr;
  }
  if (st.store) {
    if (auto err = st.store->flush(); !err.ok())
      logger()->error("storage flush on stop failed: {}", err.to_string());
  }
  if (st.own_system) {
    st.own_system.reset();  // waits for the node's actors
    st.own_config.reset();
  }
}

// -- reads ------------------------------------------------------------------------------

namespace {

status check_key(const node_config& cfg, std::string_view key) {
  if (key.size() > cfg.limits.max_key_size)
    return error{errc::key_too_large, "key of " + std::to_string(key.size()) +
                                          " bytes exceeds the limit of " +
                                          std::to_string(cfg.limits.max_key_size)};
  return {};
}

status check_value(const node_config& cfg, std::string_view value) {
  if (value.size() > cfg.limits.max_value_size)
    return error{errc::value_too_large, "value of " + std::to_string(value.size()) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(cfg.limits.max_value_size)};
  return {};
}

}  // namespace

result<buffer> node::get(std::string_view key) {
  auto& st = *impl_;
  // strong_distributed keys in a cluster: a quorum read, never L1 (docs/strong.md).
  if (st.strong && st.patterns.lookup(key).consistency == mode::strong_distributed) {
    if (auto err = check_key(st.config, key); !err.ok()) return err;
    return st.strong->get(key);
  }
  if (auto hit = st.l1->get(key)) return std::move(*hit);
  if (auto err = check_key(st.config, key); !err.ok()) return err;
  auto policy = st.patterns.lookup(key);
  buffer filled;
  auto outcome = st.coalescer.run(
      key,
      [&]() -> result<std::optional<record>> {
        // Cluster-wide read-through: the key's range owner coalesces the misses of every
        // node; if it cannot answer, fall back to storage (counted by the cluster).
        if (st.cluster && policy.consistency == mode::eventual_distributed)
          if (auto r = st.cluster->fetch_from_owner(key)) return std::move(*r);
        st.storage_fetches.fetch_add(1, std::memory_order_relaxed);
        auto r = st.store->fetch(key);
        if (!r) st.storage_errors.fetch_add(1, std::memory_order_relaxed);
        return r;
      },
      [&](const record& rec) {
        filled = make_buffer(rec.value);
        st.l1->put(key, filled, rec.ver, l1_expiry(rec.expires_at_ms, policy), true);
      });
  if (!outcome) return outcome.err();
  if (!*outcome) return error{errc::not_found};
  if (filled) return filled;
  return make_buffer((*outcome)->value);
}

result<std::optional<record>> node::impl::local_read(std::string_view key) {
  std::optional<record> hit;
  l1->read(key, [&](std::string_view bytes, const l1_entry_info& info) {
    hit = record{std::string{bytes}, info.expires_at_ms, info.ver};
  });
  if (hit) return hit;
  if (auto err = check_key(config, key); !err.ok()) return err;
  auto policy = patterns.lookup(key);
  return coalescer.run(
      key,
      [&]() -> result<std::optional<record>> {
        storage_fetches.fetch_add(1, std::memory_order_relaxed);
        auto r = store->fetch(key);
        if (!r) storage_errors.fetch_add(1, std::memory_order_relaxed);
        return r;
      },
      [&](const record& rec) {
        l1->put(key, make_buffer(rec.value), rec.ver, l1_expiry(rec.expires_at_ms, policy), true);
      });
}

result<buffer> node::get_or_load(std::string_view key, const loader& load) {
  if (impl_->strong && impl_->patterns.lookup(key).consistency == mode::strong_distributed)
    return impl_->strong->get_or_load(key, load);
  auto found = get(key);
  if (found || found.code() != errc::not_found) return found;
  auto& st = *impl_;
  auto policy = st.patterns.lookup(key);
  // Coalesced like a storage fetch: the leader loads, writes through, and fills L1.
  auto outcome = st.coalescer.run(
      key,
      [&]() -> result<std::optional<record>> {
        auto loaded = load(key);
        if (!loaded) return loaded.err();
        if (!*loaded) return std::optional<record>{};
        if (auto err = check_value(st.config, **loaded); !err.ok()) return err;
        std::lock_guard<std::mutex> guard{st.write_lock(key)};
        record rec{std::move(**loaded), 0, next_version()};
        if (policy.ttl.count() > 0) rec.expires_at_ms = 0;  // policy TTL bounds L1 only
        if (auto err = st.store->store(key, rec); !err.ok()) {
          st.storage_errors.fetch_add(1, std::memory_order_relaxed);
          return err;
        }
        st.storage_writes.fetch_add(1, std::memory_order_relaxed);
        return std::optional<record>{std::move(rec)};
      },
      [&](const record& rec) {
        st.l1->put(key, make_buffer(rec.value), rec.ver, l1_expiry(rec.expires_at_ms, policy),
                   true);
      });
  if (!outcome) return outcome.err();
  if (!*outcome) return error{errc::not_found};
  return make_buffer((*outcome)->value);
}

result<bool> node::contains(std::string_view key) {
  auto& st = *impl_;
  if (st.l1->contains(key)) return true;
  auto r = get(key);
  if (r) return true;
  if (r.code() == errc::not_found) return false;
  return r.err();
}

result<std::int64_t> node::expiry(std::string_view key) {
  auto& st = *impl_;
  if (auto err = check_key(st.config, key); !err.ok()) return err;
  auto rec = st.store->fetch(key);
  if (!rec) return rec.err();
  if (!*rec) return error{errc::not_found};
  return (*rec)->expires_at_ms;
}

result<std::size_t> node::warmup(std::span<const std::string> keys) {
  auto& st = *impl_;
  auto records = st.store->fetch_batch(keys);
  if (!records) return records.err();
  std::size_t found = 0;
  for (std::size_t i = 0; i < keys.size() && i < records->size(); ++i) {
    auto& rec = (*records)[i];
    if (!rec) continue;
    ++found;
    auto policy = st.patterns.lookup(keys[i]);
    st.l1->put(keys[i], make_buffer(rec->value), rec->ver, l1_expiry(rec->expires_at_ms, policy),
               true);
  }
  st.storage_fetches.fetch_add(keys.size(), std::memory_order_relaxed);
  return found;
}

// -- writes -----------------------------------------------------------------------------

status node::set(std::string_view key, std::string_view value,
                 std::optional<std::chrono::milliseconds> ttl) {
  std::int64_t expires = 0;
  if (ttl) {
    if (ttl->count() < 0) return error{errc::invalid_argument, "negative TTL"};
    if (ttl->count() > 0) expires = now_ms() + ttl->count();
  }
  return set_at(key, value, expires);
}

status node::set_at(std::string_view key, std::string_view value, std::int64_t expires_at_ms) {
  auto result = write(
      key,
      [&](const buffer*, std::int64_t) -> warp::result<mutation> {
        return mutation::put(std::string{value}, expires_at_ms);
      },
      false);
  return result ? status{} : result.err();
}

status node::remove(std::string_view key) {
  auto result = write(
      key, [](const buffer*, std::int64_t) -> warp::result<mutation> { return mutation::erase(); },
      false);
  return result ? status{} : result.err();
}

result<mutation> node::update(
    std::string_view key,
    const std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)>& fn) {
  return write(key, fn, true);
}

result<mutation> node::write(
    std::string_view key,
    const std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)>& fn,
    bool read_current) {
  auto& st = *impl_;
  if (st.stopped.load(std::memory_order_relaxed))
    return error{errc::shutting_down, "node is stopping"};
  if (auto err = check_key(st.config, key); !err.ok()) return err;
  auto policy = st.patterns.lookup(key);
  if (st.strong && policy.consistency == mode::strong_distributed)
    return st.strong->write(key, fn, read_current);  // quorum write, no L1, no storage
  std::lock_guard<std::mutex> guard{st.write_lock(key)};

  // The current value comes from storage, the source of truth for its expiry (L1 may hold
  // a cache-TTL-shortened expiry, or may have evicted the key). Blind writes skip the read.
  buffer current;
  std::int64_t current_expiry = 0;
  if (read_current) {
    auto rec = st.store->fetch(key);
    st.storage_fetches.fetch_add(1, std::memory_order_relaxed);
    if (!rec) {
      st.storage_errors.fetch_add(1, std::memory_order_relaxed);
      return rec.err();
    }
    if (*rec) {
      current = make_buffer(std::move((*rec)->value));
      current_expiry = (*rec)->expires_at_ms;
    }
  }
  auto decision = fn(current ? &current : nullptr, current_expiry);
  if (!decision) return decision;
  auto ver = next_version();
  switch (decision->what) {
    case mutation::kind::keep:
      return decision;
    case mutation::kind::put: {
      if (auto err = check_value(st.config, decision->value); !err.ok()) return err;
      record out{decision->value, decision->expires_at_ms, ver};
      if (auto err = st.store->store(key, out); !err.ok()) {
        st.storage_errors.fetch_add(1, std::memory_order_relaxed);
        // The outcome in storage is unknown: L1 must not keep a value storage may lack.
        st.coalescer.supersede(key);
        st.l1->erase(key);
        return err;
      }
      st.storage_writes.fetch_add(1, std::memory_order_relaxed);
      st.coalescer.supersede(key);
      auto value = make_buffer(std::move(out.value));
      st.l1->put(key, value, ver, l1_expiry(decision->expires_at_ms, policy), true);
      if (st.cluster && policy.consistency == mode::eventual_distributed)
        st.cluster->published(
            key, ver, decision->expires_at_ms,
            policy.hydrate ? bus::record_kind::value : bus::record_kind::invalidate, *value);
      st.notify({change_event::kind::set, std::string{key}, ver, false});
      return decision;
    }
    case mutation::kind::erase: {
      auto err = st.store->remove(key);
      st.coalescer.supersede(key);
      st.l1->erase(key);
      if (!err.ok()) {
        st.storage_errors.fetch_add(1, std::memory_order_relaxed);
        return err;
      }
      st.storage_writes.fetch_add(1, std::memory_order_relaxed);
      if (st.cluster && policy.consistency == mode::eventual_distributed)
        st.cluster->published(key, ver, 0, bus::record_kind::erase, {});
      // A blind remove does not know whether the key existed; watchers get the event anyway.
      if (current || !read_current)
        st.notify({change_event::kind::removed, std::string{key}, ver, false});
      return decision;
    }
  }
  return decision;
}

result<node::scan_page> node::scan(std::string_view after, std::size_t count,
                                   std::string_view glob) {
  auto& st = *impl_;
  if (count == 0) count = 10;
  auto keys = st.store->scan(after, count);
  if (!keys) return keys.err();
  scan_page page;
  page.done = keys->size() < count;
  if (!keys->empty()) page.next_after = keys->back();
  for (auto& k : *keys)
    if (glob.empty() || glob_match(glob, k)) page.keys.push_back(std::move(k));
  return page;
}

result<std::size_t> node::key_count() {
  return impl_->store->count();
}

status node::clear() {
  auto& st = *impl_;
  auto err = st.store->clear();
  st.coalescer.supersede_all();  // a read-through in flight holds a value storage lost
  st.l1->clear();
  if (!err.ok()) return err;
  auto ver = next_version();
  // Storage is shared: every other node's L1 now holds values storage no longer has.
  if (st.cluster) st.cluster->published({}, ver, 0, bus::record_kind::clear, {});
  st.notify({change_event::kind::cleared, {}, ver, false});
  return {};
}

// -- watchers, policies, parts ------------------------------------------------------------

watch_id node::watch(std::function<void(const change_event&)> fn) {
  auto& st = *impl_;
  auto id = st.next_watch_id.fetch_add(1);
  std::lock_guard<std::mutex> guard{st.watchers_mtx};
  auto next = std::make_shared<impl::watcher_list>(*st.watchers);
  next->emplace_back(id, std::move(fn));
  st.watchers = std::move(next);
  st.watcher_count.store(st.watchers->size(), std::memory_order_release);
  return id;
}

void node::unwatch(watch_id id) {
  auto& st = *impl_;
  std::lock_guard<std::mutex> guard{st.watchers_mtx};
  auto next = std::make_shared<impl::watcher_list>(*st.watchers);
  std::erase_if(*next, [id](auto& w) { return w.first == id; });
  st.watchers = std::move(next);
  st.watcher_count.store(st.watchers->size(), std::memory_order_release);
}

status node::register_pattern(std::string_view glob, mode consistency,
                              std::chrono::milliseconds ttl, bool hydrate) {
  if (ttl.count() < 0) return error{errc::invalid_argument, "negative TTL"};
  if (hydrate && consistency != mode::eventual_distributed)
    return error{errc::invalid_argument, "hydration needs eventual_distributed"};
  return impl_->patterns.add(glob, key_policy{consistency, ttl, hydrate});
}

key_policy node::policy(std::string_view key) const {
  return impl_->patterns.lookup(key);
}
pattern_registry& node::patterns() noexcept {
  return impl_->patterns;
}
l1_store& node::l1() noexcept {
  return *impl_->l1;
}
warp::storage& node::storage() noexcept {
  return *impl_->store;
}
const node_config& node::config() const noexcept {
  return impl_->config;
}
std::uint32_t node::id() const noexcept {
  return impl_->id;
}
version node::next_version() noexcept {
  return version{impl_->clock.next(), impl_->id};
}
caf::actor_system& node::system() noexcept {
  return *impl_->system;
}
std::uint16_t node::listen_port() const noexcept {
  return impl_->listen_port;
}

node_stats node::stats() const {
  auto& st = *impl_;
  node_stats out;
  out.l1 = st.l1->stats();
  out.storage_fetches = st.storage_fetches.load(std::memory_order_relaxed);
  out.storage_errors = st.storage_errors.load(std::memory_order_relaxed);
  out.storage_writes = st.storage_writes.load(std::memory_order_relaxed);
  out.coalesced_reads = st.coalescer.coalesced();
  return out;
}

}  // namespace warp
