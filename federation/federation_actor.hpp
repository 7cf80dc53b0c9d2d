// The node's federation (docs/federation.md): one actor per node that ships the committed
// changes of this node's `+federated` keys to every linked region and applies the other
// regions' changes here, over CAF links on the node port (so the port's TLS and size
// bounds cover them as they cover the cluster's own links).
//
//   writer thread --local_change--> inbox (bounded, mutex) --tick--> link_queue per region
//   --batch frame (warpfbat)--> a gateway of the region --executor--> apply_federated
//   (write path: storage, L1, the region's cluster) --ack after apply--> link_queue::acked
//
// Every node ships its own writes (each write is committed on exactly one node); any node
// named in another region's --federation-link is a gateway that applies and forwards by
// the loop rule (link_state.hpp). The actor never blocks: storage work runs on the node's
// executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "federation/status.hpp"
#include "runtime/modes/node_state.hpp"
#include "warp/error.hpp"

namespace warp::federation {

class node_federation;

/// Starts the federation of `st` (whose config names a region and which listens); the
/// sink is installed into st.federation. Call stop() before the node's executor drains.
result<std::unique_ptr<node_federation>> start_federation(detail::node_state& st);

class node_federation {
 public:
  virtual ~node_federation() = default;
  /// Stops shipping (queued changes stay unshipped: anti-entropy repairs them later).
  virtual void stop() = 0;
  /// `/admin/federation`: region, links, their state, depth, lag, counters.
  virtual std::string json() const = 0;
  /// The warp_federation_* lines of /metrics.
  virtual std::string metrics() const = 0;
  /// Runs an anti-entropy pass with every linked region now.
  virtual void repair_now() = 0;
};

}  // namespace warp::federation
