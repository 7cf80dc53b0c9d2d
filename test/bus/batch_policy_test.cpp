// The adaptive batching decision (bus/batch_policy) with the time passed in: a simulated
// sender pushes records at scripted instants into a real bus::outbound_queue and flushes
// when the policy says so, exactly as the cluster actor does (a wake-up when records are
// waiting and no flush is scheduled; a flush drains batches within the policy's bounds).
#include <catch2/catch.hpp>

#include <deque>
#include <optional>

#include "bus/batch_policy.hpp"
#include "bus/batcher.hpp"

using namespace warp::bus;
using namespace std::chrono_literals;
using micros = std::chrono::microseconds;

namespace {

const batch_policy::time_point t0 = batch_policy::time_point{} + std::chrono::hours(1);

change_record rec(std::size_t i, std::size_t value_bytes = 8) {
  change_record r;
  r.key = "k" + std::to_string(i);
  r.ver = {i + 1, 1};
  r.kind = record_kind::value;
  r.value.assign(value_bytes, 'v');
  return r;
}

struct sim_result {
  std::size_t batches = 0;
  std::size_t records = 0;
  std::size_t max_batch = 0;
  micros max_wait{0};
  std::size_t immediate = 0;
  std::size_t delayed = 0;
  /// Records that left in a batch of more than one.
  std::size_t coalesced_records = 0;
};

/// Runs the sender over `arrivals` (offsets from t0, ascending), then lets the last
/// scheduled flush fire.
sim_result simulate(batch_policy& p, const std::vector<micros>& arrivals) {
  outbound_queue q;
  std::deque<batch_policy::time_point> since;  // arrival instants, FIFO like the queue
  std::optional<batch_policy::time_point> flush_at;
  sim_result r;
  auto flush = [&](batch_policy::time_point now) {
    flush_at.reset();
    p.flushed(now);
    while (!q.empty()) {
      auto d = q.drain(p.drain_records(), p.drain_bytes(), p.coalesce());
      REQUIRE(d.coalesced == 0);  // distinct keys
      ++r.batches;
      r.records += d.records.size();
      r.max_batch = std::max(r.max_batch, d.records.size());
      if (d.records.size() > 1) r.coalesced_records += d.records.size();
      for (std::size_t i = 0; i < d.records.size(); ++i) {
        r.max_wait = std::max(r.max_wait, std::chrono::duration_cast<micros>(now - since.front()));
        since.pop_front();
      }
    }
  };
  std::size_t i = 0;
  for (auto at : arrivals) {
    auto now = t0 + at;
    if (flush_at && *flush_at <= now) flush(*flush_at);
    q.push(rec(i++));
    since.push_back(now);
    if (flush_at) continue;  // a flush is scheduled: it takes this record too
    auto d = p.on_wake(now, q.pushed(), q.size());
    if (d.send_now) {
      ++r.immediate;
      flush(now);
    } else {
      ++r.delayed;
      REQUIRE(d.wait > micros{0});
      flush_at = now + d.wait;
    }
  }
  if (flush_at) flush(*flush_at);
  return r;
}

/// `n` arrivals, one every `gap`, starting at `from`.
std::vector<micros> steady_load(std::size_t n, micros gap, micros from = micros{0}) {
  std::vector<micros> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(from + gap * static_cast<std::int64_t>(i));
  return out;
}

}  // namespace

TEST_CASE("batch policy: an idle node sends every change at once") {
  batch_policy p{batch_policy_options{}};
  auto r = simulate(p, steady_load(200, 10ms));  // 100 records/s
  CHECK(r.records == 200);
  CHECK(r.batches == 200);
  CHECK(r.delayed == 0);
  CHECK(r.max_batch == 1);
  CHECK(r.max_wait == micros{0});
  CHECK(p.current_delay() == micros{0});
  CHECK(p.rate() < 200);
}

TEST_CASE("batch policy: a burst coalesces into batches and no record waits past the max") {
  batch_policy_options o;  // busy above 20k/s, max delay 500 us
  batch_policy p{o};
  auto r = simulate(p, steady_load(4000, 5us));  // 200k records/s for 20 ms
  CHECK(r.records == 4000);
  CHECK(r.delayed > 0);
  // After the first millisecond (the estimate needs a window), records leave in batches.
  CHECK(r.coalesced_records >= 3000);
  CHECK(r.batches < 400);
  CHECK(r.max_batch > 50);
  CHECK(r.max_batch <= o.max_records);
  CHECK(r.max_wait <= o.max_delay);
}

TEST_CASE("batch policy: the delay never exceeds the max and shrinks as the load grows") {
  batch_policy_options o;
  o.max_delay = 500us;
  o.target_records = 256;
  micros previous = micros::max();
  for (auto gap : {40us, 10us, 2us, 1us}) {  // 25k, 100k, 500k, 1M records/s
    batch_policy p{o};
    std::uint64_t pushed = 0;
    micros d{0};
    for (int ms = 0; ms < 30; ++ms) {
      pushed += static_cast<std::uint64_t>(1ms / gap);
      d = p.delay(t0 + std::chrono::milliseconds(ms), pushed);
      CHECK(d <= o.max_delay);
    }
    CHECK(d > micros{0});
    CHECK(d <= previous);
    previous = d;
  }
  CHECK(previous < o.max_delay);  // 256 records at 1M/s: 256 us
  CHECK(previous == micros{256});

  SECTION("busy_rate 0 is the fixed-delay policy: always the max") {
    o.busy_rate = 0;
    batch_policy p{o};
    CHECK(p.delay(t0, 1) == o.max_delay);
    auto d = p.on_wake(t0 + 100us, 2, 1);
    p.flushed(t0 + 100us);
    d = p.on_wake(t0 + 300us, 3, 1);
    CHECK_FALSE(d.send_now);
    CHECK(d.wait == 300us);  // counted from the previous flush, not from now
    CHECK(p.on_wake(t0 + 700us, 4, 1).send_now);
  }
}

TEST_CASE("batch policy: the rate estimate follows the load") {
  batch_policy p{batch_policy_options{}};
  std::uint64_t pushed = 0;
  auto now = t0;
  auto run = [&](std::uint64_t per_ms, int ms) {
    for (int i = 0; i < ms; ++i) {  // a wake-up every millisecond
      now += 1ms;
      pushed += per_ms;
      p.on_wake(now, pushed, 1);
    }
  };
  run(50, 20);  // 50k/s
  CHECK(p.rate() == Approx(50'000).epsilon(0.05));
  CHECK(p.current_delay() == micros{500});  // 256 at 50k/s = 5.1 ms, capped
  run(1000, 20);                            // 1M/s
  CHECK(p.rate() == Approx(1'000'000).epsilon(0.05));
  CHECK(p.current_delay() < micros{300});
  run(5, 20);  // 5k/s: below the busy rate
  CHECK(p.rate() == Approx(5'000).epsilon(0.05));
  CHECK(p.current_delay() == micros{0});
  // Silence, then one record: a quiet window resets the estimate, the record goes at once.
  now += 50ms;
  auto d = p.on_wake(now, ++pushed, 1);
  CHECK(d.send_now);
  CHECK(p.rate() < 100);
}

TEST_CASE("batch policy: batches respect the records and bytes bounds") {
  batch_policy_options o;
  o.max_records = 100;
  o.max_bytes = 10 * 1024;
  batch_policy p{o};
  CHECK(p.drain_records() == 100);
  CHECK(p.drain_bytes() == 10 * 1024);

  SECTION("a full queue goes at once even under load") {
    std::uint64_t pushed = 0;
    for (int ms = 0; ms < 5; ++ms) p.delay(t0 + std::chrono::milliseconds(ms), pushed += 1000);
    p.flushed(t0 + 5ms);
    CHECK_FALSE(p.on_wake(t0 + 5ms + 10us, pushed += 10, 99).send_now);
    CHECK(p.on_wake(t0 + 5ms + 20us, pushed += 10, 100).send_now);
  }
  SECTION("drained batches stay within records and bytes") {
    outbound_queue q;
    for (std::size_t i = 0; i < 1000; ++i) q.push(rec(i, i % 7 == 0 ? 900 : 40));
    std::size_t total = 0;
    while (!q.empty()) {
      auto d = q.drain(p.drain_records(), p.drain_bytes(), p.coalesce());
      std::size_t bytes = 0;
      for (auto& r : d.records) bytes += approx_size(r);
      CHECK(d.records.size() <= o.max_records);
      CHECK(bytes <= o.max_bytes);
      total += d.records.size();
    }
    CHECK(total == 1000);
  }
  SECTION("a record above the bytes bound still leaves, alone") {
    outbound_queue q;
    q.push(rec(1, 20 * 1024));
    q.push(rec(2, 10));
    auto d = q.drain(p.drain_records(), p.drain_bytes(), p.coalesce());
    CHECK(d.records.size() == 1);
    CHECK(q.size() == 1);
  }
  SECTION("batching off: one record per batch, at once, every version kept") {
    o.batching = false;
    batch_policy off{o};
    CHECK(off.drain_records() == 1);
    CHECK_FALSE(off.coalesce());
    auto r = simulate(off, steady_load(500, 1us));
    CHECK(r.batches == 500);
    CHECK(r.delayed == 0);
    CHECK(r.max_wait == micros{0});
  }
}
