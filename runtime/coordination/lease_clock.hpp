// Counts leases down on this replica's monotonic clock, so its group's leader knows when to
// propose `expire` and what remaining TTLs to checkpoint (runtime/coordination/
// coord_machine.hpp, "Time"). Every replica keeps one, fed by the lease_timer and lease_ended
// events of the entries it applies; only the leader acts on it. Because each countdown starts
// when this replica applied the lease's last keep-alive or checkpoint, a replica that becomes
// leader carries on from there: a leader change never restarts a lease at its full TTL.
// Pure: the caller passes the time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "runtime/coordination/coord_command.hpp"

namespace warp::coordination {

class lease_clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// `retry`: how long after proposing an expiry the leader proposes it again when the
  /// lease is still there (the first proposal was lost with a leader change).
  explicit lease_clock(std::chrono::milliseconds retry = std::chrono::milliseconds{500})
      : retry_(retry) {}

  /// A lease_timer event applied at `now`: (re)start the lease's countdown.
  void arm(std::uint64_t lease, std::uint64_t epoch, std::uint64_t remaining_ms, time_point now);
  /// A lease_ended event: forget it.
  void forget(std::uint64_t lease) { leases_.erase(lease); }
  /// A snapshot was restored: countdowns restart from the restored remaining TTLs.
  void clear() { leases_.clear(); }

  /// The leases whose countdown ran out at `now`, each with the epoch to expire: what the
  /// leader proposes. A lease is returned again only `retry` later if it is still there.
  std::vector<lease_checkpoint> due(time_point now);
  /// Up to `max` leases' remaining TTLs at `now` (round robin over calls, so every lease is
  /// checkpointed within leases/max calls): what the leader replicates as a checkpoint.
  std::vector<lease_checkpoint> checkpoint(time_point now, std::size_t max);

  /// Remaining TTL of `lease` at `now` as this replica counts it (0 when unknown or over).
  std::uint64_t remaining_ms(std::uint64_t lease, time_point now) const;
  std::size_t size() const noexcept { return leases_.size(); }

 private:
  struct countdown {
    std::uint64_t epoch = 0;
    time_point deadline;
    time_point next_proposal;  ///< no expiry proposed before this
  };
  std::chrono::milliseconds retry_;
  std::map<std::uint64_t, countdown> leases_;
  std::uint64_t checkpoint_cursor_ = 0;  ///< the next checkpoint starts after this lease id
};

}  // namespace warp::coordination
