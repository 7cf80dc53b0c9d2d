// The control actor: the request/response endpoint `warpctl` (and later admin tools) talk
// to over CAF's network layer. The node publishes it on `node_config::listen`.
//
// Wire protocol (version `control_protocol_version`). Only CAF built-in types and atoms
// cross the wire, so neither side has to register message types:
//
//   (ping_atom)                                   -> (pong_atom, string name, uint32 node_id,
//                                                     uint16 protocol_version)
//   (get_atom, string key)                        -> string value
//   (put_atom, string key, string value, int64 ttl_ms)  -> ok_atom
//        ttl_ms: -1 = the key's policy TTL, 0 = no expiry, > 0 = expiry in ms
//   (delete_atom, string key)                     -> ok_atom
//   (stats_atom)                                  -> string json (see warp/metrics.hpp)
//   (validate_atom, string glob)                  -> string json: a validation pass over the
//        cached keys matching glob ("" = all): checked, inconsistent, healed, uncached,
//        errors, found (docs/validator.md)
//   (patterns_atom)                               -> string json (the key-pattern table)
//   (patterns_atom, put_atom, string spec)        -> string json (the table after the change)
//   (patterns_atom, delete_atom, string glob)     -> string json (the table after the change)
//   (ttl_atom, string key)                        -> int64 expires_at_ms (0 = none)
//   (exists_atom, vector<string> keys)            -> string "0"/"1" per key
//   (incr_atom, string key, int64 by)             -> int64 new value
//   (mget_atom, vector<string> keys)              -> (vector<string> values, string "0"/"1"
//                                                     found per key)
//   (scan_atom, string after, uint64 count, string glob)
//                                                 -> (vector<string> keys, string next_after,
//                                                     bool done)
//   (health_atom)                                 -> string json {name, id, alive, ready,
//                                                     storage, members, reachable_peers}
//   Multi-key requests take at most `max_batch_keys` keys, scan pages at most
//   `max_scan_count`: bounded before anything is done for them.
//   (control_hotkeys_atom, uint32 limit)          -> string json (hot_keys_json)
//   (control_strong_atom)                         -> string json (strong_json): the strong
//                                                     mode's ranges (abd) or Raft groups
//   (control_members_atom, string op, string target) -> string: the strong Raft groups'
//        members (docs/strong.md, "Membership"): op list (target ""), add or remove
//        (target HOST:PORT or a raft id); a readable report, one line per member or group
//   (coord_atom, string verb, vector<string> args) -> string: locks and leases
//        (docs/coordination.md, "warpctl"): lease.grant [ttl_ms] -> id; lease.keepalive [id]
//        -> ttl_ms; lease.revoke [id] -> ""; lease.ttl [id] -> json; lease.list -> json
//        array; lock [name, session, timeout_ms, owner] -> token; unlock [name, session,
//        token, owner] -> ""; set [key, value, lease] -> ""; fencedset [key, value, lock,
//        token] -> ""; at most 8 args
//
// Failures come back as a caf::error of category `warp` (control_error_category()): its
// code is a warp::errc value, its context a message holding one std::string (the human
// message). Any other message gets errc::unsupported back, never a crash.
//
// Compatibility rule: new requests get new atoms; an existing request's shape never
// changes. A breaking change bumps `control_protocol_version`, which clients see in pong.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "warp/buffer.hpp"
#include "warp/config.hpp"
#include "warp/error.hpp"


namespace warp::detail {
class work_pool;
}

namespace warp::actors {

inline constexpr std::uint16_t control_protocol_version = 1;

/// What the control actor serves requests from: the node implements it (runtime/node), so
/// the actor layer does not depend on the node facade above it. Calls other than name, id,
/// limits and get_if_present may block on storage or the network: the actor runs them on
/// the node's executor.
class control_backend {
 public:
  virtual ~control_backend() = default;
  virtual std::string name() const = 0;
  virtual std::uint32_t id() const = 0;
  virtual const warp::limits& limits() const = 0;
  /// L1 only, never leaves the process.
  virtual std::optional<buffer> get_if_present(std::string_view key) const = 0;
  virtual result<buffer> get(std::string_view key) = 0;
  virtual result<void> set(std::string_view key, std::string_view value,
                     std::optional<std::chrono::milliseconds> ttl) = 0;
  virtual result<void> remove(std::string_view key) = 0;
  /// The node's stats as JSON (warp/metrics.hpp, stats_json).
  virtual std::string stats_json() = 0;
  /// The node's hot keys as JSON (warp/metrics.hpp, hot_keys_json), at most `limit`.
  virtual std::string hot_keys_json(std::size_t limit) {
    (void)limit;
    return R"({"keys":[]})";
  }

  /// Runs a validation pass (blocking: storage and the grace window) and reports it as
  /// JSON (warp/metrics.hpp, validation_json).
  virtual result<std::string> validate_json(std::string_view) {
    return error{errc::unsupported, "this node has no validator"};
  }
  // The operator requests (warpctl patterns/ttl/exists/incr/mget/scan/health). Not pure:
  // a backend without them answers errc::unsupported.
  virtual result<std::string> patterns_json() { return unsupported(); }
  virtual result<std::string> set_pattern(std::string_view) { return unsupported(); }
  virtual result<std::string> remove_pattern(std::string_view) { return unsupported(); }
  /// Expiry of a live key, ms since the Unix epoch (0 = none); not_found if absent.
  virtual result<std::int64_t> expiry(std::string_view) { return unsupported(); }
  virtual result<bool> contains(std::string_view) { return unsupported(); }
  /// Adds `by` to the integer value of the key (absent = 0), keeping its expiry.
  virtual result<std::int64_t> incr(std::string_view, std::int64_t) { return unsupported(); }
  struct scan_page {
    std::vector<std::string> keys;
    std::string next_after;
    bool done = true;
  };
  virtual result<scan_page> scan(std::string_view, std::size_t, std::string_view) {
    return unsupported();
  }
  virtual result<std::string> health_json() { return unsupported(); }
  /// The strong mode's state (warp/metrics.hpp, strong_json); unsupported when the node
  /// runs no strong mode.
  virtual result<std::string> strong_json() { return unsupported(); }
  /// `warpctl members list|add|remove` on the strong Raft engine: blocking, on the executor.
  virtual result<std::string> strong_members(std::string_view op, std::string_view target) {
    (void)op;
    (void)target;
    return unsupported();
  }
  /// Locks and leases (coord_atom): blocking, on the executor.
  virtual result<std::string> coordination(std::string_view verb,
                                           const std::vector<std::string>& args) {
    (void)verb;
    (void)args;
    return unsupported();
  }

 private:
  static error unsupported() { return error{errc::unsupported, "not served by this node"}; }
};

/// Bounds of the multi-key requests (exists, mget) and of one scan page.
inline constexpr std::size_t max_batch_keys = 1000;
inline constexpr std::size_t max_scan_count = 1000;

/// The one request atom CAF does not ship (get/put/delete/ping/pong/ok are CAF's own).
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// A validation pass on demand (`warpctl validate`).
using validate_atom = caf::atom_constant<caf::atom("validate")>;
using patterns_atom = caf::atom_constant<caf::atom("patterns")>;
using ttl_atom = caf::atom_constant<caf::atom("ttl")>;
using exists_atom = caf::atom_constant<caf::atom("exists")>;
using incr_atom = caf::atom_constant<caf::atom("incr")>;
using mget_atom = caf::atom_constant<caf::atom("mget")>;
using scan_atom = caf::atom_constant<caf::atom("scan")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
/// (hotkeys_atom, uint32 limit) -> string json: the node's hottest keys (0 = all tracked).
using control_hotkeys_atom = caf::atom_constant<caf::atom("hotkeys")>;
using control_strong_atom = caf::atom_constant<caf::atom("strongst")>;
using control_members_atom = caf::atom_constant<caf::atom("strongmem")>;
/// (coord_atom, string verb, vector<string> args) -> string: locks and leases.
using coord_atom = caf::atom_constant<caf::atom("coord")>;
inline constexpr std::size_t max_coord_args = 8;

/// The category of caf::errors that carry a warp::errc (atom "warp").
constexpr caf::atom_value control_error_category() noexcept {
  return caf::atom("warp");
}

/// warp::error -> caf::error of category `warp` (an ok error maps to an empty caf::error).
caf::error to_caf_error(const warp::error& err);

/// caf::error -> warp::error. Errors of category `warp` map back to their errc and message;
/// CAF's own errors map to the closest errc (request timeout -> timeout, connection and
/// remote-link failures -> unreachable, unexpected message -> unsupported, rest -> internal)
/// with CAF's rendering as the message.
warp::error from_caf_error(const caf::error& err);

/// Renders a `warp` category caf::error for humans: "warp: not_found (key user:1)".
std::string render_control_error(std::uint8_t code, caf::atom_value category,
                                 const caf::message& context);

/// Registers what both ends of the control protocol need in their system config (today:
/// the `warp` error category renderer). Call before constructing the actor_system.
void register_control_protocol(caf::actor_system_config& cfg);

/// Spawns the control actor for `n`. It runs on CAF's scheduler and hands node calls that
/// may block on storage I/O to the node's `executor`, so they never stall the scheduler
/// (and no detached actor can hang CAF 0.17's shutdown). `n` must
/// stay alive until the actor is gone: stop it with stop_control_actor() before the node's
/// parts are torn down.
caf::actor spawn_control_actor(caf::actor_system& sys, control_backend& n,
                               detail::work_pool& executor);

/// Tells the control actor to quit and waits until it has (so no request is still inside a
/// node call afterwards). Safe to call with an invalid handle or twice.
void stop_control_actor(caf::actor_system& sys, const caf::actor& control);

}  // namespace warp::actors
