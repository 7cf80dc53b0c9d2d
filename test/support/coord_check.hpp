// Checkers for warp-nemesis's coordination workloads (docs/coordination.md, "Checkers"):
// pure functions over histories the nemesis records on one monotonic clock, unit-tested
// with hand-made histories in test/checker/coord_checker_test.cpp.
//
// Lock workload. Each client holds a session (a lease it keeps alive), takes one lock, and
// inside the critical section reads a fenced register (a list of tokens), appends its own
// token and writes it back with set_if_fence, then unlocks. The register is thus a log of
// the critical sections that took effect, and a read-modify-write that raced another holder's
// would drop a token. check_locks verifies:
//   * tokens are unique and strictly increase in acquisition order (an acquisition that
//     returned before another was invoked has the smaller token);
//   * no two holders' fenced writes interleave: every read in a critical section with token
//     t contains, as a prefix, the list written by every acknowledged fenced write with a
//     smaller token, and an acknowledged write only ever appends to smaller tokens;
//   * no acknowledged fenced write is lost: the final register (read after the run) has
//     every acknowledged write's list as a prefix, and holds only tokens of writes that
//     were sent and not refused;
//   * a refused fenced write is only ever a stale token: when it was refused, a higher
//     token had been asked for, or its session may have ended (its last keep-alive's
//     invocation + TTL had passed); an acknowledged write whose token a later-acquired
//     token had already replaced before the write was sent is a violation.
//
// Lease workload. Clients grant leases, attach keys with SET ... LEASE, keep them alive and
// revoke them; reads of the attached keys are recorded. check_leases verifies:
//   * no read invoked after a revoke's acknowledgement returns a key attached to that lease;
//   * no lease is observed alive (a lease.ttl query that found it) when the query was
//     invoked later than the return of its last acknowledged keep-alive (or of its grant)
//     + TTL + the allowed extension (one election timeout, the checkpoint's delay, slack).
//     Its attached keys are deleted after its end by the leader, at least once and retried
//     under faults, so their reads bound the deletes, not the lease: only the revoke rule
//     uses them.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace warp::test {

/// The register's value: tokens joined by ','. nullopt when malformed.
std::optional<std::vector<std::uint64_t>> parse_token_list(const std::string& value);
std::string format_token_list(const std::vector<std::uint64_t>& tokens);

/// One acquisition of the lock that returned a token, and what its holder did with it.
struct lock_hold {
  static constexpr std::int64_t unknown_return = std::numeric_limits<std::int64_t>::max();
  enum class write_outcome : std::uint8_t { none, ok, refused, unknown };

  int client = 0;
  std::uint64_t token = 0;
  std::int64_t acquire_invoke_ns = 0;
  std::int64_t acquire_return_ns = 0;
  /// The register read inside the critical section (absent register = empty list).
  bool read_done = false;
  std::vector<std::uint64_t> read;
  std::int64_t read_invoke_ns = 0;
  std::int64_t read_return_ns = 0;
  /// The fenced write of `read` + token (only after a successful read).
  write_outcome write = write_outcome::none;
  std::int64_t write_invoke_ns = 0;
  std::int64_t write_return_ns = 0;  ///< unknown_return for write_outcome::unknown
  /// Until when its session was certainly alive at the write: the invocation of the
  /// session's last acknowledged keep-alive (or of its grant) before the write, + TTL.
  std::int64_t session_safe_until_ns = 0;
};

struct lock_check_result {
  std::uint64_t holds = 0;
  std::uint64_t writes_acknowledged = 0;
  std::uint64_t writes_refused = 0;
  std::uint64_t writes_unknown = 0;
  std::uint64_t violations = 0;
  std::uint64_t lost = 0;          ///< acknowledged fenced writes missing from the final register
  std::vector<std::string> notes;  ///< the first problems, for humans
  bool ok() const { return violations == 0 && lost == 0; }
};

/// `final_register`: the register read after the run with every fault healed (nullopt:
/// absent, an empty list).
lock_check_result check_locks(const std::vector<lock_hold>& holds,
                              const std::optional<std::string>& final_register);

/// One lease of the lease workload, as its client saw it.
struct lease_record {
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
  std::uint64_t id = 0;
  std::int64_t ttl_ms = 0;
  std::int64_t grant_return_ns = 0;
  /// Return times of the acknowledged keep-alives (each resets the TTL once committed,
  /// which is before it returns).
  std::vector<std::int64_t> keepalives;
  /// A keep-alive of unknown outcome may commit at any later time: the lease's end has no
  /// upper bound then (only the revoke rule is checked).
  bool unbounded = false;
  /// Keys attached with an acknowledged SET ... LEASE, with their values (one of unknown
  /// outcome may apply after the revoke, unattached: not this lease's).
  std::vector<std::pair<std::string, std::string>> keys;
  /// Invocation times of lease.ttl queries that found the lease alive.
  std::vector<std::int64_t> alive_seen;
  /// The acknowledged revoke's return time; never when not revoked or not acknowledged.
  std::int64_t revoke_return_ns = never;
};

/// A read of a lease workload key: nullopt = absent.
struct lease_read {
  std::string key;
  std::optional<std::string> value;
  std::int64_t invoke_ns = 0;
  std::int64_t return_ns = 0;
};

struct lease_check_result {
  std::uint64_t leases = 0;
  std::uint64_t reads = 0;
  std::uint64_t revoked = 0;
  std::uint64_t violations = 0;
  std::vector<std::string> notes;
  bool ok() const { return violations == 0; }
};

/// `extension_ms`: how long a lease may outlive TTL after its last keep-alive (one
/// election timeout plus the checkpoint's delay and the machine's slack). `outages`:
/// [from, to] intervals in which no node ran (kill -9 of every node until all were back):
/// no leader counts a lease down then, so each one that overlaps a lease's window
/// lengthens its bound by its length. Each value written under a lease must be unique to
/// it (the workload writes "lease-<id>-...").
lease_check_result check_leases(
    const std::vector<lease_record>& leases, const std::vector<lease_read>& reads,
    std::int64_t extension_ms,
    const std::vector<std::pair<std::int64_t, std::int64_t>>& outages = {});

}  // namespace warp::test
