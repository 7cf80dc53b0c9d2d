// Wire format of the strong_distributed quorum protocol: batches of requests a coordinator
// sends to a replica, and batches of replies. msgpack in a versioned envelope, carried over
// CAF as a plain std::string (no CAF type registration), like bus/envelope.hpp.
//
// Envelope (a msgpack array):
//   [v=1, kind, fingerprint, incarnation, hlc_now, body]
//     kind        : 1 = request batch, 2 = reply batch
//     fingerprint : hash of the member list, replication factor and range count; a replica
//                   refuses requests whose fingerprint differs from its own (two nodes that
//                   disagree on placement must never form quorums together)
//     body        : request batch -> [request...]
//                   request = [id, op, range, key(bin), first(bool), record|nil]
//                   reply batch   -> [reply...]
//                   reply   = [id, status, record|nil, digest_hash, digest_count, more(bool),
//                              [[key(bin), record]...]]
//                   record  = [hlc, node, tombstone(bool), expires_at_ms, value(bin)]
//
// Decoding never trusts its input: sizes are checked against `strong_limits` before anything
// is allocated, unknown versions/kinds/ops are rejected, every failure is errc::codec_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "merge/strong_replica.hpp"
#include "warp/error.hpp"

namespace warp::detail::wire {

inline constexpr std::uint8_t strong_wire_version = 1;

struct strong_limits {
  std::size_t max_message_bytes = 64 * 1024 * 1024;
  std::size_t max_items = 65'536;        ///< requests or replies in one batch
  std::size_t max_dump_records = 4'096;  ///< records in one dump page
  std::size_t max_key_bytes = 64 * 1024;
  std::size_t max_value_bytes = 16 * 1024 * 1024;
};

enum class op : std::uint8_t {
  read = 1,          ///< the key's record with its value
  read_version = 2,  ///< the key's version only (write phase 1)
  store = 3,         ///< keep `rec` if newer (write phase 2, read repair)
  dump = 4,          ///< a page of the range's records after `key` (recovery, anti-entropy)
  digest = 5,        ///< the range's digest (anti-entropy)
};

enum class status : std::uint8_t {
  ok = 0,
  not_ready = 1,    ///< the replica is recovering this range: not a quorum member yet
  mismatch = 2,     ///< different member list / replication factor / range count
  bad_request = 3,  ///< malformed request
  unreachable = 4,  ///< never sent: no connection to that replica (local only)
};

struct request {
  std::uint64_t id = 0;
  op what = op::read;
  std::uint32_t range = 0;
  std::string key;                   ///< the key; dump: the cursor (page after this key)
  bool first = false;                ///< dump: start at the range's first key
  std::optional<strong_record> rec;  ///< store
};

struct reply {
  std::uint64_t id = 0;
  status code = status::ok;
  std::optional<strong_record> rec;                            ///< read, read_version
  range_digest digest;                                         ///< digest
  bool more = false;                                           ///< dump: more pages follow
  std::vector<std::pair<std::string, strong_record>> records;  ///< dump
};

struct header {
  std::uint8_t kind = 1;
  std::uint64_t fingerprint = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t hlc_now = 0;
};

struct request_batch {
  header head;
  std::vector<request> items;
};
struct reply_batch {
  header head;
  std::vector<reply> items;
};

result<std::string> encode(const request_batch& batch, const strong_limits& lim = {});
result<std::string> encode(const reply_batch& batch, const strong_limits& lim = {});
result<request_batch> decode_requests(std::string_view bytes, const strong_limits& lim = {});
result<reply_batch> decode_replies(std::string_view bytes, const strong_limits& lim = {});

/// Approximate encoded size (for batch byte bounds).
inline std::size_t approx_size(const request& r) noexcept {
  return r.key.size() + (r.rec ? r.rec->value.size() : 0) + 48;
}
inline std::size_t approx_size(const reply& r) noexcept {
  std::size_t n = 48 + (r.rec ? r.rec->value.size() : 0);
  for (auto& [k, rec] : r.records) n += k.size() + rec.value.size() + 40;
  return n;
}

}  // namespace warp::detail::wire
