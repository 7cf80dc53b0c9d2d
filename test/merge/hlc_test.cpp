// The hybrid logical clock: monotonic, never behind what it observed, and deaf to readings
// too far ahead of its physical clock (the one sanity bound every mode relies on).
#include <catch2/catch.hpp>

#include "merge/hlc.hpp"

namespace {
std::int64_t fake_now_ms = 1'000'000;
std::int64_t fake_clock() { return fake_now_ms; }
std::uint64_t hlc_at(std::int64_t ms, std::uint16_t logical = 0) {
  return (static_cast<std::uint64_t>(ms) << 16) | logical;
}
}  // namespace

TEST_CASE("hlc: readings grow even when the physical clock stands still or goes back") {
  fake_now_ms = 1'000'000;
  warp::hybrid_clock clock{fake_clock};
  auto a = clock.next();
  auto b = clock.next();
  CHECK(b > a);
  fake_now_ms -= 5'000;
  CHECK(clock.next() > b);
}

TEST_CASE("hlc: an observed reading within the bound moves the clock past it") {
  fake_now_ms = 1'000'000;
  warp::hybrid_clock clock{fake_clock};
  auto remote = hlc_at(fake_now_ms + warp::hybrid_clock::max_ahead_ms - 1, 7);
  CHECK(clock.observe(remote));
  CHECK(clock.last() == remote);
  CHECK(clock.next() > remote);
}

TEST_CASE("hlc: a reading beyond the bound is ignored and reported") {
  fake_now_ms = 1'000'000;
  warp::hybrid_clock clock{fake_clock};
  auto before = clock.next();
  CHECK_FALSE(clock.observe(hlc_at(fake_now_ms + warp::hybrid_clock::max_ahead_ms + 1)));
  CHECK_FALSE(clock.observe(~std::uint64_t{0}));
  CHECK(clock.last() == before);
  CHECK(clock.next() < hlc_at(fake_now_ms + 1));
}
