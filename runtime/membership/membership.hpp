// The membership table of one node: pure logic with the time passed in, so every
// transition is unit-tested without sleeping. The cluster actor feeds it heartbeats,
// lost connections and ticks, and acts on the events it returns.
//
// States (see warp/cluster.hpp): a member is `joining` when known only by address or by
// gossip, `up` while its heartbeats arrive, `suspect` after half the failure timeout of
// silence (or when its connection dropped), `down` after the whole timeout, `leaving` when
// it announced a clean shutdown. A heartbeat from a new id at a known member's address means
// that member restarted: the old id goes `down` at once and the new one joins.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "warp/cluster.hpp"

namespace warp::detail {

struct membership_options {
  std::int64_t suspect_after_ms = 1000;
  std::int64_t down_after_ms = 2000;
  /// Minimum time between two connection attempts to one address.
  std::int64_t retry_ms = 500;
  /// Down or leaving members are forgotten after this long (their address stays known).
  std::int64_t forget_after_ms = 60'000;
};

struct member_event {
  std::uint32_t id = 0;
  member_state from = member_state::joining;
  member_state to = member_state::joining;
  bool was_trusted = false;  ///< it was up/suspect before: its changes may have been lost
};

class membership {
 public:
  membership(member_info self, membership_options opts);

  /// A heartbeat heard directly from member `id`.
  std::vector<member_event> heard(std::uint32_t id, std::uint64_t incarnation,
                                  const std::string& name, const std::string& address, bool leaving,
                                  std::int64_t now);
  /// An address worth contacting (seed, DNS answer, gossip). Ignored if it is ours.
  void learn(const std::string& address);
  /// An address turned out to be this node (a seed list naming itself).
  void mark_self_address(const std::string& address);
  /// The connection to `id` dropped: suspect until it is heard again.
  std::vector<member_event> lost(std::uint32_t id, std::int64_t now);
  /// Time-based transitions (suspect, down, forget).
  std::vector<member_event> tick(std::int64_t now);

  /// Addresses to (re)connect to now; records the attempt.
  std::vector<std::string> to_contact(std::int64_t now);

  /// Ids that own ranges: this node plus every up or suspect member.
  std::vector<std::uint32_t> owners() const;
  /// Ids of members that should receive change batches (up, suspect, leaving).
  std::vector<std::uint32_t> reachable() const;
  std::vector<member_info> view() const;
  const member_info* find(std::uint32_t id) const;
  const member_info& self() const noexcept { return self_; }
  /// Every address known (for gossip).
  std::vector<std::string> addresses() const;

 private:
  member_event set_state(member_info& m, member_state to, std::int64_t now);

  member_info self_;
  membership_options opts_;
  std::map<std::uint32_t, member_info> members_;
  std::map<std::uint32_t, std::int64_t> state_since_;
  struct contact {
    std::int64_t last_attempt_ms = -1'000'000'000;
    bool self = false;
  };
  std::map<std::string, contact> contacts_;
};

}  // namespace warp::detail
