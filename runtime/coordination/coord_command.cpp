#include "runtime/coordination/coord_command.hpp"

#include "runtime/consensus/byte_codec.hpp"

namespace warp::coordination {

using consensus::byte_reader;
using consensus::put_str;
using consensus::put_u64;
using consensus::put_u8;

namespace {

constexpr std::uint8_t answer_version = 1;

error malformed(std::string_view what) {
  return error{errc::codec_error, std::string{what} + ": malformed or beyond its bounds"};
}

}  // namespace

std::string encode(const coord_command& c) {
  std::string out;
  out.reserve(40 + c.name.size() + c.owner.size() + c.value.size() + 24 * c.checkpoints.size());
  put_u8(out, coord_command_version);
  put_u64(out, c.client);
  put_u64(out, c.seq);
  put_u8(out, static_cast<std::uint8_t>(c.op));
  put_u64(out, c.lease);
  put_u64(out, c.number);
  put_u8(out, c.reentrant ? 1 : 0);
  put_str(out, c.name);
  put_str(out, c.owner);
  put_str(out, c.value);
  put_u64(out, c.checkpoints.size());
  for (auto& cp : c.checkpoints) {
    put_u64(out, cp.lease);
    put_u64(out, cp.epoch);
    put_u64(out, cp.remaining_ms);
  }
  return out;
}

result<coord_command> decode_coord_command(std::string_view bytes, const coord_limits& lim) {
  byte_reader r{bytes};
  if (r.u8() != coord_command_version || !r.ok)
    return error{errc::codec_error, "coordination command: unsupported version"};
  coord_command c;
  c.client = r.u64();
  c.seq = r.u64();
  auto op = r.u8();
  c.lease = r.u64();
  c.number = r.u64();
  auto reentrant = r.u8();
  c.name = r.str(lim.max_name_bytes);
  // A lock name travels in `owner` for fenced_put: the larger of the two bounds.
  c.owner = r.str(std::max(lim.max_owner_bytes, lim.max_name_bytes));
  c.value = r.str(lim.max_value_bytes);
  auto n = r.count(lim.max_checkpoints);
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    lease_checkpoint cp;
    cp.lease = r.u64();
    cp.epoch = r.u64();
    cp.remaining_ms = r.u64();
    if (r.ok) c.checkpoints.push_back(cp);
  }
  if (!r.done() || op >= coord_op_count || reentrant > 1)
    return malformed("coordination command");
  c.op = static_cast<coord_op>(op);
  c.reentrant = reentrant == 1;
  return c;
}

std::string encode(const lock_answer& a) {
  std::string out;
  put_u8(out, answer_version);
  put_u8(out, a.held ? 1 : 0);
  put_u64(out, a.token);
  put_u64(out, a.holds);
  put_u64(out, a.position);
  return out;
}

result<lock_answer> decode_lock_answer(std::string_view bytes) {
  byte_reader r{bytes};
  if (r.u8() != answer_version) return malformed("lock answer");
  lock_answer a;
  auto held = r.u8();
  a.token = r.u64();
  auto holds = r.u64();
  a.position = r.u64();
  if (!r.done() || held > 1 || holds > UINT32_MAX) return malformed("lock answer");
  a.held = held == 1;
  a.holds = static_cast<std::uint32_t>(holds);
  return a;
}

std::string encode(const coord_query& q) {
  std::string out;
  put_u8(out, answer_version);
  put_u8(out, static_cast<std::uint8_t>(q.kind));
  put_u64(out, q.number);
  put_str(out, q.name);
  return out;
}

result<coord_query> decode_coord_query(std::string_view bytes, const coord_limits& lim) {
  byte_reader r{bytes};
  if (r.u8() != answer_version) return malformed("coordination query");
  coord_query q;
  auto kind = r.u8();
  q.number = r.u64();
  q.name = r.str(lim.max_name_bytes);
  if (!r.done() || kind > static_cast<std::uint8_t>(coord_query_kind::fenced))
    return malformed("coordination query");
  q.kind = static_cast<coord_query_kind>(kind);
  return q;
}

std::string encode(const lease_info& l) {
  std::string out;
  put_u8(out, answer_version);
  put_u64(out, l.id);
  put_u64(out, l.ttl_ms);
  put_u64(out, l.remaining_ms);
  put_u64(out, l.epoch);
  put_u64(out, l.keys.size());
  for (auto& k : l.keys) put_str(out, k);
  return out;
}

result<lease_info> decode_lease_info(std::string_view bytes, const coord_limits& lim) {
  byte_reader r{bytes};
  if (r.u8() != answer_version) return malformed("lease info");
  lease_info l;
  l.id = r.u64();
  l.ttl_ms = r.u64();
  l.remaining_ms = r.u64();
  l.epoch = r.u64();
  auto n = r.count(lim.max_keys_per_lease);
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    auto k = r.str(lim.max_name_bytes);
    if (r.ok) l.keys.push_back(std::move(k));
  }
  if (!r.done()) return malformed("lease info");
  return l;
}

std::string encode(const lock_info& l) {
  std::string out;
  put_u8(out, answer_version);
  put_u8(out, l.held ? 1 : 0);
  put_u64(out, l.holder_lease);
  put_str(out, l.holder_owner);
  put_u64(out, l.token);
  put_u64(out, l.holds);
  put_u64(out, l.waiters);
  return out;
}

result<lock_info> decode_lock_info(std::string_view bytes, const coord_limits& lim) {
  byte_reader r{bytes};
  if (r.u8() != answer_version) return malformed("lock info");
  lock_info l;
  auto held = r.u8();
  l.holder_lease = r.u64();
  l.holder_owner = r.str(lim.max_owner_bytes);
  l.token = r.u64();
  auto holds = r.u64();
  l.waiters = r.u64();
  if (!r.done() || held > 1 || holds > UINT32_MAX) return malformed("lock info");
  l.held = held == 1;
  l.holds = static_cast<std::uint32_t>(holds);
  return l;
}

std::string encode_ids(const std::vector<std::uint64_t>& ids) {
  std::string out;
  put_u8(out, answer_version);
  put_u64(out, ids.size());
  for (auto id : ids) put_u64(out, id);
  return out;
}

result<std::vector<std::uint64_t>> decode_ids(std::string_view bytes, const coord_limits& lim) {
  byte_reader r{bytes};
  if (r.u8() != answer_version) return malformed("lease list");
  std::vector<std::uint64_t> ids;
  auto n = r.count(lim.max_leases);
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    auto id = r.u64();
    if (r.ok) ids.push_back(id);
  }
  if (!r.done()) return malformed("lease list");
  return ids;
}

}  // namespace warp::coordination
