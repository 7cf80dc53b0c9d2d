// The strong mode's state for operators: asked of the engine's actors (the ABD quorum actor,
// or the Raft host and each of its groups), then rendered as JSON (/admin/strong, warpctl
// strong status) and Prometheus text (/metrics). /readyz decides on the same struct, so
// every view of the strong mode reads one snapshot the same way.
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/quorum_commands.hpp"
#include "runtime/consensus/raft.hpp"
#include "runtime/modes/strong.hpp"
#include "runtime/modes/strong_raft.hpp"
#include "runtime/node/node_impl.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"

namespace warp {

namespace {

// The ABD engine's range counts, from its quorum actor's status JSON.
void fill_abd(caf::actor_system& sys, const caf::actor& quorum, std::chrono::milliseconds timeout,
              strong_status& out) {
  caf::scoped_actor self{sys};
  self->request(quorum, timeout, actors::quorum_status_atom::value)
      .receive(
          [&](std::string& text) {
            auto j = nlohmann::json::parse(text, nullptr, false);
            if (j.is_discarded() || !j.is_object()) {
              out.error = "unreadable status";
              return;
            }
            out.answered = true;
            out.replicated_ranges = j.value("replicated_ranges", std::size_t{0});
            out.ready_ranges = j.value("ready_ranges", std::size_t{0});
            if (auto it = j.find("waiting_on"); it != j.end() && it->is_array())
              for (auto& w : *it)
                if (w.is_string()) out.waiting_on.push_back(w.get<std::string>());
          },
          [&](caf::error& err) { out.error = sys.render(err); });
}

void fill_raft(const detail::strong_raft& engine, std::chrono::milliseconds timeout,
               strong_status& out) {
  auto report = engine.status(timeout);
  if (!report) {
    out.error = report.err().message();
    return;
  }
  out.answered = true;
  const auto& h = report->host;
  out.host.peers_connected = h.peers_connected;
  out.host.batches_sent = h.batches_sent;
  out.host.items_sent = h.items_sent;
  out.host.batches_received = h.batches_received;
  out.host.malformed = h.malformed;
  out.host.undeliverable = h.undeliverable;
  out.host.forwarded = h.forwarded;
  out.host.forwards_served = h.forwards_served;
  out.host.flushes = h.flushes;
  out.missing_groups = std::move(report->missing);
  const auto& members = engine.placement().members();
  for (const auto& g : report->groups) {
    strong_status::group row;
    row.id = g.group;
    row.member = g.id;
    row.role = std::string{consensus::to_string(g.role)};
    row.term = g.term;
    row.leader = g.leader;
    // The host's address book names every member it heard of; an initial member it has
    // not heard from yet has its bootstrap id, 1 + its index in the sorted member list.
    if (auto a = report->host.addresses.find(g.leader); a != report->host.addresses.end())
      row.leader_address = a->second;
    else if (g.leader > 0 && g.leader <= members.size())
      row.leader_address = members[g.leader - 1];
    row.commit = g.commit;
    row.applied = g.applied;
    row.last_index = g.last_index;
    row.voters = g.voters;
    row.log_failed = g.log_failed;
    row.persists = g.persists;
    row.snapshot_index = g.snapshot_index;
    row.snapshots = g.snapshots;
    row.elections_started = g.elections_started;
    row.elections_won = g.elections_won;
    row.pending_proposals = g.pending_proposals;
    row.pending_reads = g.pending_reads;
    out.groups.push_back(std::move(row));
  }
}

}  // namespace

std::optional<strong_status> node::strong_state(std::chrono::milliseconds timeout) const {
  auto* coordinator = impl_->strong.get();
  if (!coordinator) return std::nullopt;
  strong_status out;
  if (auto* engine = coordinator->raft()) {
    out.engine = "raft";
    fill_raft(*engine, timeout, out);
  } else {
    out.engine = "abd";
    if (!coordinator->actor())
      out.error = "the quorum actor is not running";
    else
      fill_abd(*impl_->system, coordinator->actor(), timeout, out);
  }
  return out;
}

bool strong_status::ready() const noexcept {
  if (!answered) return false;
  if (engine == "abd") return ready_ranges == replicated_ranges;
  // A node in no group (started with --strong-join and not added yet, or removed) would
  // only forward: an operator waiting on its readiness before removing another member
  // must not be told it holds anything.
  if (groups.empty() && missing_groups.empty()) return false;
  for (const auto& g : groups)
    if (g.leader == 0 || g.log_failed) return false;
  return missing_groups.empty();
}

std::string strong_json(const strong_status& s) {
  nlohmann::json j = {{"engine", s.engine}, {"answered", s.answered}, {"ready", s.ready()}};
  if (!s.error.empty()) j["error"] = s.error;
  if (s.engine == "abd") {
    j["replicated_ranges"] = s.replicated_ranges;
    j["ready_ranges"] = s.ready_ranges;
    j["waiting_on"] = s.waiting_on;
    return j.dump();
  }
  nlohmann::json groups = nlohmann::json::array();
  std::size_t leading = 0;
  for (const auto& g : s.groups) {
    leading += g.role == "leader";
    groups.push_back({{"group", g.id},
                      {"member", g.member},
                      {"role", g.role},
                      {"term", g.term},
                      {"leader", g.leader},
                      {"leader_address", g.leader_address},
                      {"commit", g.commit},
                      {"applied", g.applied},
                      {"last_index", g.last_index},
                      {"voters", g.voters},
                      {"log_failed", g.log_failed},
                      {"persists", g.persists},
                      {"snapshot_index", g.snapshot_index},
                      {"snapshots", g.snapshots},
                      {"elections_started", g.elections_started},
                      {"elections_won", g.elections_won},
                      {"pending_proposals", g.pending_proposals},
                      {"pending_reads", g.pending_reads}});
  }
  j["groups"] = std::move(groups);
  j["leading"] = leading;
  j["missing_groups"] = s.missing_groups;
  j["host"] = {{"peers_connected", s.host.peers_connected},
               {"batches_sent", s.host.batches_sent},
               {"items_sent", s.host.items_sent},
               {"batches_received", s.host.batches_received},
               {"malformed", s.host.malformed},
               {"undeliverable", s.host.undeliverable},
               {"forwarded", s.host.forwarded},
               {"forwards_served", s.host.forwards_served},
               {"flushes", s.host.flushes}};
  return j.dump();
}

std::string strong_prometheus_text(const strong_status& s, std::string_view node_name) {
  std::string out;
  if (!s.answered) return out;
  const std::string node_label = "node=\"" + prometheus_label(node_name) + "\"";
  auto sample = [&](std::string_view name, std::string_view labels, auto value) {
    out.append(name).append("{").append(labels).append("} ");
    out += std::to_string(value);
    out += '\n';
  };
  if (s.engine == "abd") {
    append_prometheus_header(out, "warp_strong_ranges_replicated", "gauge",
                             "Strong-mode key ranges this node replicates.");
    sample("warp_strong_ranges_replicated", node_label, s.replicated_ranges);
    append_prometheus_header(
        out, "warp_strong_ranges_ready", "gauge",
        "Replicated strong-mode ranges caught up and serving (below replicated: recovering).");
    sample("warp_strong_ranges_ready", node_label, s.ready_ranges);
    return out;
  }
  // One family at a time (the text format wants a family's samples together).
  struct family {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t (*value)(const strong_status::group&);
  };
  static const family families[] = {
      {"warp_raft_group_leader", "gauge", "1 when this node leads the group.",
       [](const strong_status::group& g) -> std::uint64_t { return g.role == "leader"; }},
      {"warp_raft_group_has_leader", "gauge",
       "1 when this member knows a leader of the group (0: an election is running or the "
       "group has no quorum).",
       [](const strong_status::group& g) -> std::uint64_t { return g.leader != 0; }},
      {"warp_raft_group_term", "gauge", "The member's current term.",
       [](const strong_status::group& g) -> std::uint64_t { return g.term; }},
      {"warp_raft_group_commit_index", "gauge", "Highest log index known committed.",
       [](const strong_status::group& g) -> std::uint64_t { return g.commit; }},
      {"warp_raft_group_applied_index", "gauge", "Highest log index applied to the state machine.",
       [](const strong_status::group& g) -> std::uint64_t { return g.applied; }},
      {"warp_raft_group_last_index", "gauge", "Last index in the member's log.",
       [](const strong_status::group& g) -> std::uint64_t { return g.last_index; }},
      {"warp_raft_group_log_failed", "gauge",
       "1 when the group's log failed on this node (the group is stopped here until a restart).",
       [](const strong_status::group& g) -> std::uint64_t { return g.log_failed; }},
      {"warp_raft_group_persists_total", "counter", "Group commits (one fsync each).",
       [](const strong_status::group& g) -> std::uint64_t { return g.persists; }},
      {"warp_raft_group_snapshot_index", "gauge",
       "The log's base: entries up to it are compacted into the group's snapshot.",
       [](const strong_status::group& g) -> std::uint64_t { return g.snapshot_index; }},
      {"warp_raft_group_snapshots_total", "counter", "Log compactions since start.",
       [](const strong_status::group& g) -> std::uint64_t { return g.snapshots; }},
      {"warp_raft_group_elections_started_total", "counter",
       "Elections this member started after a won pre-vote.",
       [](const strong_status::group& g) -> std::uint64_t { return g.elections_started; }},
      {"warp_raft_group_elections_won_total", "counter", "Elections this member won.",
       [](const strong_status::group& g) -> std::uint64_t { return g.elections_won; }},
      {"warp_raft_group_pending_proposals", "gauge", "Proposals waiting to commit.",
       [](const strong_status::group& g) -> std::uint64_t { return g.pending_proposals; }},
  };
  for (const auto& f : families) {
    append_prometheus_header(out, f.name, f.type, f.help);
    for (const auto& g : s.groups)
      sample(f.name, node_label + ",group=\"" + std::to_string(g.id) + "\"", f.value(g));
  }
  std::size_t leading = 0, leaderless = 0;
  for (const auto& g : s.groups) {
    leading += g.role == "leader";
    leaderless += g.leader == 0;
  }
  append_prometheus_header(out, "warp_raft_groups", "gauge",
                           "Raft groups this node is a member of.");
  sample("warp_raft_groups", node_label, s.groups.size() + s.missing_groups.size());
  append_prometheus_header(out, "warp_raft_groups_leading", "gauge",
                           "Raft groups this node leads.");
  sample("warp_raft_groups_leading", node_label, leading);
  append_prometheus_header(out, "warp_raft_groups_leaderless", "gauge",
                           "Raft groups with no leader known to this node.");
  sample("warp_raft_groups_leaderless", node_label, leaderless);
  const struct {
    const char* name;
    const char* help;
    std::uint64_t value;
  } host_counters[] = {
      {"warp_raft_host_batches_sent_total",
       "Batches sent to other nodes' Raft hosts (one per destination per flush).",
       s.host.batches_sent},
      {"warp_raft_host_messages_sent_total", "Raft messages inside those batches.",
       s.host.items_sent},
      {"warp_raft_host_batches_received_total", "Batches received from other hosts.",
       s.host.batches_received},
      {"warp_raft_host_malformed_total", "Batch frames or items refused by the decoder.",
       s.host.malformed},
      {"warp_raft_host_undeliverable_total", "Raft messages to a member with no link.",
       s.host.undeliverable},
      {"warp_raft_host_forwarded_total", "Client requests forwarded to the group leader's host.",
       s.host.forwarded},
      {"warp_raft_host_forwards_served_total", "Requests other hosts forwarded here.",
       s.host.forwards_served},
  };
  for (const auto& c : host_counters) {
    append_prometheus_header(out, c.name, "counter", c.help);
    sample(c.name, node_label, c.value);
  }
  append_prometheus_header(out, "warp_raft_host_peers_connected", "gauge",
                           "Other members' Raft hosts this node has a link to.");
  sample("warp_raft_host_peers_connected", node_label, s.host.peers_connected);
  return out;
}

}  // namespace warp
