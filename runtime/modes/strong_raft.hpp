// strong_distributed on Raft (docs/strong.md, "Raft engine"): the node's entry to its Raft
// host (actors/raft_host_actor.hpp), which runs one Raft group per slice of the key space
// over that slice's replica set, with the log under <data_dir>/raft/<group>.
//   get     ReadIndex at the group's leader (linearizable, no clock assumption)
//   set/del a proposal; acknowledged once committed by a majority and applied
//   write   read-modify-write: a linearizable read, the caller's function, then a
//           compare-and-set (or compare-and-delete) on the exact value read, retried on a
//           conflict a bounded number of times; read-modify-writes of one key in this
//           process take turns in submission order (a queue per key, not a thread)
// A request arriving at a node that does not lead the key's group is forwarded by its host
// to the leader's host (one hop). Values are stored with their expiry; an expired value
// reads as absent. The *_async entries never block (the host completes them); the blocking
// ones wait on a future: call them from application threads or a blocking pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/raft_commands.hpp"
#include "runtime/coordination/grant_board.hpp"
#include "runtime/membership/strong_placement.hpp"
#include "warp/buffer.hpp"
#include "warp/config.hpp"
#include "warp/error.hpp"
#include "warp/write.hpp"

namespace warp::detail {

struct node_state;

class strong_raft {
 public:
  /// `members`: every strong member's HOST:PORT (the same list on every node).
  strong_raft(node_state& st, std::vector<std::string> members, const std::string& self_address);
  ~strong_raft();
  strong_raft(const strong_raft&) = delete;
  strong_raft& operator=(const strong_raft&) = delete;

  /// Opens every local group's log (blocking: node start) and starts the host.
  result<void> start();
  void stop();

  using get_callback = std::function<void(result<buffer>)>;
  using write_callback = std::function<void(result<void>)>;
  using rmw_fn = std::function<result<mutation>(const buffer*, std::int64_t)>;
  using rmw_callback = std::function<void(result<mutation>)>;
  void get_async(std::string_view key, get_callback done);
  void set_async(std::string_view key, std::string_view value, std::int64_t expires_at_ms,
                 write_callback done);
  void remove_async(std::string_view key, write_callback done);
  /// Read-modify-write without blocking (the linearizable path described above). With
  /// `read_current`, `fn` runs on a CAF thread, once per attempt (it must not block); without
  /// it, once on the caller's thread with no current value. `done` gets the decision that
  /// took effect, or the error; it runs on a CAF thread (or at once on an early refusal).
  /// Calls for one key from one thread start in the order they are made, each after the
  /// previous one finished: a later one observes the earlier one's write.
  void write_async(std::string_view key, rmw_fn fn, bool read_current, rmw_callback done);

  result<buffer> get(std::string_view key);
  result<void> set(std::string_view key, std::string_view value, std::int64_t expires_at_ms);
  result<void> remove(std::string_view key);
  /// write_async, waited for (fn runs on a CAF thread as there).
  result<mutation> write(std::string_view key, const rmw_fn& fn, bool read_current);

  /// Transactions (the sidecar's WATCH and EXEC on strong keys): each key's stored bytes
  /// and revision (consensus::kv_versioned), each read by ReadIndex, all in flight at once;
  /// and one batch proposal, all-or-nothing (conflict: a condition failed). The batch's
  /// keys must share a group (it is routed by its first write's or condition's key).
  /// Blocking: workers and application threads only.
  result<std::vector<consensus::kv_versioned>> read_versioned(std::span<const std::string> keys);
  result<void> propose_batch(const consensus::kv_batch& batch);
  /// The encoded size a batch may have (it must fit one log entry).
  std::size_t max_batch_bytes() const noexcept;
  /// The node's watch hub (actors/watch_hub_actor.hpp), null before start and after stop.
  const caf::actor& watch_hub() const noexcept { return watch_hub_; }

  /// The host's counters and each local group's state, asked of the actors (blocking up
  /// to `timeout`: admin workers and the executor only, never a CAF thread). A group that
  /// does not answer in time is left out and named in `missing`.
  struct status_report {
    actors::raft_host_status host;
    std::vector<actors::raft_status> groups;
    std::vector<std::uint32_t> missing;
  };
  result<status_report> status(std::chrono::milliseconds timeout) const;
  /// The coordination group (actors/coord_group.hpp, docs/coordination.md): `write` proposes
  /// an encoded coord_command (its client id and sequence make a retry apply once), else
  /// reads an encoded coord_query linearizably. Answers as the coord_machine gives them.
  void coord_async(bool write, std::string bytes, std::function<void(result<std::string>)> done);
  result<std::string> coord(bool write, std::string bytes);
  /// Where this node's waiting lock() calls learn of their grants: fed by the local
  /// replica of the coordination group, if this node has one (coord_replica()).
  const std::shared_ptr<coordination::grant_board>& grants() const noexcept { return grants_; }
  bool coord_replica() const noexcept;
  /// `warpctl members list|add|remove TARGET` (docs/strong.md, "Membership"): blocking until
  /// the host has changed every group, one configuration change at a time.
  result<std::string> members(std::string_view op, std::string_view target);

  /// Groups = ranges of this placement.
  const strong_placement& placement() const noexcept { return placement_; }
  const caf::actor& host() const noexcept { return host_; }
  std::size_t groups() const noexcept { return placement_.ranges(); }

  /// How a value is kept in the replicated map: a format byte, the expiry (ms since the
  /// epoch, 0 = none, little-endian i64), the bytes.
  static std::string encode_value(std::string_view value, std::int64_t expires_at_ms);
  struct stored {
    std::string value;
    std::int64_t expires_at_ms = 0;
  };
  static result<stored> decode_value(std::string_view raw);

  /// Read-modify-write attempts before giving up with `conflict` (each lost a race).
  static constexpr int max_rmw_attempts = 32;

 private:
  void request(actors::raft_request_kind kind, consensus::kv_command cmd,
               actors::completion<std::string> done);
  struct rmw_shared;
  struct rmw_op;
  // The steps of one read-modify-write (strong_raft.cpp); static: completions may outlive
  // this object (a dropped message completes them with shutting_down), so they hold only
  // the shared part.
  static void rmw_attempt(std::shared_ptr<rmw_op> op);
  static void rmw_read(std::shared_ptr<rmw_op> op, std::chrono::milliseconds delay);
  static void rmw_decide(std::shared_ptr<rmw_op> op, std::optional<std::string> raw);
  static void rmw_retry(std::shared_ptr<rmw_op> op);
  static void rmw_finish(std::shared_ptr<rmw_op> op, result<mutation> r);
  result<std::string> request_blocking(actors::raft_request_kind kind, consensus::kv_command cmd);

  node_state& st_;
  caf::actor_system& sys_;
  strong_options opts_;
  std::uint64_t incarnation_;
  std::string self_address_;
  strong_placement placement_;
  caf::actor host_;
  caf::actor watch_hub_;
  std::shared_ptr<coordination::grant_board> grants_ =
      std::make_shared<coordination::grant_board>();
  int lock_fd_ = -1;  ///< flock on <data_dir>/raft/LOCK: one node per log directory
  std::mutex stop_mtx_;
  bool stopped_ = false;
  std::shared_ptr<rmw_shared> rmw_;
};

/// The group count the node runs with (strong_options::groups, 0 = 4 x members).
std::size_t raft_group_count(const strong_options& opts, std::size_t members);

}  // namespace warp::detail
