// The storage contract, run against every adapter Warp ships: memory, SQLite and a real
// throwaway PostgreSQL server. A new adapter joins by adding a factory type below.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "test/support/postgres.hpp"
#include "test/support/process.hpp"
#include "warp/storage.hpp"
#include "warp/storage_fence.hpp"

using namespace std::string_literals;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

warp::record rec(std::string value, std::int64_t expires = 0, std::uint64_t hlc = 0,
                 std::uint32_t node = 0) {
  warp::record r;
  r.value = std::move(value);
  r.expires_at_ms = expires;
  r.ver = {hlc, node};
  return r;
}

std::unique_ptr<warp::storage> must(warp::result<std::unique_ptr<warp::storage>> r) {
  INFO((r ? "" : r.err().to_string()));
  REQUIRE(r.has_value());
  auto s = std::move(*r);
  REQUIRE(s->clear());
  return s;
}

struct memory_adapter {
  static constexpr const char* name = "memory";
  static std::unique_ptr<warp::storage> make() { return must(warp::open_storage("memory", "")); }
};

struct sqlite_adapter {
  static constexpr const char* name = "sqlite";
  static std::unique_ptr<warp::storage> make() {
    static warp::test::temp_dir dir{"warp-sqlite"};
    static int n = 0;
    return must(
        warp::open_storage("sqlite:" + dir.str() + "/db" + std::to_string(++n) + ".db", ""));
  }
};

/// One server per test process (each Catch2 test case runs in its own process under
/// ctest, so cases do not share state); every make() starts from an empty table.
warp::test::postgres_server& shared_pg() {
  static warp::test::postgres_server server;
  return server;
}

struct postgres_adapter {
  static constexpr const char* name = "postgres";
  static std::unique_ptr<warp::storage> make() {
    return must(warp::open_storage(shared_pg().uri(), ""));
  }
};

#define ADAPTERS memory_adapter, sqlite_adapter, postgres_adapter

}  // namespace

TEMPLATE_TEST_CASE("storage: store fetch replace remove", "[storage]", ADAPTERS) {
  auto s = TestType::make();
  CHECK(s->describe().rfind(TestType::name, 0) == 0);

  auto missing = s->fetch("nope");
  REQUIRE(missing);
  CHECK_FALSE(missing->has_value());

  REQUIRE(s->store("k", rec("v1")));
  auto got = s->fetch("k");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->value == "v1");

  REQUIRE(s->store("k", rec("v2", 0, 7, 1)));
  got = s->fetch("k");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->value == "v2");
  CHECK((*got)->ver.hlc == 7);

  REQUIRE(s->remove("k"));
  got = s->fetch("k");
  REQUIRE(got);
  CHECK_FALSE(got->has_value());
  CHECK(s->remove("k"));  // absent: not an error
  CHECK(s->flush());
}

TEMPLATE_TEST_CASE("storage: binary keys and values", "[storage]", ADAPTERS) {
  auto s = TestType::make();
  const std::string k1 = "a\0b"s, k2 = "a"s, k3 = "a\0"s, k4 = "\xff\x00\x80"s;
  const std::string v1 = "\0\0x\0"s, v3 = "\xff\xfe\0\x01"s;
  REQUIRE(s->store(k1, rec(v1)));
  REQUIRE(s->store(k2, rec("plain")));
  REQUIRE(s->store(k3, rec(v3)));
  REQUIRE(s->store(k4, rec("")));  // an empty value is a value, not an absence

  auto check = [&](const std::string& k, const std::string& v) {
    auto got = s->fetch(k);
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->value == v);
    CHECK((*got)->value.size() == v.size());
  };
  check(k1, v1);
  check(k2, "plain");
  check(k3, v3);
  check(k4, "");

  auto keys = s->scan("", 10);
  REQUIRE(keys);
  // Byte order, unsigned: "a" < "a\0" < "a\0b" < "\xff..."
  CHECK(*keys == std::vector<std::string>{k2, k3, k1, k4});
  auto n = s->count();
  REQUIRE(n);
  CHECK(*n == 4);
}

TEMPLATE_TEST_CASE("storage: expired records are absent", "[storage]", ADAPTERS) {
  auto s = TestType::make();
  auto now = now_ms();
  REQUIRE(s->store("old", rec("x", now - 1000)));
  REQUIRE(s->store("fresh", rec("y", now + 3'600'000)));
  REQUIRE(s->store("forever", rec("z", 0)));

  auto old = s->fetch("old");
  REQUIRE(old);
  CHECK_FALSE(old->has_value());

  auto fresh = s->fetch("fresh");
  REQUIRE(fresh);
  REQUIRE(fresh->has_value());
  CHECK((*fresh)->expires_at_ms == now + 3'600'000);

  auto keys = s->scan("", 100);
  REQUIRE(keys);
  CHECK(*keys == std::vector<std::string>{"forever", "fresh"});

  std::vector<std::string> batch{"old", "fresh"};
  auto b = s->fetch_batch(batch);
  REQUIRE(b);
  REQUIRE(b->size() == 2);
  CHECK_FALSE((*b)[0].has_value());
  CHECK((*b)[1].has_value());

  // Storing again with a future expiry revives the key.
  REQUIRE(s->store("old", rec("x2", now + 3'600'000)));
  auto revived = s->fetch("old");
  REQUIRE(revived);
  REQUIRE(revived->has_value());
  CHECK((*revived)->value == "x2");
}

TEMPLATE_TEST_CASE("storage: versions round-trip over the full unsigned range", "[storage]",
                   ADAPTERS) {
  auto s = TestType::make();
  const std::uint64_t big_hlc = 0xFFFF'FFFF'FFFF'FFF0ull;  // high bit set
  const std::uint64_t hlc = (std::uint64_t{1'700'000'000'000} << 16) | 42;
  REQUIRE(s->store("a", rec("1", 0, hlc, 3)));
  REQUIRE(s->store("b", rec("2", 0, big_hlc, 0xFFFF'FFFFu)));
  REQUIRE(s->store("c", rec("3")));

  auto a = s->fetch("a");
  REQUIRE((a && a->has_value()));
  CHECK((*a)->ver == warp::version{hlc, 3});
  CHECK((*a)->ver.physical_ms() == 1'700'000'000'000);
  auto b = s->fetch("b");
  REQUIRE((b && b->has_value()));
  CHECK((*b)->ver.hlc == big_hlc);
  CHECK((*b)->ver.node == 0xFFFF'FFFFu);
  auto c = s->fetch("c");
  REQUIRE((c && c->has_value()));
  CHECK((*c)->ver.empty());
  CHECK((*c)->expires_at_ms == 0);
}

TEMPLATE_TEST_CASE("storage: fetch_batch keeps order and reports missing keys", "[storage]",
                   ADAPTERS) {
  auto s = TestType::make();
  // More keys than one PostgreSQL IN (...) chunk, duplicates and missing ones mixed in.
  std::vector<std::string> keys;
  for (int i = 0; i < 1200; ++i) {
    auto k = "key:" + std::to_string(i);
    if (i % 3 != 0) REQUIRE(s->store(k, rec("v" + std::to_string(i), 0, i + 1, 1)));
    keys.push_back(k);
  }
  keys.push_back("key:1");  // duplicate
  keys.push_back("missing");
  keys.push_back("key:0");  // duplicate of a missing one

  auto got = s->fetch_batch(keys);
  REQUIRE(got);
  REQUIRE(got->size() == keys.size());
  for (int i = 0; i < 1200; ++i) {
    INFO("key " << i);
    if (i % 3 == 0) {
      CHECK_FALSE((*got)[i].has_value());
    } else {
      REQUIRE((*got)[i].has_value());
      CHECK((*got)[i]->value == "v" + std::to_string(i));
      CHECK((*got)[i]->ver.hlc == static_cast<std::uint64_t>(i + 1));
    }
  }
  REQUIRE((*got)[1200].has_value());
  CHECK((*got)[1200]->value == "v1");
  CHECK_FALSE((*got)[1201].has_value());
  CHECK_FALSE((*got)[1202].has_value());

  auto empty = s->fetch_batch({});
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEMPLATE_TEST_CASE("storage: scan pages over 1000 keys with a cursor then count and clear",
                   "[storage]", ADAPTERS) {
  auto s = TestType::make();
  std::set<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    // Not stored in order; some keys with high bytes to exercise unsigned ordering.
    auto k = (i % 7 == 0 ? "\xc3\xa9-"s : "k-"s) + std::to_string((i * 7919) % 1000);
    REQUIRE(s->store(k, rec("v")));
    expected.insert(k);
  }
  REQUIRE(expected.size() == 1000);

  std::vector<std::string> all;
  std::string cursor;
  int pages = 0;
  for (;;) {
    auto page = s->scan(cursor, 64);
    REQUIRE(page);
    if (page->empty()) break;
    CHECK(page->size() <= 64);
    CHECK(std::is_sorted(page->begin(), page->end()));
    all.insert(all.end(), page->begin(), page->end());
    cursor = page->back();
    ++pages;
    REQUIRE(pages < 100);
  }
  CHECK(pages == 16);  // 15 full pages of 64 + one of 40
  CHECK(all == std::vector<std::string>(expected.begin(), expected.end()));

  auto zero = s->scan("", 0);
  REQUIRE(zero);
  CHECK(zero->empty());

  auto n = s->count();
  REQUIRE(n);
  CHECK(*n == 1000);

  REQUIRE(s->clear());
  n = s->count();
  REQUIRE(n);
  CHECK(*n == 0);
  auto after = s->scan("", 10);
  REQUIRE(after);
  CHECK(after->empty());
}

TEMPLATE_TEST_CASE("storage: 8 threads x 1000 operations", "[storage][concurrency]", ADAPTERS) {
  auto s = TestType::make();
  std::atomic<int> failures{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        // Own keys (checked exactly) and shared keys (contended, only no-error checked).
        auto own = "t" + std::to_string(t) + ":" + std::to_string(i % 50);
        auto shared = "shared:" + std::to_string(i % 10);
        switch (i % 5) {
          case 0:
          case 1:
            if (!s->store(own, rec(std::to_string(i))))
              ++failures;
            else if (auto r = s->fetch(own); !r)
              ++failures;
            else if (!r->has_value() || (*r)->value != std::to_string(i))
              ++wrong;
            break;
          case 2:
            if (!s->store(shared, rec(own))) ++failures;
            break;
          case 3:
            if (auto r = s->fetch(shared); !r) ++failures;
            break;
          case 4:
            if (!s->remove(own)) ++failures;
            break;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(wrong == 0);
  auto n = s->count();
  REQUIRE(n);
  CHECK(*n <= 8 * 50 + 10);
}

TEMPLATE_TEST_CASE("storage: fenced writes apply in order and refuse an older token", "[storage]",
                   sqlite_adapter, postgres_adapter) {
  auto s = TestType::make();
  auto* f = warp::fenced_writes_of(*s);
  REQUIRE(f != nullptr);
  auto put = [](std::string k, std::string v) {
    return warp::fenced_change{std::move(k), false, rec(std::move(v), 0, 11, 3)};
  };
  auto del = [](std::string k) { return warp::fenced_change{std::move(k), true, {}}; };
  auto value = [&](const std::string& k) -> std::string {
    auto r = s->fetch(k);
    REQUIRE(r);
    return r->has_value() ? (*r)->value : "<absent>";
  };
  std::vector<warp::fenced_change> first{put("a", "1"), put("b", "2"), put("a", "3")};
  REQUIRE(f->write_fenced("group-1", 5, first));
  CHECK(value("a") == "3");  // in order: the later change of a key wins
  CHECK(value("b") == "2");
  // The same token again (the same writer's next batch) is accepted.
  std::vector<warp::fenced_change> second{del("a"), put("b", "4")};
  REQUIRE(f->write_fenced("group-1", 5, second));
  CHECK(value("a") == "<absent>");
  CHECK(value("b") == "4");
  // An older writer is refused and writes nothing, not even the first of its changes.
  std::vector<warp::fenced_change> stale{put("b", "old"), put("a", "old")};
  auto r = f->write_fenced("group-1", 4, stale);
  REQUIRE_FALSE(r);
  CHECK(r.code() == warp::errc::conflict);
  CHECK(value("a") == "<absent>");
  CHECK(value("b") == "4");
  // A newer one moves the fence; the older token is refused from then on.
  std::vector<warp::fenced_change> newer{put("a", "new")};
  REQUIRE(f->write_fenced("group-1", 6, newer));
  CHECK(value("a") == "new");
  CHECK(f->write_fenced("group-1", 5, second).code() == warp::errc::conflict);
  // Fences are independent of each other; an empty batch still takes the fence.
  REQUIRE(f->write_fenced("group-2", 1, stale));
  CHECK(value("a") == "old");
  REQUIRE(f->write_fenced("group-3", 9, {}));
  CHECK(f->write_fenced("group-3", 8, newer).code() == warp::errc::conflict);
  auto got = s->fetch("a");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->ver.hlc == 11);
  CHECK((*got)->ver.node == 3);
  // Being fenced is an answer, not a storage error.
  auto errors = s->error_counts();
  REQUIRE(errors);
  CHECK((*errors)[static_cast<std::size_t>(warp::storage_op::store)] == 0);
}

TEST_CASE("storage: a fence is shared by every connection to one database (sqlite, postgres)") {
  warp::test::temp_dir dir{"warp-fence"};
  for (const auto& spec : {"sqlite:" + dir.str() + "/shared.db", shared_pg().uri()}) {
    INFO(spec);
    auto a = must(warp::open_storage(spec, ""));
    auto b = must(warp::open_storage(spec, ""));
    auto* fa = warp::fenced_writes_of(*a);
    auto* fb = warp::fenced_writes_of(*b);
    REQUIRE(fa);
    REQUIRE(fb);
    std::vector<warp::fenced_change> one{{"k", false, rec("from-a")}};
    std::vector<warp::fenced_change> two{{"k", false, rec("from-b")}};
    REQUIRE(fa->write_fenced("shared", 7, one));
    // The other connection (another warpd) with an older token: refused.
    CHECK(fb->write_fenced("shared", 6, two).code() == warp::errc::conflict);
    REQUIRE(fb->write_fenced("shared", 8, two));
    CHECK(fa->write_fenced("shared", 7, one).code() == warp::errc::conflict);
    auto got = a->fetch("k");
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->value == "from-b");
  }
  // Memory storage is one process's own: no fenced writes (strong values are not written
  // through to it).
  auto m = must(warp::open_storage("memory", ""));
  CHECK(warp::fenced_writes_of(*m) == nullptr);
}
