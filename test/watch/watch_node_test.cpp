// The node API's watch and history of strong keys (warp/watch.hpp, docs/coordination.md
// "Watch", "History") on three in-process nodes with the Raft engine: a callback watch sees
// sets, read-modify-writes and deletes from every node in order per key with prev values;
// a node restart on its data dir and a resume from the last cursor repeat and miss nothing;
// history and get_at; the clear refusals.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "test/support/process.hpp"
#include "warp/node.hpp"
#include "warp/strong_watch.hpp"

using namespace warp;
using namespace std::chrono_literals;

namespace {

struct watch_raft_cluster {
  test::temp_dir dir{"warp-watch-node"};
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<node>> nodes;

  watch_raft_cluster() {
    for (int i = 0; i < 3; ++i) ports.push_back(test::free_port());
    nodes.resize(3);
    for (std::size_t i = 0; i < 3; ++i) start(i);
  }
  ~watch_raft_cluster() {
    for (auto& n : nodes)
      if (n) n->stop();
  }
  void start(std::size_t i) {
    node_config cfg;
    cfg.name = "w" + std::to_string(i);
    cfg.listen = "127.0.0.1:" + std::to_string(ports[i]);
    for (std::size_t j = 0; j < ports.size(); ++j)
      if (j != i) cfg.peers.push_back("127.0.0.1:" + std::to_string(ports[j]));
    cfg.storage = "memory";
    cfg.data_dir = dir.str() + "/n" + std::to_string(i);
    cfg.patterns = {"s:*=strong_distributed"};
    cfg.log_level = "warn";
    cfg.strong.engine = strong_engine::raft;
    cfg.strong.raft_tick = 50ms;
    cfg.strong.timeout = 5s;
    cfg.strong.watch.max_watchers = 3;
    cfg.strong.watch.progress_interval = 100ms;
    auto n = node::start(cfg);
    REQUIRE(n);
    nodes[i] = std::move(*n);
  }
  bool wait_serving() {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      for (std::size_t i = 0; i < nodes.size() && all; ++i)
        for (int k = 0; k < 16 && all; ++k)
          all = !nodes[i] || nodes[i]->set("s:probe" + std::to_string(k), "x");
      if (all) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
};

struct collector {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<watch_event> events;
  void operator()(const watch_event& e) {
    std::lock_guard g{mtx};
    events.push_back(e);
    cv.notify_all();
  }
  std::vector<watch_event> changes() {
    std::lock_guard g{mtx};
    std::vector<watch_event> out;
    for (auto& e : events)
      if (e.type == watch_event::kind::put || e.type == watch_event::kind::del) out.push_back(e);
    return out;
  }
  bool wait_changes(std::size_t n, std::chrono::seconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (changes().size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("strong watch: every node's writes in order per key, resumed after a restart",
          "[watch]") {
  watch_raft_cluster c;
  REQUIRE(c.wait_serving());
  auto col = std::make_shared<collector>();
  auto h = watch(
      *c.nodes[1], "s:w", "", [col](const watch_event& e) { (*col)(e); }, true);
  REQUIRE(h);
  REQUIRE(c.nodes[0]->set("s:w1", "a"));
  REQUIRE(c.nodes[2]->set("s:w1", "b"));
  REQUIRE(c.nodes[1]->update("s:w1", [](const buffer* cur, std::int64_t exp) -> result<mutation> {
    return mutation::put(std::string{cur ? view(*cur) : ""} + "+c", exp);
  }));
  REQUIRE(c.nodes[2]->set("s:w2", "x"));
  REQUIRE(c.nodes[0]->remove("s:w1"));
  REQUIRE(c.nodes[0]->remove("s:w1"));  // absent: no event
  REQUIRE(c.nodes[0]->set("s:other", "not watched"));
  REQUIRE(col->wait_changes(5));
  std::this_thread::sleep_for(300ms);
  auto ev = col->changes();
  REQUIRE(ev.size() == 5);
  std::vector<std::string> w1;
  for (auto& e : ev)
    if (e.key == "s:w1")
      w1.push_back(e.type == watch_event::kind::del ? "-" + e.prev_value : e.value);
  CHECK(w1 == std::vector<std::string>{"a", "b", "b+c", "-b+c"});
  CHECK(ev[1].has_prev);
  CHECK(ev[1].prev_value == "a");
  // An idle watch hears progress.
  {
    std::lock_guard g{col->mtx};
    bool progress = false;
    for (auto& e : col->events) progress |= e.type == watch_event::kind::progress;
    CHECK(progress);
  }
  auto cursor = ev.back().cursor;

  // History and get_at on another node (same revisions everywhere).
  auto hist = history(*c.nodes[2], "s:w1");
  REQUIRE(hist);
  REQUIRE(hist->size() == 4);
  CHECK((*hist)[0].deleted);
  CHECK((*hist)[0].revision == ev.back().revision);
  auto at = get_at(*c.nodes[2], "s:w1", (*hist)[2].revision);
  REQUIRE(at);
  CHECK(at->value == "b");

  // Restart the watched node; writes meanwhile; resume from the cursor on it.
  h->cancel();
  c.nodes[1]->stop();
  c.nodes[1].reset();
  REQUIRE(c.nodes[0]->set("s:w3", "while-down"));
  c.start(1);
  auto col2 = std::make_shared<collector>();
  result<watch_handle> h2 = error{errc::internal};
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!(h2 = watch(*c.nodes[1], "s:w", cursor, [col2](const watch_event& e) { (*col2)(e); })) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  REQUIRE(h2);
  REQUIRE(c.nodes[2]->set("s:w3", "after"));
  REQUIRE(col2->wait_changes(2));
  std::this_thread::sleep_for(300ms);
  auto ev2 = col2->changes();
  REQUIRE(ev2.size() == 2);
  CHECK(ev2[0].value == "while-down");
  CHECK(ev2[1].value == "after");

  // Refusals: too many watches (3 per node), a malformed start.
  std::vector<watch_handle> many;
  result<watch_handle> over = error{errc::internal};
  for (int i = 0; i < 4; ++i) {
    over = watch(*c.nodes[1], "s:", "", [](const watch_event&) {});
    if (!over) break;
    many.push_back(std::move(*over));
  }
  CHECK(over.code() == errc::rate_limited);
  CHECK(open_watch(*c.nodes[0], "s:", "1:x").code() == errc::invalid_argument);
}
