#include "runtime/membership/ring.hpp"

#include <algorithm>

namespace warp::detail {

namespace {

std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t stable_hash(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}

range_map::range_map(std::size_t ranges) : ranges_(ranges == 0 ? 1 : ranges), owners_(ranges_, 0) {}

std::uint32_t range_map::range_of(std::string_view key) const noexcept {
  return static_cast<std::uint32_t>(stable_hash(key) % ranges_);
}

std::uint64_t range_map::score(std::uint32_t range, std::uint32_t node) noexcept {
  return mix((static_cast<std::uint64_t>(node) << 32) ^ mix(range));
}

std::vector<std::uint32_t> range_map::assign(std::vector<std::uint32_t> nodes) {
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  std::erase(nodes, 0u);
  nodes_ = std::move(nodes);
  std::vector<std::uint32_t> moved;
  for (std::uint32_t r = 0; r < ranges_; ++r) {
    std::uint32_t best = 0;
    std::uint64_t best_score = 0;
    for (auto n : nodes_) {
      auto s = score(r, n);
      if (best == 0 || s > best_score || (s == best_score && n < best)) {
        best = n;
        best_score = s;
      }
    }
    if (owners_[r] != best) moved.push_back(r);
    owners_[r] = best;
  }
  return moved;
}

std::uint32_t range_map::owner(std::uint32_t range) const noexcept {
  return range < ranges_ ? owners_[range] : 0;
}

std::vector<std::uint32_t> range_map::replicas(std::uint32_t range, std::size_t n) const {
  std::vector<std::pair<std::uint64_t, std::uint32_t>> scored;
  scored.reserve(nodes_.size());
  for (auto node : nodes_) scored.emplace_back(score(range, node), node);
  std::sort(scored.begin(), scored.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < scored.size() && i < n; ++i) out.push_back(scored[i].second);
  return out;
}

std::vector<std::uint32_t> range_map::owned_by(std::uint32_t node) const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t r = 0; r < ranges_; ++r)
    if (owners_[r] == node) out.push_back(r);
  return out;
}

}  // namespace warp::detail
