// Redis sorted sets on one stored value per key (typed_value.hpp): ZADD (NX XX GT LT CH
// INCR), ZINCRBY, ZREM, ZSCORE, ZCARD, ZRANGE (BYSCORE REV LIMIT WITHSCORES), ZREVRANGE,
// ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZCOUNT, ZRANK, ZREVRANK, ZPOPMIN, ZPOPMAX. Each write
// is one node.update(). Replies, error texts and the order of the checks follow Redis 7.0
// (t_zset.c), scores are printed as Redis 7.0 prints them (%.17g), and RESP3 gets the
// nested [member, score] pairs Redis sends. Ranges are clamped to the set before anything
// is allocated.
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
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

enum zadd_flags : unsigned { nx = 1, xx = 2, gt = 4, lt = 8, ch = 16, incr = 32 };

/// ZADD and ZINCRBY: `first` is the index of the first score.
void zadd_common(context& ctx, unsigned flags, std::size_t first) {
  const std::size_t elements2 = ctx.args.size() - first;
  if (elements2 == 0 || elements2 % 2) return ctx.w.error("ERR syntax error");
  if ((flags & nx) && (flags & xx))
    return ctx.w.error("ERR XX and NX options at the same time are not compatible");
  if (((flags & gt) && (flags & nx)) || ((flags & lt) && (flags & nx)) ||
      ((flags & gt) && (flags & lt)))
    return ctx.w.error("ERR GT, LT, and/or NX options at the same time are not compatible");
  if ((flags & incr) && elements2 > 2)
    return ctx.w.error("ERR INCR option supports a single increment-element pair");
  std::vector<double> scores(elements2 / 2);
  for (std::size_t j = 0; j < scores.size(); ++j)
    if (!parse_score(ctx.args[first + 2 * j], scores[j])) return ctx.w.error(not_float);

  found state = found::absent;
  std::int64_t added = 0, updated = 0, processed = 0;
  double last_score = 0;
  bool nan = false;
  auto r = ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t exp) -> result<mutation> {
    typed::zset_t z;
    state = load(cur, z);
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
    if (scores.size() <= 8) {
      // The common ZADD of a pair or a few: edit the sorted vector in place (a scan and a
      // move), no index of every member.
      for (std::size_t j = 0; j < scores.size() && !nan; ++j) {
        double score = scores[j];
        std::string_view member = ctx.args[first + 2 * j + 1];
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
      std::string_view member = ctx.args[first + 2 * j + 1];
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
  });
  if (!r) return reply_write_error(ctx.w, r.err());
  if (state == found::wrong) return ctx.w.error(wrongtype);
  if (nan) return ctx.w.error("ERR resulting score is not a number (NaN)");
  if (flags & incr) {
    if (processed) return ctx.w.dbl(last_score);
    return ctx.w.null();
  }
  ctx.w.integer((flags & ch) ? added + updated : added);
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
    typed::zset_t z;
    auto state = load(stored, z);
    if (state == found::absent) return ctx.w.array(0);
    if (state == found::wrong) return ctx.w.error(wrongtype);
    const auto len = std::ssize(z);
    std::vector<std::size_t> picked;
    if (kind == range_kind::rank) {
      std::int64_t s = start, e = end;
      if (s < 0) s += len;
      if (e < 0) e += len;
      if (s < 0) s = 0;
      if (!(s > e || s >= len)) {
        if (e >= len) e = len - 1;
        picked.reserve(static_cast<std::size_t>(e - s + 1));
        for (auto i = s; i <= e; ++i)
          picked.push_back(static_cast<std::size_t>(rev ? len - 1 - i : i));
      }
    } else if (!(offset > 0 && offset >= len)) {
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
    typed::zset_t z;
    auto state = load(stored, z);
    if (state == found::absent) return ctx.w.null();
    if (state == found::wrong) return ctx.w.error(wrongtype);
    auto i = find_member(z, ctx.args[2]);
    if (i < 0) return ctx.w.null();
    ctx.w.integer(rev ? std::ssize(z) - 1 - i : i);
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

void cmd_zadd(context& ctx) {
  unsigned flags = 0;
  std::size_t i = 2;
  for (; i < ctx.args.size(); ++i) {
    auto opt = ctx.args[i];
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
  zadd_common(ctx, flags, i);
}

void cmd_zincrby(context& ctx) {
  zadd_common(ctx, incr, 2);
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
    typed::zset_t z;
    auto state = load(stored, z);
    if (state == found::absent) return ctx.w.null();
    if (state == found::wrong) return ctx.w.error(wrongtype);
    auto i = find_member(z, ctx.args[2]);
    if (i < 0) return ctx.w.null();
    ctx.w.dbl(z[static_cast<std::size_t>(i)].first);
  });
}

void cmd_zcard(context& ctx) {
  with_value(ctx, ctx.args[1], [&](const std::string_view* stored) {
    typed::zset_t z;
    if (load(stored, z) == found::wrong) return ctx.w.error(wrongtype);
    ctx.w.integer(std::ssize(z));
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
