// Redis sorted sets on one stored value per key (typed_value.hpp): ZADD (NX XX GT LT CH
// INCR), ZINCRBY, ZREM, ZSCORE, ZCARD, ZRANGE (BYSCORE REV LIMIT WITHSCORES), ZREVRANGE,
// ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZCOUNT, ZRANK, ZREVRANK, ZPOPMIN, ZPOPMAX. Each write
// is one node.update() (pipelined ZADDs: one node.update_many, typed_write); ZADD of one
// pair and the reads by rank or member walk the encoded set (typed::scan_zset), the
// rest decode it. Replies, error texts and the order of the checks follow Redis 7.0
// (t_zset.c), scores are printed as Redis 7.0 prints them (%.17g), and RESP3 gets the
// nested [member, score] pairs Redis sends. Ranges are clamped to the set before anything
// is allocated.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sidecar/typed_commands.hpp"

namespace warp::sidecar::detail {

namespace {

enum class found : std::uint8_t { absent, ok, wrong };

template <class Bytes>
found load(const Bytes* stored, typed::zset_t& out) {
  if (!stored) return found::absent;
  std::optional<typed::zset_t> d;
  if constexpr (std::is_same_v<Bytes, buffer>)
    d = typed::decode_zset(**stored);
  else
    d = typed::decode_zset(*stored);
  if (!d) return found::wrong;
  out = std::move(*d);
  return found::ok;
}

mutation store(const typed::zset_t& z, std::int64_t exp) {
  if (z.empty()) return mutation::erase();
  return mutation::put(typed::encode_zset(z), exp);
}

std::ptrdiff_t find_member(const typed::zset_t& z, std::string_view member) {
  for (std::size_t i = 0; i < z.size(); ++i)
    if (z[i].second == member) return static_cast<std::ptrdiff_t>(i);
  return -1;
}

/// A score bound of BYSCORE/ZCOUNT: "(" makes it exclusive (zslParseRangeItem).
struct score_range {
  double min = 0, max = 0;
  bool minex = false, maxex = false;
  bool gte_min(double v) const { return minex ? v > min : v >= min; }
  bool lte_max(double v) const { return maxex ? v < max : v <= max; }
};

bool parse_bound(std::string_view text, double& out, bool& ex) {
  // Redis runs strtod on the terminated string and accepts what it accepts up to the end
  // (an empty bound is 0, leading blanks are skipped); only NaN and trailing bytes fail.
  ex = !text.empty() && text[0] == '(';
  if (ex) text.remove_prefix(1);
  if (text.size() > 4096) return false;
  std::string s(text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || std::isnan(v)) return false;
  out = v;
  return true;
}

bool parse_range(std::string_view min, std::string_view max, score_range& r) {
  return parse_bound(min, r.min, r.minex) && parse_bound(max, r.max, r.maxex);
}

void reply_pairs(context& ctx, const typed::zset_t& z, const std::vector<std::size_t>& picked,
                 bool withscores) {
  const bool nested = withscores && ctx.c.proto > 2;
  ctx.w.array(withscores && !nested ? picked.size() * 2 : picked.size());
  for (auto i : picked) {
    if (nested) ctx.w.array(2);
    ctx.w.bulk(z[i].second);
    if (withscores) ctx.w.dbl(z[i].first);
  }
}

/// ZRANGE by rank (forward or REV): reads the entries asked for in place (typed::cursor),
/// as Redis clamps the ranks; the rest of the set is only scanned.
void reply_rank_range(context& ctx, std::string_view stored, std::int64_t s, std::int64_t e,
                      bool rev, bool withscores) {
  auto sc = typed::scan_zset(stored);
  if (!sc) return ctx.w.error(wrongtype);
  const auto len = static_cast<std::int64_t>(sc->count);
  if (s < 0) s += len;
  if (e < 0) e += len;
  if (s < 0) s = 0;
  if (s > e || s >= len) return ctx.w.array(0);
  if (e >= len) e = len - 1;
  const auto n = static_cast<std::size_t>(e - s + 1);
  const bool nested = withscores && ctx.c.proto > 2;
  ctx.w.array(withscores && !nested ? n * 2 : n);
  auto reply_one = [&](double score, std::string_view member) {
    if (nested) ctx.w.array(2);
    ctx.w.bulk(member);
    if (withscores) ctx.w.dbl(score);
  };
  typed::cursor c{stored, sc->body};
  for (std::int64_t i = 0, first = rev ? len - 1 - e : s; i < first; ++i) c.skip(true);
  if (!rev) {
    for (std::size_t i = 0; i < n; ++i) {
      const double score = c.score();
      reply_one(score, c.bytes());
    }
    return;
  }
  std::vector<std::pair<double, std::string_view>> picked(n);  // n <= the set's size
  for (auto& p : picked) {
    p.first = c.score();
    p.second = c.bytes();
  }
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) reply_one(it->first, it->second);
}

enum zadd_flags : unsigned { nx = 1, xx = 2, gt = 4, lt = 8, ch = 16, incr = 32 };

/// ZADD and ZINCRBY: `first` is the index of the first score.
struct zadd_write final : typed_write {
  std::span<const std::string_view> args;
  unsigned flags = 0;
  std::size_t first = 0;
  std::vector<double> scores;
  found state = found::absent;
  std::int64_t added = 0, updated = 0, processed = 0;
  double last_score = 0;
  bool nan = false;

  zadd_write(std::span<const std::string_view> a, unsigned f, std::size_t first_score)
      : typed_write(a[1]), args(a), flags(f), first(first_score) {}

  /// False when the arguments are refused (the error is then written to `w`, if given).
  bool parse(resp_writer* w) {
    auto fail = [&](std::string_view e) {
      if (w) w->error(e);
      return false;
    };
    const std::size_t elements2 = args.size() - first;
    if (elements2 == 0 || elements2 % 2) return fail("ERR syntax error");
    if ((flags & nx) && (flags & xx))
      return fail("ERR XX and NX options at the same time are not compatible");
    if (((flags & gt) && (flags & nx)) || ((flags & lt) && (flags & nx)) ||
        ((flags & gt) && (flags & lt)))
      return fail("ERR GT, LT, and/or NX options at the same time are not compatible");
    if ((flags & incr) && elements2 > 2)
      return fail("ERR INCR option supports a single increment-element pair");
    scores.resize(elements2 / 2);
    for (std::size_t j = 0; j < scores.size(); ++j)
      if (!parse_score(args[first + 2 * j], scores[j])) return fail(not_float);
    return true;
  }

  result<mutation> operator()(const buffer* cur, std::int64_t exp) override {
    typed::zset_t z;
    std::optional<typed::zscan_info> sc;
    const std::string_view one_member = scores.size() == 1 ? args[first + 1] : "";
    if (scores.size() == 1) {
      // One pair, the usual ZADD: a scan finds the member, no decoding (see below).
      // Its new place is found on the way, unless INCR makes the score depend on the old one.
      const std::pair<double, std::string_view> item{scores[0] + 0.0, one_member};
      if (cur) sc = typed::scan_zset(**cur, &one_member, (flags & incr) ? nullptr : &item);
      state = !cur ? found::absent : sc ? found::ok : found::wrong;
    } else {
      state = load(cur, z);
    }
    added = updated = processed = 0;
    nan = false;
    if (state == found::wrong || (state == found::absent && (flags & xx))) return mutation::keep();
    // Redis's zsetAdd decision for one pair: false = nothing to do for it. `score` becomes
    // the new score (INCR adds the current one).
    auto decide = [&](const double* cur_score, double& score) {
      if (cur_score) {
        if (flags & nx) return false;
        if (flags & incr) {
          score += *cur_score;
          if (std::isnan(score)) {
            nan = true;
            return false;
          }
        }
        if (((flags & lt) && score >= *cur_score) || ((flags & gt) && score <= *cur_score))
          return false;
        last_score = score;
        ++processed;
        if (score == *cur_score) return false;
        ++updated;
        return true;
      }
      if (flags & xx) return false;
      last_score = score;
      ++processed;
      ++added;
      return true;
    };
    // -0 is stored as 0: Redis's small sorted sets (listpack) keep scores as numbers that
    // have no negative zero, and ZRANGE ... WITHSCORES prints "0".
    if (scores.size() == 1) {
      double score = scores[0];
      if (!decide(sc && sc->found ? &sc->score : nullptr, score)) return mutation::keep();
      const double stored_score = score + 0.0;
      if (!sc) {
        auto out = typed::begin_value(value_type::zset, 1, one_member.size() + 18);
        typed::append_entry(out, stored_score, one_member);
        return mutation::put(std::move(out), 0);
      }
      // The new entry goes where it belongs, the member's old entry (if any) goes: three
      // slices of the encoded set copied around it.
      const std::string_view v = **cur;
      const std::size_t at = sc->found ? sc->at : v.size(), end = sc->found ? sc->end : v.size();
      const auto pos = !(flags & incr)
                           ? sc->insert_at
                           : typed::zset_insert_pos(v, sc->body, stored_score, one_member,
                                                    sc->found ? at : 0, sc->found ? end : 0);
      auto out = typed::begin_value(value_type::zset, sc->count + (sc->found ? 0 : 1),
                                    v.size() + one_member.size() + 18);
      auto slice = [&](std::size_t from, std::size_t to) { out.append(v.substr(from, to - from)); };
      if (pos <= at) {
        slice(sc->body, pos);
        typed::append_entry(out, stored_score, one_member);
        slice(pos, at);
        slice(end, v.size());
      } else {
        slice(sc->body, at);
        slice(end, pos);
        typed::append_entry(out, stored_score, one_member);
        slice(pos, v.size());
      }
      return mutation::put(std::move(out), exp);
    }
    if (scores.size() <= 8) {
      // The common ZADD of a pair or a few: edit the sorted vector in place (a scan and a
      // move), no index of every member.
      for (std::size_t j = 0; j < scores.size() && !nan; ++j) {
        double score = scores[j];
        std::string_view member = args[first + 2 * j + 1];
        auto at = find_member(z, member);
        const double* cur_score = at >= 0 ? &z[static_cast<std::size_t>(at)].first : nullptr;
        if (!decide(cur_score, score)) continue;
        if (at >= 0) z.erase(z.begin() + at);
        std::pair<double, std::string_view> item{score + 0.0, member};
        z.insert(std::lower_bound(z.begin(), z.end(), item, typed::zless), item);
      }
      if (nan || (added == 0 && updated == 0)) return mutation::keep();
      return store(z, cur ? exp : 0);
    }
    std::unordered_map<std::string_view, double> by_member;
    by_member.reserve(z.size() + scores.size());
    for (auto& [s, m] : z) by_member.emplace(m, s);
    for (std::size_t j = 0; j < scores.size() && !nan; ++j) {
      double score = scores[j];
      std::string_view member = args[first + 2 * j + 1];
      auto it = by_member.find(member);
      if (!decide(it != by_member.end() ? &it->second : nullptr, score)) continue;
      if (it != by_member.end())
        it->second = score;
      else
        by_member.emplace(member, score);
    }
    if (nan || (added == 0 && updated == 0)) return mutation::keep();
    typed::zset_t next;
    next.reserve(by_member.size());
    for (auto& [m, s] : by_member) next.emplace_back(s + 0.0, m);
    std::sort(next.begin(), next.end(), typed::zless);
    return store(next, cur ? exp : 0);
  }

  void reply(resp_writer& w, const result<void>& st) const override {
    if (!st) return reply_write_error(w, st.err());
    if (state == found::wrong) return w.error(wrongtype);
    if (nan) return w.error("ERR resulting score is not a number (NaN)");
    if (flags & incr) {
      if (processed) return w.dbl(last_score);
      return w.null();
    }
    w.integer((flags & ch) ? added + updated : added);
  }
};

/// ZADD's options: the flags, and the index of the first score.
std::pair<unsigned, std::size_t> zadd_options(std::span<const std::string_view> args) {
  unsigned flags = 0;
  std::size_t i = 2;
  for (; i < args.size(); ++i) {
    auto opt = args[i];
    if (iequals(opt, "nx"))
      flags |= nx;
    else if (iequals(opt, "xx"))
      flags |= xx;
    else if (iequals(opt, "gt"))
      flags |= gt;
    else if (iequals(opt, "lt"))
      flags |= lt;
    else if (iequals(opt, "ch"))
      flags |= ch;
    else if (iequals(opt, "incr"))
      flags |= incr;
    else
      break;
  }
  return {flags, i};
}

enum class range_kind : std::uint8_t { automatic, rank, score };

/// ZRANGE and its older forms (zrangeGenericCommand): `kind`/`rev` fixed by the older
/// commands, automatic for ZRANGE.
void zrange_common(context& ctx, range_kind kind, bool rev, bool rev_fixed) {
  bool withscores = false;
  std::int64_t offset = 0, limit = -1;
  for (std::size_t j = 4; j < ctx.args.size(); ++j) {
    const std::size_t left = ctx.args.size() - j - 1;
    auto opt = ctx.args[j];
    if (iequals(opt, "withscores")) {
      withscores = true;
    } else if (iequals(opt, "limit") && left >= 2) {
      if (!int_arg(ctx, j + 1, offset) || !int_arg(ctx, j + 2, limit)) return;
      j += 2;
    } else if (!rev_fixed && iequals(opt, "rev")) {
      rev = true;
      rev_fixed = true;
    } else if (kind == range_kind::automatic && iequals(opt, "byscore")) {
      kind = range_kind::score;
    } else if (kind == range_kind::automatic && iequals(opt, "bylex")) {
      return ctx.w.error("ERR BYLEX is not supported by the Warp sidecar");
    } else {
      return ctx.w.error("ERR syntax error");
    }
  }
  if (kind == range_kind::automatic) kind = range_kind::rank;
  if (limit != -1 && kind == range_kind::rank)
    return ctx.w.error(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
  std::size_t minidx = 2, maxidx = 3;
  if (rev && kind == range_kind::score) std::swap(minidx, maxidx);
  std::int64_t start = 0, end = 0;
  score_range range;
  if (kind == range_kind::rank) {
    if (!int_arg(ctx, minidx, start) || !int_arg(ctx, maxidx, end)) return;
  } else if (!parse_range(ctx.args[minidx], ctx.args[maxidx], range)) {
    return ctx.w.error("ERR min or max is not a float");
  }
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (!stored) return ctx.w.array(0);
    if (kind == range_kind::rank)
      return reply_rank_range(ctx, *stored, start, end, rev, withscores);
    // BYSCORE: decoded (its bounds need the scores in order anyway).
    typed::zset_t z;
    auto state = load(stored, z);
    if (state == found::wrong) return ctx.w.error(wrongtype);
    const auto len = std::ssize(z);
    std::vector<std::size_t> picked;
    if (!(offset > 0 && offset >= len)) {
      // In range elements are contiguous: skip `offset` of them, then take `limit` (a
      // negative limit is no limit, a negative offset skips everything, as in Redis).
      std::int64_t skip = offset;
      std::int64_t take = limit;
      auto visit = [&](std::size_t i) {  // false = stop
        if (!range.gte_min(z[i].first) || !range.lte_max(z[i].first)) return true;
        if (skip != 0) {
          --skip;
          return true;
        }
        if (take == 0) return false;
        --take;
        picked.push_back(i);
        return true;
      };
      if (rev) {
        for (auto i = len; i-- > 0;) {
          if (z[static_cast<std::size_t>(i)].first < range.min) break;
          if (!visit(static_cast<std::size_t>(i))) break;
        }
      } else {
        for (std::int64_t i = 0; i < len; ++i) {
          if (z[static_cast<std::size_t>(i)].first > range.max) break;
          if (!visit(static_cast<std::size_t>(i))) break;
        }
      }
    }
    reply_pairs(ctx, z, picked, withscores);
  });
}

void rank_common(context& ctx, bool rev) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (!stored) return ctx.w.null();
    const std::string_view member = ctx.args[2];
    auto sc = typed::scan_zset(*stored, &member);
    if (!sc) return ctx.w.error(wrongtype);
    if (!sc->found) return ctx.w.null();
    const auto i = static_cast<std::int64_t>(sc->rank);
    ctx.w.integer(rev ? static_cast<std::int64_t>(sc->count) - 1 - i : i);
  });
}

void pop_common(context& ctx, bool max) {
  if (ctx.args.size() > 3) return ctx.w.error("ERR syntax error");
  std::int64_t count = -1;  // -1: no count given (a flat pair in RESP3 too)
  if (ctx.args.size() == 3 && (!parse_int64(ctx.args[2], count) || count < 0))
    return ctx.w.error(not_positive);  // Redis's getPositiveLong: one text for both
  found state = found::absent;
  std::vector<std::pair<double, std::string>> popped;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::zset_t z;
    state = load(cur, z);
    popped.clear();
    if (state != found::ok || count == 0) return mutation::keep();
    const auto n =
        static_cast<std::size_t>(std::min<std::int64_t>(count < 0 ? 1 : count, std::ssize(z)));
    popped.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& e = max ? z[z.size() - 1 - i] : z[i];
      popped.emplace_back(e.first, std::string(e.second));
    }
    if (max)
      z.resize(z.size() - n);
    else
      z.erase(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(n));
    return store(z, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  const bool nested = ctx.c.proto > 2 && count != -1;
  ctx.w.array(nested ? popped.size() : popped.size() * 2);
  for (const auto& [score, member] : popped) {
    if (nested) ctx.w.array(2);
    ctx.w.bulk(member);
    ctx.w.dbl(score);
  }
}

}  // namespace

std::unique_ptr<typed_write> make_zset_write(std::span<const std::string_view> args) {
  if (args.size() < 4 || !iequals(args[0], "zadd")) return nullptr;
  auto [flags, first] = zadd_options(args);
  auto z = std::make_unique<zadd_write>(args, flags, first);
  if (!z->parse(nullptr)) return nullptr;
  return z;
}

void cmd_zadd(context& ctx) {
  auto [flags, first] = zadd_options(ctx.args);
  zadd_write z{ctx.args, flags, first};
  if (z.parse(&ctx.w)) run_typed_write(ctx, z);
}

void cmd_zincrby(context& ctx) {
  zadd_write z{ctx.args, incr, 2};
  if (z.parse(&ctx.w)) run_typed_write(ctx, z);
}

void cmd_zrem(context& ctx) {
  found state = found::absent;
  std::int64_t removed = 0;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::zset_t z;
    state = load(cur, z);
    removed = 0;
    if (state != found::ok) return mutation::keep();
    for (std::size_t i = 2; i < ctx.args.size(); ++i) {
      auto at = find_member(z, ctx.args[i]);
      if (at < 0) continue;
      z.erase(z.begin() + at);
      ++removed;
    }
    if (removed == 0) return mutation::keep();
    return store(z, exp);
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  ctx.w.integer(removed);
}

void cmd_zscore(context& ctx) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (!stored) return ctx.w.null();
    const std::string_view member = ctx.args[2];
    auto sc = typed::scan_zset(*stored, &member);
    if (!sc) return ctx.w.error(wrongtype);
    if (!sc->found) return ctx.w.null();
    ctx.w.dbl(sc->score);
  });
}

void cmd_zcard(context& ctx) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    if (!stored) return ctx.w.integer(0);
    auto sc = typed::scan_zset(*stored);
    if (!sc) return ctx.w.error(wrongtype);
    ctx.w.integer(static_cast<std::int64_t>(sc->count));
  });
}

void cmd_zrange(context& ctx) {
  zrange_common(ctx, range_kind::automatic, false, false);
}
void cmd_zrevrange(context& ctx) {
  zrange_common(ctx, range_kind::rank, true, true);
}
void cmd_zrangebyscore(context& ctx) {
  zrange_common(ctx, range_kind::score, false, true);
}
void cmd_zrevrangebyscore(context& ctx) {
  zrange_common(ctx, range_kind::score, true, true);
}

void cmd_zcount(context& ctx) {
  score_range range;
  if (!parse_range(ctx.args[2], ctx.args[3], range))
    return ctx.w.error("ERR min or max is not a float");
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::zset_t z;
    auto state = load(stored, z);
    if (state == found::wrong) return ctx.w.error(wrongtype);
    std::int64_t n = 0;
    for (auto& [s, m] : z)
      if (range.gte_min(s) && range.lte_max(s)) ++n;
    ctx.w.integer(n);
  });
}

void cmd_zrank(context& ctx) {
  rank_common(ctx, false);
}
void cmd_zrevrank(context& ctx) {
  rank_common(ctx, true);
}
void cmd_zpopmin(context& ctx) {
  pop_common(ctx, false);
}
void cmd_zpopmax(context& ctx) {
  pop_common(ctx, true);
}

}  // namespace warp::sidecar::detail
