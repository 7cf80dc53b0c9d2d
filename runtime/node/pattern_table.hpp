// The node's key-pattern table at run time (docs/keyspaces.md): the patterns a node started with,
// changed by operators (node::set_pattern, remove_pattern: /admin/patterns, warpctl patterns) and
// by peers. Every glob carries its own version (a removal leaves a tombstone at its version);
// tables merge glob by glob, newest wins (bus::merge_pattern), so concurrent changes to different
// globs on different nodes all survive. The table is persisted under the data dir and spread
// through the cluster actor. Reads never come here: they use pattern_registry's snapshots, which
// apply() republishes in one step.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bus/envelope.hpp"
#include "warp/error.hpp"
#include "warp/node.hpp"

namespace warp::detail {

struct node_state;

class pattern_table_keeper {
 public:
  explicit pattern_table_keeper(node_state& st) : st_(st) {}

  /// At start, before anything reads patterns: the specs the node starts with. The
  /// command line's (`cfg.patterns`, version (patterns_version, 0)) or, when the file
  /// under the data dir holds a newer version, the file's. Errors name the file.
  result<std::vector<std::string>> load_start_table();

  /// Sets or replaces one pattern from its spec (`GLOB=MODE[:TTL]+options`, parsed by
  /// pattern_registry::parse_spec): the glob gets a new version, applied here, persisted,
  /// spread.
  result<void> set(std::string_view spec);
  /// Removes a pattern of the table (errc::not_found when it has none by that glob): the
  /// glob gets a tombstone at a new version.
  result<void> remove(std::string_view glob);
  /// A table from a peer: merged glob by glob (executor thread); when that changed ours,
  /// the merged table is applied, persisted and sent on.
  void apply_remote(const bus::pattern_table& t);

  pattern_table_view view() const;
  /// The table's summary (bus::pattern_summary), as heartbeats carry it.
  bus::pattern_version version() const;
  /// The table encoded for the wire (empty when the table is empty, which is never sent).
  std::string encoded() const;
  /// The file the table is kept in (empty: not persisted).
  std::string path() const;

  /// Live patterns a table may hold (a set of a new glob beyond it is refused) and
  /// tombstones it keeps (the oldest are forgotten beyond it). Together within the wire's
  /// bound on one table (bus::wire_limits::max_patterns).
  static constexpr std::size_t max_live = 3072;
  static constexpr std::size_t max_tombstones = 1024;

 private:
  using entries = bus::pattern_entries;
  result<void> apply(entries next, bool local);
  result<void> persist(const entries& table) const;
  std::string encode_locked(const entries& table) const;
  /// The version a change made here now gets: above every version this node has seen.
  bus::pattern_version next_version() const;

  node_state& st_;
  mutable std::mutex mtx_;  // the admin path and remote applies only; reads never take it
  entries table_;           // live patterns and tombstones
};

}  // namespace warp::detail
