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
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "runtime/membership/ring.hpp"
#include "actors/strong_context.hpp"
#include "merge/strong_replica.hpp"
#include "warp/buffer.hpp"
#include "warp/config.hpp"
#include "warp/error.hpp"
#include "warp/node.hpp"

namespace warp::detail {

/// Where each range's replicas are: rendezvous hashing over the member addresses (stable
/// across restarts, unlike node ids), the same computation on every node.
class strong_placement {
 public:
  /// `members`: HOST:PORT each (deduplicated and sorted here); `self`: this node's address.
  strong_placement(std::vector<std::string> members, const std::string& self,
                   std::size_t replication_factor, std::size_t ranges);

  const std::vector<std::string>& members() const noexcept { return members_; }
  /// Index of this node in members(), or npos when it is not a member (coordinator only).
  std::size_t self_index() const noexcept { return self_; }
  std::size_t replication_factor() const noexcept { return rf_; }
  std::size_t majority() const noexcept { return rf_ / 2 + 1; }
  /// Other replicas a recovering replica must copy a range from (see docs/strong.md).
  std::size_t recovery_quorum() const noexcept { return std::min(rf_ - 1, majority()); }
  std::size_t ranges() const noexcept { return map_.ranges(); }
  std::uint32_t range_of(std::string_view key) const noexcept { return map_.range_of(key); }
  /// Member indexes of the range's replicas (replication_factor() of them).
  const std::vector<std::size_t>& replicas(std::uint32_t range) const { return replicas_[range]; }
  bool is_replica(std::uint32_t range) const;
  /// Hash of members, replication factor and range count: nodes that disagree on it must
  /// never form quorums together.
  std::uint64_t fingerprint() const noexcept { return fingerprint_; }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::vector<std::string> members_;
  std::size_t self_ = npos;
  std::size_t rf_ = 1;
  range_map map_;
  std::vector<std::vector<std::size_t>> replicas_;
  std::uint64_t fingerprint_ = 0;
};

class strong_coordinator {
 public:
  /// `self_address`: HOST:PORT this node listens on (with the bound port).
  strong_coordinator(node::impl& st, std::string self_address);
  ~strong_coordinator();
  strong_coordinator(const strong_coordinator&) = delete;
  strong_coordinator& operator=(const strong_coordinator&) = delete;

  /// True when the configuration makes a cluster (two or more members) that has
  /// strong_distributed keys (a pattern, the default mode, or explicit members).
  static bool wanted(const node_config& cfg);
  /// True when the node is configured to be part of a cluster at all.
  static bool clustered(const node_config& cfg);

  void start();
  /// Stops the maintenance thread and the actor; calls in flight fail. Idempotent.
  void stop();

  result<buffer> get(std::string_view key);
  status set(std::string_view key, std::string_view value, std::int64_t expires_at_ms);
  status remove(std::string_view key);
  /// node::write for a strong key: blind writes (`read_current` false) run `fn` once with
  /// no current value and store its decision; read-modify-write is not supported (ABD
  /// registers have no atomic read-modify-write: it would need consensus).
  result<mutation> write(std::string_view key,
                         const std::function<result<mutation>(const buffer*, std::int64_t)>& fn,
                         bool read_current);
  result<buffer> get_or_load(std::string_view key, const loader& load);

  /// {"members":[...],"self":i,"replication_factor":n,"ranges":n,"replicated_ranges":n,
  ///  "ready_ranges":n,"recovered":bool,"keys":n,"peers_connected":n,"counters":{...}}
  std::string status_json() const;
  bool recovered() const;
  const strong_placement& placement() const noexcept { return placement_; }
  strong_replica& replica() noexcept { return replica_; }

 private:
  struct phase {
    std::vector<std::optional<wire::reply>> replies;  ///< by replica slot
    std::size_t ok = 0;
  };
  /// A phase whose requests are sent and whose replies are still coming in.
  struct inflight {
    std::shared_ptr<pending_call> call;
    std::vector<std::uint64_t> ids;  ///< registered in ctx_.pending
    std::size_t slots = 0;
  };
  /// Sends `req` (id filled in per slot) to the replicas in `slots` of `range`; the local
  /// replica (if among them) answers at once.
  inflight begin_phase(std::uint32_t range, const std::vector<std::size_t>& slots,
                       const wire::request& req);
  /// Waits until `need` replies are ok, all answered, or the deadline passed. Many phases
  /// (one per range) can be begun first and ended one after the other with one deadline:
  /// a silent replica then costs one timeout for all of them, not one per range.
  phase end_phase(inflight& f, std::size_t need, std::chrono::steady_clock::time_point deadline);
  /// begin_phase + end_phase.
  phase run_phase(std::uint32_t range, const std::vector<std::size_t>& slots,
                  const wire::request& req, std::size_t need,
                  std::chrono::steady_clock::time_point deadline);
  result<strong_record> read_quorum(std::string_view key,
                                    std::chrono::steady_clock::time_point deadline);
  status write_quorum(std::string_view key, strong_record rec);

  void maintenance();
  /// One catch-up pass over every range this replica does not hold yet (docs/strong.md,
  /// "Crash recovery").
  void recover_ranges();
  /// One anti-entropy round over every ready range.
  void anti_entropy_round();
  /// Slots of the other replicas of `range`.
  std::vector<std::size_t> other_slots(std::uint32_t range) const;
  /// Copies every record of `range` from the replica in `slot` (all pages). False when the
  /// replica did not answer ok to every page.
  bool pull_range(std::uint32_t range, std::size_t slot,
                  std::chrono::steady_clock::time_point deadline);

  node::impl& st_;
  caf::actor_system& sys_;
  strong_options opts_;
  std::uint32_t node_id_;
  strong_placement placement_;
  strong_replica replica_;
  quorum_context ctx_;
  caf::actor actor_;
  std::thread maint_;
  std::mutex maint_mtx_;
  std::condition_variable maint_cv_;
  bool stopped_ = false;
  bool started_ = false;

  // Catch-up progress, for the status and the logs (maintenance thread writes, status
  // reads: guarded by progress_mtx_).
  mutable std::mutex progress_mtx_;
  std::chrono::steady_clock::time_point started_at_{};
  std::int64_t catch_up_ms_ = -1;        ///< start to every range ready; -1 = not yet
  std::vector<std::string> waiting_on_;  ///< replicas the last pass could not use
};

}  // namespace warp::detail
