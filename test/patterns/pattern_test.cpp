#include <catch2/catch.hpp>

#include <thread>

#include "warp/pattern.hpp"

using namespace std::chrono_literals;
using warp::mode;

namespace {
warp::key_policy policy_of(mode m, std::chrono::milliseconds ttl) {
  warp::key_policy p;
  p.consistency = m;
  p.ttl = ttl;
  return p;
}
}  // namespace

TEST_CASE("glob_match follows Redis's glob syntax") {
  using warp::glob_match;
  CHECK(glob_match("user:*", "user:1"));
  CHECK(glob_match("user:*", "user:"));
  CHECK_FALSE(glob_match("user:*", "use"));
  CHECK(glob_match("h?llo", "hello"));
  CHECK_FALSE(glob_match("h?llo", "hllo"));
  CHECK(glob_match("h[ae]llo", "hallo"));
  CHECK_FALSE(glob_match("h[ae]llo", "hillo"));
  CHECK(glob_match("h[^e]llo", "hallo"));
  CHECK_FALSE(glob_match("h[^e]llo", "hello"));
  CHECK(glob_match("h[a-c]llo", "hbllo"));
  CHECK(glob_match("a\\*b", "a*b"));
  CHECK_FALSE(glob_match("a\\*b", "axb"));
  CHECK(glob_match("*:*:x", "a:b:c:x"));
  CHECK(glob_match("*", ""));
  CHECK_FALSE(glob_match("", "a"));
  // A pathological pattern must not blow up (no exponential backtracking).
  std::string text(5000, 'a');
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*b", text));
}

TEST_CASE("the most specific pattern wins, else the default") {
  warp::pattern_registry reg;
  reg.set_default(policy_of(mode::strong_local, 0ms));
  REQUIRE(reg.add("user:*", policy_of(mode::eventual_distributed, 10s)));
  REQUIRE(reg.add("user:admin:*", policy_of(mode::strong_distributed, 1s)));
  REQUIRE(reg.add("user:?", policy_of(mode::strong_local, 5s)));
  REQUIRE(reg.add("*", policy_of(mode::eventual_distributed, 1ms)));
  CHECK(reg.lookup("user:42").consistency == mode::eventual_distributed);
  CHECK(reg.lookup("user:42").ttl == 10s);
  CHECK(reg.lookup("user:admin:1").consistency == mode::strong_distributed);
  CHECK(reg.lookup("user:7").ttl == 5s);
  CHECK(reg.lookup("other").ttl == 1ms);
  REQUIRE(reg.remove("*"));
  CHECK(reg.lookup("other").consistency == mode::strong_local);
  CHECK_FALSE(reg.remove("*"));
  // Re-registering replaces.
  REQUIRE(reg.add("user:*", policy_of(mode::strong_local, 3s)));
  CHECK(reg.lookup("user:42").ttl == 3s);
  CHECK(reg.entries().size() == 3);
}

TEST_CASE("bad patterns and specs are rejected with clear errors") {
  warp::pattern_registry reg;
  CHECK(reg.add("", {}).code() == warp::errc::invalid_argument);
  CHECK(reg.add("user:[abc", {}).code() == warp::errc::invalid_argument);
  CHECK_FALSE(warp::pattern_registry::parse_spec("user:*"));
  CHECK_FALSE(warp::pattern_registry::parse_spec("user:*=sometimes"));
  CHECK_FALSE(warp::pattern_registry::parse_spec("user:*=strong_local:ten"));
  CHECK_FALSE(warp::pattern_registry::parse_spec("user:*=strong_local+hydrate"));
  auto e = warp::pattern_registry::parse_spec("user:*=eventual_distributed+hydrate:30s");
  REQUIRE(e);
  CHECK(e->glob == "user:*");
  CHECK(e->policy.consistency == mode::eventual_distributed);
  CHECK(e->policy.hydrate);
  CHECK(e->policy.ttl == 30s);
  auto f = warp::pattern_registry::parse_spec("a=b=strong_distributed");
  REQUIRE(f);  // the last '=' separates: globs may contain '='
  CHECK(f->glob == "a=b");
}

TEST_CASE("durations parse with units") {
  CHECK(*warp::parse_duration("250ms") == 250ms);
  CHECK(*warp::parse_duration("30s") == 30s);
  CHECK(*warp::parse_duration("2h") == 2h);
  CHECK(*warp::parse_duration("1500") == 1500ms);
  CHECK_FALSE(warp::parse_duration("-1s"));
  CHECK_FALSE(warp::parse_duration("5x"));
  CHECK_FALSE(warp::parse_duration("99999999999999999d"));
}

TEST_CASE("lookups see registrations made by another thread") {
  warp::pattern_registry reg;
  REQUIRE(reg.lookup("k").consistency == mode::strong_local);
  std::thread t{[&] { REQUIRE(reg.add("k", policy_of(mode::strong_distributed, 0ms))); }};
  t.join();
  CHECK(reg.lookup("k").consistency == mode::strong_distributed);
}

TEST_CASE("pattern specs carry storage protection options") {
  using warp::pattern_registry;
  auto e = pattern_registry::parse_spec(
      "user:*=eventual_distributed+hydrate:10m+rate=200+breaker=5+cooldown=2s+max_stale=1m"
      "+soft_timeout=50ms+refresh_ahead=20");
  REQUIRE(e);
  CHECK(e->glob == "user:*");
  CHECK(e->policy.consistency == mode::eventual_distributed);
  CHECK(e->policy.hydrate);
  CHECK(e->policy.ttl == 10min);
  CHECK(e->policy.guard.rate == 200);
  CHECK(e->policy.guard.breaker_failures == 5);
  CHECK(e->policy.guard.breaker_cooldown == 2s);
  CHECK(e->policy.guard.max_stale == 1min);
  CHECK(e->policy.guard.soft_timeout == 50ms);
  CHECK(e->policy.guard.refresh_ahead_pct == 20);

  // A glob may itself hold '+' and '=': only `+word=` after the mode is an option.
  auto plus = pattern_registry::parse_spec("a+b=c=strong_local+rate=3");
  REQUIRE(plus);
  CHECK(plus->glob == "a+b=c");
  CHECK(plus->policy.guard.rate == 3);
  auto bare = pattern_registry::parse_spec("c++=strong_local");
  REQUIRE(bare);
  CHECK(bare->glob == "c++");

  for (auto bad : {"k=strong_local+rate=0", "k=strong_local+rate=x", "k=strong_local+breaker=0",
                   "k=strong_local+cooldown=soon", "k=strong_local+refresh_ahead=100",
                   "k=strong_local+max_stale=0", "k=strong_local+colour=red"}) {
    INFO(bad);
    auto r = pattern_registry::parse_spec(bad);
    REQUIRE_FALSE(r);
    CHECK(r.code() == warp::errc::invalid_argument);
    CHECK(r.err().message().find("option '+") != std::string::npos);
  }

  // Each registration with its own protection gets its own limiter/breaker slot; one
  // without shares the node-wide slot 0.
  pattern_registry reg;
  REQUIRE(reg.add("a:*", e->policy));
  REQUIRE(reg.add("b:*", bare->policy));
  auto a = reg.lookup("a:1").guard_slot;
  CHECK(a != 0);
  CHECK(reg.lookup("b:1").guard_slot == 0);
  REQUIRE(reg.add("a:*", e->policy));
  CHECK(reg.lookup("a:1").guard_slot != a);

  // The same glob twice with other protection is a conflict.
  CHECK_FALSE(pattern_registry::parse_specs({"k=strong_local+rate=1", "k=strong_local+rate=2"}));
}

TEST_CASE("replace: removals and additions land in one step, nothing on a bad glob") {
  warp::pattern_registry reg;
  warp::key_policy ev;
  ev.consistency = warp::mode::eventual_distributed;
  warp::key_policy ttl;
  ttl.ttl = std::chrono::minutes{1};
  REQUIRE(reg.add("a:*", ev));
  REQUIRE(reg.add("b:*", ev));
  REQUIRE(reg.replace({"a:*"}, {{"b:*", ttl}, {"c:*", ev}}));
  CHECK(reg.lookup("a:1").consistency == warp::mode::strong_local);
  CHECK(reg.lookup("b:1").ttl == std::chrono::minutes{1});
  CHECK(reg.lookup("b:1").consistency == warp::mode::strong_local);
  CHECK(reg.lookup("c:1").consistency == warp::mode::eventual_distributed);
  CHECK(reg.entries().size() == 2);
  // A malformed glob among the additions: the table stays as it was.
  CHECK_FALSE(reg.replace({"c:*"}, {{"d:*", ev}, {"e:[", ev}}));
  CHECK(reg.lookup("c:1").consistency == warp::mode::eventual_distributed);
  CHECK(reg.lookup("d:1").consistency == warp::mode::strong_local);
}
