// The strong_distributed mode: linearizable get/set/delete of single keys by ABD quorum
// registers (Attiya, Bar-Noy, Dolev; multi-writer form) over a static member list. See
// docs/strong.md for the algorithm, why it is linearizable, recovery and anti-entropy.
//
// The node routes every key whose policy is strong_distributed here when the node is in a
// cluster (it listens and has peers). Such keys never enter L1 and never touch the node's
// storage adapter: their values live in the replicas' memory, RF copies per key range.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/quorum_commands.hpp"
#include "runtime/membership/strong_placement.hpp"
#include "actors/strong_context.hpp"
#include "merge/strong_replica.hpp"
#include "warp/buffer.hpp"
#include "warp/config.hpp"
#include "warp/error.hpp"
#include "warp/write.hpp"

namespace warp::detail {

struct node_state;

/// The node's entry to the strong mode: owns placement, the local replica, the quorum
/// actor (actors/quorum_actor.hpp, which runs every operation) and, for now, the
/// maintenance thread (recovery and anti-entropy, which talks to the replicas through the
/// actor). The *_async entries never block: they send a command to the actor, which calls
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

  void start();
  /// Stops the actor (operations in flight fail: shutting_down, or unknown_outcome for
  /// writes whose store phase began) and the maintenance thread. Idempotent.
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

  bool recovered() const;
  const strong_placement& placement() const noexcept { return placement_; }
  strong_replica& replica() noexcept { return replica_; }
  /// The quorum actor (null before start()).
  const caf::actor& actor() const noexcept { return actor_; }

 private:
  /// A fan-out sent to the actor whose replies are still coming in.
  using inflight = std::future<result<actors::fanout_result>>;
  struct phase {
    std::vector<std::optional<wire::reply>> replies;  ///< by replica slot
    std::size_t ok = 0;
  };
  /// Sends `req` to the replicas in `slots` of `range` through the actor, which completes
  /// the fan-out when `need` replies are ok, all answered, or `deadline` passed. Many
  /// phases (one per range) can be begun first and ended one after the other with one
  /// deadline: a silent replica then costs one timeout for all of them, not one per range.
  inflight begin_phase(std::uint32_t range, const std::vector<std::size_t>& slots,
                       const wire::request& req, std::size_t need,
                       std::chrono::steady_clock::time_point deadline);
  phase end_phase(inflight& f);
  phase run_phase(std::uint32_t range, const std::vector<std::size_t>& slots,
                  const wire::request& req, std::size_t need,
                  std::chrono::steady_clock::time_point deadline);
  /// Sends the op to the actor, waits for its outcome.
  result<strong_record> run_blocking(std::string_view key, std::optional<strong_record> write);
  void submit(std::string_view key, std::optional<strong_record> write,
              actors::completion<strong_record> done);

  void maintenance();
  /// One catch-up pass over every range this replica does not hold yet (docs/strong.md,
  /// "Crash recovery").
  void recover_ranges(actors::strong_count_cmd& counts);
  /// One anti-entropy round over every ready range.
  void anti_entropy_round(actors::strong_count_cmd& counts);
  /// Slots of the other replicas of `range`.
  std::vector<std::size_t> other_slots(std::uint32_t range) const;
  /// Copies every record of `range` from the replica in `slot` (all pages). False when the
  /// replica did not answer ok to every page.
  bool pull_range(std::uint32_t range, std::size_t slot,
                  std::chrono::steady_clock::time_point deadline, std::uint64_t& merged);
  /// Catch-up progress as a JSON object, for the actor's status.
  std::string progress_json() const;

  node_state& st_;
  caf::actor_system& sys_;
  strong_options opts_;
  std::uint32_t node_id_;
  std::uint64_t incarnation_;
  wire::strong_limits limits_;
  strong_placement placement_;
  strong_replica replica_;
  caf::actor actor_;  ///< set once by start(), kept until destruction
  std::thread maint_;
  /// True once stop() began (read by the maintenance thread between steps).
  bool stopping() const;
  mutable std::mutex maint_mtx_;
  std::condition_variable maint_cv_;
  bool stopped_ = false;
  bool started_ = false;

  // Catch-up progress, for the status and the logs (maintenance thread writes, the actor
  // reads it for the status: guarded by progress_mtx_).
  mutable std::mutex progress_mtx_;
  std::chrono::steady_clock::time_point started_at_{};
  std::int64_t catch_up_ms_ = -1;        ///< start to every range ready; -1 = not yet
  std::vector<std::string> waiting_on_;  ///< replicas the last pass could not use
};

}  // namespace warp::detail
