// The node's key-pattern table at run time (docs/keyspaces.md): the patterns a node started with,
// changed by operators (node::set_pattern, remove_pattern: /admin/patterns, warpctl patterns) and
// by peers, as one versioned table. Newest version wins; the table is persisted under the data dir
// and spread through the cluster actor. Reads never come here: they use pattern_registry's
// snapshots, which apply() republishes in one step.
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
  /// pattern_registry::parse_spec): a new version, applied here, persisted, spread.
  result<void> set(std::string_view spec);
  /// Removes a pattern of the table (errc::not_found when it has none by that glob).
  result<void> remove(std::string_view glob);
  /// A table from a peer: applied when newer than ours (executor thread).
  void apply_remote(const bus::pattern_table& t);

  pattern_table_view view() const;
  bus::pattern_version version() const;
  /// The table encoded for the wire (empty at version (0, 0), which is never sent).
  std::string encoded() const;
  /// The file the table is kept in (empty: not persisted).
  std::string path() const;

 private:
  using specs = std::map<std::string, std::string, std::less<>>;  // glob -> spec
  result<void> apply(specs next, bus::pattern_version ver, bool local);
  result<void> persist(const specs& table, bus::pattern_version ver) const;
  std::string encode_locked(const specs& table, bus::pattern_version ver) const;

  node_state& st_;
  mutable std::mutex mtx_;  // the admin path and remote applies only; reads never take it
  specs table_;
  bus::pattern_version ver_;
};

}  // namespace warp::detail
