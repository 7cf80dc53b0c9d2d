// The run-time pattern table over a node_state built by hand (runtime/node/pattern_table):
// per-glob versions and tombstones, merges from peers, and the limiters/breakers of a
// pattern whose protection changed or that was removed leave the guard map.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

// node_state's destructor needs every type it owns complete.
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/modes/strong.hpp"
#include "runtime/node/pattern_table.hpp"

using warp::errc;

namespace {

struct fixture {
  warp::detail::node_state st;
  std::unique_ptr<warp::detail::pattern_table_keeper> keeper;
  explicit fixture(std::uint32_t id = 7) {
    st.id = id;
    st.config.data_dir.clear();  // nothing persisted: each fixture starts empty
    st.l1 = std::make_unique<warp::l1_store>(warp::l1_options{});
    st.store = warp::make_memory_storage();
    keeper = std::make_unique<warp::detail::pattern_table_keeper>(st);
    REQUIRE(keeper->load_start_table());
  }
  // A read-through fetch of `key`: creates its pattern's guard, as a miss would.
  void fetch(std::string_view key) { (void)st.writes.guarded_fetch(key, st.patterns.lookup(key)); }
  warp::bus::pattern_table table() const {
    auto bytes = keeper->encoded();
    REQUIRE_FALSE(bytes.empty());
    auto t = warp::bus::decode_pattern_table(bytes);
    REQUIRE(t);
    return *t;
  }
};

}  // namespace

TEST_CASE(
    "pattern table: a pattern's old limiter and breaker leave the guard map when its "
    "protection changes or it is removed") {
  fixture f;
  REQUIRE(f.keeper->set("g:*=strong_local+breaker=3"));
  REQUIRE(f.keeper->set("k:*=strong_local+rate=100"));
  f.fetch("g:1");
  f.fetch("k:1");
  f.fetch("other");  // the node-wide guard (slot 0)
  CHECK(f.st.writes.guard_count() == 3);
  // Changed protection: a new slot; the old one is dropped at once.
  REQUIRE(f.keeper->set("g:*=strong_local+breaker=4"));
  CHECK(f.st.writes.guard_count() == 2);
  f.fetch("g:1");
  CHECK(f.st.writes.guard_count() == 3);
  // Many changes do not grow the map.
  for (int i = 5; i < 50; ++i) {
    REQUIRE(f.keeper->set("g:*=strong_local+breaker=" + std::to_string(i)));
    f.fetch("g:1");
  }
  CHECK(f.st.writes.guard_count() == 3);
  // Removed: its guard goes; the node-wide one and k:*'s stay.
  REQUIRE(f.keeper->remove("g:*"));
  CHECK(f.st.writes.guard_count() == 2);
  // A pattern without protection of its own shares slot 0: nothing new.
  REQUIRE(f.keeper->set("k:*=strong_local"));
  CHECK(f.st.writes.guard_count() == 1);
}

TEST_CASE(
    "pattern table: each glob has its own version, rm leaves a tombstone, and a peer's "
    "concurrent change to another glob is merged, not lost") {
  fixture a{1}, b{2};
  REQUIRE(a.keeper->set("a:*=strong_local:1m"));
  REQUIRE(b.keeper->set("b:*=strong_local:2m"));
  // The same counter on both (made at the same moment): both survive the exchange.
  auto ta = a.table(), tb = b.table();
  CHECK(ta.entries[0].ver == warp::bus::pattern_version{1, 1});
  CHECK(tb.entries[0].ver == warp::bus::pattern_version{1, 2});
  a.keeper->apply_remote(tb);
  b.keeper->apply_remote(ta);
  CHECK(a.keeper->version() == b.keeper->version());
  CHECK(a.keeper->view().patterns.size() == 2);
  CHECK(a.st.patterns.lookup("b:x").ttl == std::chrono::minutes{2});
  CHECK(b.st.patterns.lookup("a:x").ttl == std::chrono::minutes{1});
  // rm: a tombstone at a newer version, which an older set of the glob cannot undo.
  auto before_rm = b.table();
  REQUIRE(a.keeper->remove("b:*"));
  CHECK(a.keeper->remove("b:*").code() == errc::not_found);
  a.keeper->apply_remote(before_rm);
  CHECK(a.keeper->view().patterns.size() == 1);
  b.keeper->apply_remote(a.table());
  CHECK(b.keeper->view().patterns.size() == 1);
  CHECK(b.st.patterns.lookup("b:x").ttl == std::chrono::milliseconds{0});
  CHECK(a.keeper->version() == b.keeper->version());
  auto t = a.table();
  REQUIRE(t.entries.size() == 2);
  CHECK(t.entries[1].glob == "b:*");
  CHECK(t.entries[1].removed());
  CHECK(t.entries[1].ver == warp::bus::pattern_version{2, 1});
  // Set again after the removal: a newer version than the tombstone's.
  REQUIRE(b.keeper->set("b:*=strong_local:3m"));
  a.keeper->apply_remote(b.table());
  CHECK(a.st.patterns.lookup("b:x").ttl == std::chrono::minutes{3});
}

TEST_CASE("pattern table: tombstones are bounded, the newest kept") {
  fixture f;
  const auto n = warp::detail::pattern_table_keeper::max_tombstones + 10;
  for (std::size_t i = 0; i < n; ++i) {
    auto glob = "t" + std::to_string(i) + ":*";
    REQUIRE(f.keeper->set(glob + "=strong_local"));
    REQUIRE(f.keeper->remove(glob));
  }
  auto t = f.table();
  CHECK(t.entries.size() == warp::detail::pattern_table_keeper::max_tombstones);
  for (const auto& e : t.entries) CHECK(e.removed());
  // The oldest went: t0..t9.
  for (const auto& e : t.entries) CHECK(e.glob != "t0:*");
}
