// Which actor speaks for which peer: the cluster actor's links to the other nodes' cluster
// actors, both ways (id -> handle for sending, address -> id for CAF down messages). No
// behaviour of its own: the cluster actor monitors and demonitors what this tells it to.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

namespace warp::actors {

class peer_links {
 public:
  /// `hdl` speaks for `id` (a heartbeat from it). Returns true when the link is new or
  /// changed: the caller monitors `hdl`; the replaced handle, if any, is forgotten.
  bool identify(std::uint32_t id, const caf::actor& hdl) {
    auto& slot = by_id_[id];
    if (slot == hdl) return false;
    if (slot) by_addr_.erase(slot.address());
    slot = hdl;
    by_addr_[hdl.address()] = id;
    return true;
  }

  /// A monitored actor went away: the id it spoke for, if it still does.
  std::optional<std::uint32_t> lost(const caf::actor_addr& source) {
    auto it = by_addr_.find(source);
    if (it == by_addr_.end()) return std::nullopt;
    auto id = it->second;
    by_addr_.erase(it);
    if (auto p = by_id_.find(id); p != by_id_.end() && p->second.address() == source)
      by_id_.erase(p);
    return id;
  }

  /// The peer went down: forget its link. Returns the handle to demonitor (null if none).
  caf::actor drop(std::uint32_t id) {
    auto p = by_id_.find(id);
    if (p == by_id_.end()) return nullptr;
    auto hdl = std::move(p->second);
    by_id_.erase(p);
    by_addr_.erase(hdl.address());
    return hdl;
  }

  const caf::actor* find(std::uint32_t id) const {
    auto p = by_id_.find(id);
    return p == by_id_.end() ? nullptr : &p->second;
  }

 private:
  std::unordered_map<std::uint32_t, caf::actor> by_id_;
  std::unordered_map<caf::actor_addr, std::uint32_t> by_addr_;
};

}  // namespace warp::actors
