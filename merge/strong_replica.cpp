#include "merge/strong_replica.hpp"

#include "merge/rules.hpp"

#include "runtime/membership/ring.hpp"

namespace warp::detail {

std::uint64_t strong_replica::entry_hash(std::string_view key, version ver) noexcept {
  // Key hash mixed with the version; stable_hash is FNV-1a + splitmix, the same everywhere.
  auto h = stable_hash(key);
  h ^= ver.hlc * 0x9E3779B97F4A7C15ull;
  h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9ull;
  h ^= static_cast<std::uint64_t>(ver.node) * 0x94D049BB133111EBull;
  h ^= h >> 29;
  return h;
}

strong_record strong_replica::get(std::string_view key, bool with_value) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return {};
  if (with_value) return it->second;
  strong_record out;
  out.ver = it->second.ver;
  out.tombstone = it->second.tombstone;
  out.expires_at_ms = it->second.expires_at_ms;
  return out;
}

bool strong_replica::apply(std::string_view key, const strong_record& rec) {
  if (rec.ver.empty()) return false;
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    keys_.emplace(std::string{key}, rec);
    digest_.hash ^= entry_hash(key, rec.ver);
    ++digest_.count;
    return true;
  }
  if (!merge::replaces(it->second.ver, rec.ver)) return false;
  digest_.hash ^= entry_hash(key, it->second.ver) ^ entry_hash(key, rec.ver);
  it->second = rec;
  if (it->second.tombstone) {
    it->second.value.clear();
    it->second.value.shrink_to_fit();
  }
  return true;
}

strong_replica::page strong_replica::dump(std::string_view after, bool first,
                                          std::size_t max_records, std::size_t max_bytes) const {
  page out;
  auto it = first ? keys_.begin() : keys_.upper_bound(after);
  std::size_t bytes = 0;
  for (; it != keys_.end(); ++it) {
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

}  // namespace warp::detail
