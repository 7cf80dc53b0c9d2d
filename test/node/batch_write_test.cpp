// node::set_many and node::update_many: batched writes keep the semantics of one call per
// key (values, versions, watchers, validation, counters under concurrency).
#include <catch2/catch.hpp>

#include <atomic>
#include <charconv>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "warp/node.hpp"

namespace {

std::unique_ptr<warp::node> memory_node(std::shared_ptr<warp::storage> store = nullptr) {
  warp::node_config cfg;
  cfg.storage = "memory";
  cfg.storage_adapter = std::move(store);
  cfg.scheduler_threads = 1;
  auto n = warp::node::start(cfg);
  REQUIRE(n);
  return std::move(*n);
}

using update_fn = std::function<warp::result<warp::mutation>(const warp::buffer*, std::int64_t)>;

update_fn add(std::int64_t delta, std::vector<std::int64_t>* seen = nullptr) {
  return [delta, seen](const warp::buffer* cur, std::int64_t exp) -> warp::result<warp::mutation> {
    std::int64_t v = 0;
    if (cur) std::from_chars((*cur)->data(), (*cur)->data() + (*cur)->size(), v);
    v += delta;
    if (seen) seen->push_back(v);
    return warp::mutation::put(std::to_string(v), cur ? exp : 0);
  };
}

}  // namespace

TEST_CASE("set_many writes every pair through and the last pair of a key wins") {
  std::shared_ptr<warp::storage> store = warp::make_memory_storage();
  auto n = memory_node(store);
  std::mutex mtx;
  std::vector<std::pair<std::string, warp::version>> events;
  n->watch([&](const warp::change_event& ev) {
    std::lock_guard<std::mutex> g{mtx};
    events.emplace_back(ev.key, ev.ver);
  });
  std::vector<warp::kv_write> pairs{{"a", "1"}, {"b", "2"}, {"a", "3"}, {"c", "4"}, {"a", "5"}};
  REQUIRE(n->set_many(pairs));
  CHECK(**n->get("a") == "5");
  CHECK(**n->get("b") == "2");
  CHECK(**n->get("c") == "4");
  auto rec = store->fetch("a");
  REQUIRE(rec);
  REQUIRE(*rec);
  CHECK((*rec)->value == "5");
  CHECK(n->stats().storage_writes == 3);  // a once, b, c
  std::lock_guard<std::mutex> g{mtx};
  REQUIRE(events.size() == 5);  // one per pair, in order
  CHECK(events[0].first == "a");
  CHECK(events[1].first == "b");
  CHECK(events[4].first == "a");
  CHECK(events[0].second == events[4].second);  // replaced pairs carry the final version
  CHECK(n->l1().info("a")->ver == events[4].second);
}

TEST_CASE("set_many validates every pair before writing any") {
  warp::node_config cfg;
  cfg.storage = "memory";
  cfg.listen.clear();  // no node-to-node listener: tests run in parallel
  cfg.scheduler_threads = 1;
  cfg.limits.max_value_size = 4;
  auto started = warp::node::start(cfg);
  REQUIRE(started);
  auto& n = *started;
  std::vector<warp::kv_write> pairs{{"x", "ok"}, {"y", "too long"}};
  auto st = n->set_many(pairs);
  CHECK(st.code() == warp::errc::value_too_large);
  CHECK(n->get("x").code() == warp::errc::not_found);
  // Large batches (hash-based duplicate detection) behave the same.
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) keys.push_back("k" + std::to_string(i % 40));
  std::vector<warp::kv_write> many;
  for (int i = 0; i < 100; ++i) many.push_back({keys[i], i < 60 ? "old" : "new"});
  REQUIRE(n->set_many(many));
  for (int i = 0; i < 40; ++i) CHECK(**n->get("k" + std::to_string(i)) == "new");
}

TEST_CASE("update_many applies items in order and writes each key once") {
  auto n = memory_node();
  REQUIRE(n->set("ctr", "10"));
  std::vector<std::int64_t> seen;
  std::vector<update_fn> fns{add(1, &seen), add(2, &seen), add(5, &seen), add(-3, &seen)};
  std::vector<warp::node::update_item> items{
      {"ctr", &fns[0]}, {"other", &fns[1]}, {"ctr", &fns[2]}, {"ctr", &fns[3]}};
  std::vector<warp::result<void>> out(items.size());
  int events = 0;
  n->watch([&](const warp::change_event&) { ++events; });
  auto writes_before = n->stats().storage_writes;
  n->update_many(items, out);
  for (auto& st : out) CHECK(st);
  CHECK(seen == std::vector<std::int64_t>{11, 2, 16, 13});
  CHECK(**n->get("ctr") == "13");
  CHECK(**n->get("other") == "2");
  CHECK(n->stats().storage_writes - writes_before == 2);
  CHECK(events == 4);
}

TEST_CASE("update_many counters stay exact under concurrent writers") {
  auto n = memory_node();
  constexpr int threads = 4, rounds = 300, batch = 20;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      std::vector<update_fn> fns(batch, add(1));
      std::vector<warp::node::update_item> items;
      for (int i = 0; i < batch; ++i) items.push_back({i % 2 ? "p" : "q", &fns[i]});
      std::vector<warp::result<void>> out(batch);
      for (int r = 0; r < rounds; ++r) {
        n->update_many(items, out);
        // Interleave single updates of the same keys.
        auto one = add(1);
        REQUIRE(n->update("p", one));
      }
    });
  for (auto& th : pool) th.join();
  CHECK(**n->get("q") == std::to_string(threads * rounds * batch / 2));
  CHECK(**n->get("p") == std::to_string(threads * rounds * (batch / 2 + 1)));
}
