// The sync bus: how a node's changes reach every other node. One interface for every
// transport: the CAF-native one (bus/caf_bus.hpp, the default: no broker) and later Kafka,
// Redis, NATS, PostgreSQL and mesh transports, which carry the same envelope bytes
// (bus/envelope.hpp). A transport owns batching, sequencing and gap detection; the node
// only publishes records and applies what arrives.
#pragma once

#include <functional>
#include <string>

#include "bus/envelope.hpp"
#include "warp/cluster.hpp"

namespace warp::bus {

struct bus_health {
  bool ok = true;
  std::size_t peers_reachable = 0;
  std::size_t queued_records = 0;
  std::string detail;
};

class sync_bus {
 public:
  virtual ~sync_bus() = default;

  /// Hands a local change to the bus (any thread, cheap, never blocks on the network).
  virtual void publish(change_record rec) = 0;

  /// Called (on the transport's thread) with every batch that arrives in order.
  using batch_handler = std::function<void(const change_batch&)>;
  /// Called when changes from `sender` may have been lost: everything cached that is not
  /// newer than `hlc_bound` may be stale.
  using gap_handler = std::function<void(std::uint32_t sender, std::uint64_t hlc_bound)>;
  /// Set before start; one subscriber (the node).
  virtual void subscribe(batch_handler on_batch, gap_handler on_gap) = 0;

  virtual bus_health health() const = 0;
  virtual cluster_stats metrics() const = 0;
  /// Sends what is queued, says goodbye, stops. Idempotent.
  virtual void stop() = 0;
};

}  // namespace warp::bus
