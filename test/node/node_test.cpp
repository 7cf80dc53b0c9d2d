#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include <barrier>
#include <thread>

#include "counting_storage.hpp"
#include "warp/cache.hpp"
#include "warp/node.hpp"

using namespace std::chrono_literals;
using warp::errc;

namespace {

struct fixture {
  std::shared_ptr<warp::test::counting_storage> store =
      std::make_shared<warp::test::counting_storage>();
  std::unique_ptr<warp::node> node;

  explicit fixture(warp::node_config cfg = {}) {
    cfg.listen.clear();
    cfg.storage_adapter = store;
    cfg.log_level = "warn";
    auto n = warp::node::start(std::move(cfg));
    REQUIRE(n);
    node = std::move(*n);
  }

  void seed(std::string_view key, std::string value, std::int64_t expires = 0) {
    REQUIRE(store->store(key, warp::record{std::move(value), expires, {1, 1}}));
    store->stores = 0;
  }
};

template <class Pred>
void wait_until(Pred pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(pred());
}

}  // namespace

TEST_CASE("a miss reads through from storage, then L1 serves the key") {
  fixture f;
  f.seed("user:1", "ada");
  auto v = f.node->get("user:1");
  REQUIRE(v);
  CHECK(warp::view(*v) == "ada");
  auto again = f.node->get("user:1");
  REQUIRE(again);
  CHECK(f.store->fetches == 1);
  CHECK(f.node->stats().l1.hits >= 1);
  CHECK(f.node->get("user:2").code() == errc::not_found);
}

TEST_CASE("128 concurrent misses of one key make exactly one storage fetch") {
  fixture f;
  f.seed("hot", "value");
  f.store->close_gate();
  constexpr int threads = 128;
  std::vector<std::thread> pool;
  std::atomic<int> correct{0};
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&] {
      auto v = f.node->get("hot");
      if (v && warp::view(*v) == "value") ++correct;
    });
  // Deterministic: open the gate only once the leader is fetching and everyone else joined.
  wait_until([&] {
    return f.store->waiting_at_gate() == 1 &&
           f.node->stats().coalesced_reads == static_cast<std::uint64_t>(threads - 1);
  });
  f.store->open_gate();
  for (auto& t : pool) t.join();
  CHECK(correct == threads);
  CHECK(f.store->fetches == 1);
}

TEST_CASE("a write that lands during a read-through is not overwritten by the stale read") {
  fixture f;
  f.seed("k", "old");
  f.store->close_gate();
  std::atomic<bool> read_ok{false};
  std::thread reader{[&] {
    read_ok = f.node->get("k").has_value();  // reads "old" from storage, waits at the gate
  }};
  wait_until([&] { return f.store->waiting_at_gate() == 1; });
  REQUIRE(f.node->set("k", "new"));  // supersedes the in-flight fetch
  f.store->open_gate();
  reader.join();
  CHECK(read_ok);
  auto now = f.node->get_if_present("k");
  REQUIRE(now);
  CHECK(warp::view(*now) == "new");
  CHECK(warp::view(*f.node->get("k")) == "new");
}

TEST_CASE("the same race with a delete leaves no entry behind") {
  fixture f;
  f.seed("k", "old");
  f.store->close_gate();
  std::thread reader{[&] { (void)f.node->get("k"); }};
  wait_until([&] { return f.store->waiting_at_gate() == 1; });
  REQUIRE(f.node->remove("k"));
  f.store->open_gate();
  reader.join();
  CHECK_FALSE(f.node->l1().contains("k"));
  CHECK(f.node->get("k").code() == errc::not_found);
}

TEST_CASE("a failed write-through leaves no value in L1 that storage lacks") {
  fixture f;
  REQUIRE(f.node->set("k", "v1"));
  f.store->fail_store = true;
  auto st = f.node->set("k", "v2");
  CHECK(st.code() == errc::storage_unavailable);
  CHECK_FALSE(st.err().message().empty());
  f.store->fail_store = false;
  auto v = f.node->get("k");
  REQUIRE(v);
  CHECK(warp::view(*v) == "v1");
}

TEST_CASE("a storage outage on a miss is a clear error, and the node recovers") {
  fixture f;
  f.seed("k", "v");
  f.store->fail_fetch = true;
  auto v = f.node->get("k");
  CHECK(v.code() == errc::storage_unavailable);
  CHECK(f.node->stats().storage_errors >= 1);
  f.store->fail_fetch = false;
  REQUIRE(f.node->get("k"));
}

TEST_CASE("oversized keys and values are rejected with clear errors") {
  warp::node_config cfg;
  cfg.limits.max_key_size = 16;
  cfg.limits.max_value_size = 32;
  fixture f{cfg};
  auto st = f.node->set(std::string(17, 'k'), "v");
  CHECK(st.code() == errc::key_too_large);
  CHECK_THAT(st.err().message(), Catch::Contains("16"));
  CHECK(f.node->set("k", std::string(33, 'v')).code() == errc::value_too_large);
  CHECK(f.node->get(std::string(17, 'k')).code() == errc::key_too_large);
  CHECK(f.node->set("k", std::string(32, 'v')));
  CHECK(f.store->stores == 1);
}

TEST_CASE("explicit TTLs expire values, pattern TTLs only bound the L1 copy") {
  fixture f;
  REQUIRE(f.node->register_pattern("session:*", warp::mode::strong_local, 30ms));
  REQUIRE(f.node->set("tmp", "x", 20ms));
  REQUIRE(f.node->set("session:1", "s"));
  auto exp = f.node->expiry("tmp");
  REQUIRE(exp);
  CHECK(*exp > 0);
  CHECK(*f.node->expiry("session:1") == 0);
  std::this_thread::sleep_for(60ms);
  CHECK(f.node->get("tmp").code() == errc::not_found);
  int before = f.store->fetches;
  auto s = f.node->get("session:1");  // L1 copy expired: read through again
  REQUIRE(s);
  CHECK(warp::view(*s) == "s");
  CHECK(f.store->fetches == before + 1);
}

TEST_CASE("update is an atomic read-modify-write per key") {
  fixture f;
  constexpr int threads = 8, per_thread = 250;
  std::vector<std::thread> pool;
  std::atomic<int> failures{0};  // Catch2 v2 assertions are not thread-safe
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        auto r = f.node->update(
            "counter",
            [](const warp::buffer* cur, std::int64_t exp) -> warp::result<warp::mutation> {
              long v = cur ? std::stol(**cur) : 0;
              return warp::mutation::put(std::to_string(v + 1), exp);
            });
        if (!r) ++failures;
      }
    });
  for (auto& t : pool) t.join();
  CHECK(failures == 0);
  CHECK(warp::view(*f.node->get("counter")) == std::to_string(threads * per_thread));
}

TEST_CASE("watchers see every applied change") {
  fixture f;
  std::vector<warp::change_event> seen;
  std::mutex m;
  auto id = f.node->watch([&](const warp::change_event& ev) {
    std::lock_guard<std::mutex> g{m};
    seen.push_back(ev);
  });
  REQUIRE(f.node->set("a", "1"));
  REQUIRE(f.node->remove("a"));
  REQUIRE(f.node->clear());
  f.node->unwatch(id);
  REQUIRE(f.node->set("b", "1"));
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].what == warp::change_event::kind::set);
  CHECK(seen[0].key == "a");
  CHECK(seen[1].what == warp::change_event::kind::removed);
  CHECK(seen[2].what == warp::change_event::kind::cleared);
  CHECK(seen[0].ver < seen[1].ver);
}

TEST_CASE("warmup loads keys into L1 in one batch") {
  fixture f;
  f.seed("w:1", "a");
  f.seed("w:2", "b");
  std::vector<std::string> keys{"w:1", "w:2", "w:3"};
  auto n = f.node->warmup(keys);
  REQUIRE(n);
  CHECK(*n == 2);
  CHECK(f.node->l1().contains("w:1"));
  CHECK(f.node->l1().contains("w:2"));
  CHECK_FALSE(f.node->l1().contains("w:3"));
}

TEST_CASE("scan walks every key with a cursor and a glob") {
  fixture f;
  for (int i = 0; i < 50; ++i) REQUIRE(f.node->set("k:" + std::to_string(i), "v"));
  REQUIRE(f.node->set("other", "v"));
  std::string after;
  std::size_t matched = 0;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = f.node->scan(after, 7, "k:*");
    REQUIRE(page);
    matched += page->keys.size();
    if (page->done) break;
    after = page->next_after;
  }
  CHECK(matched == 50);
  CHECK(*f.node->key_count() == 51);
}

namespace {
struct user {
  std::string name;
  int age = 0;
  MSGPACK_DEFINE(name, age);
};

// A user-supplied codec: integers as decimal text.
struct decimal_codec {
  static warp::result<std::string> encode(const long& v) { return std::to_string(v); }
  static warp::result<long> decode(const warp::buffer& b) {
    try {
      return std::stol(*b);
    } catch (...) {
      return warp::error{errc::codec_error, "not a number"};
    }
  }
};
}  // namespace

TEST_CASE("typed caches: msgpack structs, zero-copy bytes, user codecs") {
  fixture f;
  warp::cache<user> users{*f.node};
  REQUIRE(users.set("user:1", user{"Ada", 36}));
  auto u = users.get("user:1");
  REQUIRE(u);
  CHECK(u->name == "Ada");
  CHECK(u->age == 36);
  CHECK(users.get("user:2").code() == errc::not_found);

  warp::cache<warp::buffer> raw{*f.node};
  REQUIRE(raw.set("blob", warp::make_buffer(std::string("bytes\0here", 10))));
  auto b1 = raw.get("blob");
  auto b2 = raw.get("blob");
  REQUIRE(b1);
  REQUIRE(b2);
  CHECK(b1->get() == b2->get());  // the same shared buffer: no copy on the read path
  CHECK((*b1)->size() == 10);

  warp::cache<std::string> strings{*f.node};
  REQUIRE(strings.set("s", "text"));
  CHECK(*strings.get("s") == "text");

  warp::cache<long, decimal_codec> numbers{*f.node};
  REQUIRE(numbers.set("n", 42));
  CHECK(*numbers.get("n") == 42);
  CHECK(warp::view(*f.node->get("n")) == "42");
  REQUIRE(strings.set("n", "forty-two"));
  CHECK(numbers.get("n").code() == errc::codec_error);
  CHECK(users.get("s").code() == errc::codec_error);  // not msgpack of a user
}

TEST_CASE("get_or_load calls the loader once for concurrent misses and writes through") {
  fixture f;
  warp::cache<user> users{*f.node};
  std::atomic<int> loads{0};
  std::vector<std::thread> pool;
  std::atomic<int> ok{0};
  for (int i = 0; i < 64; ++i)
    pool.emplace_back([&] {
      auto u =
          users.get_or_load("user:9", [&](std::string_view) -> warp::result<std::optional<user>> {
            ++loads;
            std::this_thread::sleep_for(50ms);
            return std::optional<user>{user{"Grace", 85}};
          });
      if (u && u->name == "Grace") ++ok;
    });
  for (auto& t : pool) t.join();
  CHECK(ok == 64);
  CHECK(loads >= 1);
  CHECK(loads <= 2);  // one per flight; a second only if a thread missed after the first landed
  auto stored = f.store->fetch("user:9");
  REQUIRE(stored);
  CHECK(stored->has_value());
}

TEST_CASE("a node runs inside a host's actor system and listens on a free port") {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  warp::node_config nc;
  nc.listen = "127.0.0.1:0";
  nc.storage = "memory";
  nc.log_level = "warn";
  auto n = warp::node::start(sys, nc);
  REQUIRE(n);
  CHECK((*n)->listen_port() != 0);
  CHECK(&(*n)->system() == &sys);
  REQUIRE((*n)->set("k", "v"));
  (*n)->stop();
  (*n)->stop();  // idempotent
}

TEST_CASE("bad configuration is a clear error, not a crash") {
  warp::node_config cfg;
  cfg.listen.clear();
  cfg.storage = "bogus:thing";
  CHECK_FALSE(warp::node::start(cfg));
  cfg.storage = "memory";
  cfg.patterns = {"user:*=sometimes"};
  auto r = warp::node::start(cfg);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::invalid_argument);
  cfg.patterns.clear();
  cfg.log_level = "loud";
  CHECK_FALSE(warp::node::start(cfg));
  cfg.log_level = "info";
  cfg.listen = "nonsense";
  CHECK_FALSE(warp::node::start(cfg));
}
