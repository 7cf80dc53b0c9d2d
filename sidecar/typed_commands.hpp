// What the handlers of the typed commands (lists, sorted sets, sets, hashes) share: reading
// a key the way GET does (L1 hit on the loop thread, a miss moved to a worker), Redis's
// argument parsers and error texts, and the handler declarations the command table names.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "sidecar/resp_server_impl.hpp"
#include "sidecar/typed_value.hpp"
#include "warp/l1.hpp"

namespace warp::sidecar::detail {

inline constexpr std::string_view wrongtype =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view not_integer = "ERR value is not an integer or out of range";
inline constexpr std::string_view not_positive = "ERR value is out of range, must be positive";
inline constexpr std::string_view not_float = "ERR value is not a valid float";

/// ASCII case-insensitive equality (option names).
bool iequals(std::string_view a, std::string_view b) noexcept;
/// Redis's error reply for a node error (resp_commands.cpp).
void reply_node_error(resp_writer& w, const error& e);
/// The reply for a failed typed write: a value over limits.max_value_size gets a text that
/// names the collection, not "string".
void reply_write_error(resp_writer& w, const error& e);
/// Redis's string2d (ZADD scores, ZINCRBY): no leading space, no trailing bytes, no NaN.
bool parse_score(std::string_view text, double& out);
/// A signed 64-bit argument; writes Redis's error when it is not one.
bool int_arg(context& ctx, std::size_t i, std::int64_t& out);

/// Calls `fn(const std::string_view* stored)` with the stored bytes of `key` (null when
/// absent). An L1 hit runs here; a miss on the loop thread sets ctx.defer (the command
/// reruns on a worker, which reads through). Storage errors are replied here.
template <class F>
void with_value(context& ctx, std::string_view key, F&& fn) {
  bool hit = ctx.n.read_if_present(key, [&](std::string_view bytes) { fn(&bytes); });
  if (hit) {
    ctx.hit();
  } else if (!ctx.j) {
    ctx.defer = true;
    return;
  } else {
    auto r = ctx.n.get(key);
    if (r) {
      ctx.hit();
      auto v = view(*r);
      fn(&v);
    } else if (r.code() == errc::not_found) {
      ctx.miss();
      fn(static_cast<const std::string_view*>(nullptr));
    } else {
      return reply_node_error(ctx.w, r.err());
    }
  }
  ctx.srv.remember_read(ctx.c, key);
}

/// A typed write split into its decision on the key's current value (what node.update
/// runs) and its reply, so that the same code runs a command alone (its handler) and
/// pipelined with others as one node.update_many (run_typed_batch). It views its
/// arguments: they must outlive it.
class typed_write {
 public:
  explicit typed_write(std::string_view k) : key(k) {}
  virtual ~typed_write() = default;
  virtual result<mutation> operator()(const buffer* cur, std::int64_t exp) = 0;
  /// `st`: the write's outcome (the decision's, or storage's when committing failed).
  virtual void reply(resp_writer& w, const result<void>& st) const = 0;
  std::string_view key;
  /// The argument views, when the write outlives the caller's (make_typed_write).
  std::vector<std::string_view> owned_args;
};

/// Runs one typed write through ctx.n.update and replies.
void run_typed_write(context& ctx, typed_write& s);
/// LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP (list_commands.cpp) and ZADD (zset_commands.cpp)
/// as typed writes viewing `args`; null for other commands and for arguments the handler
/// refuses before reading the key (run alone, it answers the error).
std::unique_ptr<typed_write> make_list_write(std::span<const std::string_view> args);
std::unique_ptr<typed_write> make_zset_write(std::span<const std::string_view> args);
/// Either of them, with its own copy of the argument views (for the pipelined batch).
std::unique_ptr<typed_write> make_typed_write(std::span<const std::string_view> args);
/// Pipelined typed writes of one client as one node.update_many: each key's stripe taken
/// once, read once and written once with its final value (the writes of one key see each
/// other's results in order), one change event per write, replies in command order.
void run_typed_batch(node& n, resp_writer& w, std::span<const std::unique_ptr<typed_write>> batch);

// Federated CRDT keys (crdt_commands.cpp, docs/merge.md): a key whose merge policy is
// counter, set or map holds that CRDT's state; the matching handlers ask here first.
enum class crdt_key : std::uint8_t { none, counter, set, map };
/// The CRDT a key's federation policy makes it (none without a region or for other keys).
crdt_key crdt_key_of(node& n, std::string_view key);
/// INCR/INCRBY/DECR/DECRBY on a CRDT key: a counter's entry of this region, the new total
/// replied; WRONGTYPE on a set or map key.
void crdt_incr(node& n, resp_writer& w, std::string_view key, std::int64_t delta);
/// GET (MGET: `nil_if_other_type`) on a CRDT key: a counter's total, nil after a DEL;
/// WRONGTYPE (MGET: nil) for a set or map. False: not one.
bool crdt_get(context& ctx, std::string_view key, bool nil_if_other_type = false);
/// SADD SREM SMEMBERS SISMEMBER SCARD SPOP (`cmd` lower case) on a set key. False: not one.
bool crdt_set_command(context& ctx, std::string_view cmd);
/// HSET HMSET HGET HMGET HDEL HGETALL HKEYS HVALS HLEN HEXISTS HINCRBY (`cmd` lower case) on
/// a map key. False: not one.
bool crdt_hash_command(context& ctx, std::string_view cmd);
/// A string write on a CRDT key: SET (its options), SETEX, PSETEX, SETNX, GETSET, APPEND.
/// On a counter the value must be an integer and becomes the counter's value in a way that
/// merges (pn_counter::assign); WRONGTYPE on a set or map key.
struct crdt_string_op {
  enum class reply_as : std::uint8_t { ok, old, applied, length };
  std::string_view value;
  reply_as reply = reply_as::ok;
  bool nx = false, xx = false, get = false, keepttl = false, append = false;
  std::int64_t expires = 0;  ///< absolute, ms; 0: none
};
/// Runs `op` on `key` and replies. False: not a CRDT key (nothing replied).
bool crdt_string_write(context& ctx, std::string_view key, const crdt_string_op& op);
/// MSET on CRDT keys: nullopt for a key that is none; else the error MSET answers for the
/// pair (WRONGTYPE on a set or map, a value that is no integer on a counter) or empty.
std::optional<std::string_view> crdt_mset_refusal(node& n, std::string_view key,
                                                  std::string_view value);
/// Writes one MSET pair on a counter key that crdt_mset_refusal accepted, as SET does.
result<void> crdt_mset_write(context& ctx, std::string_view key, std::string_view value);
/// DEL/UNLINK/GETDEL of a CRDT key: an observed clear that merges (a counter's floors set,
/// a set's members removed, a map's live fields tombstoned), the state kept. nullopt: not
/// a CRDT key. Otherwise whether the key was present; `old` (when given) gets a counter's
/// value before the delete.
std::optional<result<bool>> crdt_del(context& ctx, std::string_view key,
                                     std::optional<std::string>* old = nullptr);
/// The type a CRDT key's stored bytes show (none for an emptied set or map and a counter
/// a DEL reset: Redis has no empty collections). Only for keys crdt_key_of names.
value_type crdt_type_of(std::string_view stored);
/// The type `key` shows, read as TYPE does (L1, else storage on a worker). False: the
/// command stops here (ctx.defer set, or the storage error replied).
bool shown_type(context& ctx, std::string_view key, value_type& out);

// Lists (list_commands.cpp).
void cmd_lpush(context& ctx);
void cmd_rpush(context& ctx);
void cmd_lpushx(context& ctx);
void cmd_rpushx(context& ctx);
void cmd_lpop(context& ctx);
void cmd_rpop(context& ctx);
void cmd_llen(context& ctx);
void cmd_lrange(context& ctx);
void cmd_lindex(context& ctx);
void cmd_lset(context& ctx);
void cmd_lrem(context& ctx);
void cmd_ltrim(context& ctx);
/// BLPOP, BRPOP, BLMOVE, BZPOPMIN...: not built; a clear error instead of a hang.
void cmd_blocking(context& ctx);

// Sorted sets (zset_commands.cpp).
void cmd_zadd(context& ctx);
void cmd_zincrby(context& ctx);
void cmd_zrem(context& ctx);
void cmd_zscore(context& ctx);
void cmd_zcard(context& ctx);
void cmd_zrange(context& ctx);
void cmd_zrevrange(context& ctx);
void cmd_zrangebyscore(context& ctx);
void cmd_zrevrangebyscore(context& ctx);
void cmd_zcount(context& ctx);
void cmd_zrank(context& ctx);
void cmd_zrevrank(context& ctx);
void cmd_zpopmin(context& ctx);
void cmd_zpopmax(context& ctx);

// Locks and leases (lock_commands.cpp).
void cmd_warp_lock(context& ctx);
void cmd_warp_unlock(context& ctx);
void cmd_warp_lease(context& ctx);
void cmd_warp_fencedset(context& ctx);
void cmd_warp_fencedget(context& ctx);

// Sets (set_commands.cpp).
void cmd_sadd(context& ctx);
void cmd_srem(context& ctx);
void cmd_smembers(context& ctx);
void cmd_sismember(context& ctx);
void cmd_scard(context& ctx);
void cmd_spop(context& ctx);

// Hashes (hash_commands.cpp).
void cmd_hset(context& ctx);
void cmd_hmset(context& ctx);
void cmd_hget(context& ctx);
void cmd_hmget(context& ctx);
void cmd_hdel(context& ctx);
void cmd_hgetall(context& ctx);
void cmd_hkeys(context& ctx);
void cmd_hvals(context& ctx);
void cmd_hlen(context& ctx);
void cmd_hexists(context& ctx);
void cmd_hincrby(context& ctx);

}  // namespace warp::sidecar::detail
