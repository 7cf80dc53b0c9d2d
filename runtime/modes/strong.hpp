// The strong_distributed mode: linearizable get/set/delete of single keys by ABD quorum
// registers (Attiya, Bar-Noy, Dolev; multi-writer form) over a static member list. See
// docs/strong.md for the algorithm, why it is linearizable, recovery and anti-entropy.
//
// The node routes every key whose policy is strong_distributed here when the node is in a
// cluster (it listens and has peers). Such keys never enter L1 and never touch the node's
// storage adapter: their values live in the replicas' memory, RF copies per key range.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/quorum_commands.hpp"
#include "runtime/membership/strong_placement.hpp"
#include "actors/strong_context.hpp"
#include "runtime/modes/strong_raft.hpp"
#include "warp/buffer.hpp"
#include "warp/config.hpp"
#include "warp/error.hpp"
#include "warp/write.hpp"

namespace warp::detail {

struct node_state;

/// The node's entry to the strong mode: owns placement and the quorum actor
/// (actors/quorum_actor.hpp, which runs every operation and spawns the range actors that
/// own the replica state and run recovery and anti-entropy on its timers). No thread of
/// its own. The *_async entries never block: they send a command to the actor, which calls
/// `done` on its own thread with the outcome (so `done` must not block). The blocking
/// entries wait on a future the actor fills; call them from application threads or a
/// blocking pool, never from a CAF scheduler thread.
class strong_coordinator {
 public:
  /// `self_address`: HOST:PORT this node listens on (with the bound port).
  strong_coordinator(node_state& st, std::string self_address);
  ~strong_coordinator();
  strong_coordinator(const strong_coordinator&) = delete;
  strong_coordinator& operator=(const strong_coordinator&) = delete;

  /// True when the configuration makes a cluster (two or more members) that has
  /// strong_distributed keys (a pattern, the default mode, or explicit members).
  static bool wanted(const node_config& cfg);
  /// True when the node is configured to be part of a cluster at all.
  static bool clustered(const node_config& cfg);

  /// Starts the engine: the quorum actor (abd), or the Raft host and its groups (raft:
  /// opens every local group's log, blocking; an unreadable log fails the start).
  result<void> start();
  /// Stops the actors (operations in flight fail: shutting_down, or unknown_outcome for
  /// writes whose store phase began). Idempotent.
  void stop();

  using get_callback = std::function<void(result<buffer>)>;
  using write_callback = std::function<void(result<void>)>;
  void get_async(std::string_view key, get_callback done);
  void set_async(std::string_view key, std::string_view value, std::int64_t expires_at_ms,
                 write_callback done);
  void remove_async(std::string_view key, write_callback done);

  result<buffer> get(std::string_view key);
  result<void> set(std::string_view key, std::string_view value, std::int64_t expires_at_ms);
  result<void> remove(std::string_view key);
  /// node::write for a strong key: blind writes (`read_current` false) run `fn` once with
  /// no current value and store its decision; read-modify-write is not supported (ABD
  /// registers have no atomic read-modify-write: it would need consensus).
  result<mutation> write(std::string_view key,
                         const std::function<result<mutation>(const buffer*, std::int64_t)>& fn,
                         bool read_current);
  result<buffer> get_or_load(std::string_view key, const loader& load);

  const strong_placement& placement() const noexcept { return placement_; }
  /// The Raft engine (strong.engine = raft), else null.
  strong_raft* raft() noexcept { return raft_.get(); }
  /// The quorum actor (null before start()).
  const caf::actor& actor() const noexcept { return actor_; }

 private:
  /// Sends the op to the actor, waits for its outcome.
  result<strong_record> run_blocking(std::string_view key, std::optional<strong_record> write);
  void submit(std::string_view key, std::optional<strong_record> write,
              actors::completion<strong_record> done);

  node_state& st_;
  caf::actor_system& sys_;
  strong_options opts_;
  std::uint32_t node_id_;
  std::uint64_t incarnation_;
  wire::strong_limits limits_;
  strong_placement placement_;
  caf::actor actor_;  ///< set once by start(), kept until destruction
  std::unique_ptr<strong_raft> raft_;  ///< the engine when strong.engine = raft
  std::mutex stop_mtx_;  ///< stop() may race with the destructor's
  bool stopped_ = false;
  bool started_ = false;
};

}  // namespace warp::detail
