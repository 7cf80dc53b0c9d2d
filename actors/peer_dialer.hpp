// How a node's per-node actor (the ABD quorum actor, the Raft host) finds the same actor on
// every other member: connect to the member's listen port through the guarded node port
// (bus/node_transport.hpp), then ask that node's registry for the actor's fixed name; the
// answer (a strong_actor_ptr) arrives in the asking actor's mailbox and is handed to
// found(). Links that go down are redialed on the next tick, at most once per
// `retry` per member. Lives inside the owning actor's state: one thread, no lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/node_id.hpp>

namespace warp::actors {

class peer_dialer {
 public:
  struct peer {
    std::string host;
    std::uint16_t port = 0;
    caf::actor handle;  ///< the peer's actor, once found
    std::optional<std::chrono::steady_clock::time_point> connecting_since;
  };

  /// `members`: HOST:PORT each; `self_index`: this node's entry (never dialed), or npos.
  /// `registry_name`: the name the peers' actors are registered under.
  peer_dialer(caf::event_based_actor* self, caf::atom_value registry_name,
              const std::vector<std::string>& members, std::size_t self_index,
              std::chrono::milliseconds retry = std::chrono::milliseconds{1000});

  /// Adds a member learned while running (HOST:PORT); its index, or the existing one's.
  std::size_t add(const std::string& member);
  /// Dials from now on (without it, only link() connects peers: tests in one system).
  void enable();
  bool enabled() const noexcept { return static_cast<bool>(basp_); }
  /// Connects to every member without a link whose last attempt is older than `retry`.
  void tick();
  /// A registry answer: links the member it belongs to; its index, or nothing.
  std::optional<std::size_t> found(const caf::strong_actor_ptr& ptr);
  /// Uses `hdl` for member `m` (monitored); false when it was already the link.
  bool link(std::size_t m, caf::actor hdl);
  /// A monitored link went down: the member's index, or nothing.
  std::optional<std::size_t> down(const caf::actor_addr& source);

  std::size_t size() const noexcept { return peers_.size(); }
  const caf::actor& handle(std::size_t m) const { return peers_[m].handle; }
  std::size_t connected() const noexcept;
  std::size_t self_index() const noexcept { return self_; }

 private:
  caf::event_based_actor* self_actor_;
  caf::atom_value name_;
  std::vector<peer> peers_;
  std::size_t self_;
  std::chrono::milliseconds retry_;
  std::unordered_map<caf::node_id, std::size_t> by_node_;
  caf::actor basp_;
};

}  // namespace warp::actors
