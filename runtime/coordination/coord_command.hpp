// The commands, queries and answers of a coordination group's state machine
// (runtime/coordination/coord_machine.hpp): leases (sessions with a TTL and attached
// keys), fenced locks, and registers written only by a lock's current holder.
//
// Commands travel in Raft entries, so they are versioned and bounded like everything else
// the log carries: the decoder checks every length against coord_limits before copying.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/consensus/raft.hpp"
#include "warp/error.hpp"

namespace warp::coordination {

using consensus::index_t;

inline constexpr std::uint8_t coord_command_version = 1;

struct coord_limits {
  std::size_t max_name_bytes = 1024;         ///< a lock name or an attached key
  std::size_t max_owner_bytes = 256;         ///< who, inside a session, holds a lock
  std::size_t max_value_bytes = 1u << 20;    ///< a fenced register's value
  std::size_t max_leases = 1u << 20;
  std::size_t max_keys_per_lease = 1u << 16;
  std::size_t max_locks = 1u << 20;
  std::size_t max_waiters_per_lock = 4096;
  std::size_t max_checkpoints = 4096;        ///< leases in one checkpoint command
  std::uint32_t max_reentry = 64;            ///< holds of one owner on a reentrant lock
  std::uint64_t min_ttl_ms = 1000;           ///< see docs/coordination.md, "Lease TTLs"
  std::uint64_t max_ttl_ms = 7ull * 24 * 3600 * 1000;
  std::size_t max_sessions = 1u << 16;       ///< exactly-once client table
};

enum class coord_op : std::uint8_t {
  grant = 0,        ///< number = TTL ms -> lease id (the entry's index)
  keepalive = 1,    ///< lease -> TTL ms
  revoke = 2,       ///< lease -> ""
  expire = 3,       ///< lease, number = epoch -> "" (conflict when renewed since)
  checkpoint = 4,   ///< checkpoints -> ""
  attach = 5,       ///< lease, name = key -> ""
  lock = 6,         ///< name, lease, owner, reentrant -> lock_answer (held or queued)
  try_lock = 7,     ///< as lock, never queued: conflict when held by another owner
  unlock = 8,       ///< name, lease, owner, number = token -> lock_answer (holds left)
  cancel_wait = 9,  ///< name, lease, owner -> lock_answer (not queued any more, or held)
  fenced_put = 10,  ///< name = key, value, owner = lock name, number = token -> ""
  /// lease -> "": the leader ran the pending deletes of this ended lease's keys; clears
  /// them (idempotent: a repeat, or one for a lease with none pending, is a no-op)
  keys_deleted = 11,
  /// lease, owner -> the number of holds and queue places given up: every lock this owner
  /// of the lease holds is released (to the next waiter) and its queue places are left
  /// (a sidecar connection that closed)
  release_owner = 12,
};
inline constexpr std::uint8_t coord_op_count = 13;

/// The remaining TTL of a lease as its group's leader measured it (epoch: the lease's
/// renewal count then, so a keep-alive committed meanwhile wins over the older reading).
struct lease_checkpoint {
  std::uint64_t lease = 0;
  std::uint64_t epoch = 0;
  std::uint64_t remaining_ms = 0;
  friend bool operator==(const lease_checkpoint&, const lease_checkpoint&) = default;
};

struct coord_command {
  std::uint64_t client = 0;  ///< 0: no session (never deduplicated)
  std::uint64_t seq = 0;
  coord_op op = coord_op::grant;
  std::uint64_t lease = 0;
  std::uint64_t number = 0;  ///< TTL, epoch or token, by op
  bool reentrant = false;
  std::string name;
  std::string owner;
  std::string value;
  std::vector<lease_checkpoint> checkpoints;
  friend bool operator==(const coord_command&, const coord_command&) = default;
};

std::string encode(const coord_command& c);
result<coord_command> decode_coord_command(std::string_view bytes, const coord_limits& lim = {});

/// The answer of lock, try_lock, unlock and cancel_wait.
struct lock_answer {
  bool held = false;          ///< the caller holds the lock now
  /// Its fencing token when held. When queued: the index of the entry that queued the
  /// caller (or kept its place), so the grant to come carries a higher token: a waiter
  /// tells its own grant from an older one of the same owner applied late.
  std::uint64_t token = 0;
  std::uint32_t holds = 0;    ///< reentrant holds left (unlock) or taken (lock)
  std::uint64_t position = 0; ///< 1-based place in the queue when waiting; 0 otherwise
  friend bool operator==(const lock_answer&, const lock_answer&) = default;
};
std::string encode(const lock_answer& a);
result<lock_answer> decode_lock_answer(std::string_view bytes);

/// Reads of the applied state (raft_state_machine::read).
enum class coord_query_kind : std::uint8_t {
  lease = 0,   ///< number = lease id -> lease_info
  leases = 1,  ///< -> every lease id, ascending (u64 list)
  lock = 2,    ///< name -> lock_info
  fenced = 3,  ///< name = key -> the register's value (not_found when never written)
};
struct coord_query {
  coord_query_kind kind = coord_query_kind::lease;
  std::uint64_t number = 0;
  std::string name;
};
std::string encode(const coord_query& q);
result<coord_query> decode_coord_query(std::string_view bytes, const coord_limits& lim = {});

struct lease_info {
  std::uint64_t id = 0;
  std::uint64_t ttl_ms = 0;
  std::uint64_t remaining_ms = 0;  ///< as of the last keep-alive or checkpoint
  std::uint64_t epoch = 0;         ///< keep-alives so far
  std::vector<std::string> keys;   ///< attached keys, ascending
  friend bool operator==(const lease_info&, const lease_info&) = default;
};
std::string encode(const lease_info& l);
result<lease_info> decode_lease_info(std::string_view bytes, const coord_limits& lim = {});

struct lock_info {
  bool held = false;
  std::uint64_t holder_lease = 0;
  std::string holder_owner;
  std::uint64_t token = 0;
  std::uint32_t holds = 0;
  std::uint64_t waiters = 0;
  friend bool operator==(const lock_info&, const lock_info&) = default;
};
std::string encode(const lock_info& l);
result<lock_info> decode_lock_info(std::string_view bytes, const coord_limits& lim = {});

std::string encode_ids(const std::vector<std::uint64_t>& ids);
result<std::vector<std::uint64_t>> decode_ids(std::string_view bytes,
                                              const coord_limits& lim = {});

}  // namespace warp::coordination
