// Storage protection through a real node: the rate limiter and circuit breaker on the
// read-through path, stale-on-error, the soft timeout and refresh-ahead
// (docs/storage.md, "Protection"). The outage test stops a real PostgreSQL.
#include <catch2/catch.hpp>

#include <thread>

#include "counting_storage.hpp"
#include "test/support/eventually.hpp"
#include "test/support/postgres.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"

using namespace std::chrono_literals;
using warp::errc;

namespace {

std::unique_ptr<warp::node> start(warp::node_config cfg) {
  cfg.listen.clear();
  cfg.log_level = "error";
  auto n = warp::node::start(std::move(cfg));
  REQUIRE(n);
  return std::move(*n);
}

const warp::node_stats::guard_entry* guard_of(const warp::node_stats& s, std::string_view glob) {
  for (const auto& p : s.protection)
    if (p.pattern == glob) return &p;
  return nullptr;
}

std::string text(const warp::result<warp::buffer>& r) {
  REQUIRE(r);
  return std::string{warp::view(*r)};
}

}  // namespace

TEST_CASE(
    "protection: PostgreSQL stopped -> breaker opens, stale served within max_stale, "
    "refused after it, breaker closes after restart",
    "[protection][postgres]") {
  warp::test::postgres_server pg;
  warp::node_config cfg;
  cfg.storage = pg.uri();
  cfg.patterns = {"p:*=strong_local:300ms+breaker=2+cooldown=1s+max_stale=3s"};
  auto n = start(cfg);

  REQUIRE(n->set("p:a", "v1"));
  const auto filled = std::chrono::steady_clock::now();
  pg.stop();
  std::this_thread::sleep_until(filled + 400ms);  // past the L1 TTL

  // Storage fails: the expired value is served, counted as stale.
  CHECK(text(n->get("p:a")) == "v1");
  CHECK(n->stats().stale_serves == 1);

  // A key with no stale copy fails with a short message that names no server.
  auto missing = n->get("p:missing");
  REQUIRE_FALSE(missing);
  CHECK(missing.code() == errc::storage_unavailable);
  for (auto leak : {std::string{"127.0.0.1"}, std::string{"localhost"}, std::string{"port"},
                    pg.uri(), std::string{"dbname"}, std::string{"user="}}) {
    INFO(missing.err().message());
    CHECK(missing.err().message().find(leak) == std::string::npos);
  }

  // Two consecutive failures opened the breaker: misses now fail fast.
  auto s = n->stats();
  auto* g = guard_of(s, "p:*");
  REQUIRE(g);
  CHECK(g->breaker == "open");
  auto fast = n->get("p:other");
  REQUIRE_FALSE(fast);
  CHECK(fast.code() == errc::storage_unavailable);
  CHECK(fast.err().message().starts_with("circuit open"));
  CHECK(guard_of(n->stats(), "p:*")->rejected_open >= 1);
  // ... and a key with a stale copy still answers, stale, while the breaker is open.
  CHECK(text(n->get("p:a")) == "v1");

  auto metrics = warp::prometheus_text(*n);
  CHECK(metrics.find("warp_storage_breaker_state{") != std::string::npos);
  auto line = metrics.find("warp_storage_breaker_state{");  // a sample, not HELP/TYPE
  REQUIRE(line != std::string::npos);
  auto sample = metrics.substr(line, metrics.find('\n', line) - line);
  CHECK(sample.find("pattern=\"p:*\"") != std::string::npos);
  CHECK(sample.ends_with(" 1"));  // open
  CHECK(metrics.find("warp_stale_serves_total") != std::string::npos);

  // Past L1 expiry + max_stale the stale copy is never served again.
  std::this_thread::sleep_until(filled + 300ms + 3s + 200ms);
  auto refused = n->get("p:a");
  REQUIRE_FALSE(refused);
  CHECK(refused.code() == errc::storage_unavailable);

  // Storage back: after the cool-down one probe goes through and closes the breaker.
  pg.start();
  CHECK(warp::test::eventually([&] {
    auto r = n->get("p:a");
    return r && warp::view(*r) == "v1";
  }));
  CHECK(guard_of(n->stats(), "p:*")->breaker == "closed");
}

TEST_CASE("protection: storage fetches over the pattern's rate are rate_limited", "[protection]") {
  auto store = std::make_shared<warp::test::counting_storage>();
  warp::node_config cfg;
  cfg.storage_adapter = store;
  cfg.patterns = {"r:*=strong_local+rate=5"};
  auto n = start(cfg);
  REQUIRE(store->store("r:hot", warp::record{"x", 0, {1, 1}}));

  // The burst (one second's worth) reaches storage; the next miss does not.
  CHECK(n->get("r:hot"));  // now in L1: its hits never take a token
  for (int i = 0; i < 4; ++i) CHECK(n->get("r:k" + std::to_string(i)).code() == errc::not_found);
  for (int i = 0; i < 50; ++i) CHECK(n->get("r:hot"));
  auto limited = n->get("r:k9");
  REQUIRE_FALSE(limited);
  CHECK(limited.code() == errc::rate_limited);
  CHECK(limited.err().message() == "storage fetch rate limit of 5/s exceeded");
  CHECK(store->fetches == 5);
  auto s = n->stats();
  REQUIRE(guard_of(s, "r:*"));
  CHECK(guard_of(s, "r:*")->rate_limited == 1);
  // Other patterns share the node-wide guard, unlimited by default.
  for (int i = 0; i < 20; ++i) CHECK(n->get("o:k" + std::to_string(i)).code() == errc::not_found);
  // The bucket refills.
  CHECK(warp::test::eventually([&] { return n->get("r:k9").code() == errc::not_found; }, 2s));
}

TEST_CASE("protection: soft timeout answers stale from a slow storage, the fetch refreshes L1",
          "[protection]") {
  auto store = std::make_shared<warp::test::counting_storage>();
  warp::node_config cfg;
  cfg.storage_adapter = store;
  cfg.patterns = {"s:*=strong_local:200ms+max_stale=30s+soft_timeout=100ms"};
  auto n = start(cfg);
  REQUIRE(n->set("s:a", "v1"));
  // Storage changes behind the node's back, then becomes slow.
  REQUIRE(store->store("s:a", warp::record{"v2", 0, {std::uint64_t{1} << 62, 9}}));
  std::this_thread::sleep_for(300ms);  // the L1 copy expires
  store->fetch_delay_ms = 1500;

  auto t0 = std::chrono::steady_clock::now();
  CHECK(text(n->get("s:a")) == "v1");
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= 100ms);
  CHECK(waited < 1000ms);  // well before storage answered
  CHECK(n->stats().soft_timeouts == 1);
  CHECK(n->stats().stale_serves == 1);

  // The fetch went on and refreshed L1 with storage's value.
  CHECK(warp::test::eventually(
      [&] {
        auto hit = n->get_if_present("s:a");
        return hit && warp::view(*hit) == "v2";
      },
      5s));

  // Without a stale copy a miss waits for storage as before.
  store->fetch_delay_ms = 300;
  t0 = std::chrono::steady_clock::now();
  CHECK(n->get("s:none").code() == errc::not_found);
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
}

TEST_CASE("protection: refresh-ahead refreshes a hot key once per window", "[protection]") {
  auto store = std::make_shared<warp::test::counting_storage>();
  warp::node_config cfg;
  cfg.storage_adapter = store;
  cfg.patterns = {"h:*=strong_local:1s+refresh_ahead=40"};
  auto n = start(cfg);
  REQUIRE(n->set("h:a", "v1"));
  const auto t0 = std::chrono::steady_clock::now();
  auto hammer = [&](std::chrono::milliseconds len) {
    auto end = std::chrono::steady_clock::now() + len;
    while (std::chrono::steady_clock::now() < end) {
      REQUIRE(n->get("h:a"));
      std::this_thread::sleep_for(1ms);
    }
  };
  // The first 60% of the TTL: plain hits.
  hammer(400ms);
  CHECK(store->fetches == 0);
  CHECK(n->stats().refresh_aheads == 0);
  // The last 40%: many hits, one refresh, which pushes the expiry out again.
  std::this_thread::sleep_until(t0 + 700ms);
  hammer(200ms);
  CHECK(warp::test::eventually([&] { return store->fetches == 1; }, 2s));
  CHECK(n->stats().refresh_aheads == 1);
  // Still one refresh for this window: the refreshed entry is young again.
  hammer(200ms);
  CHECK(store->fetches == 1);
  // The next window's last part triggers the next one.
  std::this_thread::sleep_until(t0 + 700ms + 700ms);
  hammer(150ms);
  CHECK(warp::test::eventually([&] { return store->fetches == 2; }, 2s));
  CHECK(n->stats().l1.misses == 0);  // the key never left L1
}

TEST_CASE("protection: read-modify-write reads of storage go through the limiter and the breaker",
          "[protection]") {
  auto store = std::make_shared<warp::test::counting_storage>();
  warp::node_config cfg;
  cfg.storage_adapter = store;
  cfg.patterns = {"u:*=strong_local+breaker=2+cooldown=1h", "q:*=strong_local+rate=2"};
  auto n = start(cfg);
  auto incr = [&](const std::string& key) {
    return n->update(key,
                     [](const warp::buffer* cur, std::int64_t) -> warp::result<warp::mutation> {
                       auto v = cur ? std::stoll(std::string{warp::view(*cur)}) : 0;
                       return warp::mutation::put(std::to_string(v + 1), 0);
                     });
  };
  REQUIRE(incr("u:a"));
  store->fail_fetch = true;
  CHECK(incr("u:a").code() == errc::storage_unavailable);
  CHECK(incr("u:a").code() == errc::storage_unavailable);
  CHECK(guard_of(n->stats(), "u:*")->breaker == "open");
  const int fetched = store->fetches;
  auto fast = incr("u:a");
  REQUIRE_FALSE(fast);
  CHECK(fast.err().message().starts_with("circuit open"));
  CHECK(store->fetches == fetched);
  // update_many reads through the same guard.
  const warp::update_fn one = [](const warp::buffer*,
                                 std::int64_t) -> warp::result<warp::mutation> {
    return warp::mutation::put("1", 0);
  };
  std::vector<warp::update_item> items{{"u:b", &one}};
  std::vector<warp::result<void>> out(1);
  n->update_many(items, out);
  REQUIRE_FALSE(out[0]);
  CHECK(out[0].err().message().starts_with("circuit open"));
  CHECK(store->fetches == fetched);

  // The rate limit: two reads a second, the third is refused.
  store->fail_fetch = false;
  CHECK(incr("q:a"));
  CHECK(incr("q:a"));
  auto limited = incr("q:a");
  REQUIRE_FALSE(limited);
  CHECK(limited.code() == errc::rate_limited);
}

TEST_CASE(
    "protection: a pattern's breaker_ratio, set at run time, opens its breaker on a failure ratio",
    "[protection]") {
  auto store = std::make_shared<warp::test::counting_storage>();
  // A pattern set at run time is persisted in the data dir: a directory of its own, so the
  // other in-process tests (default data dir) do not load it.
  warp::test::temp_dir dir{"warp-breaker-ratio"};
  warp::node_config cfg;
  cfg.storage_adapter = store;
  cfg.data_dir = dir.str();
  auto n = start(cfg);
  // No consecutive count: only the ratio (50% of the last 10 s, judged from 20 fetches).
  REQUIRE(n->set_pattern("rr:*=strong_local+breaker_ratio=0.5+cooldown=1h"));
  CHECK(warp::pattern_registry::parse_spec("rr:*=strong_local+breaker_ratio=0").code() ==
        errc::invalid_argument);
  CHECK(warp::pattern_registry::parse_spec("rr:*=strong_local+breaker_ratio=1.5").code() ==
        errc::invalid_argument);
  for (int i = 0; i < 10; ++i) CHECK(n->get("rr:ok" + std::to_string(i)).code() == errc::not_found);
  store->fail_fetch = true;
  // Failures 1..9: 19 outcomes, too few to judge; with 10 failures of 20 it opens.
  for (int i = 0; i < 10; ++i) {
    auto r = n->get("rr:bad" + std::to_string(i));
    REQUIRE_FALSE(r);
    CHECK(r.err().message() == "injected outage");
    if (i < 9) CHECK(guard_of(n->stats(), "rr:*")->breaker == "closed");
  }
  CHECK(guard_of(n->stats(), "rr:*")->breaker == "open");
  const int fetched = store->fetches;
  auto fast = n->get("rr:next");
  REQUIRE_FALSE(fast);
  CHECK(fast.err().message().starts_with("circuit open"));
  CHECK(store->fetches == fetched);  // refused without touching storage
}
