// A checker for counters driven by INCR (by 1) and GET, per key, the counter workload of
// warp-nemesis. Exact linearizability of a counter history is a search like the register's;
// these checks are the necessary conditions that catch the failures a replicated counter
// shows in practice (a lost or doubly applied increment, a stale read, two clients handed
// the same value), in O(n log n):
//   * every acknowledged INCR returned a distinct value (an increment applied once each);
//   * real time: an operation that returned before another was invoked observed a value
//     no larger (strictly smaller when the later one is an INCR, which adds 1);
//   * the final value F (read after the run, faults healed) is between the acknowledged
//     INCRs A and A + U, U the INCRs of unknown outcome: every acknowledged increment is
//     in it once (F < A: A - F lost), and no increment applied that nobody sent.
// INCRs known to have had no effect are left out of the history by the caller.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace warp::test {

struct counter_op {
  enum class kind : std::uint8_t { incr, get };
  kind what = kind::get;
  /// incr: the value it returned; get: the value read (an absent key reads 0).
  std::int64_t value = 0;
  std::int64_t invoke_ns = 0;
  /// unknown_return: an INCR whose outcome is unknown (value meaningless).
  std::int64_t return_ns = 0;
  int client = 0;

  static constexpr std::int64_t unknown_return = std::numeric_limits<std::int64_t>::max();
};

struct counter_check_result {
  std::uint64_t ops_checked = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t unknown = 0;
  std::uint64_t violations = 0;
  /// Acknowledged increments missing from the final value.
  std::uint64_t lost = 0;
  /// The first problems found, for humans (a few lines at most).
  std::vector<std::string> notes;
  bool ok() const { return violations == 0 && lost == 0; }
};

/// Checks one key's history; `final_value` is the value read after the run.
counter_check_result check_counter(const std::vector<counter_op>& history,
                                   std::int64_t final_value);

}  // namespace warp::test
