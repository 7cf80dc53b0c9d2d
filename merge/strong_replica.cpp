#include "merge/strong_replica.hpp"

#include "merge/rules.hpp"

#include <stdexcept>

#include "runtime/membership/ring.hpp"

namespace warp::detail {

strong_replica::strong_replica(std::size_t ranges, bool ready) {
  if (ranges == 0) ranges = 1;
  ranges_.reserve(ranges);
  for (std::size_t i = 0; i < ranges; ++i) {
    ranges_.push_back(std::make_unique<range_state>());
    ranges_.back()->ready = ready;
  }
}

strong_replica::range_state& strong_replica::at(std::uint32_t range) {
  return *ranges_[range % ranges_.size()];
}
const strong_replica::range_state& strong_replica::at(std::uint32_t range) const {
  return *ranges_[range % ranges_.size()];
}

std::uint64_t strong_replica::entry_hash(std::string_view key, version ver) noexcept {
  // Key hash mixed with the version; stable_hash is FNV-1a + splitmix, the same everywhere.
  auto h = stable_hash(key);
  h ^= ver.hlc * 0x9E3779B97F4A7C15ull;
  h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9ull;
  h ^= static_cast<std::uint64_t>(ver.node) * 0x94D049BB133111EBull;
  h ^= h >> 29;
  return h;
}

strong_record strong_replica::get(std::uint32_t range, std::string_view key,
                                  bool with_value) const {
  auto& r = at(range);
  std::lock_guard<std::mutex> g{r.mtx};
  auto it = r.keys.find(key);
  if (it == r.keys.end()) return {};
  if (with_value) return it->second;
  strong_record out;
  out.ver = it->second.ver;
  out.tombstone = it->second.tombstone;
  out.expires_at_ms = it->second.expires_at_ms;
  return out;
}

bool strong_replica::apply(std::uint32_t range, std::string_view key, const strong_record& rec) {
  if (rec.ver.empty()) return false;
  auto& r = at(range);
  std::lock_guard<std::mutex> g{r.mtx};
  auto it = r.keys.find(key);
  if (it == r.keys.end()) {
    r.keys.emplace(std::string{key}, rec);
    r.digest.hash ^= entry_hash(key, rec.ver);
    ++r.digest.count;
    return true;
  }
  if (!merge::replaces(it->second.ver, rec.ver)) return false;
  r.digest.hash ^= entry_hash(key, it->second.ver) ^ entry_hash(key, rec.ver);
  it->second = rec;
  if (it->second.tombstone) {
    it->second.value.clear();
    it->second.value.shrink_to_fit();
  }
  return true;
}

strong_replica::page strong_replica::dump(std::uint32_t range, std::string_view after, bool first,
                                          std::size_t max_records, std::size_t max_bytes) const {
  page out;
  auto& r = at(range);
  std::lock_guard<std::mutex> g{r.mtx};
  auto it = first ? r.keys.begin() : r.keys.upper_bound(after);
  std::size_t bytes = 0;
  for (; it != r.keys.end(); ++it) {
    if (!out.records.empty() && (out.records.size() >= max_records ||
                                 bytes + it->first.size() + it->second.value.size() > max_bytes)) {
      out.more = true;
      break;
    }
    bytes += it->first.size() + it->second.value.size() + 32;
    out.records.emplace_back(it->first, it->second);
  }
  return out;
}

range_digest strong_replica::digest(std::uint32_t range) const {
  auto& r = at(range);
  std::lock_guard<std::mutex> g{r.mtx};
  return r.digest;
}

bool strong_replica::ready(std::uint32_t range) const {
  auto& r = at(range);
  std::lock_guard<std::mutex> g{r.mtx};
  return r.ready;
}

void strong_replica::set_ready(std::uint32_t range, bool ready) {
  auto& r = at(range);
  std::lock_guard<std::mutex> g{r.mtx};
  r.ready = ready;
}

std::size_t strong_replica::ready_count() const {
  std::size_t n = 0;
  for (auto& r : ranges_) {
    std::lock_guard<std::mutex> g{r->mtx};
    n += r->ready;
  }
  return n;
}

std::size_t strong_replica::key_count() const {
  std::size_t n = 0;
  for (auto& r : ranges_) {
    std::lock_guard<std::mutex> g{r->mtx};
    n += r->keys.size();
  }
  return n;
}

}  // namespace warp::detail
