// The in-memory adapter: a hash map for fetch/store/remove plus an ordered index of the
// keys for scan() (a range walk), under one shared_mutex. Replacing an existing key costs
// one hash lookup; only inserts and removes touch the ordered index. Nothing survives the
// process; meant for tests and throwaway nodes.
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include "warp/clock.hpp"
#include "warp/storage.hpp"

namespace warp {

namespace {

bool live(const record& rec, std::int64_t now) {
  return rec.expires_at_ms == 0 || rec.expires_at_ms > now;
}

class memory_storage final : public storage {
 public:
  result<std::optional<record>> fetch(std::string_view key) override {
    auto now = now_ms();
    std::shared_lock guard{mtx_};
    auto i = map_.find(key);
    if (i == map_.end() || !live(i->second, now)) return std::optional<record>{};
    return std::optional<record>{i->second};
  }

  result<std::vector<std::optional<record>>> fetch_batch(
      std::span<const std::string> keys) override {
    // One lock for the whole batch: a consistent snapshot and no per-key lock traffic.
    auto now = now_ms();
    std::vector<std::optional<record>> out;
    out.reserve(keys.size());
    std::shared_lock guard{mtx_};
    for (auto& key : keys) {
      auto i = map_.find(key);
      if (i == map_.end() || !live(i->second, now))
        out.emplace_back();
      else
        out.emplace_back(i->second);
    }
    return out;
  }

  status store(std::string_view key, const record& rec) override {
    std::unique_lock guard{mtx_};
    auto i = map_.find(key);
    if (i == map_.end()) {
      auto added = map_.emplace(std::string{key}, rec).first;
      // Keys of an unordered_map's nodes never move: the index may view them.
      try {
        order_.insert(std::string_view{added->first});
      } catch (...) {
        map_.erase(added);
        throw;
      }
    } else {
      i->second = rec;
    }
    return {};
  }

  status remove(std::string_view key) override {
    std::unique_lock guard{mtx_};
    auto i = map_.find(key);
    if (i != map_.end()) {
      order_.erase(std::string_view{i->first});
      map_.erase(i);
    }
    return {};
  }

  result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    auto now = now_ms();
    std::vector<std::string> out;
    std::shared_lock guard{mtx_};
    for (auto i = order_.upper_bound(after); i != order_.end() && out.size() < count; ++i)
      if (auto r = map_.find(*i); live(r->second, now)) out.emplace_back(*i);
    return out;
  }

  result<std::size_t> count() override {
    // Exact: expired records are skipped, which costs a walk but keeps count() == what
    // a full scan() returns.
    auto now = now_ms();
    std::shared_lock guard{mtx_};
    std::size_t n = 0;
    for (auto& [key, rec] : map_)
      if (live(rec, now)) ++n;
    return n;
  }

  status clear() override {
    std::unique_lock guard{mtx_};
    order_.clear();
    map_.clear();
    return {};
  }

  std::string describe() const override { return "memory"; }

 private:
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const noexcept {
      return std::hash<std::string_view>{}(k);
    }
  };
  std::shared_mutex mtx_;
  // Transparent hash and equality: find() takes a string_view without building a string.
  std::unordered_map<std::string, record, key_hash, std::equal_to<>> map_;
  std::set<std::string_view> order_;  // views of map_'s keys, for scan()
};

}  // namespace

std::unique_ptr<storage> make_memory_storage() {
  return std::make_unique<memory_storage>();
}

}  // namespace warp
