// L1 store: TTL, bounds, eviction, versions, RMW, concurrency, iteration.
#include <catch2/catch.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "warp/l1.hpp"

using namespace std::chrono_literals;
using warp::l1_options;
using warp::l1_store;
using warp::make_buffer;
using warp::now_ms;
using warp::put_outcome;
using warp::version;

namespace {

l1_options no_purge() {
  l1_options o;
  o.purge_interval = 0ms;
  return o;
}

// make_buffer("literal") is ambiguous (std::string and std::string_view overloads).
warp::buffer buf(const char* text) {
  return make_buffer(std::string_view{text});
}

std::string key_of(int i) {
  return "key:" + std::to_string(i);
}

std::string value_of(const l1_store& /*unused*/, std::optional<warp::buffer> b) {
  return b ? std::string{warp::view(*b)} : std::string{"<absent>"};
}

}  // namespace

TEST_CASE("put, get and read round-trip and count hits and misses", "[l1]") {
  l1_store store{no_purge()};
  CHECK(store.put("a", buf("alpha")) == put_outcome::inserted);
  CHECK(store.put("a", buf("ALPHA")) == put_outcome::replaced);
  CHECK(value_of(store, store.get("a")) == "ALPHA");
  CHECK_FALSE(store.get("b"));

  std::string seen;
  warp::l1_entry_info seen_info;
  CHECK(store.read("a", [&](std::string_view bytes, const warp::l1_entry_info& i) {
    seen = bytes;
    seen_info = i;
  }));
  CHECK(seen == "ALPHA");
  CHECK(seen_info.expires_at_ms == 0);
  CHECK_FALSE(store.read("zzz", [&](std::string_view, const warp::l1_entry_info&) { FAIL(); }));

  // info() and contains() do not count.
  CHECK(store.contains("a"));
  CHECK_FALSE(store.contains("b"));
  auto s = store.stats();
  CHECK(s.hits == 2);
  CHECK(s.misses == 2);
  CHECK(s.sets == 2);
  CHECK(s.entries == 1);
  CHECK(store.size() == 1);
}

TEST_CASE("get shares the buffer, which outlives erase and replacement", "[l1]") {
  l1_store store{no_purge()};
  auto original = make_buffer(std::string(1000, 'x'));
  store.put("k", original);
  auto got = store.get("k");
  REQUIRE(got);
  CHECK(got->get() == original.get());  // no copy
  CHECK(store.erase("k"));
  CHECK_FALSE(store.erase("k"));
  CHECK(warp::view(*got) == std::string(1000, 'x'));
  CHECK(store.stats().removes == 1);
}

TEST_CASE("empty keys and null buffers are allowed", "[l1]") {
  l1_store store{no_purge()};
  CHECK(store.put("", buf("empty-key")) == put_outcome::inserted);
  CHECK(value_of(store, store.get("")) == "empty-key");
  store.put("nullvalue", nullptr);
  auto got = store.get("nullvalue");
  REQUIRE(got);
  REQUIRE(*got);  // stored as an empty buffer, never a null one
  CHECK(warp::view(*got).empty());
  CHECK(store.erase(""));
  CHECK_FALSE(store.get(""));
}

TEST_CASE("large values round-trip and count against max_bytes", "[l1]") {
  l1_options o = no_purge();
  o.max_bytes = 20u << 20;
  l1_store store{o};
  std::string big(8u << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  store.put("big1", make_buffer(big));
  store.put("big2", make_buffer(big));
  CHECK(store.size() == 2);
  store.put("big3", make_buffer(big));  // 24 MiB > 20 MiB: one of the first two goes
  CHECK(store.size() == 2);
  CHECK(store.stats().evictions == 1);
  CHECK(store.stats().bytes <= o.max_bytes);
  auto got = store.get("big3");
  REQUIRE(got);
  CHECK(warp::view(*got) == big);
}

TEST_CASE("a value larger than max_bytes is not retained", "[l1]") {
  l1_options o = no_purge();
  o.max_bytes = 1000;
  l1_store store{o};
  store.put("small", buf("x"));
  store.put("huge", make_buffer(std::string(5000, 'h')));
  CHECK(store.stats().bytes <= 1000);
  CHECK_FALSE(store.get("huge"));
}

TEST_CASE("expired entries are never returned", "[l1][ttl]") {
  l1_store store{no_purge()};
  store.put("past", buf("v"), {}, now_ms() - 1);
  store.put("future", buf("v"), {}, now_ms() + 60'000);
  CHECK_FALSE(store.get("past"));
  CHECK_FALSE(store.read("past", [](std::string_view, const warp::l1_entry_info&) { FAIL(); }));
  CHECK_FALSE(store.info("past"));
  CHECK(store.get("future"));
  CHECK(store.info("future")->expires_at_ms > now_ms());

  // A short TTL passes while we watch.
  const std::int64_t soon = now_ms() + 150;
  store.put("soon", buf("v"), {}, soon);
  CHECK(store.get("soon"));
  while (now_ms() <= soon) std::this_thread::sleep_for(10ms);
  CHECK_FALSE(store.get("soon"));
  CHECK_FALSE(store.contains("soon"));

  // for_each skips expired entries.
  std::set<std::string> seen;
  store.put("past2", buf("v"), {}, now_ms() - 5);
  store.for_each([&](std::string_view k, const warp::buffer&, const warp::l1_entry_info&) {
    seen.emplace(k);
  });
  CHECK(seen == std::set<std::string>{"future"});
}

TEST_CASE("touching an expired entry removes it lazily", "[l1][ttl]") {
  l1_store store{no_purge()};
  store.put("gone", buf("v"), {}, now_ms() - 1);
  CHECK(store.size() == 1);  // still stored: no purge thread
  CHECK_FALSE(store.get("gone"));
  CHECK(store.size() == 0);
  CHECK(store.stats().expirations == 1);
}

TEST_CASE("purge_expired drops exactly the expired entries and counts them", "[l1][ttl]") {
  l1_store store{no_purge()};
  for (int i = 0; i < 300; ++i) store.put(key_of(i), buf("v"), {}, now_ms() - 10);
  for (int i = 300; i < 500; ++i) store.put(key_of(i), buf("v"), {}, now_ms() + 600'000);
  for (int i = 500; i < 600; ++i) store.put(key_of(i), buf("v"));
  CHECK(store.size() == 600);
  CHECK(store.purge_expired() == 300);
  CHECK(store.purge_expired() == 0);
  CHECK(store.size() == 300);
  CHECK(store.stats().expirations == 300);
  for (int i = 300; i < 600; ++i) CHECK(store.get(key_of(i)));
}

TEST_CASE("the background purge drops expired entries", "[l1][ttl]") {
  l1_options o;
  o.purge_interval = 10ms;
  l1_store store{o};
  for (int i = 0; i < 100; ++i) store.put(key_of(i), buf("v"), {}, now_ms() - 1);
  store.put("live", buf("v"));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (store.size() > 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  CHECK(store.size() == 1);
  CHECK(store.stats().expirations == 100);
  CHECK(store.get("live"));
}

TEST_CASE("set_expiry changes and clears an entry's expiry", "[l1][ttl]") {
  l1_store store{no_purge()};
  store.put("k", buf("v"), version{7, 1});
  CHECK_FALSE(store.set_expiry("absent", now_ms() + 1000));
  CHECK(store.set_expiry("k", now_ms() + 60'000));
  auto info = store.info("k");
  REQUIRE(info);
  CHECK(info->expires_at_ms > now_ms());
  CHECK(info->ver == version{7, 1});  // the version survives
  CHECK(store.set_expiry("k", 0));
  CHECK(store.info("k")->expires_at_ms == 0);
  CHECK(store.set_expiry("k", now_ms() - 1));
  CHECK_FALSE(store.get("k"));
  CHECK_FALSE(store.set_expiry("k", 0));  // expired counts as absent
}

TEST_CASE("max_entries bounds the store and counts evictions", "[l1][bounds]") {
  l1_options o = no_purge();
  o.max_entries = 100;
  l1_store store{o};
  for (int i = 0; i < 1000; ++i) {
    store.put(key_of(i), buf("v"));
    REQUIRE(store.size() <= 100);
    REQUIRE(store.get(key_of(i)));  // the key just written is never the victim
  }
  CHECK(store.size() == 100);
  auto s = store.stats();
  CHECK(s.evictions == 900);
  CHECK(s.entries == 100);
  int present = 0;
  for (int i = 0; i < 1000; ++i) present += store.contains(key_of(i)) ? 1 : 0;
  CHECK(present == 100);
}

TEST_CASE("max_entries of one works across shards", "[l1][bounds]") {
  l1_options o = no_purge();
  o.max_entries = 1;
  l1_store store{o};
  for (int i = 0; i < 50; ++i) {
    store.put(key_of(i), buf("v"));
    REQUIRE(store.size() == 1);
    REQUIRE(store.contains(key_of(i)));
  }
  CHECK(store.stats().evictions == 49);
}

TEST_CASE("max_bytes bounds the store and counts evictions", "[l1][bounds]") {
  l1_options o = no_purge();
  o.max_bytes = 64 * 1024;
  l1_store store{o};
  const std::string value(500, 'v');
  for (int i = 0; i < 2000; ++i) {
    store.put(key_of(i), make_buffer(value));
    REQUIRE(store.stats().bytes <= o.max_bytes);
  }
  auto s = store.stats();
  CHECK(s.evictions > 1000);
  CHECK(s.entries == store.size());
  CHECK(s.entries + s.evictions == 2000);
  // Every entry costs at least its key and value.
  CHECK(s.bytes >= s.entries * (value.size() + 6));
}

TEST_CASE("replacing a value keeps byte accounting exact", "[l1][bounds]") {
  l1_store store{no_purge()};
  store.put("k", make_buffer(std::string(100, 'a')));
  const auto one = store.stats().bytes;
  store.put("k", make_buffer(std::string(300, 'a')));
  CHECK(store.stats().bytes == one + 200);
  store.erase("k");
  CHECK(store.stats().bytes == 0);
}

TEST_CASE("sampled LRU keeps recently read keys over cold ones", "[l1][eviction]") {
  l1_options o = no_purge();
  o.max_entries = 2000;
  l1_store store{o};
  constexpr int total = 2000, hot = 200, extra = 1000;
  for (int i = 0; i < total; ++i) store.put(key_of(i), buf("v"));
  auto read_hot = [&] {
    for (int i = 0; i < hot; ++i) REQUIRE(store.read(key_of(i), [](auto, auto&) {}));
  };
  read_hot();
  for (int i = 0; i < extra; ++i) {
    store.put("new:" + std::to_string(i), buf("v"));
    if (i % 100 == 99) read_hot();  // the hot set stays hot while new keys push in
  }
  CHECK(store.size() == total);
  CHECK(store.stats().evictions == extra);
  int hot_left = 0, cold_left = 0;
  for (int i = 0; i < hot; ++i) hot_left += store.contains(key_of(i)) ? 1 : 0;
  for (int i = hot; i < total; ++i) cold_left += store.contains(key_of(i)) ? 1 : 0;
  const double hot_rate = double(hot_left) / hot;
  const double cold_rate = double(cold_left) / (total - hot);
  INFO("hot survival " << hot_rate << ", cold survival " << cold_rate);
  // Random eviction would give both about (1800 - 1000) / 1800 = 0.44.
  CHECK(hot_rate >= 0.9);
  CHECK(cold_rate <= 0.6);
}

TEST_CASE("only_if_newer applies replicated updates in version order", "[l1][versions]") {
  l1_store store{no_purge()};
  CHECK(store.put("k", buf("v5"), version{5, 1}, 0, true) == put_outcome::inserted);
  CHECK(store.put("k", buf("v3"), version{3, 1}, 0, true) == put_outcome::stale);
  CHECK(store.put("k", buf("v5b"), version{5, 1}, 0, true) == put_outcome::stale);
  CHECK(value_of(store, store.get("k")) == "v5");
  CHECK(store.put("k", buf("v5n2"), version{5, 2}, 0, true) == put_outcome::replaced);
  CHECK(store.info("k")->ver == version{5, 2});
  // Without only_if_newer, the write wins whatever its version.
  CHECK(store.put("k", buf("v1"), version{1, 1}) == put_outcome::replaced);
  CHECK(value_of(store, store.get("k")) == "v1");
  // An expired entry does not block a newer-only write.
  store.put("e", buf("old"), version{9, 9}, now_ms() - 1);
  CHECK(store.put("e", buf("new"), version{1, 1}, 0, true) == put_outcome::inserted);
  CHECK(value_of(store, store.get("e")) == "new");
}

TEST_CASE("erase_if_not_newer never drops a newer value", "[l1][versions]") {
  l1_store store{no_purge()};
  store.put("k", buf("v"), version{10, 1});
  CHECK_FALSE(store.erase_if_not_newer("k", version{9, 5}));
  CHECK(store.contains("k"));
  CHECK(store.erase_if_not_newer("k", version{10, 1}));  // equal: the invalidation is for it
  CHECK_FALSE(store.contains("k"));
  store.put("k", buf("v"), version{10, 1});
  CHECK(store.erase_if_not_newer("k", version{11, 0}));
  CHECK_FALSE(store.erase_if_not_newer("absent", version{11, 0}));
}

TEST_CASE("update reads, replaces, inserts and removes atomically", "[l1][update]") {
  l1_store store{no_purge()};
  store.update("k", [](const warp::buffer* cur, warp::l1_entry_info* info) {
    CHECK(cur == nullptr);
    info->ver = version{1, 2};
    info->expires_at_ms = now_ms() + 60'000;
    return std::optional<warp::buffer>{buf("first")};
  });
  CHECK(value_of(store, store.get("k")) == "first");
  CHECK(store.info("k")->ver == version{1, 2});
  store.update("k", [](const warp::buffer* cur, warp::l1_entry_info* info) {
    REQUIRE(cur != nullptr);
    CHECK(warp::view(*cur) == "first");
    CHECK(info->ver == version{1, 2});
    return std::optional<warp::buffer>{};  // leave as is
  });
  CHECK(value_of(store, store.get("k")) == "first");
  store.update("k", [](const warp::buffer*, warp::l1_entry_info*) {
    return std::optional<warp::buffer>{warp::buffer{}};  // remove
  });
  CHECK_FALSE(store.contains("k"));
}

TEST_CASE("update is atomic under 4 threads", "[l1][update][concurrency]") {
  l1_store store{no_purge()};
  constexpr int threads = 4, per_thread = 2000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i)
        store.update("counter", [](const warp::buffer* cur, warp::l1_entry_info*) {
          long n = 0;
          if (cur) {
            auto v = warp::view(*cur);
            std::from_chars(v.data(), v.data() + v.size(), n);
          }
          return std::optional<warp::buffer>{make_buffer(std::to_string(n + 1))};
        });
    });
  for (auto& w : workers) w.join();
  CHECK(value_of(store, store.get("counter")) == std::to_string(threads * per_thread));
  CHECK(store.stats().sets == threads * per_thread);
}

TEST_CASE("clear removes everything and the store stays usable", "[l1]") {
  l1_store store{no_purge()};
  for (int i = 0; i < 1000; ++i) store.put(key_of(i), buf("v"));
  auto held = store.get(key_of(3));
  store.clear();
  CHECK(store.size() == 0);
  CHECK(store.stats().bytes == 0);
  for (int i = 0; i < 1000; ++i) REQUIRE_FALSE(store.contains(key_of(i)));
  CHECK(warp::view(*held) == "v");
  store.put("again", buf("x"));
  CHECK(store.get("again"));
  CHECK(store.size() == 1);
}

TEST_CASE("for_each visits every live entry once", "[l1]") {
  l1_options o = no_purge();
  o.shards = 4;
  l1_store store{o};
  for (int i = 0; i < 5000; ++i)
    store.put(key_of(i), make_buffer(key_of(i)), version{std::uint64_t(i + 1), 0});
  std::set<std::string> seen;
  std::size_t visits = 0;
  store.for_each([&](std::string_view k, const warp::buffer& v, const warp::l1_entry_info& info) {
    ++visits;
    seen.emplace(k);
    CHECK(warp::view(v) == k);
    CHECK(info.ver.hlc > 0);
  });
  CHECK(visits == 5000);
  CHECK(seen.size() == 5000);
}

TEST_CASE("shard count is a power of two and growing keeps every key", "[l1]") {
  l1_options o = no_purge();
  o.shards = 3;
  l1_store store{o};
  CHECK(store.options().shards == 4);
  CHECK(l1_store{no_purge()}.options().shards >= 64);
  for (int i = 0; i < 100'000; ++i) store.put(key_of(i), make_buffer(key_of(i)));
  CHECK(store.size() == 100'000);
  for (int i = 0; i < 100'000; ++i) {
    auto got = store.get(key_of(i));
    REQUIRE(got);
    REQUIRE(warp::view(*got) == key_of(i));
  }
}

TEST_CASE("a read callback may use the store again (nested epoch guards)", "[l1]") {
  l1_store store{no_purge()};
  store.put("outer", buf("inner"));
  store.put("inner", buf("value"));
  std::string result;
  CHECK(store.read("outer", [&](std::string_view next, const warp::l1_entry_info&) {
    store.read(next, [&](std::string_view v, const warp::l1_entry_info&) { result = v; });
    store.put("written-inside", buf("ok"));  // writers never wait for readers
  }));
  CHECK(result == "value");
  CHECK(store.get("written-inside"));
}

// Readers check that every value they see belongs to the key they asked for while
// writers replace, erase, expire and clear, and tables grow. Meant for the TSan build.
TEST_CASE("concurrent readers and writers see consistent entries", "[l1][concurrency]") {
  l1_options o = no_purge();
  o.shards = 4;  // few shards: more contention, more growth
  o.max_entries = 3000;
  l1_store store{o};
  constexpr int keys = 4000;
  constexpr int writer_ops = 20000;
  std::atomic<bool> writers_done{false};
  std::atomic<long> bad{0}, hits{0};

  auto writer = [&](int seed) {
    unsigned x = static_cast<unsigned>(seed) * 2654435761u + 1;
    for (int i = 0; i < writer_ops; ++i) {
      x = x * 1664525u + 1013904223u;
      const int k = static_cast<int>((x >> 8) % keys);
      const std::string key = key_of(k);
      switch ((x >> 4) % 16) {
        case 0:
          store.erase(key);
          break;
        case 1:
          store.erase_if_not_newer(key, version{std::uint64_t(i), 0});
          break;
        case 2:
          store.set_expiry(key, (x & 1) ? 0 : now_ms() - 1);
          break;
        case 3:
          store.update(key, [&](const warp::buffer*, warp::l1_entry_info*) {
            return std::optional<warp::buffer>{make_buffer(key + "=u")};
          });
          break;
        default:
          store.put(key, make_buffer(key + "=" + std::to_string(i)),
                    version{std::uint64_t(i + 1), 0}, (x & 7) == 0 ? now_ms() + 5 : 0,
                    (x & 2) != 0);
      }
      if (seed == 1 && i % 7000 == 6999) store.clear();
      if (seed == 2 && i % 3000 == 0) store.purge_expired();
    }
  };
  auto reader = [&](int seed) {
    unsigned x = static_cast<unsigned>(seed) * 40503u + 7;
    while (!writers_done.load()) {
      for (int i = 0; i < 200; ++i) {
        x = x * 1664525u + 1013904223u;
        const std::string key = key_of(static_cast<int>((x >> 8) % keys));
        const std::string prefix = key + "=";
        if (x & 1) {
          store.read(key, [&](std::string_view v, const warp::l1_entry_info&) {
            hits.fetch_add(1, std::memory_order_relaxed);
            if (v.substr(0, prefix.size()) != prefix) bad.fetch_add(1);
          });
        } else if (auto b = store.get(key)) {
          hits.fetch_add(1, std::memory_order_relaxed);
          if (warp::view(*b).substr(0, prefix.size()) != prefix) bad.fetch_add(1);
        }
      }
      std::size_t n = 0;
      if (seed == 0)
        store.for_each([&](std::string_view k, const warp::buffer& v, const warp::l1_entry_info&) {
          ++n;
          if (warp::view(v).substr(0, k.size() + 1) != std::string{k} + "=") bad.fetch_add(1);
        });
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(reader, 0);
  threads.emplace_back(reader, 1);
  std::vector<std::thread> writer_threads;
  writer_threads.emplace_back(writer, 1);
  writer_threads.emplace_back(writer, 2);
  for (auto& t : writer_threads) t.join();
  writers_done = true;
  for (auto& t : threads) t.join();
  CHECK(bad.load() == 0);
  CHECK(hits.load() > 0);
  CHECK(store.size() <= o.max_entries + 2);  // racing writers may overshoot by one each
  // Accounting stays consistent with what is actually stored.
  std::size_t live_or_expired = 0;
  store.purge_expired();
  store.for_each([&](auto, auto&, auto&) { ++live_or_expired; });
  CHECK(live_or_expired <= store.size());
}
