#include "runtime/modes/write_path.hpp"

#include <algorithm>
#include <future>
#include <limits>
#include <unordered_map>

#include "runtime/modes/federated_merge.hpp"
#include "runtime/modes/node_state.hpp"

namespace warp::detail {

std::int64_t l1_expiry(std::int64_t value_expiry, const key_policy& policy) {
  if (policy.ttl.count() <= 0) return value_expiry;
  auto cache_expiry = now_ms() + policy.ttl.count();
  return value_expiry == 0 ? cache_expiry : std::min(value_expiry, cache_expiry);
}

namespace {
// Set while apply_federated commits a change from another region, so the commit is not
// handed back to the federation as a local change (it forwards it by its own rule).
thread_local bool applying_federated = false;

void ship_federated(node_state& st, const committed_change& c, const key_policy& policy) {
  if (policy.federated.empty() || applying_federated) return;
  if (auto* sink = st.federation.load(std::memory_order_acquire)) sink->local_change(c, policy);
}
}  // namespace

version write_path::next_version() noexcept {
  return version{st_.clock.next(), st_.id};
}

write_path::stripe_set::stripe_set(write_path& p, std::vector<std::uint16_t> stripes)
    : p_(p), stripes_(std::move(stripes)) {
  std::sort(stripes_.begin(), stripes_.end());
  stripes_.erase(std::unique(stripes_.begin(), stripes_.end()), stripes_.end());
  for (auto s : stripes_) p_.locks_[s].lock();
}

write_path::stripe_set::~stripe_set() {
  for (auto s = stripes_.rbegin(); s != stripes_.rend(); ++s) p_.locks_[*s].unlock();
}

// -- the commit sequence ----------------------------------------------------------------

void write_path::failed(std::string_view key, consistency_mode& m, version ver) {
  st_.storage_errors.fetch_add(1, std::memory_order_relaxed);
  st_.l1->erase(key);
  if (stale_used_.load(std::memory_order_relaxed)) drop_stale(key);
  m.unknown_outcome(key, ver);
}

result<void> write_path::commit_put(std::string_view key, const key_policy& policy, consistency_mode& m,
                              record rec) {
  const version ver = rec.ver;
  const std::int64_t expires = rec.expires_at_ms;
  auto err = st_.store->store(key, rec);
  // A read-through in flight holds what storage had before: it must not fill L1.
  st_.coalescer.supersede(key);
  if (!err) {
    failed(key, m, ver);
    return err;
  }
  auto value = make_buffer(std::move(rec.value));
  const auto expiry = l1_expiry(expires, policy);
  st_.l1->put(key, value, ver, expiry, true);
  if (auto ms = effective(policy).max_stale.count(); ms > 0)
    keep_stale(key, value, expiry, ms);
  else if (stale_used_.load(std::memory_order_relaxed))
    drop_stale(key);
  const committed_change change{committed_change::kind::put, key, ver, expires, *value,
                                policy.hydrate};
  m.committed(change);
  ship_federated(st_, change, policy);
  st_.storage_writes.fetch_add(1, std::memory_order_relaxed);
  return {};
}

result<void> write_path::commit_erase(std::string_view key, const key_policy& policy, consistency_mode& m,
                                version ver) {
  auto err = st_.store->remove(key);
  st_.coalescer.supersede(key);
  st_.l1->erase(key);
  if (stale_used_.load(std::memory_order_relaxed)) drop_stale(key);
  if (!err) {
    failed(key, m, ver);
    return err;
  }
  const committed_change change{committed_change::kind::erase, key, ver, 0, {}};
  m.committed(change);
  ship_federated(st_, change, policy);
  st_.storage_writes.fetch_add(1, std::memory_order_relaxed);
  return {};
}

result<bool> write_path::apply_federated(const federated_write& w, const key_policy& policy,
                                         consistency_mode& m, version floor) {
  if (auto err = st_.config.limits.check_key(w.key); !err) return err.err();
  if (!w.erase)
    if (auto err = st_.config.limits.check_value(w.value); !err) return err.err();
  std::lock_guard<std::mutex> guard{lock_of(w.key)};
  // Versions this node hands out from now on order after the change (HLC receive rule).
  st_.clock.observe(w.ver.hlc);
  version current = floor;
  if (auto info = st_.l1->info(w.key)) current = std::max(current, info->ver);
  auto stored = st_.store->fetch(w.key);
  if (!stored) return stored.err();
  if (*stored) current = std::max(current, (*stored)->ver);
  if (!(w.ver > current)) return false;
  applying_federated = true;
  struct reset {
    ~reset() { applying_federated = false; }
  } on_exit;
  if (w.erase) {
    if (auto err = commit_erase(w.key, policy, m, w.ver); !err) return err.err();
    st_.notify_local(change_event::kind::removed, w.key, w.ver);
  } else {
    if (auto err = commit_put(w.key, policy, m, record{std::string{w.value}, w.expires_at_ms, w.ver});
        !err)
      return err.err();
    st_.notify_local(change_event::kind::set, w.key, w.ver);
  }
  return true;
}

result<merge_outcome> apply_merged(node_state& st, const federated_write& w,
                                   std::string_view merge_policy, const key_policy& policy,
                                   consistency_mode& m, version floor) {
  if (auto err = st.config.limits.check_key(w.key); !err) return err.err();
  if (auto err = st.config.limits.check_value(w.value); !err) return err.err();
  std::lock_guard<std::mutex> guard{st.writes.lock_of(w.key)};
  st.clock.observe(w.ver.hlc);
  // The local side: storage is written first, so it is the truth where it holds the key;
  // L1 alone may hold it on a node whose storage is not shared (a hydrated copy).
  std::optional<record> local;
  auto stored = st.store->fetch(w.key);
  if (!stored) return stored.err();
  if (*stored) local = std::move(**stored);
  if (auto info = st.l1->info(w.key); info && (!local || local->ver < info->ver))
    if (auto v = st.l1->get(w.key))
      local = record{std::string{**v}, info->expires_at_ms, info->ver};
  // Nothing here and the incoming state older than a delete remembered here: the delete
  // wins (as under lww), so a late state does not resurrect the key.
  if (!local && !(w.ver > floor)) return merge_outcome::unchanged;
  std::optional<merge_input> here;
  if (local) here = merge_input{local->value, local->ver};
  auto merged = st.merges.merge(merge_policy, here, merge_input{w.value, w.ver});
  if (!merged) return merged.err();
  if (local && merged->value == local->value) return merge_outcome::unchanged;
  const bool taken = merged->value == w.value;
  version ver = w.ver;
  if (!taken || (local && !(local->ver < ver))) {
    // A join is a value neither side wrote: it gets a version above both, so L1 and the
    // region's replication (which keep the newer version) take it everywhere.
    ver = st.writes.next_version();
    auto top = std::max(w.ver, local ? local->ver : version{});
    if (!(top < ver)) ver = version{top.hlc + 1, st.id};
  }
  auto expires = std::max(w.expires_at_ms, local ? local->expires_at_ms : 0);
  if (w.expires_at_ms == 0 || (local && local->expires_at_ms == 0)) expires = 0;
  applying_federated = true;
  struct reset {
    ~reset() { applying_federated = false; }
  } on_exit;
  if (auto err =
          st.writes.commit_put(w.key, policy, m, record{std::move(merged->value), expires, ver});
      !err)
    return err.err();
  st.notify_local(change_event::kind::set, w.key, ver);
  return taken ? merge_outcome::taken : merge_outcome::joined;
}

// -- storage protection -----------------------------------------------------------------

std::shared_ptr<storage_guard> write_path::guard_for(const key_policy& policy) {
  std::lock_guard<std::mutex> guard{guards_mtx_};
  auto& slot = guards_[policy.guard_slot];
  if (!slot) {
    // A pattern's own protection, its unset fields from the node-wide policy.
    const auto& node = st_.config.default_policy.guard;
    auto p = policy.guard_slot == 0 ? node : policy.guard;
    if (p.rate <= 0) p.rate = node.rate;
    if (p.breaker_failures == 0) p.breaker_failures = node.breaker_failures;
    if (p.breaker_ratio <= 0) p.breaker_ratio = node.breaker_ratio;
    if (p.breaker_cooldown.count() <= 0) p.breaker_cooldown = node.breaker_cooldown;
    if (p.breaker_cooldown.count() <= 0) p.breaker_cooldown = std::chrono::seconds{5};
    breaker_options b;
    b.failures = p.breaker_failures;
    b.failure_ratio = p.breaker_ratio;
    b.cooldown = p.breaker_cooldown;
    slot = std::make_shared<storage_guard>(p.rate, std::max(1.0, p.rate), b);
  }
  return slot;
}

void write_path::retire_guards(const std::vector<std::uint32_t>& live) {
  std::lock_guard<std::mutex> guard{guards_mtx_};
  std::erase_if(guards_, [&](const auto& g) {
    return g.first != 0 && std::find(live.begin(), live.end(), g.first) == live.end();
  });
}

std::size_t write_path::guard_count() const {
  std::lock_guard<std::mutex> guard{guards_mtx_};
  return guards_.size();
}

result<std::optional<record>> write_path::guarded_fetch(std::string_view key,
                                                        const key_policy& policy) {
  auto g = guard_for(policy);
  if (auto ok = g->admit(steady_now()); !ok) return ok.err();
  st_.storage_fetches.fetch_add(1, std::memory_order_relaxed);
  auto r = st_.store->fetch(key);
  if (!r) st_.storage_errors.fetch_add(1, std::memory_order_relaxed);
  g->report(steady_now(), r.code());
  return r;
}

std::vector<write_path::guard_stats> write_path::protection_stats() const {
  std::vector<guard_stats> out;
  std::lock_guard<std::mutex> guard{guards_mtx_};
  for (const auto& [slot, g] : guards_)
    out.push_back({slot, g->state(), g->transitions(), g->rate_limited(), g->rejected_open()});
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.slot < b.slot; });
  return out;
}

// -- reads ------------------------------------------------------------------------------

result<std::optional<record>> write_path::fetch_fill(std::string_view key, const key_policy& policy,
                                                     consistency_mode& m, buffer* filled) {
  return st_.coalescer.run(
      key,
      [&]() -> result<std::optional<record>> {
        if (auto r = m.fetch_elsewhere(key)) return std::move(*r);
        return guarded_fetch(key, policy);
      },
      [&](const record& rec) {
        auto value = make_buffer(rec.value);
        if (filled) *filled = value;
        if (!m.may_cache(key, rec.ver)) return;
        auto expiry = l1_expiry(rec.expires_at_ms, policy);
        // The same version already cached (a refresh-ahead): storage confirmed it, so it
        // gets the new expiry. No write can interleave: we hold the coalescer's stripe.
        if (st_.l1->put(key, value, rec.ver, expiry, true) == put_outcome::stale)
          if (auto info = st_.l1->info(key); info && info->ver == rec.ver)
            st_.l1->set_expiry(key, expiry);
        if (auto ms = effective(policy).max_stale.count(); ms > 0)
          keep_stale(key, value, expiry, ms);
      });
}

namespace {
bool storage_failed(errc c) noexcept {
  return c == errc::storage_unavailable || c == errc::storage_error || c == errc::timeout;
}
}  // namespace

result<buffer> write_path::read(std::string_view key, const key_policy& policy,
                                consistency_mode& m) {
  const auto prot = effective(policy);
  const bool stale_ok = prot.max_stale.count() > 0 && stale_used_.load(std::memory_order_relaxed);
  buffer filled;
  std::optional<result<std::optional<record>>> outcome;
  // Soft timeout: the fetch runs on the executor so this caller can stop waiting for it
  // and answer with the stale copy, while the fetch goes on and fills L1. Not from the
  // executor itself, whose threads the fetch may need.
  if (stale_ok && prot.soft_timeout.count() > 0 && st_.executor &&
      !st_.executor->on_pool_thread()) {
    if (auto stale = stale_value(key)) {
      auto done = std::make_shared<std::promise<result<std::optional<record>>>>();
      auto answer = done->get_future();
      consistency_mode* mode = &m;
      bool posted = st_.executor->post([this, k = std::string{key}, policy, mode, done] {
        done->set_value(fetch_fill(k, policy, *mode, nullptr));
      });
      if (posted) {
        if (answer.wait_for(prot.soft_timeout) != std::future_status::ready) {
          st_.soft_timeouts.fetch_add(1, std::memory_order_relaxed);
          st_.stale_serves.fetch_add(1, std::memory_order_relaxed);
          return std::move(*stale);
        }
        outcome = answer.get();
      }
    }
  }
  if (!outcome) outcome = fetch_fill(key, policy, m, &filled);
  auto& out = *outcome;
  if (!out) {
    if (stale_ok && storage_failed(out.code()))
      if (auto stale = stale_value(key)) {
        st_.stale_serves.fetch_add(1, std::memory_order_relaxed);
        return std::move(*stale);
      }
    return out.err();
  }
  if (!*out) {
    if (stale_used_.load(std::memory_order_relaxed)) drop_stale(key);  // storage: gone
    return error{errc::not_found};
  }
  if (filled) return filled;
  return make_buffer((*out)->value);
}

// -- stale copies and refresh-ahead -----------------------------------------------------

key_policy::protection write_path::effective(const key_policy& policy) const noexcept {
  const auto& node = st_.config.default_policy.guard;
  auto p = policy.guard;
  if (p.max_stale.count() <= 0) p.max_stale = node.max_stale;
  if (p.soft_timeout.count() <= 0) p.soft_timeout = node.soft_timeout;
  if (p.refresh_ahead_pct == 0) p.refresh_ahead_pct = node.refresh_ahead_pct;
  return p;
}

write_path::stale_stripe& write_path::stale_for(std::string_view key) {
  return stale_[std::hash<std::string_view>{}(key) % stale_.size()];
}

void write_path::keep_stale(std::string_view key, const buffer& value, std::int64_t l1_expiry_ms,
                            std::int64_t max_stale_ms) {
  stale_used_.store(true, std::memory_order_relaxed);
  const std::int64_t until =
      l1_expiry_ms == 0 ? std::numeric_limits<std::int64_t>::max() : l1_expiry_ms + max_stale_ms;
  // Bounded like L1 (or 64k copies): over the bound, expired copies go first, then any.
  const std::size_t bound = std::max<std::size_t>(
      64, (st_.config.l1.max_entries ? st_.config.l1.max_entries : std::size_t{1} << 16) /
              stale_.size());
  auto& s = stale_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  if (auto it = s.copies.find(std::string{key}); it != s.copies.end()) {
    it->second = {value, until, max_stale_ms};
    return;
  }
  if (s.copies.size() >= bound) {
    const auto now = now_ms();
    std::erase_if(s.copies, [&](const auto& kv) { return kv.second.usable_until_ms < now; });
    if (s.copies.size() >= bound) s.copies.erase(s.copies.begin());
  }
  s.copies.emplace(std::string{key}, stale_copy{value, until, max_stale_ms});
}

void write_path::drop_stale(std::string_view key) {
  auto& s = stale_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  if (auto it = s.copies.find(std::string{key}); it != s.copies.end()) s.copies.erase(it);
}

void write_path::clear_stale() {
  if (!stale_used_.load(std::memory_order_relaxed)) return;
  for (auto& s : stale_) {
    std::lock_guard<std::mutex> guard{s.mtx};
    s.copies.clear();
  }
}

void write_path::invalidated(std::string_view key) {
  if (!stale_used_.load(std::memory_order_relaxed)) return;
  auto& s = stale_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  if (auto it = s.copies.find(std::string{key}); it != s.copies.end())
    it->second.usable_until_ms =
        std::min(it->second.usable_until_ms, now_ms() + it->second.max_stale_ms);
}

std::optional<buffer> write_path::stale_value(std::string_view key) {
  auto& s = stale_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  auto it = s.copies.find(std::string{key});
  if (it == s.copies.end()) return std::nullopt;
  if (it->second.usable_until_ms < now_ms()) {
    s.copies.erase(it);  // past max_stale: never served again
    return std::nullopt;
  }
  return it->second.value;
}

void write_path::hit(std::string_view key, std::int64_t expires_at_ms) {
  if (expires_at_ms == 0) return;
  auto policy = st_.patterns.lookup(key);
  const auto pct = effective(policy).refresh_ahead_pct;
  if (pct == 0 || policy.ttl.count() <= 0 || policy.consistency == mode::strong_distributed) return;
  const auto left = expires_at_ms - now_ms();
  if (left * 100 > policy.ttl.count() * static_cast<std::int64_t>(pct)) return;
  if (!st_.executor) return;
  {
    std::lock_guard<std::mutex> guard{refresh_mtx_};
    if (!refreshing_.emplace(key).second) return;  // one refresh per key at a time
  }
  st_.refresh_aheads.fetch_add(1, std::memory_order_relaxed);
  bool posted = st_.executor->post([this, k = std::string{key}, policy] {
    // Coalesced with any miss of the key; fills L1 (a new expiry) unless a write won.
    (void)fetch_fill(k, policy, st_.mode_for(policy), nullptr);
    std::lock_guard<std::mutex> guard{refresh_mtx_};
    refreshing_.erase(k);
  });
  if (!posted) {
    std::lock_guard<std::mutex> guard{refresh_mtx_};
    refreshing_.erase(std::string{key});
  }
}

result<std::optional<record>> write_path::read_local(std::string_view key) {
  std::optional<record> hit;
  st_.l1->read(key, [&](std::string_view bytes, const l1_entry_info& info) {
    hit = record{std::string{bytes}, info.expires_at_ms, info.ver};
  });
  if (hit) return hit;
  if (auto err = st_.config.limits.check_key(key); !err) return err.err();
  auto policy = st_.patterns.lookup(key);
  return st_.coalescer.run(
      key, [&]() -> result<std::optional<record>> { return guarded_fetch(key, policy); },
      [&](const record& rec) {
        st_.l1->put(key, make_buffer(rec.value), rec.ver, l1_expiry(rec.expires_at_ms, policy),
                    true);
      });
}

result<buffer> write_path::get_or_load(std::string_view key, const key_policy& policy,
                                       consistency_mode& m, const loader& load) {
  auto found = read(key, policy, m);
  if (found || found.code() != errc::not_found) return found;
  // Coalesced like a storage fetch: the leader loads and commits (which fills L1 and
  // supersedes its own flight, so the flight's fill does nothing).
  auto outcome = st_.coalescer.run(
      key,
      [&]() -> result<std::optional<record>> {
        auto loaded = load(key);
        if (!loaded) return loaded.err();
        if (!*loaded) return std::optional<record>{};
        if (auto err = st_.config.limits.check_value(**loaded); !err) return err.err();
        std::lock_guard<std::mutex> guard{lock_of(key)};
        record rec{std::move(**loaded), 0, next_version()};
        if (auto err = commit_put(key, policy, m, rec); !err) return err.err();
        return std::optional<record>{std::move(rec)};
      },
      [](const record&) {});
  if (!outcome) return outcome.err();
  if (!*outcome) return error{errc::not_found};
  return make_buffer((*outcome)->value);
}

// -- writes -----------------------------------------------------------------------------

result<void> write_path::put(std::string_view key, const key_policy& policy, consistency_mode& m,
                       std::string_view value, std::int64_t expires_at_ms) {
  if (auto err = st_.config.limits.check_value(value); !err) return err.err();
  std::lock_guard<std::mutex> guard{lock_of(key)};
  const version ver = next_version();
  if (auto err = commit_put(key, policy, m, record{std::string{value}, expires_at_ms, ver});
      !err)
    return err;
  st_.notify_local(change_event::kind::set, key, ver);
  return {};
}

result<mutation> write_path::write(std::string_view key, const key_policy& policy,
                                   consistency_mode& m, const write_fn& fn, bool read_current) {
  std::lock_guard<std::mutex> guard{lock_of(key)};
  // The current value comes from storage, the source of truth for its expiry (L1 may hold
  // a cache-TTL-shortened expiry, or may have evicted the key). Blind writes skip the read.
  buffer current;
  std::int64_t current_expiry = 0;
  if (read_current) {
    // Through the pattern's limiter and breaker like a read-through: an INCR storm must not
    // hammer a storage the breaker has given up on, nor bypass the fetch rate.
    auto rec = guarded_fetch(key, policy);
    if (!rec) return rec.err();
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
      if (auto err = st_.config.limits.check_value(decision->value); !err) return err.err();
      const version ver = next_version();
      if (auto err =
              commit_put(key, policy, m, record{decision->value, decision->expires_at_ms, ver});
          !err)
        return err.err();
      st_.notify_local(change_event::kind::set, key, ver);
      return decision;
    }
    case mutation::kind::erase: {
      const version ver = next_version();
      if (auto err = commit_erase(key, policy, m, ver); !err) return err.err();
      // A blind remove does not know whether the key existed; watchers get the event anyway.
      if (current || !read_current) st_.notify_local(change_event::kind::removed, key, ver);
      return decision;
    }
  }
  return decision;
}

result<void> write_path::set_many(std::span<const kv_write> items, std::span<const key_policy> policies) {
  std::vector<std::uint16_t> stripe_ids;
  stripe_ids.reserve(items.size());
  for (auto& item : items) stripe_ids.push_back(static_cast<std::uint16_t>(stripe_of(item.key)));
  // A pair followed by a later pair for the same key is applied and at once replaced:
  // storage, L1 and the cluster only see the last one (its watchers still see each, with
  // the version of the write that replaced it). next[i] = the later pair of i's key.
  constexpr std::size_t last = static_cast<std::size_t>(-1);
  std::vector<std::size_t> next(items.size(), last);
  if (items.size() <= 32) {
    for (std::size_t i = 0; i < items.size(); ++i)
      for (std::size_t j = i + 1; j < items.size(); ++j)
        if (stripe_ids[j] == stripe_ids[i] && items[j].key == items[i].key) {
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
  stripe_set locked{*this, std::move(stripe_ids)};
  std::vector<version> vers(items.size());
  std::size_t written = 0;  // pairs [0, written) took effect
  result<void> failure;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (next[i] != last) continue;
    auto& item = items[i];
    vers[i] = next_version();
    failure = commit_put(item.key, policies[i], st_.mode_for(policies[i]),
                         record{std::string{item.value}, item.expires_at_ms, vers[i]});
    if (!failure) break;
    written = i + 1;
  }
  // Watchers, after every write reached L1: one event per pair, in order. A replaced pair
  // took effect when the pair that replaced it did.
  for (std::size_t i = items.size(); i-- > 0;)
    if (next[i] != last) next[i] = next[next[i]] == last ? next[i] : next[next[i]];
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::size_t final_pair = next[i] == last ? i : next[i];
    if (final_pair < written)
      st_.notify_local(change_event::kind::set, items[i].key, vers[final_pair]);
  }
  return failure;
}

void write_path::update_many(std::span<const update_item> items,
                             std::span<const update_key> distinct,
                             std::span<const std::size_t> key_of, std::span<result<void>> out) {
  // The state of each distinct key while the batch runs.
  struct key_state {
    bool loaded = false;  // read from storage (or written by an item before)
    bool dirty = false;   // some item changed it: write the final state
    buffer value;         // null = absent
    std::int64_t expires = 0;
    version ver;
  };
  // A change of the batch; it takes effect with its key's final write, so it carries that
  // write's version (the states between are never visible to anybody).
  struct change {
    std::size_t key;  // index into keys
    change_event::kind what;
  };
  std::vector<key_state> keys(distinct.size());
  std::vector<change> changes;
  changes.reserve(items.size());
  std::vector<std::uint16_t> stripe_ids;
  stripe_ids.reserve(distinct.size());
  for (auto& k : distinct) stripe_ids.push_back(static_cast<std::uint16_t>(stripe_of(k.key)));
  stripe_set locked{*this, std::move(stripe_ids)};

  // 1. Every item decides, in order, on the state the items before it left.
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto& ks = keys[key_of[i]];
    auto key = distinct[key_of[i]].key;
    if (auto err = st_.config.limits.check_key(key); !err) {
      out[i] = err.err();
      continue;
    }
    if (!ks.loaded) {
      // As in write(): storage is the source of truth for the current value and expiry,
      // read through the pattern's limiter and breaker.
      auto rec = guarded_fetch(key, distinct[key_of[i]].policy);
      if (!rec) {
        out[i] = rec.err();
        continue;
      }
      ks.loaded = true;
      if (*rec) {
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
        if (auto err = st_.config.limits.check_value(decision->value); !err) {
          out[i] = err.err();
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

  // 2. Each changed key's final state is committed once.
  std::vector<char> failed_keys(keys.size(), 0);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    auto& ks = keys[k];
    if (!ks.dirty) continue;
    auto& [key, policy] = distinct[k];
    auto& m = st_.mode_for(policy);
    ks.ver = next_version();
    result<void> err = ks.value ? commit_put(key, policy, m, record{*ks.value, ks.expires, ks.ver})
                          : commit_erase(key, policy, m, ks.ver);
    if (!err) {
      failed_keys[k] = 1;
      for (std::size_t i = 0; i < items.size(); ++i)
        if (key_of[i] == k && out[i].has_value()) out[i] = err;
    }
  }

  // 3. Watchers see every change that took effect, in order, after it reached L1.
  for (auto& c : changes)
    if (!failed_keys[c.key]) st_.notify_local(c.what, distinct[c.key].key, keys[c.key].ver);
}

}  // namespace warp::detail
