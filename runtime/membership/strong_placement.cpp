#include "runtime/membership/strong_placement.hpp"

#include <algorithm>
#include <unordered_map>

namespace warp::detail {

strong_placement::strong_placement(std::vector<std::string> members, const std::string& self,
                                   std::size_t replication_factor, std::size_t ranges)
    : map_(ranges == 0 ? 1 : ranges) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  members_ = std::move(members);
  for (std::size_t i = 0; i < members_.size(); ++i)
    if (members_[i] == self) self_ = i;
  rf_ = std::clamp<std::size_t>(replication_factor, 1, std::max<std::size_t>(1, members_.size()));
  rf_ = std::min<std::size_t>(rf_, 15);
  // Rendezvous ids from the addresses: stable across restarts of a member. A (very
  // unlikely) 32-bit collision is resolved by rehashing with the index, deterministically.
  std::vector<std::uint32_t> ids;
  std::unordered_map<std::uint32_t, std::size_t> index_of;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    auto id = static_cast<std::uint32_t>(stable_hash(members_[i]));
    for (std::size_t salt = 1; id == 0 || index_of.count(id); ++salt)
      id = static_cast<std::uint32_t>(stable_hash(members_[i] + "#" + std::to_string(salt)));
    ids.push_back(id);
    index_of[id] = i;
  }
  map_.assign(ids);
  replicas_.resize(map_.ranges());
  for (std::uint32_t r = 0; r < map_.ranges(); ++r)
    for (auto id : map_.replicas(r, rf_)) replicas_[r].push_back(index_of.at(id));
  std::string fp;
  for (auto& m : members_) fp += m + ",";
  fp += "|rf=" + std::to_string(rf_) + "|ranges=" + std::to_string(map_.ranges());
  fingerprint_ = stable_hash(fp);
}

bool strong_placement::is_replica(std::uint32_t range) const {
  if (self_ == npos) return false;
  auto& r = replicas_[range];
  return std::find(r.begin(), r.end(), self_) != r.end();
}

}  // namespace warp::detail
