// The in-memory adapter: an open-addressing hash index for fetch/store/remove plus an
// ordered index of the keys for scan() (a range walk), under one shared_mutex. Nothing
// survives the process; meant for tests and throwaway nodes.
//
// Layout, chosen for random-key writes (each one a cache miss on a key not touched lately):
// a slot array of {64-bit hash, entry*} with linear probing, and one allocation per key
// holding the record and the key bytes inline. A lookup costs one miss on the slot array
// and one on the entry (the full hash filters out other keys without touching them), where
// std::unordered_map cost four (bucket, the node before, the node, the key's heap bytes).
// Replacing an existing key touches neither the ordered index nor the allocator unless the
// value outgrows its string's capacity; only inserts and removes touch the ordered index.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <random>
#include <set>
#include <shared_mutex>
#include <vector>

#include "warp/clock.hpp"
#include "warp/storage.hpp"

namespace warp {

namespace {

bool live(const record& rec, std::int64_t now) {
  return rec.expires_at_ms == 0 || rec.expires_at_ms > now;
}

// One key: the record, then key_size bytes of key (never moved, so the ordered index may
// view them).
struct entry {
  record rec;
  std::size_t key_size = 0;
  /// Last access (store or fetch), in ticks of the adapter's LRU clock; relaxed atomics:
  /// readers under the shared lock stamp it, and an approximate order is all LRU needs.
  mutable std::atomic<std::uint32_t> lru{0};

  const char* key_data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const noexcept { return {key_data(), key_size}; }
  static const entry* of_key(const char* key_data) noexcept {
    return reinterpret_cast<const entry*>(key_data) - 1;
  }

  static entry* make(std::string_view key, const record& rec) {
    void* raw = ::operator new(sizeof(entry) + key.size());
    entry* e = nullptr;
    try {
      e = new (raw) entry{rec, key.size(), {}};
    } catch (...) {
      ::operator delete(raw);
      throw;
    }
    if (!key.empty()) std::memcpy(static_cast<void*>(e + 1), key.data(), key.size());
    return e;
  }
  static void destroy(entry* e) noexcept {
    e->~entry();
    ::operator delete(static_cast<void*>(e));
  }
};

// What one key costs beyond its bytes, for maxmemory: the entry's allocation header, the
// ordered index's tree node (about 48 bytes of node + the string_view), and two to four
// 16-byte slots (load factor 1/4..1/2). An estimate, like Redis's own accounting.
constexpr std::size_t malloc_overhead = 16;
constexpr std::size_t per_key_overhead = malloc_overhead + 64 + 48;

std::size_t entry_bytes(const entry& e) noexcept {
  std::size_t n = sizeof(entry) + e.key_size + per_key_overhead;
  // std::string keeps up to 15 bytes inline; longer values are a heap block of their own.
  if (e.rec.value.capacity() > 15) n += e.rec.value.capacity() + 1 + malloc_overhead;
  return n;
}

std::size_t value_bytes(std::size_t size) noexcept {
  return size > 15 ? size + 1 + malloc_overhead : 0;
}

constexpr std::string_view oom_message = "OOM command not allowed when used memory > 'maxmemory'.";

class memory_storage final : public storage {
 public:
  explicit memory_storage(memory_storage_options options = {}) : opt_(std::move(options)) {}
  ~memory_storage() override { drop_all(); }

  memory_usage memory() const override {
    memory_usage m;
    m.used_bytes = used_.load(std::memory_order_relaxed);
    m.max_bytes = opt_.max_bytes;
    switch (opt_.eviction) {
      case memory_storage_options::policy::noeviction:
        m.policy = "noeviction";
        break;
      case memory_storage_options::policy::allkeys_lru:
        m.policy = "allkeys-lru";
        break;
      case memory_storage_options::policy::volatile_ttl:
        m.policy = "volatile-ttl";
        break;
    }
    m.evicted_keys = evicted_.load(std::memory_order_relaxed);
    m.oom_rejections = oom_.load(std::memory_order_relaxed);
    return m;
  }

  result<std::optional<record>> fetch(std::string_view key) override {
    auto now = now_ms();
    auto h = hash(key);
    std::shared_lock guard{mtx_};
    const entry* e = find(key, h);
    if (e == nullptr || !live(e->rec, now)) return std::optional<record>{};
    touch(*e);
    return std::optional<record>{e->rec};
  }

  result<std::vector<std::optional<record>>> fetch_batch(
      std::span<const std::string> keys) override {
    // One lock for the whole batch: a consistent snapshot and no per-key lock traffic.
    auto now = now_ms();
    std::vector<std::optional<record>> out;
    out.reserve(keys.size());
    std::shared_lock guard{mtx_};
    for (auto& key : keys) {
      const entry* e = find(key, hash(key));
      if (e == nullptr || !live(e->rec, now)) {
        out.emplace_back();
      } else {
        touch(*e);
        out.emplace_back(e->rec);
      }
    }
    return out;
  }

  result<void> store(std::string_view key, const record& rec) override {
    auto h = hash(key);
    std::unique_lock guard{mtx_};
    if (slots_.empty() || (size_ + 1) * 2 > slots_.size()) grow();
    std::size_t i = probe(key, h);
    if (slots_[i].e != nullptr) {
      entry* cur_e = slots_[i].e;
      auto& cur = cur_e->rec;
      const std::size_t before = entry_bytes(*cur_e);
      // Assignment reuses the value string's capacity: no allocation when it fits.
      if (opt_.max_bytes > 0 && rec.value.size() > cur.value.capacity()) {
        const std::size_t grow = value_bytes(rec.value.size()) - value_bytes(cur.value.capacity());
        if (!make_room(grow, cur_e)) return oom();
        i = probe(key, h);  // eviction may have shifted slots
      }
      cur.value.assign(rec.value);
      // A value that shrank a lot gives its block back: otherwise rewriting keys with
      // smaller values keeps the largest size ever stored (memory never goes down).
      if (cur.value.capacity() > 2 * cur.value.size() + 64) cur.value.shrink_to_fit();
      if (rec.expires_at_ms != 0 && cur.expires_at_ms == 0) ++volatile_;
      if (rec.expires_at_ms == 0 && cur.expires_at_ms != 0) --volatile_;
      cur.expires_at_ms = rec.expires_at_ms;
      cur.ver = rec.ver;
      touch(*cur_e);
      add_used(entry_bytes(*cur_e), before);
      return {};
    }
    if (opt_.max_bytes > 0) {
      const std::size_t need =
          sizeof(entry) + key.size() + per_key_overhead + value_bytes(rec.value.size());
      if (!make_room(need, nullptr)) return oom();
      i = probe(key, h);
    }
    entry* e = entry::make(key, rec);
    try {
      order_.insert(e->key());
    } catch (...) {
      entry::destroy(e);
      throw;
    }
    slots_[i] = {h, e};
    ++size_;
    if (rec.expires_at_ms != 0) ++volatile_;
    touch(*e);
    add_used(entry_bytes(*e), 0);
    return {};
  }

  result<void> remove(std::string_view key) override {
    auto h = hash(key);
    std::unique_lock guard{mtx_};
    if (slots_.empty()) return {};
    std::size_t i = probe(key, h);
    entry* e = slots_[i].e;
    if (e == nullptr) return {};
    drop(i);
    return {};
  }

  result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    auto now = now_ms();
    std::vector<std::string> out;
    std::shared_lock guard{mtx_};
    for (auto i = order_.upper_bound(after); i != order_.end() && out.size() < count; ++i)
      if (live(entry::of_key(i->data())->rec, now)) out.emplace_back(*i);
    return out;
  }

  result<std::size_t> count() override {
    // Exact: expired records are skipped, which costs a walk but keeps count() == what
    // a full scan() returns.
    auto now = now_ms();
    std::shared_lock guard{mtx_};
    std::size_t n = 0;
    for (auto& s : slots_)
      if (s.e != nullptr && live(s.e->rec, now)) ++n;
    return n;
  }

  result<void> clear() override {
    std::unique_lock guard{mtx_};
    order_.clear();
    drop_all();
    return {};
  }

  std::string describe() const override { return "memory"; }
  /// Nobody else can reach this process's memory: a fresh token per adapter.
  result<std::string> identity() override { return identity_; }

 private:
  // -- maxmemory -------------------------------------------------------------------------

  result<void> oom() {
    oom_.fetch_add(1, std::memory_order_relaxed);
    return error{errc::storage_error, std::string(oom_message)};
  }

  void add_used(std::size_t now, std::size_t before) noexcept {
    used_.store(used_.load(std::memory_order_relaxed) + now - before, std::memory_order_relaxed);
  }

  void touch(const entry& e) const noexcept {
    // The clock: a counter bumped per access would be one shared cache line written by
    // every reader; milliseconds/16 since start wrap after 2 years and order well enough.
    auto tick = static_cast<std::uint32_t>((now_ms() - epoch_ms_) >> 4);
    if (e.lru.load(std::memory_order_relaxed) != tick) e.lru.store(tick, std::memory_order_relaxed);
  }

  // Under the unique lock. Frees `need` bytes below max_bytes, evicting by policy; never
  // evicts `keep` (the entry being rewritten). False = cannot (noeviction, nothing evictable).
  bool make_room(std::size_t need, const entry* keep) {
    using P = memory_storage_options::policy;
    for (int attempts = 0; used_.load(std::memory_order_relaxed) + need > opt_.max_bytes;) {
      if (opt_.eviction == P::noeviction || size_ == 0) return false;
      std::size_t victim = evict_candidate(keep);
      if (victim == npos) {
        // volatile-ttl with no key under a TTL in the samples: a few more tries, then a
        // walk (keys with a TTL are rare then); none at all = OOM, as in Redis.
        if (++attempts < 8) continue;
        if (volatile_ == 0 || (victim = nearest_expiry(keep)) == npos) return false;
      }
      evicted_.fetch_add(1, std::memory_order_relaxed);
      if (opt_.on_evict) opt_.on_evict(slots_[victim].e->key());
      drop(victim);
    }
    return true;
  }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  // 10, not Redis's default of 5: Redis also keeps a pool of the best candidates across
  // evictions, which this adapter does not; with 5 bare samples a key read a few dozen
  // writes ago was evicted about once in 15 fills of the bound (the allkeys-lru test under
  // ctest -j2 lost 3 of 10 hot keys). 10 is Redis's own advice for a near-true LRU.
  static constexpr int samples = 10;

  // Redis-style approximation: sample a few random keys and take the best victim among
  // them, rather than keeping an exact LRU list (a write of every read to a shared list).
  std::size_t evict_candidate(const entry* keep) {
    using P = memory_storage_options::policy;
    const std::size_t mask = slots_.size() - 1;
    std::size_t best = npos;
    std::int64_t best_score = 0;
    const auto now_tick = static_cast<std::uint32_t>((now_ms() - epoch_ms_) >> 4);
    for (int s = 0; s < samples; ++s) {
      std::size_t i = rng_() & mask;
      while (slots_[i].e == nullptr) i = (i + 1) & mask;  // size_ > 0: ends
      const entry* e = slots_[i].e;
      if (e == keep) continue;
      std::int64_t score;  // higher = better victim
      if (opt_.eviction == P::allkeys_lru) {
        score = static_cast<std::uint32_t>(now_tick - e->lru.load(std::memory_order_relaxed));
      } else {
        if (e->rec.expires_at_ms == 0) continue;
        score = -e->rec.expires_at_ms;
      }
      if (best == npos || score > best_score) {
        best = i;
        best_score = score;
      }
    }
    return best;
  }

  std::size_t nearest_expiry(const entry* keep) const noexcept {
    std::size_t best = npos;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const entry* e = slots_[i].e;
      if (e == nullptr || e == keep || e->rec.expires_at_ms == 0) continue;
      if (best == npos || e->rec.expires_at_ms < slots_[best].e->rec.expires_at_ms) best = i;
    }
    return best;
  }

  void drop(std::size_t i) noexcept {
    entry* e = slots_[i].e;
    if (e->rec.expires_at_ms != 0) --volatile_;
    add_used(0, entry_bytes(*e));
    order_.erase(e->key());
    erase_slot(i);
    --size_;
    entry::destroy(e);
  }

  struct slot {
    std::uint64_t hash = 0;
    entry* e = nullptr;  // null = empty
  };

  static std::uint64_t hash(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key);
  }

  const entry* find(std::string_view key, std::uint64_t h) const noexcept {
    if (slots_.empty()) return nullptr;
    const entry* e = slots_[probe(key, h)].e;
    return e;
  }

  // The slot holding `key`, or the empty slot where it would go. The table is never full
  // (load factor <= 1/2), so the walk ends.
  std::size_t probe(std::string_view key, std::uint64_t h) const noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const slot& s = slots_[i];
      if (s.e == nullptr) return i;
      if (s.hash == h && s.e->key() == key) return i;
    }
  }

  // Backward-shift deletion: no tombstones, so probe lengths stay those of the live keys.
  void erase_slot(std::size_t i) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask; slots_[j].e != nullptr; j = (j + 1) & mask) {
      const std::size_t home = slots_[j].hash & mask;
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = slot{};
  }

  void grow() {
    std::vector<slot> next(std::max<std::size_t>(16, slots_.size() * 2));
    const std::size_t mask = next.size() - 1;
    for (auto& s : slots_) {
      if (s.e == nullptr) continue;
      std::size_t i = s.hash & mask;
      while (next[i].e != nullptr) i = (i + 1) & mask;
      next[i] = s;
    }
    slots_.swap(next);
  }

  void drop_all() noexcept {
    for (auto& s : slots_)
      if (s.e != nullptr) entry::destroy(s.e);
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
    volatile_ = 0;
    used_.store(0, std::memory_order_relaxed);
  }

  memory_storage_options opt_;
  std::atomic<std::size_t> used_{0};  // written under the unique lock only
  std::size_t volatile_ = 0;          // keys with a TTL (under the unique lock)
  std::atomic<std::uint64_t> evicted_{0};
  std::atomic<std::uint64_t> oom_{0};
  std::int64_t epoch_ms_ = now_ms();
  std::minstd_rand rng_{std::random_device{}()};
  std::string identity_ = [] {
    std::random_device rd;
    char token[40];
    std::snprintf(token, sizeof token, "memory-%08x%08x%08x", rd(), rd(), rd());
    return std::string{token};
  }();
  std::shared_mutex mtx_;
  std::vector<slot> slots_;  // power-of-two size (or empty), load factor <= 1/2
  std::size_t size_ = 0;
  std::set<std::string_view> order_;  // views of the entries' keys, for scan()
};

}  // namespace

std::unique_ptr<storage> make_memory_storage() {
  return std::make_unique<memory_storage>();
}

std::unique_ptr<storage> make_memory_storage(memory_storage_options options) {
  return std::make_unique<memory_storage>(std::move(options));
}

result<memory_storage_options::policy> parse_maxmemory_policy(std::string_view text) {
  using P = memory_storage_options::policy;
  if (text == "noeviction") return P::noeviction;
  if (text == "allkeys-lru") return P::allkeys_lru;
  if (text == "volatile-ttl") return P::volatile_ttl;
  return error{errc::invalid_argument,
               "maxmemory-policy: expected noeviction, allkeys-lru or "
               "volatile-ttl, got '" +
                   std::string(text) + "'"};
}

}  // namespace warp
