// Key ranges and their owners. The key space is split into a fixed number of ranges
// (default 271) by a hash every node computes the same way; each range maps to an owner
// and replicas by rendezvous (highest random weight) hashing over the up nodes. When a
// node joins or leaves, only the ranges whose top-scoring node changes move: a leave moves
// exactly the ranges the leaver owned, a join moves about ranges/N of them to the joiner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace warp::detail {

/// 64-bit FNV-1a followed by a splitmix64 finaliser: stable across builds and platforms
/// (std::hash is not), so every node maps a key to the same range.
std::uint64_t stable_hash(std::string_view bytes) noexcept;

class range_map {
 public:
  explicit range_map(std::size_t ranges = 271);

  std::size_t ranges() const noexcept { return ranges_; }
  /// The range of a key.
  std::uint32_t range_of(std::string_view key) const noexcept;

  /// Recomputes every owner over `nodes` (ids of the up nodes, any order, may repeat).
  /// Returns the ranges whose owner changed.
  std::vector<std::uint32_t> assign(std::vector<std::uint32_t> nodes);

  /// Owner of a range; 0 when no node is up.
  std::uint32_t owner(std::uint32_t range) const noexcept;
  std::uint32_t owner_of(std::string_view key) const noexcept { return owner(range_of(key)); }
  /// The `n` highest-scoring nodes for a range, owner first (fewer if fewer are up).
  std::vector<std::uint32_t> replicas(std::uint32_t range, std::size_t n) const;
  /// Ranges owned by `node`.
  std::vector<std::uint32_t> owned_by(std::uint32_t node) const;
  const std::vector<std::uint32_t>& nodes() const noexcept { return nodes_; }

  /// Rendezvous score of (range, node).
  static std::uint64_t score(std::uint32_t range, std::uint32_t node) noexcept;

 private:
  std::size_t ranges_;
  std::vector<std::uint32_t> nodes_;
  std::vector<std::uint32_t> owners_;
};

}  // namespace warp::detail
