#include <catch2/catch.hpp>

#include <random>

#include "test/support/linearizability.hpp"

using warp::test::check_linearizable;
using warp::test::register_op;
using kind = register_op::kind;

namespace {

register_op set(int client, std::string v, std::int64_t a, std::int64_t b, std::string key = "k") {
  return {kind::set, std::move(key), std::move(v), std::nullopt, a, b, client};
}
register_op get(int client, std::optional<std::string> v, std::int64_t a, std::int64_t b,
                std::string key = "k") {
  return {kind::get, std::move(key), {}, std::move(v), a, b, client};
}
register_op del(int client, std::int64_t a, std::int64_t b, std::string key = "k") {
  return {kind::del, std::move(key), {}, std::nullopt, a, b, client};
}
constexpr auto never = register_op::unknown_return;

}  // namespace

TEST_CASE("sequential histories that follow the register are accepted") {
  auto r = check_linearizable({get(0, std::nullopt, 0, 1), set(0, "a", 2, 3), get(0, "a", 4, 5),
                               del(0, 6, 7), get(0, std::nullopt, 8, 9)});
  CHECK(r.ok());
  CHECK(r.ops_checked == 5);
}

TEST_CASE("a read concurrent with a write may see either value") {
  CHECK(check_linearizable({set(0, "a", 0, 1), set(1, "b", 2, 10), get(2, "a", 3, 4)}).ok());
  CHECK(check_linearizable({set(0, "a", 0, 1), set(1, "b", 2, 10), get(2, "b", 3, 4)}).ok());
}

TEST_CASE("a stale read after a completed write is a violation") {
  auto r = check_linearizable({set(0, "a", 0, 1), set(1, "b", 2, 3), get(2, "a", 4, 5)});
  CHECK(r.outcome == warp::test::check_result::verdict::violation);
  CHECK(r.key == "k");
  CHECK_FALSE(r.explanation.empty());
}

TEST_CASE("a lost acknowledged write is a violation") {
  CHECK_FALSE(check_linearizable({set(0, "a", 0, 1), get(1, std::nullopt, 2, 3)}).ok());
}

TEST_CASE("reading a value nobody wrote is a violation") {
  CHECK_FALSE(check_linearizable({set(0, "a", 0, 1), get(1, "z", 2, 3)}).ok());
}

TEST_CASE("new-then-old reads ordered in real time are a violation") {
  // The write of b overlaps both reads, but once a read returned b, a later read must not
  // return a again: the classic non-linearizable register history.
  CHECK_FALSE(check_linearizable(
                  {set(0, "a", 0, 1), set(1, "b", 2, 20), get(2, "b", 3, 4), get(3, "a", 5, 6)})
                  .ok());
  CHECK(check_linearizable(
            {set(0, "a", 0, 1), set(1, "b", 2, 20), get(2, "a", 3, 4), get(3, "b", 5, 6)})
            .ok());
}

TEST_CASE("a write with an unknown outcome may take effect late or never") {
  CHECK(check_linearizable({set(0, "a", 0, 1), set(1, "b", 2, never), get(2, "a", 3, 4)}).ok());
  CHECK(check_linearizable({set(0, "a", 0, 1), set(1, "b", 2, never), get(2, "b", 30, 40)}).ok());
  // ...but it cannot take effect before it was invoked.
  CHECK_FALSE(
      check_linearizable({set(0, "a", 0, 1), get(2, "b", 3, 4), set(1, "b", 5, never)}).ok());
  // ...and once observed, it cannot be un-observed.
  CHECK_FALSE(check_linearizable(
                  {set(0, "a", 0, 1), set(1, "b", 2, never), get(2, "b", 3, 4), get(3, "a", 5, 6)})
                  .ok());
}

TEST_CASE("keys are checked independently") {
  auto r = check_linearizable({set(0, "a", 0, 1, "x"), set(0, "a", 0, 1, "y"),
                               get(1, "a", 2, 3, "x"), get(1, std::nullopt, 2, 3, "y")});
  CHECK_FALSE(r.ok());
  CHECK(r.key == "y");
}

TEST_CASE("a long random linearizable history from a simulated register passes") {
  // Simulate clients on a real register: each op takes effect at a random point inside its
  // interval; the recorded history is linearizable by construction.
  std::mt19937_64 rng{42};
  struct pending {
    register_op op;
    std::int64_t effect;
  };
  std::vector<pending> ops;
  for (int i = 0; i < 400; ++i) {
    std::int64_t a = static_cast<std::int64_t>(rng() % 100000);
    std::int64_t b = a + 1 + static_cast<std::int64_t>(rng() % 500);
    std::int64_t effect = a + static_cast<std::int64_t>(rng() % (b - a));
    int which = static_cast<int>(rng() % 3);
    register_op op = which == 0   ? set(i % 8, "v" + std::to_string(i), a, b)
                     : which == 1 ? get(i % 8, std::nullopt, a, b)
                                  : del(i % 8, a, b);
    ops.push_back({op, effect});
  }
  std::sort(ops.begin(), ops.end(), [](auto& x, auto& y) { return x.effect < y.effect; });
  std::optional<std::string> value;
  std::vector<register_op> history;
  for (auto& p : ops) {
    if (p.op.what == kind::set) value = p.op.input;
    if (p.op.what == kind::del) value.reset();
    if (p.op.what == kind::get) p.op.output = value;
    history.push_back(p.op);
  }
  auto r = check_linearizable(history);
  CHECK(r.ok());
  CHECK(r.ops_checked == 400);

  // Corrupt one read that has a completed, non-overlapping predecessor write: rejected.
  for (auto& op : history) {
    if (op.what == kind::get && op.output) {
      op.output = "never-written";
      break;
    }
  }
  CHECK_FALSE(check_linearizable(history).ok());
}
