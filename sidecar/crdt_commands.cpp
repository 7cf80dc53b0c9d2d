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
#include <random>
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

bool crdt_get(context& ctx, std::string_view key, bool nil_if_other_type) {
  auto kind = crdt_key_of(ctx.n.raw(), key);
  if (kind == crdt_key::none) return false;
  with_value(ctx, key, [&](const std::string_view* stored) {
    if (kind != crdt_key::counter) return nil_if_other_type ? ctx.w.null() : ctx.w.error(wrongtype);
    if (!stored) return ctx.w.null();
    auto c = load<merge::pn_counter>(stored);
    if (!c) return ctx.w.bulk(typed::string_payload(*stored));  // a plain string (see INCR)
    if (!c->present()) return ctx.w.null();                     // deleted (crdt_del)
    ctx.w.bulk(decimal(c->value()));
  });
  return true;
}

namespace {

/// The counter a string write starts from, and the string a reader sees now (nullopt:
/// absent). A decimal string stored before the pattern federated the key counts as this
/// region's entry (as at INCR). False: another type (WRONGTYPE).
bool counter_of(const buffer* cur, std::string_view origin, merge::pn_counter& c,
                std::optional<std::string>& shown) {
  shown.reset();
  if (!cur) return true;
  if (auto d = merge::pn_counter::decode(**cur)) {
    c = std::move(*d);
    if (c.present()) shown = decimal(c.value());
    return true;
  }
  if (typed::type_of(**cur) != value_type::string) return false;
  shown = std::string{typed::string_payload(**cur)};
  std::int64_t plain = 0;
  // A plain string that is no integer is replaced by the write (SET overwrites it).
  if (parse_int64(*shown, plain)) (void)c.add(origin, plain);
  return true;
}

}  // namespace

namespace {

struct string_write_outcome {
  outcome o = outcome::ok;
  bool applied = false;
  std::optional<std::string> old;
  std::size_t length = 0;
};

/// A string write on a counter key whose value (unless APPEND) is the integer `target`.
result<string_write_outcome> counter_write(context& ctx, std::string_view key,
                                           const crdt_string_op& op, std::int64_t target) {
  const auto& origin = origin_of(ctx);
  string_write_outcome out;
  auto& [o, applied, old, length] = out;
  auto r = ctx.n.update(key, [&](const buffer* cur, std::int64_t cur_exp) -> result<mutation> {
    o = outcome::ok;
    applied = false;
    merge::pn_counter c;
    if (!counter_of(cur, origin, c, old)) {
      o = outcome::wrong;
      return mutation::keep();
    }
    if ((op.nx && old) || (op.xx && !old)) return mutation::keep();
    if (op.append) {
      // APPEND keeps the key a counter only when the text it makes is an integer.
      std::string text = old.value_or(std::string{});
      text += op.value;
      if (!parse_int64(text, target)) {
        o = outcome::not_int;
        return mutation::keep();
      }
      length = text.size();
    }
    std::int64_t exp = op.append || op.keepttl ? (old ? cur_exp : 0) : op.expires;
    applied = true;
    // An expiry already past deletes the key (SET ... EXAT <past>): the DEL of a counter.
    if (exp != 0 && exp <= now_ms()) {
      if (!cur) return mutation::keep();
      if (!c.reset()) {
        o = outcome::limit;
        return mutation::keep();
      }
      return mutation::put(c.encode(), 0);
    }
    if (!c.assign(origin, target)) {
      o = outcome::overflow;
      return mutation::keep();
    }
    return mutation::put(c.encode(), exp);
  });
  if (!r) return r.err();
  return out;
}

}  // namespace

bool crdt_string_write(context& ctx, std::string_view key, const crdt_string_op& op) {
  auto kind = crdt_key_of(ctx.n.raw(), key);
  if (kind == crdt_key::none) return false;
  // A set or map key stays one: a string there would be a state no region can merge.
  if (kind != crdt_key::counter) return ctx.w.error(wrongtype), true;
  std::int64_t target = 0;
  if (!op.append && !parse_int64(op.value, target)) return ctx.w.error(not_integer), true;
  auto r = counter_write(ctx, key, op, target);
  if (!r) return reply_write_error(ctx.w, r.err()), true;
  const auto& [o, applied, old, length] = *r;
  if (o != outcome::ok) return reply_outcome(ctx.w, o, not_integer), true;
  using ra = crdt_string_op::reply_as;
  switch (op.reply) {
    case ra::ok:
      if (op.get) return (old ? ctx.w.bulk(*old) : ctx.w.null()), true;
      return (applied ? ctx.w.simple("OK") : ctx.w.null()), true;
    case ra::old:
      return (old ? ctx.w.bulk(*old) : ctx.w.null()), true;
    case ra::applied:
      return ctx.w.integer(applied ? 1 : 0), true;
    case ra::length:
      return ctx.w.integer(static_cast<std::int64_t>(length)), true;
  }
  return true;
}

std::optional<std::string_view> crdt_mset_refusal(node& n, std::string_view key,
                                                  std::string_view value) {
  auto kind = crdt_key_of(n, key);
  if (kind == crdt_key::none) return std::nullopt;
  if (kind != crdt_key::counter) return wrongtype;
  std::int64_t v = 0;
  if (!parse_int64(value, v)) return not_integer;
  return std::string_view{};
}

result<void> crdt_mset_write(context& ctx, std::string_view key, std::string_view value) {
  std::int64_t target = 0;
  if (!parse_int64(value, target)) return error{errc::invalid_argument, "not an integer"};
  auto r = counter_write(ctx, key, {.value = value}, target);
  if (!r) return r.err();
  if (r->o == outcome::wrong) return error{errc::invalid_argument, std::string{wrongtype}};
  if (r->o != outcome::ok)
    return error{errc::invalid_argument, "increment or decrement would overflow"};
  return {};
}

std::optional<result<bool>> crdt_del(context& ctx, std::string_view key,
                                     std::optional<std::string>* old) {
  auto kind = crdt_key_of(ctx.n.raw(), key);
  if (kind == crdt_key::none) return std::nullopt;
  auto& n = ctx.n.raw();
  const auto& origin = origin_of(ctx);
  bool existed = false;
  auto r = ctx.n.update(key, [&](const buffer* cur, std::int64_t) -> result<mutation> {
    existed = false;
    if (old) old->reset();
    if (!cur) return mutation::keep();
    std::string_view bytes = **cur;
    auto plain = [&] {  // bytes that are no state of the key's CRDT: a plain delete
      existed = true;
      if (old) *old = typed::string_payload(bytes);
      return mutation::erase();
    };
    if (kind == crdt_key::counter) {
      auto d = merge::pn_counter::decode(bytes);
      if (!d) return plain();
      auto& c = *d;
      if (old && c.present()) *old = decimal(c.value());
      auto was = c.reset();
      if (!was) return was.err();
      existed = *was;
      if (!existed) return mutation::keep();
      // Without its TTL: a reset state that expired would let older states back in.
      return mutation::put(c.encode(), 0);
    }
    if (kind == crdt_key::set) {
      auto s = merge::or_set::decode(bytes);
      if (!s) return plain();
      for (const auto& m : s->members()) existed = s->remove(m) || existed;
      return existed ? mutation::put(s->encode(), 0) : mutation::keep();
    }
    auto m = merge::lww_map::decode(bytes);
    if (!m) return plain();
    for (const auto& [f, v] : m->live()) {
      auto st = m->remove(f, n.next_version(), origin);
      if (!st) return st.err();
      existed = true;
    }
    return existed ? mutation::put(m->encode(), 0) : mutation::keep();
  });
  if (!r) return result<bool>{r.err()};
  return result<bool>{existed};
}

value_type crdt_type_of(std::string_view stored) {
  auto present = merge::crdt_present(stored);
  if (!present) return typed::type_of(stored);  // no state: a plain string or typed value
  if (!*present) return value_type::none;
  switch (static_cast<merge::crdt_kind>(stored[0])) {
    case merge::crdt_kind::counter:
      return value_type::string;
    case merge::crdt_kind::set:
      return value_type::set;
    case merge::crdt_kind::map:
      return value_type::hash;
  }
  return value_type::none;
}

bool shown_type(context& ctx, std::string_view key, value_type& out) {
  const bool crdt = crdt_key_of(ctx.n.raw(), key) != crdt_key::none;
  bool done = false;
  out = value_type::none;
  with_value(ctx, key, [&](const std::string_view* stored) {
    done = true;
    if (!stored) return;
    out = crdt ? crdt_type_of(*stored) : typed::type_of(*stored);
  });
  return done;
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
  if (cmd == "spop") {
    // cmd_spop checked the count. An observed remove of each member popped: a concurrent
    // SADD of it elsewhere still wins (add wins), as for SREM.
    const bool has_count = ctx.args.size() == 3;
    std::int64_t count = 1;
    if (has_count) (void)parse_int64(ctx.args[2], count);
    bool wrong = false;
    std::vector<std::string> popped;
    auto r =
        ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
          popped.clear();
          auto s = load<merge::or_set>(cur);
          wrong = !s;
          if (!s || count == 0 || s->size() == 0) return mutation::keep();
          auto members = s->members();
          const auto n = static_cast<std::size_t>(
              std::min<std::int64_t>(count, static_cast<std::int64_t>(members.size())));
          thread_local std::mt19937_64 gen{std::random_device{}()};
          // n random picks without replacement: a partial Fisher-Yates shuffle.
          for (std::size_t i = 0; i < n; ++i) {
            std::swap(members[i], members[i + gen() % (members.size() - i)]);
            s->remove(members[i]);
            popped.push_back(std::move(members[i]));
          }
          // An emptied set keeps its state (its context), as after SREM.
          return mutation::put(s->encode(), exp);
        });
    if (!r) return reply_write_error(ctx.w, r.err()), true;
    if (wrong) return ctx.w.error(wrongtype), true;
    if (!has_count) return (popped.empty() ? ctx.w.null() : ctx.w.bulk(popped.front())), true;
    ctx.w.set(popped.size());
    for (const auto& m : popped) ctx.w.bulk(m);
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
  const bool hmset = cmd == "hmset";
  if (hmset) cmd = "hset";  // the same write, answered +OK
  if (cmd == "hset" || cmd == "hdel" || cmd == "hincrby") {
    if (cmd == "hset" && ctx.args.size() % 2 == 1)
      return ctx.w.error(hmset ? "ERR wrong number of arguments for 'hmset' command"
                               : "ERR wrong number of arguments for 'hset' command"),
             true;
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
    if (hmset) return ctx.w.simple("OK"), true;
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
    if (cmd == "hmget") {
      ctx.w.array(ctx.args.size() - 2);
      for (std::size_t i = 2; i < ctx.args.size(); ++i) {
        if (auto v = m->get(ctx.args[i]))
          ctx.w.bulk(*v);
        else
          ctx.w.null();
      }
      return;
    }
    if (cmd == "hexists") return ctx.w.integer(m->get(ctx.args[2]) ? 1 : 0);
    if (cmd == "hlen") return ctx.w.integer(static_cast<std::int64_t>(m->live_count()));
    // hgetall, hkeys, hvals: fields sorted by bytes (redis-server: insertion order).
    auto live = m->live();
    if (cmd == "hkeys" || cmd == "hvals") {
      ctx.w.array(live.size());
      for (auto& [k, v] : live) ctx.w.bulk(cmd == "hkeys" ? k : v);
      return;
    }
    ctx.w.map(live.size());
    for (auto& [k, v] : live) {
      ctx.w.bulk(k);
      ctx.w.bulk(v);
    }
  });
  return true;
}

}  // namespace warp::sidecar::detail
