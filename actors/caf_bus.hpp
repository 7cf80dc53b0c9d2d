// The CAF-native sync bus: change batches travel as (warpbatch, bytes) messages between
// the nodes' cluster actors over CAF's network layer, no broker involved. The actor
// (actors/cluster_actor.cpp) does the I/O; this class is the sync_bus face of it.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_context.hpp"
#include "bus/sync_bus.hpp"

namespace warp::bus {

class caf_bus final : public sync_bus {
 public:
  /// `ctx` must outlive the bus. start() spawns the cluster actor.
  caf_bus(caf::actor_system& sys, actors::cluster_context& ctx);
  ~caf_bus() override;

  void start();
  void publish(change_record rec) override;
  void subscribe(batch_handler on_batch, gap_handler on_gap) override;
  /// Where key-pattern tables from peers go (set before start; called on the actor thread).
  void subscribe_patterns(std::function<void(pattern_table)> on_patterns);
  /// Hands the node's own new key-pattern table (encoded) to the cluster actor to spread.
  void publish_patterns(std::string bytes);
  bus_health health() const override;
  cluster_stats metrics() const override;
  void stop() override;
  const caf::actor& actor() const noexcept { return actor_; }

 private:
  caf::actor_system& sys_;
  actors::cluster_context& ctx_;
  /// The subscription, handed to the cluster actor when it starts (it calls it, nobody else).
  actors::bus_delivery delivery_;
  caf::actor actor_;
};

}  // namespace warp::bus
