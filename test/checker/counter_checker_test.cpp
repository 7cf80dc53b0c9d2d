// The counter checker of warp-nemesis's INCR workload (test/support/counter_check.hpp):
// each rule accepts what a correct counter can do and rejects what it cannot.
#include <catch2/catch.hpp>

#include "test/support/counter_check.hpp"

using warp::test::check_counter;
using warp::test::counter_op;
using ckind = counter_op::kind;

namespace {

counter_op incr(int client, std::int64_t v, std::int64_t a, std::int64_t b) {
  return {ckind::incr, v, a, b, client};
}
counter_op read(int client, std::int64_t v, std::int64_t a, std::int64_t b) {
  return {ckind::get, v, a, b, client};
}
counter_op lost_track(int client, std::int64_t a) {
  return {ckind::incr, 0, a, counter_op::unknown_return, client};
}

}  // namespace

TEST_CASE("counter: sequential and concurrent increments that add up are accepted") {
  auto r = check_counter(
      {incr(0, 1, 0, 1), read(1, 1, 2, 3), incr(0, 2, 4, 10), incr(1, 3, 5, 9), read(2, 1, 5, 6)},
      3);
  CHECK(r.ok());
  CHECK(r.violations == 0);
  CHECK(r.acknowledged == 3);
  CHECK(r.ops_checked == 5);
}

TEST_CASE("counter: unknown increments may or may not be in the final value") {
  std::vector<counter_op> h{incr(0, 1, 0, 1), lost_track(1, 2), incr(0, 3, 4, 5)};
  CHECK(check_counter(h, 3).ok());  // the unknown one applied (and explains the 3)
  auto none = check_counter({incr(0, 1, 0, 1), lost_track(1, 2)}, 1);
  CHECK(none.ok());
  CHECK(none.unknown == 1);
  auto over = check_counter({incr(0, 1, 0, 1), lost_track(1, 2)}, 3);
  CHECK(over.violations == 1);
}

TEST_CASE("counter: a final value below the acknowledged increments counts them lost") {
  auto r = check_counter({incr(0, 1, 0, 1), incr(0, 2, 2, 3), incr(1, 3, 4, 5)}, 1);
  CHECK(r.lost == 2);
  CHECK_FALSE(r.ok());
}

TEST_CASE("counter: two acknowledged increments returning one value is a violation") {
  auto r = check_counter({incr(0, 1, 0, 5), incr(1, 1, 1, 4)}, 2);
  CHECK(r.violations >= 1);
  CHECK_FALSE(r.notes.empty());
}

TEST_CASE("counter: a read older than a completed increment is a violation") {
  auto stale = check_counter({incr(0, 1, 0, 1), incr(0, 2, 2, 3), read(1, 1, 4, 5)}, 2);
  CHECK(stale.violations == 1);
  // The same read overlapping the second increment may see either value.
  CHECK(check_counter({incr(0, 1, 0, 1), incr(0, 2, 2, 6), read(1, 1, 4, 5)}, 2).ok());
  // An increment must return more than anything observed before it was invoked.
  auto back = check_counter({incr(0, 2, 0, 1), incr(1, 1, 2, 3)}, 2);
  CHECK(back.violations >= 1);
}
