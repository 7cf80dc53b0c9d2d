// A node's numbers for operators: Prometheus text exposition and JSON documents. Used by
// warpd's admin HTTP endpoint and the control actor's `stats` request; an embedding service
// can serve them from its own HTTP stack.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace warp {

class node;
struct node_config;
struct strong_status;
struct validation_report;

/// Every L1 and node counter/gauge in Prometheus text format 0.0.4 (HELP and TYPE lines,
/// `_total` counters), each sample labelled `node="<name>"`. Cheap: reads counters only,
/// never touches storage.
std::string prometheus_text(const node& n);

/// A Prometheus label value escaped as the text format wants (\\, \" and \n).
std::string prometheus_label(std::string_view value);

/// Appends the `# HELP` and `# TYPE` lines of metric family `name` to `out` (the text
/// format wants them before the family's first sample). Every exposition writer of the
/// node, the cluster and the sidecar uses it.
void append_prometheus_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help);

/// The node's stats as one JSON object: `node` (name, id, listen, storage), `l1`
/// (hits, misses, evictions, expirations, sets, removes, entries, bytes, bounds),
/// `storage` (fetches, errors, writes, coalesced_reads, keys), `patterns`,
/// `default_policy`. `storage.keys` asks storage for its key count (may do I/O; null when
/// storage fails).
std::string stats_json(node& n);

/// A validation pass's report as one JSON object: `checked`, `inconsistent`, `healed`,
/// `uncached`, `errors`, and `found` (key, finding, l1_version, storage_version).
std::string validation_json(const validation_report& r);

/// The node's hottest keys as one JSON object (`/admin/hotkeys`, `warpctl hotkeys`):
/// `keys` (hottest first, at most `limit`, 0 = all tracked: `key`, estimated `reads`),
/// the tracking settings (`sample_every`, `half_life_ms`, `capacity`) and `warmup` counters.
std::string hot_keys_json(const node& n, std::size_t limit);
/// The configuration as one JSON object, one member per node_config field (the names of
/// the `warp.*` config options, with `-` spelled `_`).
std::string config_json(const node_config& cfg);

/// The strong mode's state as one JSON object (`/admin/strong`, `warpctl strong status`):
/// `engine`, `answered`, and per engine the ranges (abd) or the groups and host (raft).
std::string strong_json(const strong_status& s);
/// The strong mode's gauges and counters in Prometheus text format, labelled like
/// prometheus_text (raft: one sample per group and `group` label).
std::string strong_prometheus_text(const strong_status& s, std::string_view node_name);

/// The name a node shows: `config.name`, or "warp-<pid>" when it is empty.
std::string display_name(const node_config& cfg);

}  // namespace warp
