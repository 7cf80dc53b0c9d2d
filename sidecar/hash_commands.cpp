// Redis hashes, their basic forms (what redis-benchmark's default suite and session/object
// caches use): HSET, HMSET, HGET, HMGET, HDEL, HGETALL, HKEYS, HVALS, HLEN, HEXISTS,
// HINCRBY. One stored value per key (typed_value.hpp), fields in insertion order (the
// order Redis keeps for a small hash, so HGETALL answers alike); each write is one
// node.update(). Replies follow Redis 7.0 (t_hash.c), RESP3 gets a map.
#include <charconv>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "sidecar/typed_commands.hpp"

namespace warp::sidecar::detail {

namespace {

enum class found : std::uint8_t { absent, ok, wrong };

found load(std::string_view stored, const void* present, typed::hash_t& out) {
  if (!present) return found::absent;
  auto d = typed::decode_hash(stored);
  if (!d) return found::wrong;
  out = std::move(*d);
  return found::ok;
}
found load(const buffer* cur, typed::hash_t& out) {
  return load(cur ? std::string_view(**cur) : std::string_view{}, cur, out);
}
found load(const std::string_view* stored, typed::hash_t& out) {
  return load(stored ? *stored : std::string_view{}, stored, out);
}

mutation store(const typed::hash_t& h, std::int64_t exp) {
  if (h.empty()) return mutation::erase();
  return mutation::put(typed::encode_hash(h), exp);
}

const std::string_view* field(const typed::hash_t& h, std::string_view f) {
  for (auto& [k, v] : h)
    if (k == f) return &v;
  return nullptr;
}

/// HSET/HMSET: new fields go last, an existing field keeps its place.
void hset_common(context& ctx, bool ok_reply, std::string_view name) {
  if (ctx.args.size() % 2 == 1)
    return ctx.w.error("ERR wrong number of arguments for '" + std::string(name) + "' command");
  found state = found::absent;
  std::int64_t created = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::hash_t h;
    state = load(cur, h);
    created = 0;
    if (state == found::wrong) return mutation::keep();
    std::unordered_map<std::string_view, std::size_t> index;
    index.reserve(h.size() + (ctx.args.size() - 2) / 2);
    for (std::size_t i = 0; i < h.size(); ++i) index.emplace(h[i].first, i);
    for (std::size_t i = 2; i + 1 < ctx.args.size(); i += 2) {
      auto [it, fresh] = index.emplace(ctx.args[i], h.size());
      if (fresh) {
        h.emplace_back(ctx.args[i], ctx.args[i + 1]);
        ++created;
      } else {
        h[it->second].second = ctx.args[i + 1];
      }
    }
    // Stored even when nothing changed: Redis signals the key as modified (WATCH sees it).
    return store(h, cur ? exp : 0);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  if (ok_reply) return ctx.w.simple("OK");
  ctx.w.integer(created);
}

}  // namespace

void cmd_hset(context& ctx) {
  if (crdt_hash_command(ctx, "hset")) return;
  hset_common(ctx, false, "hset");
}
void cmd_hmset(context& ctx) {
  if (crdt_hash_command(ctx, "hmset")) return;
  hset_common(ctx, true, "hmset");
}

void cmd_hget(context& ctx) {
  if (crdt_hash_command(ctx, "hget")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::hash_t h;
    auto state = load(stored, h);
    if (state == found::wrong) return ctx.w.error(wrongtype);
    if (auto* v = field(h, ctx.args[2])) return ctx.w.bulk(*v);
    ctx.w.null();
  });
}

void cmd_hmget(context& ctx) {
  if (crdt_hash_command(ctx, "hmget")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::hash_t h;
    auto state = load(stored, h);
    if (state == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.array(ctx.args.size() - 2);
    for (std::size_t i = 2; i < ctx.args.size(); ++i) {
      if (auto* v = field(h, ctx.args[i]))
        ctx.w.bulk(*v);
      else
        ctx.w.null();
    }
  });
}

void cmd_hdel(context& ctx) {
  if (crdt_hash_command(ctx, "hdel")) return;
  found state = found::absent;
  std::int64_t removed = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::hash_t h;
    state = load(cur, h);
    removed = 0;
    if (state != found::ok) return mutation::keep();
    for (std::size_t i = 2; i < ctx.args.size(); ++i)
      removed += static_cast<std::int64_t>(
          std::erase_if(h, [&](const auto& kv) { return kv.first == ctx.args[i]; }));
    if (removed == 0) return mutation::keep();
    return store(h, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  ctx.w.integer(removed);
}

void cmd_hgetall(context& ctx) {
  if (crdt_hash_command(ctx, "hgetall")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::hash_t h;
    if (load(stored, h) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.map(h.size());
    for (auto& [k, v] : h) {
      ctx.w.bulk(k);
      ctx.w.bulk(v);
    }
  });
}

void cmd_hkeys(context& ctx) {
  if (crdt_hash_command(ctx, "hkeys")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::hash_t h;
    if (load(stored, h) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.array(h.size());
    for (auto& kv : h) ctx.w.bulk(kv.first);
  });
}

void cmd_hvals(context& ctx) {
  if (crdt_hash_command(ctx, "hvals")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::hash_t h;
    if (load(stored, h) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.array(h.size());
    for (auto& kv : h) ctx.w.bulk(kv.second);
  });
}

void cmd_hlen(context& ctx) {
  if (crdt_hash_command(ctx, "hlen")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::hash_t h;
    if (load(stored, h) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.integer(std::ssize(h));
  });
}

void cmd_hexists(context& ctx) {
  if (crdt_hash_command(ctx, "hexists")) return;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::hash_t h;
    if (load(stored, h) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.integer(field(h, ctx.args[2]) ? 1 : 0);
  });
}

void cmd_hincrby(context& ctx) {
  if (crdt_hash_command(ctx, "hincrby")) return;
  std::int64_t delta = 0;
  if (!int_arg(ctx, 3, delta)) return;
  enum class outcome : std::uint8_t { ok, wrong, not_int, overflow } result_of{};
  std::int64_t value = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::hash_t h;
    auto state = load(cur, h);
    result_of = outcome::ok;
    if (state == found::wrong) {
      result_of = outcome::wrong;
      return mutation::keep();
    }
    std::int64_t old = 0;
    auto* v = field(h, ctx.args[2]);
    if (v && !parse_int64(*v, old)) {
      result_of = outcome::not_int;
      return mutation::keep();
    }
    if ((delta < 0 && old < std::numeric_limits<std::int64_t>::min() - delta) ||
        (delta > 0 && old > std::numeric_limits<std::int64_t>::max() - delta)) {
      result_of = outcome::overflow;
      return mutation::keep();
    }
    value = old + delta;
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    (void)ec;
    const std::string_view text(buf, static_cast<std::size_t>(end - buf));
    if (v)
      for (auto& kv : h)
        if (kv.first == ctx.args[2]) kv.second = text;
    if (!v) h.emplace_back(ctx.args[2], text);
    return store(h, cur ? exp : 0);  // encoded before `buf` goes away
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  switch (result_of) {
    case outcome::wrong:
      return ctx.w.error(wrongtype);
    case outcome::not_int:
      return ctx.w.error("ERR hash value is not an integer");
    case outcome::overflow:
      return ctx.w.error("ERR increment or decrement would overflow");
    case outcome::ok:
      return ctx.w.integer(value);
  }
}

}  // namespace warp::sidecar::detail
