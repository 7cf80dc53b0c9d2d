// warp::node: the facade. Each call checks what the node checks (stopping, key and value
// limits), looks up the key's policy and hands the call to the mode that serves it
// (runtime/modes/mode.hpp). Start and stop: node_start.cpp; the async API: node_async.cpp.
#include "warp/node.hpp"

#include <unordered_map>

#include "bus/node_transport.hpp"
#include "runtime/core/log.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/strong.hpp"
#include "runtime/modes/strong_raft.hpp"
#include "runtime/node/node_impl.hpp"
#include "warp/metrics.hpp"

namespace warp {

namespace {

void destroy_watcher_list(void* p) noexcept {
  delete static_cast<node::impl::watcher_list*>(p);
}

}  // namespace

// -- reads ------------------------------------------------------------------------------


result<buffer> node::get(std::string_view key) {
  auto& st = *impl_;
  latency_timer timed{st.latencies.get};
  st.read_seen(key);
  // strong_distributed keys in a cluster: a quorum read, never L1 (docs/strong.md).
  if (st.strong_mode) {
    auto policy = st.patterns.lookup(key);
    if (policy.consistency == mode::strong_distributed) {
      if (auto err = st.config.limits.check_key(key); !err) return err.err();
      return st.strong_mode->get(key, policy);
    }
  }
  if (auto hit = st.l1->get(key)) {
    if (st.refresh_ahead_on.load(std::memory_order_relaxed)) [[unlikely]]
      if (auto info = st.l1->info(key)) st.writes.hit(key, info->expires_at_ms);
    return std::move(*hit);
  }
  if (auto err = st.config.limits.check_key(key); !err) return err.err();
  auto policy = st.patterns.lookup(key);
  return st.mode_for(policy).get(key, policy);
}

result<buffer> node::get_or_load(std::string_view key, const loader& load) {
  auto& st = *impl_;
  auto policy = st.patterns.lookup(key);
  auto& m = st.mode_for(policy);
  if (m.kind() != mode::strong_distributed)
    if (auto hit = st.l1->get(key)) return std::move(*hit);
  if (auto err = st.config.limits.check_key(key); !err) return err.err();
  return m.get_or_load(key, policy, load);
}

std::optional<buffer> node::get_if_present(std::string_view key) {
  impl_->read_seen(key);
  return impl_->l1->get(key);
}

bool node::read_if_present_impl(std::string_view key, void* ctx,
                                void (*fn)(void*, std::string_view)) {
  auto& st = *impl_;
  st.read_seen(key);
  std::int64_t expires = 0;
  // Timed as a get when it hits (a miss is followed by get(), which times itself).
  auto start = std::chrono::steady_clock::now();
  bool hit = st.l1->read(key, [&](std::string_view bytes, const l1_entry_info& info) {
    fn(ctx, bytes);
    expires = info.expires_at_ms;
  });
  if (hit) st.latencies.get.observe(std::chrono::steady_clock::now() - start);
  if (hit && expires != 0 && st.refresh_ahead_on.load(std::memory_order_relaxed)) [[unlikely]]
    st.writes.hit(key, expires);
  return hit;
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
  if (auto err = st.config.limits.check_key(key); !err) return err.err();
  // A strong key on the Raft engine lives in its group's replicated map, not in this node's
  // storage: its expiry is read there, linearizably, as its value is.
  if (auto* raft = detail::strong_raft_of(*this);
      raft && st.patterns.lookup(key).consistency == mode::strong_distributed) {
    const std::string k{key};
    auto rows = raft->read_versioned(std::span<const std::string>{&k, 1});
    if (!rows) return rows.err();
    if (rows->empty() || !rows->front().present) return error{errc::not_found};
    auto stored = detail::strong_raft::decode_value(rows->front().value);
    if (!stored) return stored.err();
    return stored->expires_at_ms;
  }
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

result<void> node::set(std::string_view key, std::string_view value,
                 std::optional<std::chrono::milliseconds> ttl) {
  std::int64_t expires = 0;
  if (ttl) {
    if (ttl->count() < 0) return error{errc::invalid_argument, "negative TTL"};
    if (ttl->count() > 0) expires = now_ms() + ttl->count();
  }
  return set_at(key, value, expires);
}

result<void> node::set_at(std::string_view key, std::string_view value, std::int64_t expires_at_ms) {
  auto& st = *impl_;
  latency_timer timed{st.latencies.set};
  if (st.stopped.load(std::memory_order_relaxed))
    return error{errc::shutting_down, "node is stopping"};
  if (auto err = st.config.limits.check_key(key); !err) return err.err();
  auto policy = st.patterns.lookup(key);
  return st.mode_for(policy).set(key, policy, value, expires_at_ms);
}

result<void> node::set_many(std::span<const kv_write> items) {
  auto& st = *impl_;
  if (items.empty()) return {};
  if (items.size() == 1) return set_at(items[0].key, items[0].value, items[0].expires_at_ms);
  if (st.stopped.load(std::memory_order_relaxed))
    return error{errc::shutting_down, "node is stopping"};
  // Validate everything first: a batch with a bad key or value writes nothing.
  for (auto& item : items) {
    if (auto err = st.config.limits.check_key(item.key); !err) return err.err();
    if (auto err = st.config.limits.check_value(item.value); !err) return err.err();
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
      if (auto err = set_at(item.key, item.value, item.expires_at_ms); !err) return err;
    return {};
  }
  return st.writes.set_many(items, policies);
}

void node::update_many(std::span<const update_item> items, std::span<result<void>> out) {
  auto& st = *impl_;
  if (st.stopped.load(std::memory_order_relaxed)) {
    for (std::size_t i = 0; i < items.size(); ++i)
      out[i] = error{errc::shutting_down, "node is stopping"};
    return;
  }
  for (std::size_t i = 0; i < items.size(); ++i) out[i] = result<void>{};
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

result<void> node::remove(std::string_view key) {
  auto erased = write(
      key, [](const buffer*, std::int64_t) -> warp::result<mutation> { return mutation::erase(); },
      false);
  if (!erased) return erased.err();
  return {};
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
  if (auto err = st.config.limits.check_key(key); !err) return err.err();
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

result<void> node::clear() {
  auto& st = *impl_;
  auto err = st.store->clear();
  st.coalescer.supersede_all();  // a read-through in flight holds a value storage lost
  st.l1->clear();
  st.writes.clear_stale();
  if (!err) return err;
  auto ver = st.writes.next_version();
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

result<void> node::register_pattern(std::string_view glob, mode consistency,
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
  key_policy policy;
  policy.consistency = consistency;
  policy.ttl = ttl;
  policy.hydrate = hydrate;
  return impl_->patterns.add(glob, policy);
}

key_policy node::policy(std::string_view key) const {
  return impl_->patterns.lookup(key);
}
const pattern_registry& node::patterns() const noexcept {
  return impl_->patterns;
}

result<void> node::set_pattern(std::string_view spec) {
  if (impl_->stopped.load()) return error{errc::shutting_down, "node is stopping"};
  return impl_->pattern_table->set(spec);
}

result<void> node::remove_pattern(std::string_view glob) {
  if (impl_->stopped.load()) return error{errc::shutting_down, "node is stopping"};
  return impl_->pattern_table->remove(glob);
}

pattern_table_view node::pattern_table() const {
  return impl_->pattern_table->view();
}
const l1_store& node::l1() const noexcept {
  return *impl_->l1;
}
const warp::storage& node::storage() const noexcept {
  return *impl_->store;
}
result<void> node::check_storage() {
  return impl_->store->check();
}
bool node::evict_from_l1(std::string_view key) {
  impl_->coalescer.supersede(key);
  return impl_->l1->erase(key);
}
const node_latencies& node::latencies() const noexcept {
  return impl_->latencies;
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

std::vector<hot_key_entry> node::hot_keys(std::size_t limit) const {
  std::vector<hot_key_entry> out;
  auto& st = *impl_;
  if (!st.hot) return out;
  for (auto& h : st.hot->top(limit)) out.push_back({std::move(h.key), h.count});
  return out;
}

node_stats node::stats() const {
  auto& st = *impl_;
  node_stats out;
  out.l1 = st.l1->stats();
  out.storage_fetches = st.storage_fetches.load(std::memory_order_relaxed);
  out.storage_errors = st.storage_errors.load(std::memory_order_relaxed);
  out.storage_writes = st.storage_writes.load(std::memory_order_relaxed);
  out.coalesced_reads = st.coalescer.coalesced();
  out.stale_serves = st.stale_serves.load(std::memory_order_relaxed);
  out.soft_timeouts = st.soft_timeouts.load(std::memory_order_relaxed);
  out.refresh_aheads = st.refresh_aheads.load(std::memory_order_relaxed);
  out.hlc_remote_skew = st.clock.skewed();
  out.hlc_max_skew_seen_ms = st.clock.max_skew_seen_ms();
  if (st.hot) {
    auto c = st.hot->counters();
    out.hot_keys.sampled = c.sampled;
    out.hot_keys.decays = c.decays;
    out.hot_keys.tracked = c.tracked;
  }
  out.warmup.runs = st.warmup_runs.load(std::memory_order_relaxed);
  out.warmup.loaded = st.warmup_loaded.load(std::memory_order_relaxed);
  out.warmup.failed = st.warmup_failed.load(std::memory_order_relaxed);
  out.warmup.absent = st.warmup_absent.load(std::memory_order_relaxed);
  out.warmup.running = st.warmups_running.load(std::memory_order_relaxed) > 0;
  auto guards = st.writes.protection_stats();
  if (!guards.empty()) {
    auto entries = st.patterns.entries();
    for (const auto& g : guards) {
      std::string name = "(node)";
      for (const auto& e : entries)
        if (g.slot != 0 && e.policy.guard_slot == g.slot) name = e.glob;
      if (g.slot != 0 && name == "(node)") continue;  // a pattern since replaced or removed
      out.protection.push_back({std::move(name), std::string{detail::to_string(g.state)},
                                g.transitions, g.rate_limited, g.rejected_open});
    }
  }
  if (auto& t = st.transport) {
    out.node_port.accepted = t->accepted.load(std::memory_order_relaxed);
    out.node_port.refused_oversize = t->refused_oversize.load(std::memory_order_relaxed);
    out.node_port.refused_pending = t->refused_pending.load(std::memory_order_relaxed);
    out.node_port.refused_tls = t->refused_tls.load(std::memory_order_relaxed);
    out.node_port.refused_malformed = t->refused_malformed.load(std::memory_order_relaxed);
  }
  fill_validator_stats(st, out);
  return out;
}

}  // namespace warp
