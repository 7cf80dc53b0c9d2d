// Where the strong_distributed mode keeps each key range: the replicas of every range over
// a static member list. Pure and deterministic (the same computation on every node), so
// the quorum actor (actors/) and the strong mode (runtime/modes/) share it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/membership/ring.hpp"

namespace warp::detail {

/// Where each range's replicas are: rendezvous hashing over the member addresses (stable
/// across restarts, unlike node ids), the same computation on every node.
class strong_placement {
 public:
  /// `members`: HOST:PORT each (deduplicated and sorted here); `self`: this node's address.
  strong_placement(std::vector<std::string> members, const std::string& self,
                   std::size_t replication_factor, std::size_t ranges);

  const std::vector<std::string>& members() const noexcept { return members_; }
  /// Index of this node in members(), or npos when it is not a member (coordinator only).
  std::size_t self_index() const noexcept { return self_; }
  std::size_t replication_factor() const noexcept { return rf_; }
  std::size_t majority() const noexcept { return rf_ / 2 + 1; }
  /// Other replicas a recovering replica must copy a range from (see docs/strong.md).
  std::size_t recovery_quorum() const noexcept { return std::min(rf_ - 1, majority()); }
  std::size_t ranges() const noexcept { return map_.ranges(); }
  std::uint32_t range_of(std::string_view key) const noexcept { return map_.range_of(key); }
  /// Member indexes of the range's replicas (replication_factor() of them).
  const std::vector<std::size_t>& replicas(std::uint32_t range) const { return replicas_[range]; }
  bool is_replica(std::uint32_t range) const;
  /// Hash of members, replication factor and range count: nodes that disagree on it must
  /// never form quorums together.
  std::uint64_t fingerprint() const noexcept { return fingerprint_; }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::vector<std::string> members_;
  std::size_t self_ = npos;
  std::size_t rf_ = 1;
  range_map map_;
  std::vector<std::vector<std::size_t>> replicas_;
  std::uint64_t fingerprint_ = 0;
};

}  // namespace warp::detail
