// The hybrid logical clock: monotonic, never behind what it observed, and deaf to readings
// too far ahead of its physical clock (the one sanity bound every mode relies on).
#include <catch2/catch.hpp>

#include "merge/hlc.hpp"

#include <spdlog/sinks/ringbuffer_sink.h>

#include "runtime/core/log.hpp"

namespace {
std::int64_t fake_now_ms = 1'000'000;
std::int64_t fake_clock() {
  return fake_now_ms;
}
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
  auto remote = hlc_at(fake_now_ms + warp::hybrid_clock::default_max_ahead_ms - 1, 7);
  CHECK(clock.observe(remote));
  CHECK(clock.last() == remote);
  CHECK(clock.next() > remote);
}

TEST_CASE("hlc: a reading beyond the bound is ignored and reported") {
  fake_now_ms = 1'000'000;
  warp::hybrid_clock clock{fake_clock};
  auto before = clock.next();
  CHECK_FALSE(clock.observe(hlc_at(fake_now_ms + warp::hybrid_clock::default_max_ahead_ms + 1)));
  CHECK_FALSE(clock.observe(~std::uint64_t{0}));
  CHECK(clock.last() == before);
  CHECK(clock.next() < hlc_at(fake_now_ms + 1));
}

TEST_CASE("hlc: the skew bound is configurable and readings past it are counted") {
  fake_now_ms = 1'000'000;
  warp::hybrid_clock clock{fake_clock, 1'000};
  CHECK(clock.max_ahead_ms() == 1'000);
  CHECK(clock.observe(hlc_at(fake_now_ms + 1'000, 0xffff)));  // at the bound: followed
  CHECK(clock.skewed() == 0);
  auto before = clock.last();
  CHECK_FALSE(clock.observe(hlc_at(fake_now_ms + 1'001)));
  CHECK_FALSE(clock.observe(hlc_at(fake_now_ms + 3'600'000)));
  CHECK(clock.skewed() == 2);
  CHECK(clock.max_skew_seen_ms() == 3'600'000);
  CHECK(clock.last() == before);  // the clock did not run away
  // Loosened at run time (the node sets it from --max-clock-skew).
  clock.set_max_ahead_ms(10'000);
  CHECK(clock.observe(hlc_at(fake_now_ms + 5'000)));
  CHECK(clock.last() == hlc_at(fake_now_ms + 5'000));
  CHECK(warp::hybrid_clock::default_max_ahead_ms == 5'000);
}

TEST_CASE("hlc: skewed readings log one warning per 10 s, however many arrive") {
  fake_now_ms = 2'000'000;
  warp::hybrid_clock clock{fake_clock};
  auto logger = warp::detail::log();
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  logger->sinks().push_back(sink);
  auto warnings = [&] {
    std::size_t n = 0;
    for (auto& line : sink->last_formatted())
      if (line.find("ignored a remote clock reading") != std::string::npos) ++n;
    return n;
  };
  for (int i = 0; i < 100; ++i) clock.observe(hlc_at(fake_now_ms + 60'000));
  CHECK(warnings() == 1);
  fake_now_ms += 9'000;
  clock.observe(hlc_at(fake_now_ms + 60'000));
  CHECK(warnings() == 1);
  fake_now_ms += 1'000;
  clock.observe(hlc_at(fake_now_ms + 60'000));
  CHECK(warnings() == 2);
  CHECK(clock.skewed() == 102);
  logger->sinks().pop_back();
}
