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
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
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

  const char* key_data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const noexcept { return {key_data(), key_size}; }
  static const entry* of_key(const char* key_data) noexcept {
    return reinterpret_cast<const entry*>(key_data) - 1;
  }

  static entry* make(std::string_view key, const record& rec) {
    void* raw = ::operator new(sizeof(entry) + key.size());
    entry* e = nullptr;
    try {
      e = new (raw) entry{rec, key.size()};
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

class memory_storage final : public storage {
 public:
  ~memory_storage() override { drop_all(); }

  result<std::optional<record>> fetch(std::string_view key) override {
    auto now = now_ms();
    auto h = hash(key);
    std::shared_lock guard{mtx_};
    const entry* e = find(key, h);
    if (e == nullptr || !live(e->rec, now)) return std::optional<record>{};
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
      if (e == nullptr || !live(e->rec, now))
        out.emplace_back();
      else
        out.emplace_back(e->rec);
    }
    return out;
  }

  status store(std::string_view key, const record& rec) override {
    auto h = hash(key);
    std::unique_lock guard{mtx_};
    if (slots_.empty() || (size_ + 1) * 2 > slots_.size()) grow();
    std::size_t i = probe(key, h);
    if (slots_[i].e != nullptr) {
      // Assignment reuses the value string's capacity: no allocation when it fits.
      auto& cur = slots_[i].e->rec;
      cur.value.assign(rec.value);
      cur.expires_at_ms = rec.expires_at_ms;
      cur.ver = rec.ver;
      return {};
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
    return {};
  }

  status remove(std::string_view key) override {
    auto h = hash(key);
    std::unique_lock guard{mtx_};
    if (slots_.empty()) return {};
    std::size_t i = probe(key, h);
    entry* e = slots_[i].e;
    if (e == nullptr) return {};
    order_.erase(e->key());
    erase_slot(i);
    --size_;
    entry::destroy(e);
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

  status clear() override {
    std::unique_lock guard{mtx_};
    order_.clear();
    drop_all();
    return {};
  }

  std::string describe() const override { return "memory"; }

 private:
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
  }

  std::shared_mutex mtx_;
  std::vector<slot> slots_;  // power-of-two size (or empty), load factor <= 1/2
  std::size_t size_ = 0;
  std::set<std::string_view> order_;  // views of the entries' keys, for scan()
};

}  // namespace

std::unique_ptr<storage> make_memory_storage() {
  return std::make_unique<memory_storage>();
}

}  // namespace warp
