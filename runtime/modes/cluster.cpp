#include "runtime/modes/cluster.hpp"

#include <cstdio>
#include <map>
#include <type_traits>

#include <unistd.h>

#include <mutex>

#include <caf/all.hpp>

#include "actors/cluster_actor.hpp"
#include "bus/hot_keys_wire.hpp"
#include "merge/rules.hpp"
#include "runtime/core/log.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/modes/warmup.hpp"

namespace warp::detail {

cluster::cluster(node_state& st, std::string address) : st_(st) {
  auto& cfg = st.config;
  ctx_.self_id = st.id;
  ctx_.incarnation = static_cast<std::uint64_t>(now_ms());
  ctx_.name = st.name;
  ctx_.address = std::move(address);
  ctx_.opts = cfg.cluster;
  ctx_.seeds = cfg.peers;
  ctx_.limits.max_key_bytes = std::max<std::size_t>(cfg.limits.max_key_size, 1);
  ctx_.limits.max_value_bytes = std::max<std::size_t>(cfg.limits.max_value_size, 1);
  ctx_.limits.max_message_bytes =
      std::max<std::size_t>(ctx_.limits.max_message_bytes, cfg.limits.max_value_size * 2 + 4096);
  ctx_.limits.max_records =
      std::max<std::size_t>(ctx_.limits.max_records, cfg.cluster.batch_max_records);
  ctx_.host = this;
  ctx_.pool = st.executor.get();
  ctx_.shares_storage = cfg.default_policy.consistency == mode::eventual_distributed;
  for (const auto& e : st.patterns.entries())
    ctx_.shares_storage |= e.policy.consistency == mode::eventual_distributed;
  // Read (or written, on first use) once, here at start: heartbeats carry it from then on.
  if (auto id = st.store->identity())
    ctx_.storage_id = std::move(*id);
  else
    log()->warn("cluster: cannot read the storage identity ({}): members will not check that "
                "they share storage",
                id.err().message());
  bus_ = std::make_unique<bus::caf_bus>(*st.system, ctx_);
  bus_->subscribe([this](const bus::change_batch& b) { apply(b); },
                  [this](std::uint32_t sender, std::uint64_t bound) { distrust(sender, bound); });
}

cluster::~cluster() {
  stop();
}

std::uint64_t cluster::clock_now() {
  return st_.clock.next();
}

void cluster::clock_observe(std::uint64_t hlc) {
  st_.clock.observe(hlc);
}

result<std::optional<record>> cluster::local_fetch(const std::string& key) {
  // A peer's miss of a key this node owns is a read of it too: the owner's list then holds
  // the hot keys of its ranges cluster-wide, which is what a node taking them over needs.
  st_.read_seen(key);
  return st_.local_read(key);
}

void cluster::set_patterns(bus::pattern_version ver, std::string bytes,
                           std::function<void(bus::pattern_table)> on_patterns) {
  ctx_.patterns_ver = ver;
  ctx_.patterns_bytes = std::move(bytes);
  bus_->subscribe_patterns(std::move(on_patterns));
}

void cluster::publish_patterns(std::string bytes) {
  if (!stopped_.load()) bus_->publish_patterns(std::move(bytes));
}

bus::envelope_header cluster::pattern_header() {
  bus::envelope_header h;
  h.kind = bus::message_kind::pattern_table;
  h.sender = ctx_.self_id;
  h.incarnation = ctx_.incarnation;
  h.hlc_now = st_.clock.next();
  return h;
}

std::string cluster::hot_keys_bytes(std::uint32_t limit) {
  std::vector<bus::hot_key_item> items;
  if (st_.hot)
    for (auto& h : st_.hot->top(limit)) items.push_back({std::move(h.key), h.count});
  return bus::encode_hot_keys(items);
}

void cluster::ranges_taken(std::vector<actors::range_takeover> taken) {
  std::map<std::uint32_t, std::size_t> from;
  for (auto& t : taken) ++from[t.previous_owner];
  for (auto& [prev, n] : from)
    log()->info("node {:08x} takes over {} key ranges from {}", ctx_.self_id, n,
                prev == 0 ? std::string{"nobody"} : fmt::format("node {:08x}", prev));
  if (!st_.config.hot_keys.warmup || stopped_) return;
  st_.executor->post([this, taken = std::move(taken)] { warm_up(taken); });
}

void cluster::warm_up(const std::vector<actors::range_takeover>& taken) {
  const std::size_t limit = st_.config.hot_keys.warmup_limit;
  auto own = ctx_.ownership_snapshot();
  if (!own || stopped_ || limit == 0) return;
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> by_owner;  // prev -> ranges
  for (auto& t : taken) by_owner[t.previous_owner].push_back(t.range);
  std::vector<bool> wanted(own->map.ranges(), false);
  for (auto& t : taken)
    if (t.range < wanted.size()) wanted[t.range] = true;
  std::vector<std::string> keys;
  std::vector<bool> need_sample(own->map.ranges(), false);
  bool sample = false;
  for (auto& [prev, ranges] : by_owner) {
    bool listed = false;
    auto h = prev == 0 ? own->handles.end() : own->handles.find(prev);
    if (h != own->handles.end() && h->second) {
      // The previous owner's list: it counted its own reads and the misses it served for
      // every other node, so it knows what is hot in these ranges cluster-wide.
      caf::scoped_actor self{*st_.system};
      self->request(h->second, ctx_.opts.owner_fetch_timeout, actors::hotkeys_atom::value,
                    static_cast<std::uint32_t>(std::min<std::size_t>(
                        st_.config.hot_keys.capacity, actors::max_hot_keys_request)))
          .receive(
              [&](std::string& bytes) {
                auto items = bus::decode_hot_keys(bytes, actors::max_hot_keys_request,
                                                  ctx_.limits.max_key_bytes);
                if (!items) {
                  log()->warn("warm-up: bad hot-key list from node {:08x}: {}", prev,
                              items.err().to_string());
                  return;
                }
                listed = true;
                for (auto& it : *items)
                  if (keys.size() < limit && wanted[own->map.range_of(it.key)])
                    keys.push_back(std::move(it.key));
              },
              [&](caf::error& err) {
                log()->info("warm-up: no hot-key list from node {:08x} ({}): sampling storage",
                            prev, caf::to_string(err));
              });
    }
    if (!listed) {
      sample = true;
      for (auto r : ranges) need_sample[r] = true;
    }
  }
  if (sample && keys.size() < limit) {
    auto more = sample_storage_keys(st_, limit - keys.size(),
                                    std::max<std::size_t>(limit * 10, 10'000),
                                    [&](std::string_view k) {
                                      return need_sample[own->map.range_of(k)];
                                    });
    keys.insert(keys.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
  }
  // Keep only what is still ours: ownership may have moved again meanwhile.
  std::erase_if(keys, [&](const std::string& k) { return owner_of(k) != ctx_.self_id; });
  warm_keys(st_, keys,
            fmt::format("takeover of {} ranges{}", taken.size(),
                        by_owner.size() == 1 && by_owner.begin()->first != 0
                            ? fmt::format(" from node {:08x}", by_owner.begin()->first)
                            : std::string{}));
}

void cluster::start() {
  bus_->start();
}

void cluster::stop() {
  if (stopped_.exchange(true)) return;
  bus_->stop();
  // Fetches in flight on the node's executor finish when node::stop drains it.
}

void cluster::published(std::string_view key, version ver, std::int64_t expires_at_ms,
                        bus::record_kind kind, std::string_view value) {
  bus::change_record rec;
  rec.key.assign(key);
  rec.ver = ver;
  rec.expires_at_ms = expires_at_ms;
  rec.kind = kind;
  if (kind == bus::record_kind::value) rec.value.assign(value);
  // This node's own deletes and clears bind its later read-throughs too: an owner that has
  // not applied them yet must not put the old value back into this node's L1.
  if (kind == bus::record_kind::erase) remember_tombstone(rec.key, ver);
  if (kind == bus::record_kind::clear)
    actors::cluster_counters::raise_max(clear_floor_hlc_, ver.hlc);
  bus_->publish(std::move(rec));
}

void cluster::invalidate(std::string_view key, version ver) {
  unknown_outcome(key, ver);  // the same record: "whatever you cache up to ver is wrong"
}

void cluster::unknown_outcome(std::string_view key, version ver) {
  bus::change_record rec;
  rec.key.assign(key);
  rec.ver = ver;
  rec.kind = bus::record_kind::invalidate;
  remember_tombstone(rec.key, ver);
  bus_->publish(std::move(rec));
}

void cluster::remember_tombstone(const std::string& key, version ver) {
  auto h = stable_hash(key);
  std::lock_guard<std::mutex> g{tomb_mtx_};
  tombstones_.remember(h, ver, now_ms());
}

std::optional<version> cluster::live_tombstone(std::string_view key) const {
  auto h = stable_hash(key);
  std::lock_guard<std::mutex> g{tomb_mtx_};
  return tombstones_.find(h, now_ms());
}

bool cluster::tombstoned(std::string_view key, version ver) const {
  auto t = live_tombstone(key);
  return t && merge::tombstone_hides_hydration(*t, ver);
}

bool cluster::may_cache(std::string_view key, version ver) const {
  if (merge::below_clear_floor(ver, clear_floor_hlc_.load(std::memory_order_acquire))) return false;
  auto t = live_tombstone(key);
  return !t || merge::tombstone_allows_fill(*t, ver);
}

void cluster::apply(const bus::change_batch& batch) {
  auto& c = ctx_.counters;
  std::uint64_t applied = 0, stale = 0;
  auto now = now_ms();
  for (auto& rec : batch.records) {
    // From the writer's clock to here: the HLC's physical part is the writer's wall clock
    // in ms, so this includes clock skew (bounded by the HLC's sanity bound).
    if (rec.ver.physical_ms() > 0) {
      auto delay_ms = now - static_cast<std::int64_t>(rec.ver.physical_ms());
      st_.latencies.propagation.observe(std::chrono::milliseconds{delay_ms < 0 ? 0 : delay_ms});
    }
    // Our next write of this key must get a larger version than what we just learned.
    st_.clock.observe(rec.ver.hlc);
    if (rec.kind == bus::record_kind::clear) {
      cleared(rec.ver);
      ++applied;
      continue;
    }
    // Not newer than a clear applied here (a peer's, or this node's own): storage lost it.
    if (merge::below_clear_floor(rec.ver, clear_floor_hlc_.load(std::memory_order_acquire))) {
      ++stale;
      continue;
    }
    bool hydrate = rec.kind == bus::record_kind::value &&
                   merge::hydrates(rec.ver, rec.expires_at_ms, now, hydrate_floor_);
    if (!hydrate) {
      if (auto n = drop_invalidations_.load(std::memory_order_relaxed);
          n > 0 && drop_invalidations_.compare_exchange_strong(n, n - 1)) {
        invalidations_dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;  // the fault hook: lost on the way
      }
      remember_tombstone(rec.key, rec.ver);
      // A read-through in flight may hold the old value: it must not fill L1.
      st_.coalescer.supersede(rec.key);
      bool erased = st_.l1->erase_if_not_newer(rec.key, rec.ver);
      if (erased) ++applied;
      if (rec.kind == bus::record_kind::erase)
        st_.writes.forget(rec.key);
      else
        st_.writes.invalidated(rec.key);
      // Only a newer entry in L1 makes the record stale. A key this node does not hold
      // (evicted, expired from L1, never filled) still changed: watchers such as the
      // sidecar's client tracking may have handed it out and must hear of it.
      if (auto info = st_.l1->info(rec.key);
          !erased && info && !merge::invalidates(rec.ver, info->ver)) {
        ++stale;
      } else {
        st_.notify({rec.kind == bus::record_kind::erase ? change_event::kind::removed
                                                        : change_event::kind::invalidated,
                    rec.key, rec.ver, true});
      }
      continue;
    }
    if (tombstoned(rec.key, rec.ver)) {
      ++stale;
      continue;
    }
    st_.coalescer.supersede(rec.key);
    st_.writes.invalidated(rec.key);  // a newer value: the stale copy is older
    // The pattern lookup (glob matching) only matters for the cache TTL of a hydrated value.
    auto policy = st_.patterns.lookup(rec.key);
    auto out = st_.l1->put(rec.key, make_buffer(rec.value), rec.ver,
                           l1_expiry(rec.expires_at_ms, policy), true);
    if (out == put_outcome::stale) {
      ++stale;
    } else {
      ++applied;
      st_.notify({change_event::kind::set, rec.key, rec.ver, true});
    }
  }
  c.records_applied.fetch_add(applied, std::memory_order_relaxed);
  c.records_stale.fetch_add(stale, std::memory_order_relaxed);
}

void cluster::cleared(version ver) {
  if (!merge::clear_advances(clear_bound_, ver)) return;
  clear_bound_ = ver;
  actors::cluster_counters::raise_max(clear_floor_hlc_, ver.hlc);
  st_.coalescer.supersede_all();
  st_.writes.clear_stale();
  std::vector<std::string> keys;
  st_.l1->for_each([&](std::string_view k, const buffer&, const l1_entry_info& info) {
    if (merge::clear_drops(ver, info.ver)) keys.emplace_back(k);
  });
  for (auto& k : keys) st_.l1->erase_if_not_newer(k, ver);
  st_.notify({change_event::kind::cleared, {}, ver, true});
}

void cluster::distrust(std::uint32_t, std::uint64_t hlc_bound) {
  hydrate_floor_ = std::max(hydrate_floor_, hlc_bound);
  // A read-through in flight may return what storage held before a change we missed.
  st_.coalescer.supersede_all();
  std::vector<std::string> keys;
  st_.l1->for_each([&](std::string_view k, const buffer&, const l1_entry_info& info) {
    if (merge::distrusted_by_gap(info.ver, hlc_bound) &&
        st_.patterns.lookup(k).consistency == mode::eventual_distributed)
      keys.emplace_back(k);
  });
  std::uint64_t dropped = 0;
  const version bound = merge::gap_bound(hlc_bound);
  for (auto& k : keys) {
    st_.coalescer.supersede(k);
    if (st_.l1->erase_if_not_newer(k, bound)) {
      ++dropped;
      st_.notify({change_event::kind::invalidated, k, bound, true});
    }
  }
  ctx_.counters.gap_invalidations.fetch_add(dropped, std::memory_order_relaxed);
  // Keys this node no longer caches may have changed too, and a client of the sidecar may
  // still hold them (client tracking): tell the watchers.
  st_.notify({change_event::kind::distrusted, {}, bound, true});
}

std::optional<result<std::optional<record>>> cluster::fetch_from_owner(std::string_view key) {
  auto own = ctx_.ownership_snapshot();
  if (!own || stopped_) return std::nullopt;
  auto range = own->map.range_of(key);
  auto owner = own->map.owner(range);
  if (owner == 0 || owner == ctx_.self_id) return std::nullopt;
  auto& c = ctx_.counters;
  // The owner first, then the standbys in rendezvous order: every node walks the same list,
  // so while an owner is paused or dying its misses still meet at one node (the one that
  // takes the range over once the owner is held down). Reaching ourselves in the list
  // means we are that standby: our own coalescer is the meeting point.
  auto candidates = own->map.replicas(range, std::max<std::size_t>(ctx_.opts.read_replicas, 1));
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    auto target = candidates[i];
    if (target == ctx_.self_id) return std::nullopt;
    auto h = own->handles.find(target);
    if (h == own->handles.end() || !h->second) continue;
    std::optional<result<std::optional<record>>> out;
    bool stale_answer = false;
    // One scoped_actor per request: CAF 0.17 leaves a request's timeout armed after its
    // answer; if an owner answers with an error at once and the standby then takes longer
    // than the rest of that timeout, a shared actor would skip the stale timeout into its
    // mailbox cache, which holds the actor itself: one leaked actor per such miss
    // (fetch_strong_status in actors/quorum_actor.cpp has the details).
    caf::scoped_actor self{*st_.system};
    self->request(h->second, ctx_.opts.owner_fetch_timeout, actors::fetch_atom::value,
                  std::string{key})
        .receive(
            [&](std::string& bytes) {
              auto rep = bus::decode_fetch_reply(bytes, ctx_.limits);
              if (!rep) return;
              if (!rep->found) {
                out.emplace(std::optional<record>{});
              } else if (may_cache(key, rep->rec.ver)) {
                out.emplace(std::optional<record>{
                    record{std::move(rep->rec.value), rep->rec.expires_at_ms, rep->rec.ver}});
              } else {
                // The owner answered from an L1 older than a change (or clear) this node
                // already applied: storage has the newer state.
                stale_answer = true;
              }
            },
            [&](caf::error&) {});
    if (stale_answer) {
      c.owner_fetch_fallbacks.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    if (out) {
      (i == 0 ? c.owner_fetches : c.replica_fetches).fetch_add(1, std::memory_order_relaxed);
      return out;
    }
  }
  c.owner_fetch_fallbacks.fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

cluster_view cluster::view() const {
  cluster_view v;
  v.self_id = ctx_.self_id;
  v.ranges = ctx_.opts.ranges;
  std::lock_guard<std::mutex> g{ctx_.snap_mtx};
  v.members = ctx_.view;
  v.storage_conflict = ctx_.storage_conflict;
  return v;
}

std::uint32_t cluster::owner_of(std::string_view key) const {
  auto own = ctx_.ownership_snapshot();
  return own ? own->map.owner_of(key) : 0;
}

}  // namespace warp::detail
