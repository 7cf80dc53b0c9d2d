// Hot-key tracking (count-min sketch + top-k heap, sampled, halved over time) and the
// TinyLFU admission filter of L1, on Zipf streams with fixed seeds.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/core/hot_keys.hpp"
#include "warp/l1.hpp"

using namespace std::chrono_literals;
using warp::detail::count_min_sketch;
using warp::detail::hot_key_options;
using warp::detail::hot_key_tracker;
using warp::detail::sketch_hash;

namespace {

/// Zipf(s) ranks over n keys; rank r (0 = hottest) is key "k<perm[r]>" so hot keys are not
/// simply the first ones.
std::vector<std::uint32_t> zipf_stream(std::size_t n, double s, std::size_t length,
                                       std::uint64_t seed) {
  std::vector<double> cdf(n);
  double sum = 0;
  for (std::size_t k = 0; k < n; ++k) cdf[k] = (sum += 1.0 / std::pow(double(k + 1), s));
  std::mt19937_64 rng{seed};
  std::uniform_real_distribution<double> u(0.0, sum);
  std::vector<std::uint32_t> out(length);
  for (auto& x : out)
    x = static_cast<std::uint32_t>(
        std::min<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin(), n - 1));
  return out;
}

std::string key_for(std::uint32_t rank) {
  // A fixed scramble of the rank, so the hottest keys are spread over the hash space.
  return "k" + std::to_string((rank * 2654435761u) % 1000003u);
}

/// The true top `k` keys of a stream, by exact count.
std::vector<std::string> exact_top(const std::vector<std::uint32_t>& stream, std::size_t k) {
  std::map<std::uint32_t, std::uint64_t> counts;
  for (auto r : stream) ++counts[r];
  std::vector<std::pair<std::uint64_t, std::uint32_t>> v;
  for (auto& [r, c] : counts) v.push_back({c, r});
  std::sort(v.rbegin(), v.rend());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < k && i < v.size(); ++i) out.push_back(key_for(v[i].second));
  return out;
}

double recall(const std::vector<std::string>& truth, const std::vector<warp::detail::hot_key>& got) {
  std::set<std::string> have;
  for (auto& h : got) have.insert(h.key);
  std::size_t found = 0;
  for (auto& t : truth) found += have.count(t);
  return double(found) / double(truth.size());
}

}  // namespace

TEST_CASE("count-min sketch never underestimates and stays within its error bound",
          "[hotkeys]") {
  count_min_sketch sketch{2048, 4};
  auto stream = zipf_stream(50'000, 1.0, 200'000, 7);
  std::map<std::uint32_t, std::uint32_t> truth;
  for (auto r : stream) {
    ++truth[r];
    sketch.add(sketch_hash(key_for(r)));
  }
  // e / width * N: the count-min bound, exceeded with probability e^-depth per key.
  const double bound = 2.718281828 / 2048 * double(stream.size());
  std::size_t over_bound = 0;
  for (auto& [r, c] : truth) {
    const auto est = sketch.estimate(sketch_hash(key_for(r)));
    REQUIRE(est >= c);
    if (double(est - c) > bound) ++over_bound;
  }
  CHECK(double(over_bound) <= 0.02 * double(truth.size()));
  sketch.halve();
  CHECK(sketch.estimate(sketch_hash(key_for(0))) <= truth[0] / 2 + bound);
}

TEST_CASE("hot-key tracker finds the top keys of a Zipf stream, unsampled and sampled",
          "[hotkeys]") {
  for (double skew : {0.8, 1.0, 1.2}) {
    auto stream = zipf_stream(100'000, skew, 1'000'000, 42);
    auto truth = exact_top(stream, 20);
    for (std::uint32_t every : {1u, 16u}) {
      hot_key_options o;
      o.capacity = 64;
      o.sample_every = every;
      o.half_life = 0ms;
      hot_key_tracker t{o};
      std::mt19937_64 pick{99};  // the test's own deterministic sampling
      for (auto r : stream)
        if (every == 1 || pick() % every == 0) t.record(key_for(r), 0ms);
      auto top = t.top(20);
      INFO("skew " << skew << ", one read in " << every);
      REQUIRE(top.size() == 20);
      // The hottest key is found, and nearly all of the top 20.
      CHECK(top[0].key == truth[0]);
      CHECK(recall(truth, top) >= (skew < 0.9 && every > 1 ? 0.8 : 0.9));
      // Counts are estimates of all reads (scaled by the sampling rate): the hottest key's
      // within 10% of its true count.
      std::uint64_t true_top = 0;
      for (auto r : stream) true_top += key_for(r) == truth[0];
      CHECK(double(top[0].count) == Approx(double(true_top)).epsilon(0.1));
      // Ordered hottest first.
      for (std::size_t i = 1; i < top.size(); ++i) CHECK(top[i - 1].count >= top[i].count);
    }
  }
}

TEST_CASE("hot-key tracker halves counts every half-life, so a new hot set takes over",
          "[hotkeys]") {
  hot_key_options o;
  o.capacity = 8;
  o.sample_every = 1;
  o.half_life = 1000ms;
  hot_key_tracker t{o};
  for (int i = 0; i < 1000; ++i) t.record("old:" + std::to_string(i % 4), 0ms);
  auto before = t.top(0);
  REQUIRE(before.size() == 4);
  CHECK(before[0].count == 250);
  // Three half-lives later: old counts are an eighth, and a new hot set outranks them.
  for (int i = 0; i < 400; ++i) t.record("new:" + std::to_string(i % 4), 3000ms);
  auto after = t.top(4);
  CHECK(t.counters().decays == 3);
  for (auto& h : after) CHECK(h.key.rfind("new:", 0) == 0);
  auto all = t.top(0);
  for (auto& h : all)
    if (h.key.rfind("old:", 0) == 0) CHECK(h.count == 250 / 8);
  // Enough halvings and the old keys drop out of the list.
  for (int i = 0; i < 8; ++i) t.decay();
  for (auto& h : t.top(0)) CHECK(h.key.rfind("old:", 0) != 0);
}

TEST_CASE("hot-key tracker keeps at most capacity keys and samples about one in N",
          "[hotkeys]") {
  hot_key_options o;
  o.capacity = 16;
  o.sample_every = 10;  // rounded up to 16
  hot_key_tracker t{o};
  CHECK(t.options().sample_every == 16);
  std::size_t sampled = 0;
  for (int i = 0; i < 160'000; ++i)
    if (t.sampled()) {
      ++sampled;
      t.record("key:" + std::to_string(i % 5000), 0ms);
    }
  CHECK(sampled > 9000);
  CHECK(sampled < 11000);
  CHECK(t.counters().tracked == 16);
  CHECK(t.top(0).size() == 16);
  CHECK(t.top(3).size() == 3);
}

namespace {

/// Hit ratio of a bounded L1 on a Zipf trace: a miss reads "storage" and fills.
double hit_ratio(warp::l1_admission admission, std::size_t keys, std::size_t capacity,
                 double skew, std::uint64_t seed) {
  warp::l1_options o;
  o.purge_interval = 0ms;
  o.max_entries = capacity;
  o.shards = 8;
  o.admission = admission;
  warp::l1_store store{o};
  auto stream = zipf_stream(keys, skew, 400'000, seed);
  auto value = warp::make_buffer(std::string(32, 'v'));
  std::size_t hits = 0, counted = 0;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    auto k = key_for(stream[i]);
    const bool hit = store.get(k).has_value();
    if (!hit) store.put(k, value);
    if (i >= stream.size() / 4) {  // after a warm-up quarter
      ++counted;
      hits += hit;
    }
  }
  return double(hits) / double(counted);
}

}  // namespace

TEST_CASE("TinyLFU admission beats sampled LRU on a Zipf trace and keeps bounds",
          "[hotkeys][l1][admission]") {
  // A small cache over a large key space, where a one-hit key evicting a hot one costs
  // most: admission must win clearly there.
  const double lru = hit_ratio(warp::l1_admission::none, 200'000, 2'000, 0.8, 5);
  const double lfu = hit_ratio(warp::l1_admission::tinylfu, 200'000, 2'000, 0.8, 5);
  INFO("sampled LRU " << lru << ", TinyLFU " << lfu);
  CHECK(lfu > lru + 0.02);

  warp::l1_options o;
  o.purge_interval = 0ms;
  o.max_entries = 100;
  o.admission = warp::l1_admission::tinylfu;
  warp::l1_store store{o};
  auto v = warp::make_buffer(std::string_view{"v"});
  for (int i = 0; i < 100; ++i) REQUIRE(store.put("hot:" + std::to_string(i), v) ==
                                        warp::put_outcome::inserted);
  for (int round = 0; round < 5; ++round)
    for (int i = 0; i < 100; ++i) REQUIRE(store.get("hot:" + std::to_string(i)));
  // A scan of one-hit keys: every one is kept out, no hot key is lost.
  std::size_t rejected = 0;
  for (int i = 0; i < 1000; ++i)
    rejected += store.put("scan:" + std::to_string(i), v) == warp::put_outcome::rejected;
  CHECK(rejected >= 990);
  CHECK(store.stats().admission_rejects == rejected);
  CHECK(store.size() <= 100);
  std::size_t hot_left = 0;
  for (int i = 0; i < 100; ++i) hot_left += store.contains("hot:" + std::to_string(i));
  CHECK(hot_left >= 95);
  // Replacing a present key is never judged.
  CHECK(store.put("hot:1", v) == warp::put_outcome::replaced);
  // A key read often enough earns its way in.
  for (int i = 0; i < 20; ++i) (void)store.get("newcomer");
  CHECK(store.put("newcomer", v) == warp::put_outcome::inserted);
}

TEST_CASE("without a bound, or with admission none, every new key enters", "[hotkeys][l1]") {
  warp::l1_options o;
  o.purge_interval = 0ms;
  o.admission = warp::l1_admission::tinylfu;  // no bound: nothing to judge
  warp::l1_store store{o};
  auto v = warp::make_buffer(std::string_view{"v"});
  for (int i = 0; i < 1000; ++i)
    CHECK(store.put("k" + std::to_string(i), v) == warp::put_outcome::inserted);
  CHECK(store.stats().admission_rejects == 0);
}
