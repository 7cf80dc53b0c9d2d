// The pure storage-protection classes (runtime/readthrough/protection.hpp), with time
// passed in: every transition is checked at an exact instant.
#include <catch2/catch.hpp>

#include "runtime/readthrough/protection.hpp"

using namespace warp;
using namespace warp::detail;
using std::chrono::milliseconds;

TEST_CASE("token bucket: a burst, then the refill rate", "[protection]") {
  token_bucket b{10.0, 3.0};  // 10/s = one token per 100 ms
  milliseconds t{1000};
  CHECK(b.try_take(t));
  CHECK(b.try_take(t));
  CHECK(b.try_take(t));
  CHECK_FALSE(b.try_take(t));
  CHECK_FALSE(b.try_take(t + milliseconds{99}));
  CHECK(b.try_take(t + milliseconds{100}));
  CHECK_FALSE(b.try_take(t + milliseconds{150}));
  // A long pause refills only up to the burst.
  t += milliseconds{10'000};
  CHECK(b.try_take(t));
  CHECK(b.try_take(t));
  CHECK(b.try_take(t));
  CHECK_FALSE(b.try_take(t));
}

TEST_CASE("token bucket: rate 0 is unlimited", "[protection]") {
  token_bucket b{0.0, 1.0};
  for (int i = 0; i < 1000; ++i) REQUIRE(b.try_take(milliseconds{0}));
}

TEST_CASE("breaker: opens after N consecutive failures, a success resets the count",
          "[protection]") {
  circuit_breaker cb{{.failures = 3, .cooldown = milliseconds{500}}};
  milliseconds t{0};
  cb.on_failure(t);
  cb.on_failure(t);
  cb.on_success(t);  // resets
  cb.on_failure(t);
  cb.on_failure(t);
  CHECK(cb.state() == breaker_state::closed);
  CHECK(cb.allow(t));
  cb.on_failure(t);
  CHECK(cb.state() == breaker_state::open);
  CHECK(cb.transitions() == 1);
  CHECK_FALSE(cb.allow(t + milliseconds{499}));
}

TEST_CASE("breaker: half-open admits one probe after the cool-down, success closes it",
          "[protection]") {
  circuit_breaker cb{{.failures = 1, .cooldown = milliseconds{500}}};
  cb.on_failure(milliseconds{0});
  REQUIRE(cb.state() == breaker_state::open);
  CHECK(cb.allow(milliseconds{500}));
  CHECK(cb.state() == breaker_state::half_open);
  CHECK_FALSE(cb.allow(milliseconds{501}));  // only one probe in flight
  cb.on_success(milliseconds{510});
  CHECK(cb.state() == breaker_state::closed);
  CHECK(cb.allow(milliseconds{511}));
  CHECK(cb.transitions() == 3);  // closed->open->half_open->closed
}

TEST_CASE("breaker: a failed probe opens it again for a full cool-down", "[protection]") {
  circuit_breaker cb{{.failures = 1, .cooldown = milliseconds{500}}};
  cb.on_failure(milliseconds{0});
  REQUIRE(cb.allow(milliseconds{600}));
  cb.on_failure(milliseconds{610});
  CHECK(cb.state() == breaker_state::open);
  CHECK_FALSE(cb.allow(milliseconds{1000}));
  CHECK(cb.allow(milliseconds{1110}));
  CHECK(cb.opened() == 2);
}

TEST_CASE("breaker: opens on a failure ratio over the window once it has enough calls",
          "[protection]") {
  breaker_options o;
  o.failures = 0;  // consecutive count off: only the ratio
  o.failure_ratio = 0.5;
  o.window = milliseconds{1000};
  o.min_calls = 4;
  circuit_breaker cb{o};
  cb.on_failure(milliseconds{0});
  cb.on_failure(milliseconds{1});
  CHECK(cb.state() == breaker_state::closed);  // too few calls to judge
  cb.on_success(milliseconds{2});
  cb.on_failure(milliseconds{3});  // 3 of 4 failed
  CHECK(cb.state() == breaker_state::open);

  // Outcomes older than the window no longer count.
  circuit_breaker cb2{o};
  cb2.on_failure(milliseconds{0});
  cb2.on_failure(milliseconds{0});
  cb2.on_failure(milliseconds{0});
  for (int i = 0; i < 4; ++i) cb2.on_success(milliseconds{2000 + i});
  cb2.on_failure(milliseconds{2010});  // 1 of 5 in the window
  CHECK(cb2.state() == breaker_state::closed);
}

TEST_CASE("storage guard: rate_limited and circuit open with clear messages", "[protection]") {
  storage_guard g{2.0, 2.0, {.failures = 2, .cooldown = milliseconds{100}}};
  milliseconds t{0};
  CHECK(g.admit(t));
  CHECK(g.admit(t));
  auto limited = g.admit(t);
  REQUIRE_FALSE(limited);
  CHECK(limited.code() == errc::rate_limited);
  CHECK(limited.err().message() == "storage fetch rate limit of 2/s exceeded");
  CHECK(g.rate_limited() == 1);

  storage_guard h{0.0, 1.0, {.failures = 2, .cooldown = milliseconds{100}}};
  h.report(t, errc::storage_error);  // storage answered: not a failure of reachability
  h.report(t, errc::storage_unavailable);
  CHECK(h.state() == breaker_state::closed);
  h.report(t, errc::storage_unavailable);
  CHECK(h.state() == breaker_state::open);
  auto open = h.admit(t + milliseconds{50});
  REQUIRE_FALSE(open);
  CHECK(open.code() == errc::storage_unavailable);
  CHECK(open.err().message().starts_with("circuit open"));
  CHECK(h.admit(t + milliseconds{100}));  // the probe
  h.report(t + milliseconds{101}, errc::ok);
  CHECK(h.state() == breaker_state::closed);
}
