// Redis sets, their basic forms (what redis-benchmark's default suite and job-queue style
// code use): SADD, SREM, SMEMBERS, SISMEMBER, SCARD, SPOP (with count). One stored value
// per key (typed_value.hpp), members kept sorted by bytes; each write is one node.update().
// Replies follow Redis 7.0 (t_set.c), with RESP3's set type. SMEMBERS and SPOP's order is
// unspecified in Redis too (Warp's is byte order).
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "sidecar/typed_commands.hpp"

namespace warp::sidecar::detail {

namespace {

enum class found : std::uint8_t { absent, ok, wrong };

found load(std::string_view stored, const void* present, typed::set_t& out) {
  if (!present) return found::absent;
  auto d = typed::decode_set(stored);
  if (!d) return found::wrong;
  out = std::move(*d);
  return found::ok;
}
found load(const buffer* cur, typed::set_t& out) {
  return load(cur ? std::string_view(**cur) : std::string_view{}, cur, out);
}
found load(const std::string_view* stored, typed::set_t& out) {
  return load(stored ? *stored : std::string_view{}, stored, out);
}

mutation store(const typed::set_t& s, std::int64_t exp) {
  if (s.empty()) return mutation::erase();
  return mutation::put(typed::encode_set(s), exp);
}

bool contains(const typed::set_t& s, std::string_view m) {
  return std::binary_search(s.begin(), s.end(), m);
}

std::uint64_t random_u64() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen();
}

}  // namespace

void cmd_sadd(context& ctx) {
  if (crdt_set_command(ctx, "sadd")) return;
  found state = found::absent;
  std::int64_t added = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::set_t s;
    state = load(cur, s);
    added = 0;
    if (state == found::wrong) return mutation::keep();
    typed::set_t extra(ctx.args.begin() + 2, ctx.args.end());
    std::sort(extra.begin(), extra.end());
    extra.erase(std::unique(extra.begin(), extra.end()), extra.end());
    typed::set_t next;
    next.reserve(s.size() + extra.size());
    std::set_union(s.begin(), s.end(), extra.begin(), extra.end(), std::back_inserter(next));
    added = std::ssize(next) - std::ssize(s);
    if (added == 0) return mutation::keep();
    return store(next, cur ? exp : 0);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  ctx.w.integer(added);
}

void cmd_srem(context& ctx) {
  if (crdt_set_command(ctx, "srem")) return;
  found state = found::absent;
  std::int64_t removed = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::set_t s;
    state = load(cur, s);
    removed = 0;
    if (state != found::ok) return mutation::keep();
    typed::set_t gone(ctx.args.begin() + 2, ctx.args.end());
    std::sort(gone.begin(), gone.end());
    typed::set_t next;
    next.reserve(s.size());
    std::set_difference(s.begin(), s.end(), gone.begin(), gone.end(), std::back_inserter(next));
    removed = std::ssize(s) - std::ssize(next);
    if (removed == 0) return mutation::keep();
    return store(next, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  ctx.w.integer(removed);
}

void cmd_smembers(context& ctx) {
  if (crdt_set_command(ctx, "smembers")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::set_t s;
    if (load(stored, s) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.set(s.size());
    for (auto m : s) ctx.w.bulk(m);
  });
}

void cmd_sismember(context& ctx) {
  if (crdt_set_command(ctx, "sismember")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::set_t s;
    if (load(stored, s) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.integer(contains(s, ctx.args[2]) ? 1 : 0);
  });
}

void cmd_scard(context& ctx) {
  if (crdt_set_command(ctx, "scard")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::set_t s;
    if (load(stored, s) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.integer(std::ssize(s));
  });
}

void cmd_spop(context& ctx) {
  if (ctx.args.size() > 3) return ctx.w.error("ERR syntax error");
  const bool has_count = ctx.args.size() == 3;
  std::int64_t count = 1;
  if (has_count && (!parse_int64(ctx.args[2], count) || count < 0))
    return ctx.w.error(not_positive);  // Redis's getPositiveLong: one text for both
  if (crdt_set_command(ctx, "spop")) return;
  found state = found::absent;
  std::vector<std::string> popped;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::set_t s;
    state = load(cur, s);
    popped.clear();
    if (state != found::ok || count == 0) return mutation::keep();
    const auto n = static_cast<std::size_t>(std::min<std::int64_t>(count, std::ssize(s)));
    popped.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {  // n random picks without replacement
      auto at = static_cast<std::size_t>(random_u64() % s.size());
      popped.emplace_back(s[at]);
      s.erase(s.begin() + static_cast<std::ptrdiff_t>(at));
    }
    return store(s, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  if (!has_count) {
    if (popped.empty()) return ctx.w.null();
    return ctx.w.bulk(popped.front());
  }
  ctx.w.set(popped.size());
  for (const auto& m : popped) ctx.w.bulk(m);
}

}  // namespace warp::sidecar::detail
