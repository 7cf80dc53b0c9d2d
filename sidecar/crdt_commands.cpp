// Redis commands on federated CRDT keys (docs/merge.md, "Federated Redis types in the
// sidecar"): a key whose pattern says `+federated=counter|set|map` (or that a glob binds to
// one of them) holds the merge/crdt.hpp state as its stored bytes, which the federation
// apply path merges with other regions' states. The string, set and hash handlers ask
// here first; for any other key these return false and the handler goes on as before.
//
// The state's origin entry is this node's region: a region orders its writes of one key
// like every eventual write (last writer wins between two of its nodes writing at once),
// and the CRDT adds up what different regions did (docs/merge.md, "origin").
#include <charconv>
#include <limits>
#include <string>
#include <vector>

#include "merge/crdt.hpp"
#include "merge/policy.hpp"
#include "sidecar/typed_commands.hpp"

namespace warp::sidecar::detail {

namespace {

enum class outcome : std::uint8_t { ok, wrong, not_int, overflow, limit };

/// The state of `cur` as a T: absent is an empty state, other bytes are WRONGTYPE.
template <class T>
std::optional<T> load(const std::string_view* stored) {
  if (!stored) return T{};
  auto d = T::decode(*stored);
  if (!d) return std::nullopt;
  return std::move(*d);
}

template <class T>
std::optional<T> load(const buffer* cur) {
  if (!cur) return T{};
  std::string_view v = **cur;
  return load<T>(&v);
}

const std::string& origin_of(context& ctx) {
  return ctx.n.raw().config().federation.region;
}

std::string decimal(std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  return std::string(buf, end);
}

void reply_outcome(resp_writer& w, outcome o, std::string_view not_int) {
  switch (o) {
    case outcome::wrong:
      return w.error(wrongtype);
    case outcome::not_int:
      return w.error(not_int);
    case outcome::overflow:
      return w.error("ERR increment or decrement would overflow");
    case outcome::limit:
      return w.error("ERR federated value over its size limits");
    case outcome::ok:
      return;
  }
}

}  // namespace

crdt_key crdt_key_of(node& n, std::string_view key) {
  // Without a region nothing federates: the common case costs one string test.
  if (n.config().federation.region.empty()) return crdt_key::none;
  auto policy = n.policy(key);
  if (policy.federated.empty()) return crdt_key::none;
  // As the federation resolves it: a pattern's lww yields to a bound glob.
  auto name = warp::detail::merges_of(n).policy_for(
      key, policy.federated == merge::policy_lww ? std::string_view{} : policy.federated);
  if (name == merge::policy_counter) return crdt_key::counter;
  if (name == merge::policy_set) return crdt_key::set;
  if (name == merge::policy_map) return crdt_key::map;
  return crdt_key::none;
}

// -- counter -------------------------------------------------------------------------------

void crdt_incr(node& n, resp_writer& w, std::string_view key, std::int64_t delta) {
  // A set or map key is no counter, even while absent (INCR would create a string).
  if (crdt_key_of(n, key) != crdt_key::counter) return w.error(wrongtype);
  outcome o = outcome::ok;
  std::int64_t value = 0;
  const auto& origin = n.config().federation.region;
  auto r = n.update(key, [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    o = outcome::ok;
    auto c = load<merge::pn_counter>(cur);
    std::int64_t plain = 0;
    if (!c && cur && parse_int64(**cur, plain)) {
      // A decimal string written before the pattern federated the key: its value becomes
      // this region's entry, so INCR goes on from it as redis-server would.
      c.emplace();
      if (!c->add(origin, plain)) c.reset();
    }
    if (!c) {
      o = cur && typed::type_of(**cur) == value_type::string ? outcome::not_int : outcome::wrong;
      return mutation::keep();
    }
    auto next = c->add(origin, delta);
    if (!next) {
      o = outcome::overflow;
      return mutation::keep();
    }
    value = *next;
    return mutation::put(c->encode(), cur ? exp : 0);
  });
  if (!r) return reply_write_error(w, r.err());
  if (o != outcome::ok) return reply_outcome(w, o, not_integer);
  w.integer(value);
}

bool crdt_get(context& ctx) {
  auto kind = crdt_key_of(ctx.n.raw(), ctx.args[1]);
  if (kind == crdt_key::none) return false;
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (kind != crdt_key::counter) return ctx.w.error(wrongtype);
    if (!stored) return ctx.w.null();
    auto c = load<merge::pn_counter>(stored);
    if (!c) return ctx.w.bulk(typed::string_payload(*stored));  // a plain string (see INCR)
    ctx.w.bulk(decimal(c->value()));
  });
  return true;
}

// -- set -----------------------------------------------------------------------------------

bool crdt_set_command(context& ctx, std::string_view cmd) {
  auto kind = crdt_key_of(ctx.n.raw(), ctx.args[1]);
  if (kind == crdt_key::none) return false;
  // A counter or map key holds another type, even while absent: its policy says so.
  if (kind != crdt_key::set) return ctx.w.error(wrongtype), true;
  const auto& origin = origin_of(ctx);
  if (cmd == "sadd" || cmd == "srem") {
    const bool add = cmd == "sadd";
    outcome o = outcome::ok;
    std::int64_t changed = 0;
    auto r =
        ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
          o = outcome::ok;
          changed = 0;
          auto s = load<merge::or_set>(cur);
          if (!s) {
            o = outcome::wrong;
            return mutation::keep();
          }
          for (std::size_t i = 2; i < ctx.args.size(); ++i) {
            if (!add) {
              changed += s->remove(ctx.args[i]) ? 1 : 0;
              continue;
            }
            // Even a present element gets a fresh dot (it replaces the old one, so the
            // state does not grow): this add must win over a remove another region makes
            // concurrently, which saw only the older dot. Redis's reply counts new ones.
            auto a = s->add(origin, ctx.args[i]);
            if (!a) {
              o = outcome::limit;
              return mutation::keep();
            }
            changed += *a ? 1 : 0;
          }
          if (!add && changed == 0) return mutation::keep();
          // An emptied set keeps its state: its context is what makes the removes win over
          // older adds arriving from other regions.
          return mutation::put(s->encode(), cur ? exp : 0);
        });
    if (!r) return reply_write_error(ctx.w, r.err()), true;
    if (o != outcome::ok) return reply_outcome(ctx.w, o, not_integer), true;
    ctx.w.integer(changed);
    return true;
  }
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    auto s = load<merge::or_set>(stored);
    if (!s) return ctx.w.error(wrongtype);
    if (cmd == "smembers") {
      auto m = s->members();
      ctx.w.set(m.size());
      for (auto& e : m) ctx.w.bulk(e);
    } else if (cmd == "sismember") {
      ctx.w.integer(s->contains(ctx.args[2]) ? 1 : 0);
    } else {  // scard
      ctx.w.integer(static_cast<std::int64_t>(s->size()));
    }
  });
  return true;
}

// -- map -----------------------------------------------------------------------------------

bool crdt_hash_command(context& ctx, std::string_view cmd) {
  auto kind = crdt_key_of(ctx.n.raw(), ctx.args[1]);
  if (kind == crdt_key::none) return false;
  if (kind != crdt_key::map) return ctx.w.error(wrongtype), true;
  const auto& origin = origin_of(ctx);
  auto& n = ctx.n.raw();
  if (cmd == "hset" || cmd == "hdel" || cmd == "hincrby") {
    if (cmd == "hset" && ctx.args.size() % 2 == 1)
      return ctx.w.error("ERR wrong number of arguments for 'hset' command"), true;
    std::int64_t delta = 0;
    if (cmd == "hincrby" && !int_arg(ctx, 3, delta)) return true;
    outcome o = outcome::ok;
    std::int64_t count = 0;
    auto r =
        ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
          o = outcome::ok;
          count = 0;
          auto m = load<merge::lww_map>(cur);
          if (!m) {
            o = outcome::wrong;
            return mutation::keep();
          }
          // Each field write gets its own version: a later pair of one HSET wins over an
          // earlier one for the same field, as in redis-server.
          if (cmd == "hset") {
            for (std::size_t i = 2; i + 1 < ctx.args.size(); i += 2) {
              bool fresh = !m->get(ctx.args[i]);
              if (!m->set(ctx.args[i], ctx.args[i + 1], n.next_version(), origin)) {
                o = outcome::limit;
                return mutation::keep();
              }
              count += fresh ? 1 : 0;
            }
          } else if (cmd == "hdel") {
            for (std::size_t i = 2; i < ctx.args.size(); ++i) {
              if (!m->get(ctx.args[i])) continue;
              if (!m->remove(ctx.args[i], n.next_version(), origin)) {
                o = outcome::limit;
                return mutation::keep();
              }
              ++count;
            }
            if (count == 0) return mutation::keep();
          } else {  // hincrby
            std::int64_t old = 0;
            auto v = m->get(ctx.args[2]);
            if (v && !parse_int64(*v, old)) {
              o = outcome::not_int;
              return mutation::keep();
            }
            if ((delta < 0 && old < std::numeric_limits<std::int64_t>::min() - delta) ||
                (delta > 0 && old > std::numeric_limits<std::int64_t>::max() - delta)) {
              o = outcome::overflow;
              return mutation::keep();
            }
            count = old + delta;
            if (!m->set(ctx.args[2], decimal(count), n.next_version(), origin)) {
              o = outcome::limit;
              return mutation::keep();
            }
          }
          return mutation::put(m->encode(), cur ? exp : 0);
        });
    if (!r) return reply_write_error(ctx.w, r.err()), true;
    if (o != outcome::ok) return reply_outcome(ctx.w, o, "ERR hash value is not an integer"), true;
    ctx.w.integer(count);
    return true;
  }
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    auto m = load<merge::lww_map>(stored);
    if (!m) return ctx.w.error(wrongtype);
    if (cmd == "hget") {
      if (auto v = m->get(ctx.args[2])) return ctx.w.bulk(*v);
      return ctx.w.null();
    }
    // hgetall: fields sorted by bytes (redis-server lists them in insertion order).
    auto live = m->live();
    ctx.w.map(live.size());
    for (auto& [k, v] : live) {
      ctx.w.bulk(k);
      ctx.w.bulk(v);
    }
  });
  return true;
}

}  // namespace warp::sidecar::detail
