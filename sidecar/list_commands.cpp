// Redis lists on one stored value per key (typed_value.hpp): LPUSH, RPUSH, LPUSHX, RPUSHX,
// LPOP, RPOP (with count), LLEN, LRANGE, LINDEX, LSET, LREM, LTRIM. Writes are one
// node.update() each (pipelined pushes and pops: one node.update_many, typed_write), so
// they are atomic per key in the key's consistency mode and invalidated and propagated
// like strings. Pushes, pops and the reads splice or walk the encoded value
// (typed::scan_list, typed::cursor); LSET, LREM and LTRIM decode it. Replies, error
// texts and the order in which arguments and the key's type are checked follow Redis 7.0
// (t_list.c); a key whose list becomes empty is deleted, as in Redis. No count or index
// from a client sizes an allocation: every range is clamped to the list first.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
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

/// A list value to store, or erase when it became empty; the key keeps its TTL.
mutation store(const typed::list_t& l, std::int64_t exp) {
  if (l.empty()) return mutation::erase();
  return mutation::put(typed::encode_list(l), exp);
}

/// Reads `cur` as a list without decoding it (typed::scan_list).
found scan(const buffer* cur, std::optional<typed::scan_info>& out) {
  if (!cur) return found::absent;
  out = typed::scan_list(**cur);
  return out ? found::ok : found::wrong;
}

/// LPUSH RPUSH LPUSHX RPUSHX: the new elements, then the old ones as they are encoded (or
/// the other way round): a copy of the old bytes, no decoding.
struct push_write final : typed_write {
  std::span<const std::string_view> args;
  bool left = false, only_existing = false;
  found state = found::absent;
  std::size_t len = 0;

  push_write(std::span<const std::string_view> a, bool l, bool x)
      : typed_write(a[1]), args(a), left(l), only_existing(x) {}

  result<mutation> operator()(const buffer* cur, std::int64_t exp) override {
    std::optional<typed::scan_info> sc;
    state = scan(cur, sc);
    len = 0;
    if (state == found::wrong || (state == found::absent && only_existing)) return mutation::keep();
    const auto extra = args.subspan(2);
    const std::string_view old_body = sc ? std::string_view{**cur}.substr(sc->body) : "";
    len = (sc ? sc->count : 0) + extra.size();
    std::size_t size = old_body.size();
    for (auto e : extra) size += e.size() + 10;
    auto out = typed::begin_value(value_type::list, len, size);
    if (left) {
      for (auto it = extra.rbegin(); it != extra.rend(); ++it) typed::append_element(out, *it);
      out.append(old_body);
    } else {
      out.append(old_body);
      for (auto e : extra) typed::append_element(out, e);
    }
    return mutation::put(std::move(out), cur ? exp : 0);
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    if (!st) return reply_write_error(w, st.err());
    if (state == found::wrong) return w.error(wrongtype);
    w.integer(static_cast<std::int64_t>(len));
  }
};

/// LPOP RPOP [count]: the popped elements are read in place, what stays is copied as it is
/// encoded.
struct pop_write final : typed_write {
  bool left = false, has_count = false;
  std::int64_t count = 1;
  found state = found::absent;
  std::vector<std::string> popped;

  pop_write(std::span<const std::string_view> args, bool l)
      : typed_write(args[1]), left(l), has_count(args.size() == 3) {}
  /// False when the arguments are refused (the error is then written to `w`, if given).
  bool parse(std::span<const std::string_view> args, resp_writer* w) {
    if (args.size() > 3) {
      if (w)
        w->error("ERR wrong number of arguments for '" + std::string(left ? "lpop" : "rpop") +
                 "' command");
      return false;
    }
    if (has_count && (!parse_int64(args[2], count) || count < 0)) {
      if (w) w->error(not_positive);  // Redis's getPositiveLong: one text for both
      return false;
    }
    return true;
  }

  result<mutation> operator()(const buffer* cur, std::int64_t exp) override {
    std::optional<typed::scan_info> sc;
    state = scan(cur, sc);
    popped.clear();
    if (state != found::ok || count == 0) return mutation::keep();
    const std::string_view s = **cur;
    // Bounded by the list, whatever the count says.
    const auto n = static_cast<std::size_t>(
        std::min<std::int64_t>(count, static_cast<std::int64_t>(sc->count)));
    popped.reserve(n);
    std::size_t keep_from = sc->body, keep_to = s.size();
    if (left) {
      typed::cursor c{s, sc->body};
      for (std::size_t i = 0; i < n; ++i) popped.emplace_back(c.bytes());
      keep_from = c.pos();
    } else {
      std::size_t from = sc->last;
      if (n != 1) {
        typed::cursor c{s, sc->body};
        for (std::size_t i = 0; i < sc->count - n; ++i) c.skip();
        from = c.pos();
      }
      typed::cursor c{s, from};
      for (std::size_t i = 0; i < n; ++i) popped.emplace_back(c.bytes());
      std::reverse(popped.begin(), popped.end());
      keep_to = from;
    }
    if (n == sc->count) return mutation::erase();
    auto out = typed::begin_value(value_type::list, sc->count - n, keep_to - keep_from);
    out.append(s.substr(keep_from, keep_to - keep_from));
    return mutation::put(std::move(out), exp);
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    if (!st) return reply_write_error(w, st.err());
    if (state == found::wrong) return w.error(wrongtype);
    if (state == found::absent) return has_count ? w.null_array() : w.null();
    if (!has_count) return w.bulk(popped.front());
    w.array(popped.size());
    for (const auto& e : popped) w.bulk(e);
  }
};

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

std::unique_ptr<typed_write> make_list_write(std::span<const std::string_view> args) {
  const std::string_view name = args[0];
  if (args.size() >= 3) {
    for (auto [cmd, left, only_existing] : {std::tuple{"lpush", true, false},
                                            {"rpush", false, false},
                                            {"lpushx", true, true},
                                            {"rpushx", false, true}})
      if (iequals(name, cmd)) return std::make_unique<push_write>(args, left, only_existing);
  }
  for (auto [cmd, left] : {std::pair{"lpop", true}, {"rpop", false}})
    if (args.size() >= 2 && iequals(name, cmd)) {
      auto p = std::make_unique<pop_write>(args, left);
      if (!p->parse(args, nullptr)) return nullptr;
      return p;
    }
  return nullptr;
}

void cmd_lpush(context& ctx) {
  push_write p{ctx.args, true, false};
  run_typed_write(ctx, p);
}
void cmd_rpush(context& ctx) {
  push_write p{ctx.args, false, false};
  run_typed_write(ctx, p);
}
void cmd_lpushx(context& ctx) {
  push_write p{ctx.args, true, true};
  run_typed_write(ctx, p);
}
void cmd_rpushx(context& ctx) {
  push_write p{ctx.args, false, true};
  run_typed_write(ctx, p);
}
void cmd_lpop(context& ctx) {
  pop_write p{ctx.args, true};
  if (p.parse(ctx.args, &ctx.w)) run_typed_write(ctx, p);
}
void cmd_rpop(context& ctx) {
  pop_write p{ctx.args, false};
  if (p.parse(ctx.args, &ctx.w)) run_typed_write(ctx, p);
}

void cmd_llen(context& ctx) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (!stored) return ctx.w.integer(0);
    auto sc = typed::scan_list(*stored);
    if (!sc) return ctx.w.error(wrongtype);
    ctx.w.integer(static_cast<std::int64_t>(sc->count));
  });
}

void cmd_lrange(context& ctx) {
  std::int64_t start = 0, end = 0;
  if (!int_arg(ctx, 2, start) || !int_arg(ctx, 3, end)) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (!stored) return ctx.w.array(0);
    auto sc = typed::scan_list(*stored);
    if (!sc) return ctx.w.error(wrongtype);
    std::int64_t s = start, e = end;
    if (!clamp_range(s, e, static_cast<std::int64_t>(sc->count))) return ctx.w.array(0);
    ctx.w.array(static_cast<std::size_t>(e - s + 1));
    typed::cursor c{*stored, sc->body};
    for (std::int64_t i = 0; i < s; ++i) c.skip();
    for (auto i = s; i <= e; ++i) ctx.w.bulk(c.bytes());
  });
}

void cmd_lindex(context& ctx) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (!stored) return ctx.w.null();
    auto sc = typed::scan_list(*stored);
    if (!sc) return ctx.w.error(wrongtype);
    std::int64_t index = 0;
    if (!int_arg(ctx, 2, index)) return;
    const auto len = static_cast<std::int64_t>(sc->count);
    if (index < 0) index += len;
    if (index < 0 || index >= len) return ctx.w.null();
    typed::cursor c{*stored, sc->body};
    for (std::int64_t i = 0; i < index; ++i) c.skip();
    ctx.w.bulk(c.bytes());
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
