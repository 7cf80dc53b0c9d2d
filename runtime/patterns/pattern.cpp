#include "warp/pattern.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <mutex>

namespace warp {

std::string_view to_string(mode m) noexcept {
  switch (m) {
    case mode::strong_local:
      return "strong_local";
    case mode::eventual_distributed:
      return "eventual_distributed";
    case mode::strong_distributed:
      return "strong_distributed";
  }
  return "unknown";
}

result<mode> parse_mode(std::string_view text) {
  if (text == "strong_local" || text == "StrongLocal") return mode::strong_local;
  if (text == "eventual_distributed" || text == "EventualDistributed")
    return mode::eventual_distributed;
  if (text == "strong_distributed" || text == "StrongDistributed") return mode::strong_distributed;
  return error{errc::invalid_argument,
               "unknown mode '" + std::string{text} +
                   "' (expected strong_local, eventual_distributed or strong_distributed)"};
}

std::string_view to_string(validate_mode m) noexcept {
  switch (m) {
    case validate_mode::inherit:
      return "inherit";
    case validate_mode::off:
      return "off";
    case validate_mode::noop:
      return "noop";
    case validate_mode::alert:
      return "alert";
    case validate_mode::heal:
      return "heal";
  }
  return "unknown";
}

result<validate_mode> parse_validate_mode(std::string_view text) {
  if (text == "off") return validate_mode::off;
  if (text == "noop") return validate_mode::noop;
  if (text == "alert") return validate_mode::alert;
  if (text == "heal") return validate_mode::heal;
  return error{errc::invalid_argument, "unknown validator mode '" + std::string{text} +
                                           "' (expected off, noop, alert or heal)"};
}

result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return error{errc::invalid_argument, "empty duration"};
  std::int64_t number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || number < 0)
    return error{errc::invalid_argument, "bad duration '" + std::string{text} + "'"};
  std::string_view unit{ptr, static_cast<std::size_t>(text.data() + text.size() - ptr)};
  std::int64_t factor = 0;
  if (unit.empty() || unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else if (unit == "d")
    factor = 86'400'000;
  else
    return error{errc::invalid_argument, "bad duration unit in '" + std::string{text} + "'"};
  if (number > INT64_MAX / factor)
    return error{errc::invalid_argument, "duration overflows: '" + std::string{text} + "'"};
  return std::chrono::milliseconds{number * factor};
}

// Redis's stringmatchlen, iterative for '*' so that hostile patterns cannot recurse deeply.
bool glob_match(std::string_view p, std::string_view s) noexcept {
  std::size_t pi = 0, si = 0;
  std::size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char c = p[pi];
      if (c == '*') {
        star_p = pi++;
        star_s = si;
        continue;
      }
      if (c == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (c == '[') {
        std::size_t j = pi + 1;
        bool negate = j < p.size() && p[j] == '^';
        if (negate) ++j;
        bool matched = false;
        while (j < p.size() && p[j] != ']') {
          if (p[j] == '\\' && j + 1 < p.size()) {
            matched |= p[j + 1] == s[si];
            j += 2;
          } else if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
            char lo = p[j], hi = p[j + 2];
            if (lo > hi) std::swap(lo, hi);
            matched |= s[si] >= lo && s[si] <= hi;
            j += 3;
          } else {
            matched |= p[j] == s[si];
            ++j;
          }
        }
        if (negate) matched = !matched;
        if (matched) {
          pi = j < p.size() ? j + 1 : j;
          ++si;
          continue;
        }
      } else {
        if (c == '\\' && pi + 1 < p.size()) c = p[pi + 1];
        if (c == s[si]) {
          pi += p[pi] == '\\' && pi + 1 < p.size() ? 2 : 1;
          ++si;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

namespace {

enum class shape : std::uint8_t { exact, prefix, glob };

struct compiled {
  std::string glob;
  key_policy policy;
  shape kind;
  std::string literal;  // exact: the key; prefix: the part before the trailing '*'
  std::size_t literal_chars;
  std::size_t wildcards;
  std::uint64_t seq;
};

compiled compile(std::string_view glob, key_policy policy, std::uint64_t seq) {
  compiled c{std::string{glob}, policy, shape::exact, {}, 0, 0, seq};
  bool special_before_last = false;
  for (std::size_t i = 0; i < glob.size(); ++i) {
    char ch = glob[i];
    if (ch == '\\' && i + 1 < glob.size()) {
      ++c.literal_chars;
      ++i;
      special_before_last = true;  // escapes: leave to the general matcher
      continue;
    }
    if (ch == '*' || ch == '?' || ch == '[') {
      ++c.wildcards;
      if (!(ch == '*' && i + 1 == glob.size())) special_before_last = true;
    } else {
      ++c.literal_chars;
    }
  }
  if (c.wildcards == 0 && !special_before_last) {
    c.kind = shape::exact;
    c.literal = c.glob;
  } else if (c.wildcards == 1 && !special_before_last && glob.back() == '*') {
    c.kind = shape::prefix;
    c.literal = c.glob.substr(0, c.glob.size() - 1);
  } else {
    c.kind = shape::glob;
  }
  return c;
}

bool more_specific(const compiled& a, const compiled& b) {
  if (a.literal_chars != b.literal_chars) return a.literal_chars > b.literal_chars;
  if (a.wildcards != b.wildcards) return a.wildcards < b.wildcards;
  return a.seq > b.seq;
}

struct table {
  std::vector<compiled> entries;  // most specific first
  key_policy fallback;
};

}  // namespace

struct pattern_registry::impl {
  mutable std::mutex mtx;
  std::shared_ptr<const table> current = std::make_shared<table>();
  std::atomic<std::uint64_t> generation{1};
  std::uint64_t seq = 0;
  std::uint32_t guard_slots = 0;  // under mtx
  // Tells thread-local caches apart from those of a registry that lived at the same address.
  std::uint64_t instance;

  impl() {
    static std::atomic<std::uint64_t> instances{0};
    instance = ++instances;
  }

  void publish(std::shared_ptr<const table> next) {
    current = std::move(next);
    generation.fetch_add(1, std::memory_order_release);
  }

  // Readers only read `generation` (a shared, rarely written line) and their own
  // thread-local copy of the table; they take the mutex only after a change.
  const table& snapshot() const {
    struct cached {
      std::uint64_t instance = 0;
      std::uint64_t generation = 0;
      std::shared_ptr<const table> tab;
    };
    thread_local cached slots[4];
    thread_local unsigned next_slot = 0;
    auto gen = generation.load(std::memory_order_acquire);
    for (auto& s : slots)
      if (s.instance == instance && s.generation == gen) return *s.tab;
    cached* slot = nullptr;
    for (auto& s : slots)
      if (s.instance == instance) slot = &s;
    if (!slot) slot = &slots[next_slot++ % 4];
    std::lock_guard<std::mutex> guard{mtx};
    slot->instance = instance;
    slot->generation = generation.load(std::memory_order_acquire);
    slot->tab = current;
    return *slot->tab;
  }
};

pattern_registry::pattern_registry() : impl_(std::make_unique<impl>()) {}
pattern_registry::~pattern_registry() = default;

namespace {

result<void> check_glob(std::string_view glob) {
  if (glob.empty()) return error{errc::invalid_argument, "empty key pattern"};
  if (glob.size() > 1024)
    return error{errc::invalid_argument, "key pattern longer than 1024 bytes"};
  std::size_t depth = 0;
  for (std::size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      ++i;
    } else if (glob[i] == '[') {
      ++depth;
    } else if (glob[i] == ']' && depth > 0) {
      --depth;
    }
  }
  if (depth != 0)
    return error{errc::invalid_argument, "unbalanced '[' in pattern '" + std::string{glob} + "'"};
  return {};
}

}  // namespace

result<void> pattern_registry::add(std::string_view glob, key_policy policy) {
  return replace({}, {entry{std::string{glob}, policy}});
}

result<void> pattern_registry::replace(const std::vector<std::string>& removed,
                                       const std::vector<entry>& added) {
  for (const auto& e : added)
    if (auto ok = check_glob(e.glob); !ok) return ok;
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto next = std::make_shared<table>(*impl_->current);
  auto& es = next->entries;
  auto gone = [&](const compiled& c) {
    for (const auto& g : removed)
      if (c.glob == g) return true;
    for (const auto& a : added)
      if (c.glob == a.glob) return true;
    return false;
  };
  es.erase(std::remove_if(es.begin(), es.end(), gone), es.end());
  for (const auto& a : added) {
    auto policy = a.policy;
    // A fresh slot per registration: a replaced pattern starts with a fresh limiter/breaker.
    policy.guard_slot = policy.guard.any() ? ++impl_->guard_slots : 0;
    es.push_back(compile(a.glob, policy, ++impl_->seq));
  }
  std::stable_sort(es.begin(), es.end(), more_specific);
  impl_->publish(std::move(next));
  return {};
}

bool pattern_registry::remove(std::string_view glob) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto next = std::make_shared<table>(*impl_->current);
  auto& es = next->entries;
  auto before = es.size();
  es.erase(std::remove_if(es.begin(), es.end(), [&](auto& e) { return e.glob == glob; }), es.end());
  if (es.size() == before) return false;
  impl_->publish(std::move(next));
  return true;
}

void pattern_registry::set_default(key_policy policy) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto next = std::make_shared<table>(*impl_->current);
  next->fallback = policy;
  impl_->publish(std::move(next));
}

key_policy pattern_registry::default_policy() const {
  return impl_->snapshot().fallback;
}

key_policy pattern_registry::lookup(std::string_view key) const {
  const table& t = impl_->snapshot();
  for (const auto& e : t.entries) {
    switch (e.kind) {
      case shape::exact:
        if (key == e.literal) return e.policy;
        break;
      case shape::prefix:
        if (key.starts_with(e.literal)) return e.policy;
        break;
      case shape::glob:
        if (glob_match(e.glob, key)) return e.policy;
        break;
    }
  }
  return t.fallback;
}

std::vector<pattern_registry::entry> pattern_registry::entries() const {
  std::vector<entry> out;
  for (const auto& e : impl_->snapshot().entries) out.push_back({e.glob, e.policy});
  return out;
}

result<pattern_registry::entry> pattern_registry::parse_spec(std::string_view spec) {
  auto eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0)
    return error{errc::invalid_argument,
                 "pattern spec '" + std::string{spec} + "' is not GLOB=MODE[:TTL]"};
  entry out;
  // Protection options trail the spec as `+name=value`; peel them off first, so the glob
  // is split at the '=' that follows it.
  for (;;) {
    auto plus = spec.rfind('+');
    if (plus == std::string_view::npos) break;
    auto opt = spec.substr(plus + 1);
    auto oeq = opt.find('=');
    // `+federated` alone means `+federated=lww`.
    if (oeq == std::string_view::npos && opt != "federated") break;
    auto name = oeq == std::string_view::npos ? opt : opt.substr(0, oeq);
    auto value = oeq == std::string_view::npos ? std::string_view{"lww"} : opt.substr(oeq + 1);
    // Only `+word=` after the glob's own '=' is an option: a glob may hold '+' itself.
    bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::islower(static_cast<unsigned char>(c)) || c == '_';
    });
    if (!word || spec.substr(0, plus).find('=') == std::string_view::npos) break;
    auto bad = [&](std::string_view why) {
      return error{errc::invalid_argument,
                   "option '+" + std::string{opt} + "': " + std::string{why}};
    };
    if (name == "rate") {
      double r = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), r);
      if (ec != std::errc{} || p != value.data() + value.size() || !(r > 0) || r > 1e9)
        return bad("needs a number of fetches per second above 0");
      out.policy.guard.rate = r;
    } else if (name == "breaker") {
      std::uint32_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc{} || p != value.data() + value.size() || n == 0)
        return bad("needs a number of consecutive failures above 0");
      out.policy.guard.breaker_failures = n;
    } else if (name == "breaker_ratio") {
      double r = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), r);
      if (ec != std::errc{} || p != value.data() + value.size() || !(r > 0) || r > 1)
        return bad("needs a failure ratio above 0 and at most 1, e.g. 0.5");
      out.policy.guard.breaker_ratio = r;
    } else if (name == "cooldown") {
      auto d = parse_duration(value);
      if (!d || d->count() <= 0) return bad("needs a duration above 0, e.g. 5s");
      out.policy.guard.breaker_cooldown = *d;
    } else if (name == "max_stale" || name == "soft_timeout") {
      auto d = parse_duration(value);
      if (!d || d->count() <= 0) return bad("needs a duration above 0, e.g. 30s");
      (name == "max_stale" ? out.policy.guard.max_stale : out.policy.guard.soft_timeout) = *d;
    } else if (name == "refresh_ahead") {
      std::uint32_t pct = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), pct);
      if (ec != std::errc{} || p != value.data() + value.size() || pct == 0 || pct > 99)
        return bad("needs a percentage of the TTL from 1 to 99");
      out.policy.guard.refresh_ahead_pct = pct;
    } else if (name == "validate") {
      auto v = parse_validate_mode(value);
      if (!v) return bad(v.err().message());
      out.policy.validate = *v;
    } else if (name == "federated") {
      // Any name: embedders register their merge functions after the node parsed its
      // patterns; the federation refuses an unknown one when a change of it arrives.
      bool ok = !value.empty() && value.size() <= 64 &&
                std::all_of(value.begin(), value.end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                         c == '.';
                });
      if (!ok) return bad("needs a merge policy name (lww, counter, set, map or a registered one)");
      out.policy.federated = std::string{value};
    } else {
      return bad(
          "unknown option (known: rate, breaker, breaker_ratio, cooldown, max_stale, "
          "soft_timeout, "
          "refresh_ahead, validate, federated)");
    }
    spec = spec.substr(0, plus);
  }
  eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0)
    return error{errc::invalid_argument,
                 "pattern spec '" + std::string{spec} + "' is not GLOB=MODE[:TTL]"};
  out.glob = std::string{spec.substr(0, eq)};
  auto rest = spec.substr(eq + 1);
  std::string_view ttl_text;
  if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    ttl_text = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (rest.ends_with("+hydrate")) {
    out.policy.hydrate = true;
    rest.remove_suffix(8);
  }
  auto m = parse_mode(rest);
  if (!m) return m.err();
  out.policy.consistency = *m;
  if (out.policy.hydrate && out.policy.consistency != mode::eventual_distributed)
    return error{errc::invalid_argument, "+hydrate needs eventual_distributed"};
  // A strong_local key lives on one node by definition; a strong_distributed one is
  // linearizable within its region, which an asynchronous cross-region merge would break
  // silently: both are refused rather than given a meaning nobody asked for.
  if (!out.policy.federated.empty() && out.policy.consistency != mode::eventual_distributed)
    return error{errc::invalid_argument,
                 "+federated needs eventual_distributed (strong_local keys stay on their node, "
                 "strong_distributed keys are not federated yet: docs/federation.md)"};
  if (!ttl_text.empty()) {
    auto ttl = parse_duration(ttl_text);
    if (!ttl) return ttl.err();
    out.policy.ttl = *ttl;
  }
  return out;
}

result<std::vector<pattern_registry::entry>> pattern_registry::parse_specs(
    const std::vector<std::string>& specs) {
  std::vector<entry> out;
  std::vector<const std::string*> source;  // the spec each entry came from, for the error
  for (const auto& spec : specs) {
    auto e = parse_spec(spec);
    if (!e) return error{e.err().code(), "pattern '" + spec + "': " + e.err().message()};
    bool duplicate = false;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i].glob != e->glob) continue;
      const auto& a = out[i].policy;
      const auto& b = e->policy;
      if (a.consistency != b.consistency || a.ttl != b.ttl || a.hydrate != b.hydrate ||
          !(a.guard == b.guard) || a.validate != b.validate || a.federated != b.federated)
        return error{errc::invalid_argument, "pattern '" + spec + "' conflicts with '" +
                                                 *source[i] + "': the same glob with another " +
                                                 "policy"};
      duplicate = true;
    }
    if (duplicate) continue;
    out.push_back(std::move(*e));
    source.push_back(&spec);
  }
  return out;
}

}  // namespace warp
