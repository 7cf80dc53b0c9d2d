#include "warp/node.hpp"

#include "warp/endpoint.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <random>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/control_actor.hpp"
#include "bus/node_transport.hpp"
#include "runtime/core/log.hpp"
#include "runtime/node/node_impl.hpp"
#include "runtime/modes/strong.hpp"

namespace warp {

namespace {

using detail::log;

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

namespace {

void destroy_watcher_list(void* p) noexcept {
  delete static_cast<node::impl::watcher_list*>(p);
}

}  // namespace

node::impl::~impl() {
  delete watchers.load(std::memory_order_relaxed);
}

void node::impl::notify(const change_event& ev) {
  if (watchers.load(std::memory_order_relaxed) == nullptr) return;
  // The pin keeps the list alive while it is walked (unwatch retires, never frees, it).
  detail::epoch_guard pin;
  const watcher_list* list = watchers.load(std::memory_order_acquire);
  if (list == nullptr) return;
  for (auto& [id, fn] : *list) {
    try {
      fn(ev);
    } catch (const std::exception& e) {
      log()->warn("watcher {} threw: {}", id, e.what());
    }
  }
}

void node::impl::notify_local(change_event::kind what, std::string_view key, version ver) {
  if (watchers.load(std::memory_order_relaxed) == nullptr) return;
  // One event per thread, reused: its key keeps its capacity, so a watcher that ignores
  // the event (the sidecar when nobody subscribes or tracks) costs no allocation. A
  // watcher that writes from its callback gets a fresh event for the nested change.
  thread_local change_event reused;
  thread_local bool in_use = false;
  if (in_use) {
    notify({what, std::string{key}, ver, false});
    return;
  }
  in_use = true;
  struct release {
    ~release() { in_use = false; }
  } on_exit;
  reused.what = what;
  reused.key.assign(key);
  reused.ver = ver;
  reused.remote = false;
  notify(reused);
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

  auto logger = log();
  auto level = spdlog::level::from_str(cfg.log_level);
  if (level == spdlog::level::off && cfg.log_level != "off")
    return error{errc::invalid_argument, "unknown log level '" + cfg.log_level + "'"};
  logger->set_level(level);

  auto entries = pattern_registry::parse_specs(cfg.patterns);
  if (!entries) return entries.err();
  for (auto& entry : *entries)
    if (auto st = p->patterns.add(entry.glob, entry.policy); !st.ok()) return st;
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
    // Protected mode (as Redis's): without TLS anyone who reaches the port can read and
    // write every key and join the cluster, so only loopback unless the operator says so.
    const auto& tr = st.config.transport;
    if (!tr.tls() && !tr.insecure && !bus::is_loopback_host(endpoint->first))
      return error{errc::invalid_argument,
                   "refusing to listen on " + st.config.listen +
                       " without TLS: anyone who can reach it could read and write every key "
                       "and join the cluster. Give --tls-cert, --tls-key and --tls-ca, listen on "
                       "127.0.0.1, or pass --insecure"};
    if (tr.max_message_size < st.config.limits.max_value_size + 64 * 1024)
      return error{errc::invalid_argument,
                   "max-message-size (" + std::to_string(tr.max_message_size) +
                       ") must exceed max-value-size (" +
                       std::to_string(st.config.limits.max_value_size) +
                       ") by at least 64 KiB: a value travels in one message"};
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
      st.strong->start();
    }
    st.control = actors::spawn_control_actor(host, *n);
    auto port = bus::publish_on_node_port(host, st.control, endpoint->second, endpoint->first,
                                          std::chrono::seconds{30});
    if (!port)
      return error{errc::unreachable, "cannot listen on " + st.config.listen + ": " +
                                          port.err().message()};
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
  logger->info("node {} (id {:08x}) started: storage {}, listen {}", st.name, st.id,
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
    if (st.listen_port != 0) bus::unpublish_from_node_port(*st.system, st.control, st.listen_port);
    // Waits for the control actor: it holds a reference to this node.
    actors::stop_control_actor(*st.system, st.control);
    st.control = nullptr;
  }
  if (st.store) {
    if (auto err = st.store->flush(); !err.ok())
      log()->error("storage flush on stop failed: {}", err.to_string());
  }
  if (st.transport) bus::uninstall_node_transport(*st.system);
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
        // An owner may answer from an L1 that lags what this node already applied.
        if (st.cluster && policy.consistency == mode::eventual_distributed &&
            !st.cluster->may_cache(key, rec.ver))
          return;
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

namespace {

// Holds several write stripes at once, taken in ascending order (batched writes are the only
// holders of more than one: no deadlock), released in reverse.
class stripe_locks {
 public:
  stripe_locks(node::impl& st, std::vector<std::uint16_t> stripes)
      : st_(st), stripes_(std::move(stripes)) {
    std::sort(stripes_.begin(), stripes_.end());
    stripes_.erase(std::unique(stripes_.begin(), stripes_.end()), stripes_.end());
    for (auto s : stripes_) st_.write_locks[s].lock();
  }
  ~stripe_locks() {
    for (auto s = stripes_.rbegin(); s != stripes_.rend(); ++s) st_.write_locks[*s].unlock();
  }
  stripe_locks(const stripe_locks&) = delete;
  stripe_locks& operator=(const stripe_locks&) = delete;

 private:
  node::impl& st_;
  std::vector<std::uint16_t> stripes_;
};

// A put under the key's write stripe: storage first, then L1, the cluster and the watchers.
// On a storage error L1 keeps no value for the key (storage's outcome is unknown).
status put_locked(node::impl& st, std::string_view key, const key_policy& policy, record out,
                  bool notify = true) {
  if (auto err = st.store->store(key, out); !err.ok()) {
    st.storage_errors.fetch_add(1, std::memory_order_relaxed);
    st.coalescer.supersede(key);
    st.l1->erase(key);
    return err;
  }
  st.storage_writes.fetch_add(1, std::memory_order_relaxed);
  st.coalescer.supersede(key);
  const version ver = out.ver;
  const std::int64_t expires = out.expires_at_ms;
  auto value = make_buffer(std::move(out.value));
  if (st.cluster && policy.consistency == mode::eventual_distributed) {
    st.l1->put(key, value, ver, l1_expiry(expires, policy), true);
    st.cluster->published(key, ver, expires,
                          policy.hydrate ? bus::record_kind::value : bus::record_kind::invalidate,
                          *value);
  } else {
    st.l1->put(key, std::move(value), ver, l1_expiry(expires, policy), true);
  }
  if (notify) st.notify_local(change_event::kind::set, key, ver);
  return {};
}

version next_version_of(node::impl& st) noexcept {
  return version{st.clock.next(), st.id};
}

}  // namespace

status node::set_at(std::string_view key, std::string_view value, std::int64_t expires_at_ms) {
  auto& st = *impl_;
  if (st.stopped.load(std::memory_order_relaxed))
    return error{errc::shutting_down, "node is stopping"};
  if (auto err = check_key(st.config, key); !err.ok()) return err;
  auto policy = st.patterns.lookup(key);
  if (st.strong && policy.consistency == mode::strong_distributed) {
    auto r = st.strong->write(
        key,
        [&](const buffer*, std::int64_t) -> warp::result<mutation> {
          return mutation::put(std::string{value}, expires_at_ms);
        },
        false);
    return r ? status{} : r.err();
  }
  if (auto err = check_value(st.config, value); !err.ok()) return err;
  std::lock_guard<std::mutex> guard{st.write_lock(key)};
  return put_locked(st, key, policy,
                    record{std::string{value}, expires_at_ms, next_version_of(st)});
}

status node::set_many(std::span<const kv_write> items) {
  auto& st = *impl_;
  if (items.empty()) return {};
  if (items.size() == 1) return set_at(items[0].key, items[0].value, items[0].expires_at_ms);
  if (st.stopped.load(std::memory_order_relaxed))
    return error{errc::shutting_down, "node is stopping"};
  // Validate everything first: a batch with a bad key or value writes nothing.
  for (auto& item : items) {
    if (auto err = check_key(st.config, item.key); !err.ok()) return err;
    if (auto err = check_value(st.config, item.value); !err.ok()) return err;
  }
  // Locals, not per-thread scratch: a watcher may write from its callback (nested batch).
  std::vector<key_policy> policies;
  std::vector<std::uint16_t> stripes;
  policies.reserve(items.size());
  stripes.reserve(items.size());
  bool strong = false;
  for (auto& item : items) {
    policies.push_back(st.patterns.lookup(item.key));
    strong |= st.strong && policies.back().consistency == mode::strong_distributed;
    stripes.push_back(static_cast<std::uint16_t>(impl::stripe_of(item.key)));
  }
  if (strong) {
    // Quorum writes go one by one (each key is atomic; the batch is not a transaction).
    for (auto& item : items)
      if (auto err = set_at(item.key, item.value, item.expires_at_ms); !err.ok()) return err;
    return {};
  }
  // A pair followed by a later pair for the same key is applied and at once replaced:
  // storage, L1 and the cluster only see the last one (its watchers still see each, with
  // the version of the write that replaced it). next[i] = the later pair of i's key.
  constexpr std::size_t last = static_cast<std::size_t>(-1);
  std::vector<std::size_t> next(items.size(), last);
  if (items.size() <= 32) {
    for (std::size_t i = 0; i < items.size(); ++i)
      for (std::size_t j = i + 1; j < items.size(); ++j)
        if (stripes[j] == stripes[i] && items[j].key == items[i].key) {
          next[i] = j;
          break;
        }
  } else {
    std::unordered_map<std::string_view, std::size_t> later;
    later.reserve(items.size());
    for (std::size_t i = items.size(); i-- > 0;)
      if (auto [it, fresh] = later.emplace(items[i].key, i); !fresh) {
        next[i] = it->second;
        it->second = i;
      }
  }
  // Every stripe of the batch: each key's write is ordered with every other write of it.
  stripe_locks locked{st, std::move(stripes)};
  std::vector<version> vers(items.size());
  std::size_t written = 0;  // pairs [0, written) took effect
  status failure;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (next[i] != last) continue;
    auto& item = items[i];
    vers[i] = next_version_of(st);
    failure = put_locked(st, item.key, policies[i],
                         record{std::string{item.value}, item.expires_at_ms, vers[i]}, false);
    if (!failure.ok()) break;
    written = i + 1;
  }
  // Watchers, after every write reached L1: one event per pair, in order. A replaced pair
  // took effect when the pair that replaced it did.
  for (std::size_t i = items.size(); i-- > 0;)
    if (next[i] != last) next[i] = next[next[i]] == last ? next[i] : next[next[i]];
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::size_t final_pair = next[i] == last ? i : next[i];
    if (final_pair < written)
      st.notify_local(change_event::kind::set, items[i].key, vers[final_pair]);
  }
  return failure;
}

void node::update_many(std::span<const update_item> items, std::span<status> out) {
  auto& st = *impl_;
  if (st.stopped.load(std::memory_order_relaxed)) {
    for (std::size_t i = 0; i < items.size(); ++i)
      out[i] = error{errc::shutting_down, "node is stopping"};
    return;
  }
  for (std::size_t i = 0; i < items.size(); ++i) out[i] = status{};
  if (items.size() == 1) {
    auto r = write(items[0].key, *items[0].fn, true);
    if (!r) out[0] = r.err();
    return;
  }
  // The state of each distinct key while the batch runs.
  struct key_state {
    std::string_view key;
    key_policy policy;
    bool loaded = false;   // read from storage (or written by an item before)
    bool existed = false;  // present in storage before the batch
    bool dirty = false;    // some item changed it: write the final state
    buffer value;          // null = absent
    std::int64_t expires = 0;
    version ver;
  };
  // A change of the batch; it takes effect with its key's final write, so it carries that
  // write's version (the states between are never visible to anybody).
  struct change {
    std::size_t key;  // index into keys
    change_event::kind what;
  };
  std::vector<key_state> keys;
  std::vector<std::size_t> key_of;  // item -> index into keys
  std::vector<std::uint16_t> stripes;
  std::vector<change> changes;
  keys.reserve(items.size());
  key_of.reserve(items.size());
  stripes.reserve(items.size());
  changes.reserve(items.size());
  std::unordered_map<std::string_view, std::size_t> index;  // only for large batches
  bool strong = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto key = items[i].key;
    std::size_t k = keys.size();
    if (items.size() <= 32) {
      for (std::size_t j = 0; j < keys.size(); ++j)
        if (keys[j].key == key) {
          k = j;
          break;
        }
    } else if (auto [it, fresh] = index.emplace(key, keys.size()); !fresh) {
      k = it->second;
    }
    if (k == keys.size()) {
      keys.push_back(key_state{});
      keys.back().key = key;
      keys.back().policy = st.patterns.lookup(key);
      strong |= st.strong && keys.back().policy.consistency == mode::strong_distributed;
      stripes.push_back(static_cast<std::uint16_t>(impl::stripe_of(key)));
    }
    key_of.push_back(k);
  }
  if (strong) {
    // Quorum writes go one by one.
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto r = write(items[i].key, *items[i].fn, true);
      if (!r) out[i] = r.err();
    }
    return;
  }
  stripe_locks locked{st, std::move(stripes)};

  // 1. Every item decides, in order, on the state the items before it left.
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto& ks = keys[key_of[i]];
    if (auto err = check_key(st.config, ks.key); !err.ok()) {
      out[i] = err;
      continue;
    }
    if (!ks.loaded) {
      // As in write(): storage is the source of truth for the current value and expiry.
      auto rec = st.store->fetch(ks.key);
      st.storage_fetches.fetch_add(1, std::memory_order_relaxed);
      if (!rec) {
        st.storage_errors.fetch_add(1, std::memory_order_relaxed);
        out[i] = rec.err();
        continue;
      }
      ks.loaded = true;
      if (*rec) {
        ks.existed = true;
        ks.value = make_buffer(std::move((*rec)->value));
        ks.expires = (*rec)->expires_at_ms;
      }
    } else if (ks.value && ks.expires != 0 && ks.expires <= now_ms()) {
      ks.value = nullptr;  // expired during the batch, as storage would report it
    }
    auto decision = (*items[i].fn)(ks.value ? &ks.value : nullptr, ks.value ? ks.expires : 0);
    if (!decision) {
      out[i] = decision.err();
      continue;
    }
    switch (decision->what) {
      case mutation::kind::keep:
        break;
      case mutation::kind::put:
        if (auto err = check_value(st.config, decision->value); !err.ok()) {
          out[i] = err;
          break;
        }
        ks.value = make_buffer(std::move(decision->value));
        ks.expires = decision->expires_at_ms;
        ks.dirty = true;
        changes.push_back({key_of[i], change_event::kind::set});
        break;
      case mutation::kind::erase: {
        const bool had = ks.value != nullptr;
        ks.value = nullptr;
        ks.expires = 0;
        ks.dirty = true;
        if (had) changes.push_back({key_of[i], change_event::kind::removed});
        break;
      }
    }
  }

  // 2. Each changed key's final state is written through once.
  std::vector<char> failed(keys.size(), 0);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    auto& ks = keys[k];
    if (!ks.dirty) continue;
    ks.ver = next_version_of(st);
    status err;
    if (ks.value) {
      err = st.store->store(ks.key, record{*ks.value, ks.expires, ks.ver});
      st.coalescer.supersede(ks.key);
      if (err.ok()) {
        if (st.cluster && ks.policy.consistency == mode::eventual_distributed)
          st.cluster->published(
              ks.key, ks.ver, ks.expires,
              ks.policy.hydrate ? bus::record_kind::value : bus::record_kind::invalidate,
              *ks.value);
        st.l1->put(ks.key, std::move(ks.value), ks.ver, l1_expiry(ks.expires, ks.policy), true);
      } else {
        st.l1->erase(ks.key);  // storage's outcome is unknown
      }
    } else {
      err = st.store->remove(ks.key);
      st.coalescer.supersede(ks.key);
      st.l1->erase(ks.key);
      if (err.ok() && st.cluster && ks.policy.consistency == mode::eventual_distributed)
        st.cluster->published(ks.key, ks.ver, 0, bus::record_kind::erase, {});
    }
    if (!err.ok()) {
      st.storage_errors.fetch_add(1, std::memory_order_relaxed);
      failed[k] = 1;
      for (std::size_t i = 0; i < items.size(); ++i)
        if (key_of[i] == k && out[i].ok()) out[i] = err;
    } else {
      st.storage_writes.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // 3. Watchers see every change that took effect, in order, after it reached L1.
  for (auto& c : changes)
    if (!failed[c.key]) st.notify_local(c.what, keys[c.key].key, keys[c.key].ver);
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
  switch (decision->what) {
    case mutation::kind::keep:
      return decision;
    case mutation::kind::put: {
      if (auto err = check_value(st.config, decision->value); !err.ok()) return err;
      if (auto err =
              put_locked(st, key, policy,
                         record{decision->value, decision->expires_at_ms, next_version_of(st)});
          !err.ok())
        return err;
      return decision;
    }
    case mutation::kind::erase: {
      auto ver = next_version_of(st);
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
      if (current || !read_current) st.notify_local(change_event::kind::removed, key, ver);
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
  // storage.scan() returns keys greater than `after`, so the empty key (a valid key, the
  // smallest of all) never comes back from it: the first page asks for it by name.
  if (after.empty()) {
    auto empty_key = st.store->fetch({});  // adapters treat an expired record as absent
    if (!empty_key) return empty_key.err();
    if (*empty_key && (glob.empty() || glob_match(glob, {}))) page.keys.emplace_back();
  }
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
  auto* old = st.watchers.load(std::memory_order_relaxed);
  auto next =
      old ? std::make_unique<impl::watcher_list>(*old) : std::make_unique<impl::watcher_list>();
  next->emplace_back(id, std::move(fn));
  st.watchers.store(next.release(), std::memory_order_seq_cst);
  if (old) st.watcher_garbage.retire(old, &destroy_watcher_list, sizeof(*old));
  st.watcher_garbage.collect();
  return id;
}

void node::unwatch(watch_id id) {
  auto& st = *impl_;
  std::lock_guard<std::mutex> guard{st.watchers_mtx};
  auto* old = st.watchers.load(std::memory_order_relaxed);
  if (old == nullptr) return;
  auto next = std::make_unique<impl::watcher_list>(*old);
  std::erase_if(*next, [id](auto& w) { return w.first == id; });
  st.watchers.store(next->empty() ? nullptr : next.release(), std::memory_order_seq_cst);
  st.watcher_garbage.retire(old, &destroy_watcher_list, sizeof(*old));
  st.watcher_garbage.collect();
}

status node::register_pattern(std::string_view glob, mode consistency,
                              std::chrono::milliseconds ttl, bool hydrate) {
  if (ttl.count() < 0) return error{errc::invalid_argument, "negative TTL"};
  if (hydrate && consistency != mode::eventual_distributed)
    return error{errc::invalid_argument, "hydration needs eventual_distributed"};
  // A clustered node runs quorum replication only when started with strong_distributed
  // keys configured (strong_coordinator::wanted): a pattern added later would silently get
  // another mode's guarantees.
  if (consistency == mode::strong_distributed && !impl_->strong &&
      detail::strong_coordinator::clustered(impl_->config))
    return error{errc::unsupported,
                 "strong_distributed patterns must be configured when the node starts "
                 "(node_config.patterns, --pattern, or strong.members)"};
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
  if (auto& t = st.transport) {
    out.node_port.accepted = t->accepted.load(std::memory_order_relaxed);
    out.node_port.refused_oversize = t->refused_oversize.load(std::memory_order_relaxed);
    out.node_port.refused_pending = t->refused_pending.load(std::memory_order_relaxed);
    out.node_port.refused_tls = t->refused_tls.load(std::memory_order_relaxed);
    out.node_port.refused_malformed = t->refused_malformed.load(std::memory_order_relaxed);
  }
  return out;
}

}  // namespace warp
