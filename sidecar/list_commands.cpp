// Redis lists on one stored value per key (typed_value.hpp): LPUSH, RPUSH, LPUSHX, RPUSHX,
// LPOP, RPOP (with count), LLEN, LRANGE, LINDEX, LSET, LREM, LTRIM. Writes are one
// node.update() each, so they are atomic per key in the key's consistency mode and
// invalidated and propagated like strings. Replies, error texts and the order in which
// arguments and the key's type are checked follow Redis 7.0 (t_list.c); a key whose list
// becomes empty is deleted, as in Redis. No count or index from a client sizes an
// allocation: every range is clamped to the list first.
#include <algorithm>
#include <string>
#include <vector>

#include "sidecar/typed_commands.hpp"

namespace warp::sidecar::detail {

namespace {

/// A decoded list or why not: absent, or another type.
enum class found : std::uint8_t { absent, ok, wrong };

found load(const buffer* cur, typed::list_t& out) {
  if (!cur) return found::absent;
  auto d = typed::decode_list(**cur);
  if (!d) return found::wrong;
  out = std::move(*d);
  return found::ok;
}

found load(const std::string_view* stored, typed::list_t& out) {
  if (!stored) return found::absent;
  auto d = typed::decode_list(*stored);
  if (!d) return found::wrong;
  out = std::move(*d);
  return found::ok;
}

/// A list value to store, or erase when it became empty; the key keeps its TTL.
mutation store(const typed::list_t& l, std::int64_t exp) {
  if (l.empty()) return mutation::erase();
  return mutation::put(typed::encode_list(l), exp);
}

void push_common(context& ctx, bool left, bool only_existing) {
  found state = found::absent;
  std::size_t len = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::list_t l;
    state = load(cur, l);
    len = 0;
    if (state == found::wrong || (state == found::absent && only_existing)) return mutation::keep();
    const auto extra = ctx.args.subspan(2);
    if (left) {
      typed::list_t next;
      next.reserve(l.size() + extra.size());
      for (auto it = extra.rbegin(); it != extra.rend(); ++it) next.push_back(*it);
      next.insert(next.end(), l.begin(), l.end());
      l = std::move(next);
    } else {
      l.insert(l.end(), extra.begin(), extra.end());
    }
    len = l.size();
    return store(l, cur ? exp : 0);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  ctx.w.integer(static_cast<std::int64_t>(len));
}

void pop_common(context& ctx, bool left) {
  if (ctx.args.size() > 3)
    return ctx.w.error("ERR wrong number of arguments for '" + std::string(left ? "lpop" : "rpop") +
                       "' command");
  const bool has_count = ctx.args.size() == 3;
  std::int64_t count = 1;
  if (has_count && (!parse_int64(ctx.args[2], count) || count < 0))
    return ctx.w.error(not_positive);  // Redis's getPositiveLong: one text for both
  found state = found::absent;
  std::vector<std::string> popped;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::list_t l;
    state = load(cur, l);
    popped.clear();
    if (state != found::ok || count == 0) return mutation::keep();
    // Bounded by the list, whatever the count says.
    const auto n = static_cast<std::size_t>(std::min<std::int64_t>(count, std::ssize(l)));
    popped.reserve(n);
    if (left) {
      for (std::size_t i = 0; i < n; ++i) popped.emplace_back(l[i]);
      l.erase(l.begin(), l.begin() + static_cast<std::ptrdiff_t>(n));
    } else {
      for (std::size_t i = 0; i < n; ++i) popped.emplace_back(l[l.size() - 1 - i]);
      l.resize(l.size() - n);
    }
    return store(l, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  if (state == found::absent) return has_count ? ctx.w.null_array() : ctx.w.null();
  if (!has_count) return ctx.w.bulk(popped.front());
  ctx.w.array(popped.size());
  for (const auto& e : popped) ctx.w.bulk(e);
}

/// Redis's clamping of a [start, end] range over `len` elements; false when it is empty.
bool clamp_range(std::int64_t& start, std::int64_t& end, std::int64_t len) {
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (start > end || start >= len) return false;
  if (end >= len) end = len - 1;
  return true;
}

}  // namespace

void cmd_lpush(context& ctx) {
  push_common(ctx, true, false);
}
void cmd_rpush(context& ctx) {
  push_common(ctx, false, false);
}
void cmd_lpushx(context& ctx) {
  push_common(ctx, true, true);
}
void cmd_rpushx(context& ctx) {
  push_common(ctx, false, true);
}
void cmd_lpop(context& ctx) {
  pop_common(ctx, true);
}
void cmd_rpop(context& ctx) {
  pop_common(ctx, false);
}

void cmd_llen(context& ctx) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::list_t l;
    auto state = load(stored, l);
    if (state == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.integer(static_cast<std::int64_t>(l.size()));
  });
}

void cmd_lrange(context& ctx) {
  std::int64_t start = 0, end = 0;
  if (!int_arg(ctx, 2, start) || !int_arg(ctx, 3, end)) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::list_t l;
    auto state = load(stored, l);
    if (state == found::wrong) return ctx.w.error(wrongtype);
    std::int64_t s = start, e = end;
    if (!clamp_range(s, e, std::ssize(l))) return ctx.w.array(0);
    ctx.w.array(static_cast<std::size_t>(e - s + 1));
    for (auto i = s; i <= e; ++i) ctx.w.bulk(l[static_cast<std::size_t>(i)]);
  });
}

void cmd_lindex(context& ctx) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::list_t l;
    auto state = load(stored, l);
    if (state == found::absent) return ctx.w.null();
    if (state == found::wrong) return ctx.w.error(wrongtype);
    std::int64_t index = 0;
    if (!int_arg(ctx, 2, index)) return;
    if (index < 0) index += std::ssize(l);
    if (index < 0 || index >= std::ssize(l)) return ctx.w.null();
    ctx.w.bulk(l[static_cast<std::size_t>(index)]);
  });
}

void cmd_lset(context& ctx) {
  std::int64_t index = 0;
  const bool index_ok = parse_int64(ctx.args[2], index);
  enum class outcome : std::uint8_t { ok, no_key, wrong, bad_index, out_of_range } result_of{};
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::list_t l;
    auto state = load(cur, l);
    result_of = state == found::absent  ? outcome::no_key
                : state == found::wrong ? outcome::wrong
                : !index_ok             ? outcome::bad_index
                                        : outcome::ok;
    if (result_of != outcome::ok) return mutation::keep();
    auto i = index < 0 ? index + std::ssize(l) : index;
    if (i < 0 || i >= std::ssize(l)) {
      result_of = outcome::out_of_range;
      return mutation::keep();
    }
    l[static_cast<std::size_t>(i)] = ctx.args[3];
    return store(l, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  switch (result_of) {
    case outcome::no_key:
      return ctx.w.error("ERR no such key");
    case outcome::wrong:
      return ctx.w.error(wrongtype);
    case outcome::bad_index:
      return ctx.w.error(not_integer);
    case outcome::out_of_range:
      return ctx.w.error("ERR index out of range");
    case outcome::ok:
      return ctx.w.simple("OK");
  }
}

void cmd_lrem(context& ctx) {
  std::int64_t count = 0;
  if (!int_arg(ctx, 2, count)) return;
  const std::string_view element = ctx.args[3];
  found state = found::absent;
  std::int64_t removed = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::list_t l;
    state = load(cur, l);
    removed = 0;
    if (state != found::ok) return mutation::keep();
    // count > 0: the first |count| matches from the head; < 0: from the tail; 0: all.
    const std::uint64_t limit = count == 0
                                    ? ~std::uint64_t{0}
                                    : (count < 0 ? static_cast<std::uint64_t>(-(count + 1)) + 1
                                                 : static_cast<std::uint64_t>(count));
    std::vector<bool> drop(l.size(), false);
    std::uint64_t n = 0;
    if (count >= 0) {
      for (std::size_t i = 0; i < l.size() && n < limit; ++i)
        if (l[i] == element) drop[i] = true, ++n;
    } else {
      for (std::size_t i = l.size(); i-- > 0 && n < limit;)
        if (l[i] == element) drop[i] = true, ++n;
    }
    if (n == 0) return mutation::keep();
    typed::list_t next;
    next.reserve(l.size() - n);
    for (std::size_t i = 0; i < l.size(); ++i)
      if (!drop[i]) next.push_back(l[i]);
    removed = static_cast<std::int64_t>(n);
    return store(next, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  ctx.w.integer(removed);
}

void cmd_ltrim(context& ctx) {
  std::int64_t start = 0, end = 0;
  if (!int_arg(ctx, 2, start) || !int_arg(ctx, 3, end)) return;
  found state = found::absent;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::list_t l;
    state = load(cur, l);
    if (state != found::ok) return mutation::keep();
    std::int64_t s = start, e = end;
    typed::list_t next;
    if (clamp_range(s, e, std::ssize(l))) next.assign(l.begin() + s, l.begin() + e + 1);
    // Stored even when nothing was trimmed: Redis signals the key as modified either way,
    // which a WATCH of it sees.
    return store(next, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  ctx.w.simple("OK");
}

}  // namespace warp::sidecar::detail
