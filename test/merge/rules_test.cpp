// The conflict rules of merge/rules.hpp, one by one, including which side wins a tie.
#include <catch2/catch.hpp>

#include "merge/rules.hpp"

namespace m = warp::merge;
using warp::version;

namespace {
constexpr version v(std::uint64_t hlc, std::uint32_t node = 1) {
  return version{hlc, node};
}
}  // namespace

TEST_CASE("only-if-newer: strictly newer replaces, a repeat or an older one does not") {
  STATIC_REQUIRE(m::replaces(v(1), v(2)));
  CHECK_FALSE(m::replaces(v(2), v(2)));
  CHECK_FALSE(m::replaces(v(2), v(1)));
  // Same clock reading: the writer's node id breaks the tie, the same way everywhere.
  CHECK(m::replaces(v(5, 1), v(5, 2)));
  CHECK_FALSE(m::replaces(v(5, 2), v(5, 1)));
  // An unversioned entry is older than any write.
  CHECK(m::replaces(version{}, v(1)));
}

TEST_CASE("an invalidation drops entries up to and including its version") {
  CHECK(m::invalidates(v(2), v(1)));
  CHECK(m::invalidates(v(2), v(2)));
  CHECK_FALSE(m::invalidates(v(2), v(3)));
  CHECK_FALSE(m::invalidates(v(2, 1), v(2, 2)));
}

TEST_CASE("tombstones: a hydration of the same or an older version stays out, a fill of it may") {
  // hydration vs tombstone
  CHECK(m::tombstone_hides_hydration(v(5), v(4)));
  CHECK(m::tombstone_hides_hydration(v(5), v(5)));
  CHECK_FALSE(m::tombstone_hides_hydration(v(5), v(6)));
  // read-through fill vs tombstone: the invalidated version itself is what storage holds
  CHECK_FALSE(m::tombstone_allows_fill(v(5), v(4)));
  CHECK(m::tombstone_allows_fill(v(5), v(5)));
  CHECK(m::tombstone_allows_fill(v(5), v(6)));
}

TEST_CASE("tombstone table: newest version per key while it lives") {
  m::tombstone_table t{8, 1000};
  CHECK_FALSE(t.find(42, 0));  // nothing allocated yet
  t.remember(42, v(10), 0);
  REQUIRE(t.find(42, 500));
  CHECK(*t.find(42, 500) == v(10));
  SECTION("an older tombstone of the same key does not replace a newer one") {
    t.remember(42, v(7), 100);
    CHECK(*t.find(42, 100) == v(10));
  }
  SECTION("a newer one does") {
    t.remember(42, v(12), 100);
    CHECK(*t.find(42, 100) == v(12));
  }
  SECTION("it expires after its lifetime") {
    CHECK(t.find(42, 1000));
    CHECK_FALSE(t.find(42, 1001));
    // and an expired slot takes an older version of the key again
    t.remember(42, v(3), 1001);
    CHECK(*t.find(42, 1001) == v(3));
  }
  SECTION("another key of the same slot replaces it; a lookup never answers for another key") {
    t.remember(42 + 8, v(1), 100);
    CHECK_FALSE(t.find(42, 100));
    CHECK(*t.find(50, 100) == v(1));
    CHECK_FALSE(t.find(42 + 16, 100));
  }
}

TEST_CASE("clear floor") {
  // Clears apply in version order, once.
  CHECK(m::clear_advances(version{}, v(1)));
  CHECK_FALSE(m::clear_advances(v(3), v(3)));
  CHECK_FALSE(m::clear_advances(v(3), v(2)));
  // Records are compared by clock reading only, whichever node wrote them.
  CHECK(m::below_clear_floor(v(10, 99), 10));
  CHECK(m::below_clear_floor(v(9), 10));
  CHECK_FALSE(m::below_clear_floor(v(11), 10));
  // Entries not newer than the clear go.
  CHECK(m::clear_drops(v(10), v(10)));
  CHECK_FALSE(m::clear_drops(v(10), v(11)));
}

TEST_CASE("hydrate floor: after a gap, older hydrations become invalidations") {
  auto bound = m::gap_bound(100);
  CHECK(bound.hlc == 100);
  // Every entry of the bound's clock reading is covered, whatever node wrote it.
  CHECK(m::invalidates(bound, v(100, 0xffffffffu)));
  CHECK_FALSE(m::invalidates(bound, v(101, 0)));
  CHECK(m::distrusted_by_gap(v(100), 100));
  CHECK_FALSE(m::distrusted_by_gap(v(101), 100));
  CHECK_FALSE(m::hydration_trusted(v(100), 100));
  CHECK(m::hydration_trusted(v(101), 100));
  // hydrates(): live and above the floor
  CHECK(m::hydrates(v(101), 0, 5000, 100));
  CHECK(m::hydrates(v(101), 6000, 5000, 100));
  CHECK_FALSE(m::hydrates(v(101), 5000, 5000, 100));  // expired at now
  CHECK_FALSE(m::hydrates(v(100), 0, 5000, 100));
}
