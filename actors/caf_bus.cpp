#include "actors/caf_bus.hpp"

#include <caf/all.hpp>

#include "actors/cluster_actor.hpp"

namespace warp::bus {

caf_bus::caf_bus(caf::actor_system& sys, actors::cluster_context& ctx) : sys_(sys), ctx_(ctx) {}

caf_bus::~caf_bus() {
  stop();
}

void caf_bus::start() {
  if (!actor_) actor_ = actors::spawn_cluster_actor(sys_, ctx_, delivery_);
}

void caf_bus::publish(change_record rec) {
  ctx_.counters.records_published.fetch_add(1, std::memory_order_relaxed);
  if (ctx_.queue.push(std::move(rec)) && actor_) caf::anon_send(actor_, actors::wake_atom::value);
}

void caf_bus::subscribe(batch_handler on_batch, gap_handler on_gap) {
  delivery_.on_batch = std::move(on_batch);
  delivery_.on_gap = std::move(on_gap);
}

void caf_bus::subscribe_patterns(std::function<void(pattern_table)> on_patterns) {
  delivery_.on_patterns = std::move(on_patterns);
}

void caf_bus::publish_patterns(std::string bytes) {
  if (actor_) caf::anon_send(actor_, actors::local_pattern_table_atom::value, std::move(bytes));
}

bus_health caf_bus::health() const {
  bus_health h;
  h.queued_records = ctx_.queue.size();
  std::lock_guard<std::mutex> g{ctx_.snap_mtx};
  h.peers_reachable = ctx_.reachable_peers;
  h.ok = static_cast<bool>(actor_);
  h.detail = h.ok ? "caf: running" : "caf: stopped";
  return h;
}

cluster_stats caf_bus::metrics() const {
  return ctx_.counters.snapshot();
}

void caf_bus::stop() {
  if (!actor_) return;
  actors::stop_cluster_actor(sys_, actor_);
  actor_ = nullptr;
}

}  // namespace warp::bus
