// Merge policies of federated keys (docs/merge.md): how a write from another region meets
// the value a key holds here. merged = merge(local, incoming) over the stored bytes and
// versions. Built-ins: `lww` (merge/rules.hpp: strictly newer wins), `counter`, `set` and
// `map` (the CRDTs of merge/crdt.hpp, whose stored bytes are their encoded states); any
// other name is a function an embedder registered (warp/merge_fn.hpp).
//
// The registry maps names to policies and globs to names. The node owns one
// (node::register_merge, node::bind_merge); the federation apply path resolves a key's
// policy with policy_for() and calls merge(). Lookups share a lock with registrations;
// no I/O, nothing blocks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "merge/crdt.hpp"
#include "warp/error.hpp"
#include "warp/merge_fn.hpp"
#include "warp/version.hpp"

namespace warp::merge {

inline constexpr std::string_view policy_lww = "lww";
inline constexpr std::string_view policy_counter = "counter";
inline constexpr std::string_view policy_set = "set";
inline constexpr std::string_view policy_map = "map";

/// True for lww, counter, set and map.
bool builtin_policy(std::string_view name) noexcept;

/// What a key holds after a merge.
struct merged {
  std::string value;
  version ver;
};

/// The built-ins. `local` nullopt: the key holds nothing here (then the incoming value is
/// taken as is: lww, a custom function; or validated and re-encoded: the CRDTs).
/// lww: the incoming side wins only when strictly newer (a tie keeps the local value:
/// the same version is the same write). CRDTs: the join of both states at the larger of
/// both versions; codec_error when either side is not a state of that CRDT.
result<merged> merge_lww(const std::optional<merge_input>& local, const merge_input& incoming);
result<merged> merge_counter(const std::optional<merge_input>& local, const merge_input& incoming,
                             const crdt_limits& lim = {});
result<merged> merge_set(const std::optional<merge_input>& local, const merge_input& incoming,
                         const crdt_limits& lim = {});
result<merged> merge_map(const std::optional<merge_input>& local, const merge_input& incoming,
                         const crdt_limits& lim = {});

class registry {
 public:
  /// Registers a custom function under `name`. Refused: an empty name, a built-in's
  /// name, a null function. Registering a name again replaces the function. When the
  /// name is a glob (it has `*`, `?` or `[`), keys it matches are also bound to it
  /// (node::register_merge("cart:*", fn)).
  result<void> register_merge(std::string_view name, merge_fn fn);
  /// Binds keys matching `glob` to policy `name` (built-in or custom; a custom name need
  /// not be registered yet: it is resolved at first use). Binding a glob again replaces it.
  result<void> bind(std::string_view glob, std::string_view name);
  bool known(std::string_view name) const;
  /// errc::invalid_argument naming the policy when it is neither built in nor registered.
  result<void> check(std::string_view name) const;
  /// The policy of `key`: `named` (what the key's pattern says) when not empty, else the
  /// most specific bound glob matching the key (more literal characters, then the later
  /// binding), else lww.
  std::string policy_for(std::string_view key, std::string_view named = {}) const;
  /// merged = merge(local, incoming) under policy `name`. An unknown name is an error
  /// (check()), never a silent fallback to lww: the key keeps its local value.
  result<merged> merge(std::string_view name, const std::optional<merge_input>& local,
                       const merge_input& incoming) const;

  void set_limits(const crdt_limits& lim);

 private:
  struct binding {
    std::string glob;
    std::string name;
    std::size_t literals = 0;
    std::uint64_t seq = 0;
  };
  mutable std::shared_mutex mtx_;
  std::map<std::string, std::shared_ptr<const merge_fn>, std::less<>> custom_;
  std::vector<binding> bindings_;
  std::uint64_t next_seq_ = 0;
  crdt_limits limits_;
};

}  // namespace warp::merge
