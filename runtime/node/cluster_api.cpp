// The public cluster API of a node (warp/cluster.hpp): its view of the members, the sync
// bus counters, their JSON and Prometheus forms, and the owner of a key. Answered by the
// node's cluster (runtime/modes/cluster.*), or as a one-member cluster when it runs alone.
#include "warp/cluster.hpp"

#include <string>

#include "runtime/modes/cluster.hpp"
#include "runtime/node/node_impl.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"

namespace warp {

namespace detail {

cluster* cluster_of(const node& n) {
  auto& st = *n.impl_;
  // Stopped: the node answers as one that runs alone, as before it joined.
  if (st.stopped.load(std::memory_order_acquire)) return nullptr;
  return st.cluster.get();
}

}  // namespace detail

cluster_view view_of(node& n) {
  if (auto* c = detail::cluster_of(n)) return c->view();
  cluster_view v;
  v.self_id = n.id();
  member_info me;
  me.id = n.id();
  me.name = n.config().name;
  me.address = n.config().listen;
  me.state = member_state::up;
  me.self = true;
  v.members.push_back(me);
  return v;
}

cluster_stats cluster_stats_of(node& n) {
  if (auto* c = detail::cluster_of(n)) return c->stats();
  return {};
}

std::string cluster_json(node& n) {
  return to_json(view_of(n), cluster_stats_of(n));
}

std::string cluster_prometheus_text(node& n) {
  auto v = view_of(n);
  auto s = cluster_stats_of(n);
  std::string name = display_name(n.config());
  std::string out;
  auto label = "{node=\"" + prometheus_label(name) + "\"";
  auto line = [&](const char* metric, const char* type, const char* help, auto value) {
    append_prometheus_header(out, metric, type, help);
    out += metric;
    std::string text;
    if constexpr (std::is_floating_point_v<decltype(value)>) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6f", value);
      text = buf;
    } else {
      text = std::to_string(value);
    }
    out += label + "} " + text + "\n";
  };
  out += "# HELP warp_cluster_members Members of this node's view by state.\n";
  out += "# TYPE warp_cluster_members gauge\n";
  for (auto st : {member_state::joining, member_state::up, member_state::suspect,
                  member_state::down, member_state::leaving}) {
    std::size_t count = 0;
    for (auto& m : v.members) count += m.state == st;
    out += "warp_cluster_members" + label + ",state=\"" + std::string{to_string(st)} + "\"} " +
           std::to_string(count) + "\n";
  }
  line("warp_bus_records_published_total", "counter", "Local changes handed to the bus.",
       s.records_published);
  line("warp_bus_records_coalesced_total", "counter",
       "Queued changes replaced by a newer one of the same key.", s.records_coalesced);
  line("warp_bus_batches_sent_total", "counter", "Batches sent (one per peer).", s.batches_sent);
  line("warp_bus_records_sent_total", "counter", "Records in the batches sent.", s.records_sent);
  line("warp_bus_bytes_sent_total", "counter", "Encoded bytes sent.", s.bytes_sent);
  line("warp_bus_batch_records_max", "gauge", "Largest batch sent, in records.",
       s.max_batch_records);
  // Prometheus wants base units: the microsecond counters are exported in seconds.
  line("warp_bus_batch_delay_seconds_total", "counter",
       "Summed wait of each batch's oldest record.", s.batch_delay_us_total / 1e6);
  line("warp_bus_batch_delay_seconds_max", "gauge", "Longest wait of a batch's oldest record.",
       s.max_batch_delay_us / 1e6);
  line("warp_bus_batches_immediate_total", "counter",
       "Flushes sent at once (idle or below the busy rate).", s.batches_immediate);
  line("warp_bus_batches_delayed_total", "counter", "Flushes held back to gather more records.",
       s.batches_delayed);
  line("warp_bus_batch_delay_current_seconds", "gauge",
       "Batch delay the adaptive batcher applies now.", s.batch_delay_current_us / 1e6);
  line("warp_bus_arrival_rate_per_second", "gauge",
       "Observed rate of local changes handed to the bus.", s.arrival_rate_per_s);
  line("warp_bus_batches_received_total", "counter", "Batches received.", s.batches_received);
  line("warp_bus_records_received_total", "counter", "Records received.", s.records_received);
  line("warp_bus_records_applied_total", "counter", "Received records that changed L1.",
       s.records_applied);
  line("warp_bus_records_stale_total", "counter", "Received records older than L1's entry.",
       s.records_stale);
  line("warp_bus_decode_errors_total", "counter", "Malformed messages dropped.", s.decode_errors);
  line("warp_bus_gaps_total", "counter", "Sequence gaps and lost peers.", s.gaps);
  line("warp_bus_gap_invalidations_total", "counter", "L1 entries dropped after gaps.",
       s.gap_invalidations);
  line("warp_cluster_owner_fetches_total", "counter", "Misses answered by the range owner.",
       s.owner_fetches);
  line("warp_cluster_replica_fetches_total", "counter",
       "Misses answered by a standby replica because the owner did not answer.", s.replica_fetches);
  line("warp_cluster_owner_fetch_fallbacks_total", "counter",
       "Misses that fell back to storage (no owner or standby answered).", s.owner_fetch_fallbacks);
  line("warp_cluster_owner_fetches_served_total", "counter", "Remote misses answered as owner.",
       s.owner_fetches_served);
  return out;
}

std::uint32_t owner_of(node& n, std::string_view key) {
  if (auto* c = detail::cluster_of(n)) return c->owner_of(key);
  return n.id();
}

}  // namespace warp
