// The in-memory adapter: a std::map (ordered, so scan() is a range walk) under a
// shared_mutex. Nothing survives the process; meant for tests and throwaway nodes.
#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>

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
    if (i == map_.end())
      map_.emplace(std::string{key}, rec);
    else
      i->second = rec;
    return {};
  }

  status remove(std::string_view key) override {
    std::unique_lock guard{mtx_};
    auto i = map_.find(key);
    if (i != map_.end()) map_.erase(i);
    return {};
  }

  result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    auto now = now_ms();
    std::vector<std::string> out;
    std::shared_lock guard{mtx_};
    for (auto i = map_.upper_bound(after); i != map_.end() && out.size() < count; ++i)
      if (live(i->second, now)) out.push_back(i->first);
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
    map_.clear();
    return {};
  }

  std::string describe() const override { return "memory"; }

 private:
  std::shared_mutex mtx_;
  // std::less<> lets find()/upper_bound() take a string_view without building a string.
  std::map<std::string, record, std::less<>> map_;
};

}  // namespace

std::unique_ptr<storage> make_memory_storage() {
  return std::make_unique<memory_storage>();
}

}  // namespace warp
