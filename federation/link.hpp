// The transport seam of federation: how batches of changes leave for another region and
// how those of other regions arrive. The CAF-link transport (federation_actor.cpp: each
// node dials the other regions' gateways on their node ports) is one; a Kafka bridge is
// another that plugs in here (a producer per region topic, a consumer group whose offsets
// are committed after apply). The pure parts (queue, batching, loop rule, dedup) live in
// link_state.hpp and are shared by every transport.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "federation/change.hpp"
#include "warp/error.hpp"

namespace warp::federation {

class link_transport {
 public:
  virtual ~link_transport() = default;
  /// Called when a batch was delivered (applied by the receiving region: `result` true)
  /// or not (false: the caller re-queues it).
  using sent_fn = std::function<void(bool delivered)>;
  /// Sends `b` to `region`; false when no route to it is up right now (nothing sent).
  virtual bool send(const std::string& region, const batch& b, sent_fn done) = 0;
  /// Whether some gateway of `region` is reachable now.
  virtual bool up(const std::string& region) const = 0;
  /// Batches arriving from other regions are handed to `fn` (set before start).
  using receive_fn = std::function<void(batch)>;
  virtual void on_receive(receive_fn fn) = 0;
};

}  // namespace warp::federation
