#include "warp/node.hpp"

#include "warp/endpoint.hpp"
#include "warp/metrics.hpp"

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
  status set(std::string_view key, std::string_view value,
             std::optional<std::chrono::milliseconds> ttl) override {
    return n_.set(key, value, ttl);
  }
  status remove(std::string_view key) override { return n_.remove(key); }
  std::string stats_json() override { return warp::stats_json(n_); }

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
  p->name = display_name(cfg);
  p->id = random_node_id();

  if (auto valid = cfg.validate(); !valid) return valid.err();
  auto logger = log();
  logger->set_level(spdlog::level::from_str(cfg.log_level));

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
  p->executor = std::make_unique<detail::work_pool>(cfg.executor_threads);

  auto n = std::unique_ptr<node>(new node(std::move(p)));
  auto& st = *n->impl_;
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
      st.strong->start();
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
    st.cluster = std::make_unique<detail::cluster>(*n, st, address);
    detail::register_cluster(*n, st.cluster.get());
    st.cluster->start();
    st.eventual_mode = detail::make_eventual_mode(st.writes, *st.cluster);
    if (strong && !st.strong) {
      st.strong = std::make_unique<detail::strong_coordinator>(st, address);
      st.strong->start();
      st.strong_mode = detail::make_strong_distributed_mode(*st.strong);
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
  // Nothing posts any more but the async API, which now fails fast: finish what is queued.
  if (st.executor) st.executor->shutdown();
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
//
// Every call below checks what the node checks (stopping, key and value limits), looks up
// the key's policy and hands the call to the mode that serves it (runtime/src/mode.hpp).


result<buffer> node::get(std::string_view key) {
  auto& st = *impl_;
  // strong_distributed keys in a cluster: a quorum read, never L1 (docs/strong.md).
  if (st.strong_mode) {
    auto policy = st.patterns.lookup(key);
    if (policy.consistency == mode::strong_distributed) {
      if (auto err = st.config.limits.check_key(key); !err.ok()) return err;
      return st.strong_mode->get(key, policy);
    }
  }
  if (auto hit = st.l1->get(key)) return std::move(*hit);
  if (auto err = st.config.limits.check_key(key); !err.ok()) return err;
  auto policy = st.patterns.lookup(key);
  return st.mode_for(policy).get(key, policy);
}

result<buffer> node::get_or_load(std::string_view key, const loader& load) {
  auto& st = *impl_;
  auto policy = st.patterns.lookup(key);
  auto& m = st.mode_for(policy);
  if (m.kind() != mode::strong_distributed)
    if (auto hit = st.l1->get(key)) return std::move(*hit);
  if (auto err = st.config.limits.check_key(key); !err.ok()) return err;
  return m.get_or_load(key, policy, load);
}

std::optional<buffer> node::get_if_present(std::string_view key) {
  return impl_->l1->get(key);
}

bool node::read_if_present_impl(std::string_view key, void* ctx,
                                void (*fn)(void*, std::string_view)) {
  return impl_->l1->read(key,
                         [&](std::string_view bytes, const l1_entry_info&) { fn(ctx, bytes); });
}

std::vector<result<buffer>> node::get_many(std::span<const std::string_view> keys) {
  std::vector<result<buffer>> out;
  out.reserve(keys.size());
  for (auto key : keys) out.push_back(get(key));
  return out;
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
  if (auto err = st.config.limits.check_key(key); !err.ok()) return err;
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
    st.l1->put(keys[i], make_buffer(rec->value), rec->ver,
               detail::l1_expiry(rec->expires_at_ms, policy), true);
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
  auto& st = *impl_;
  if (st.stopped.load(std::memory_order_relaxed))
    return error{errc::shutting_down, "node is stopping"};
  if (auto err = st.config.limits.check_key(key); !err.ok()) return err;
  auto policy = st.patterns.lookup(key);
  return st.mode_for(policy).set(key, policy, value, expires_at_ms);
}

status node::set_many(std::span<const kv_write> items) {
  auto& st = *impl_;
  if (items.empty()) return {};
  if (items.size() == 1) return set_at(items[0].key, items[0].value, items[0].expires_at_ms);
  if (st.stopped.load(std::memory_order_relaxed))
    return error{errc::shutting_down, "node is stopping"};
  // Validate everything first: a batch with a bad key or value writes nothing.
  for (auto& item : items) {
    if (auto err = st.config.limits.check_key(item.key); !err.ok()) return err;
    if (auto err = st.config.limits.check_value(item.value); !err.ok()) return err;
  }
  // A local, not per-thread scratch: a watcher may write from its callback (nested batch).
  std::vector<key_policy> policies;
  policies.reserve(items.size());
  bool batches = true;
  for (auto& item : items) {
    policies.push_back(st.patterns.lookup(item.key));
    batches &= st.mode_for(policies.back()).batches();
  }
  if (!batches) {
    // One by one (each key is atomic; the batch is not a transaction).
    for (auto& item : items)
      if (auto err = set_at(item.key, item.value, item.expires_at_ms); !err.ok()) return err;
    return {};
  }
  return st.writes.set_many(items, policies);
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
  // The distinct keys of the batch, in first-seen order.
  std::vector<detail::write_path::update_key> keys;
  std::vector<std::size_t> key_of;  // item -> index into keys
  keys.reserve(items.size());
  key_of.reserve(items.size());
  std::unordered_map<std::string_view, std::size_t> index;  // only for large batches
  bool batches = true;
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
      keys.push_back({key, st.patterns.lookup(key)});
      batches &= st.mode_for(keys.back().policy).batches();
    }
    key_of.push_back(k);
  }
  if (!batches) {
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto r = write(items[i].key, *items[i].fn, true);
      if (!r) out[i] = r.err();
    }
    return;
  }
  st.writes.update_many(items, keys, key_of, out);
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
  if (auto err = st.config.limits.check_key(key); !err.ok()) return err;
  auto policy = st.patterns.lookup(key);
  return st.mode_for(policy).write(key, policy, fn, read_current);
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
  auto ver = st.writes.next_version();
  // Storage is shared: every other node's L1 now holds values storage no longer has.
  if (st.cluster) st.cluster->published({}, ver, 0, bus::record_kind::clear, {});
  st.notify({change_event::kind::cleared, {}, ver, false});
  return {};
}

// -- the async API ----------------------------------------------------------------------
//
// Each call is the blocking call run on the executor. strong_distributed keys too, for
// now: their coordinator parks the executor thread for the quorum round.

bool node::post(std::function<void()> job) {
  auto& st = *impl_;
  if (st.stopped.load(std::memory_order_relaxed) || !st.executor) return false;
  return st.executor->post(std::move(job));
}

namespace {

error stopping() {
  return error{errc::shutting_down, "node is stopping"};
}

/// The future form of an async call: a promise the callback fulfils.
template <class T, class Start>
std::future<T> as_future(Start&& start) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  start([p](T outcome) { p->set_value(std::move(outcome)); });
  return f;
}

}  // namespace

void node::get_async(std::string key, std::function<void(result<buffer>)> done) {
  // An L1 hit needs no I/O: answered on the caller's thread.
  if (auto hit = get_if_present(key)) return done(std::move(*hit));
  auto job = [this, key = std::move(key), done]() { done(get(key)); };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<buffer>> node::get_async(std::string key) {
  return as_future<result<buffer>>([&](auto done) { get_async(std::move(key), std::move(done)); });
}

void node::get_many_async(std::vector<std::string> keys,
                          std::function<void(std::vector<result<buffer>>)> done) {
  auto job = [this, keys = std::move(keys), done]() {
    std::vector<std::string_view> views(keys.begin(), keys.end());
    done(get_many(views));
  };
  if (!post(std::move(job))) done(std::vector<result<buffer>>(keys.size(), stopping()));
}

std::future<std::vector<result<buffer>>> node::get_many_async(std::vector<std::string> keys) {
  return as_future<std::vector<result<buffer>>>(
      [&](auto done) { get_many_async(std::move(keys), std::move(done)); });
}

void node::set_async(std::string key, std::string value,
                     std::optional<std::chrono::milliseconds> ttl,
                     std::function<void(status)> done) {
  auto job = [this, key = std::move(key), value = std::move(value), ttl, done]() {
    done(set(key, value, ttl));
  };
  if (!post(std::move(job))) done(stopping());
}

std::future<status> node::set_async(std::string key, std::string value,
                                    std::optional<std::chrono::milliseconds> ttl) {
  return as_future<status>(
      [&](auto done) { set_async(std::move(key), std::move(value), ttl, std::move(done)); });
}

void node::remove_async(std::string key, std::function<void(status)> done) {
  auto job = [this, key = std::move(key), done]() { done(remove(key)); };
  if (!post(std::move(job))) done(stopping());
}

std::future<status> node::remove_async(std::string key) {
  return as_future<status>([&](auto done) { remove_async(std::move(key), std::move(done)); });
}

void node::update_async(
    std::string key,
    std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)> fn,
    std::function<void(result<mutation>)> done) {
  auto job = [this, key = std::move(key), fn = std::move(fn), done]() { done(update(key, fn)); };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<mutation>> node::update_async(
    std::string key,
    std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)> fn) {
  return as_future<result<mutation>>(
      [&](auto done) { update_async(std::move(key), std::move(fn), std::move(done)); });
}

void node::get_or_load_async(std::string key, loader load,
                             std::function<void(result<buffer>)> done) {
  if (auto hit = get_if_present(key)) return done(std::move(*hit));
  auto job = [this, key = std::move(key), load = std::move(load), done]() {
    done(get_or_load(key, load));
  };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<buffer>> node::get_or_load_async(std::string key, loader load) {
  return as_future<result<buffer>>(
      [&](auto done) { get_or_load_async(std::move(key), std::move(load), std::move(done)); });
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
const pattern_registry& node::patterns() const noexcept {
  return impl_->patterns;
}
const l1_store& node::l1() const noexcept {
  return *impl_->l1;
}
const warp::storage& node::storage() const noexcept {
  return *impl_->store;
}
status node::check_storage() {
  return impl_->store->check();
}
bool node::evict_from_l1(std::string_view key) {
  impl_->coalescer.supersede(key);
  return impl_->l1->erase(key);
}
const node_config& node::config() const noexcept {
  return impl_->config;
}
std::uint32_t node::id() const noexcept {
  return impl_->id;
}
version node::next_version() noexcept {
  return impl_->writes.next_version();
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
