// What warp-bench's Kafka comparisons (`kafka`, `federation`) share: the broker they run on
// (warp-kafka-mock started next to the bench, or given brokers), the stamped values and
// latency samples of their paced phases, and the raw librdkafka produce->consume baseline
// that every Kafka figure of Warp's is a ratio to.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "test/support/process.hpp"

namespace warp_bench {

/// Nanoseconds on the steady clock, the time base of every stamp.
std::int64_t now_ns();

/// A value of `bytes` (at least 8) whose first 8 bytes are the send time.
std::string stamped(std::size_t bytes);
/// The send time in a stamped value; 0 when it is too short.
std::int64_t stamp_of(std::string_view v);

/// Delays in microseconds, added from any thread.
class latencies {
 public:
  void add(std::int64_t sent_ns);
  void add_us(double us);
  void clear();
  std::size_t size();
  /// The p-quantile (0 < p < 1); 0 without samples.
  double pct(double p);

 private:
  std::mutex mu_;
  std::vector<double> us_;
};

/// Throughput or paced-latency figures of one phase.
struct phase_result {
  double msgs_per_s = 0;
  double p50_us = 0, p99_us = 0;
  std::size_t received = 0;
};

/// warp-kafka-mock (librdkafka's mock cluster) in a child process with `topics`
/// (NAME:PARTITIONS each), stopped when this goes. Throws when it does not start.
class kafka_mock_broker {
 public:
  explicit kafka_mock_broker(const std::vector<std::string>& topics);
  ~kafka_mock_broker();
  kafka_mock_broker(const kafka_mock_broker&) = delete;
  kafka_mock_broker& operator=(const kafka_mock_broker&) = delete;
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  std::unique_ptr<warp::test::temp_dir> dir_;
  std::unique_ptr<warp::test::child_process> proc_;
  std::string bootstrap_;
};

/// Sleeps until message `i` of a phase paced at `rate` per second started at `t0` is due
/// (at once when `rate` <= 0).
void pace(std::chrono::steady_clock::time_point t0, std::size_t i, double rate);

/// Polls `count` (every `poll`) until it reaches `n` or `limit` passes, then the phase's
/// figures: what arrived per second since `t0`, and `lat`'s quantiles when given.
phase_result finish_phase(const std::function<std::uint64_t()>& count, std::size_t n,
                          std::chrono::steady_clock::time_point t0, latencies* lat,
                          std::chrono::milliseconds limit = std::chrono::seconds{120},
                          std::chrono::milliseconds poll = std::chrono::milliseconds{1});

/// A consumer group's join takes seconds: the phases wait for one warm-up record to
/// arrive (`got` >= 1, up to 60 s), then reset `got` and `lat` so the clock measures traffic.
void await_warm_up(std::atomic<std::size_t>& got, latencies& lat);

struct raw_kafka_options {
  std::string brokers;
  std::size_t value_bytes = 64;
  std::size_t keys = 1000;
  int fetch_wait_ms = 10;
};

/// Keys of the Kafka phases: user:<i mod keys>.
std::string key_of(std::size_t i, std::size_t keys);

/// Raw librdkafka: produces `n` stamped messages to `topic` (paced at `rate` per second
/// when > 0; an idempotent producer, acks=all, linger.ms=1) and consumes them in a group of
/// its own; the clock runs from the first produce to the last record consumed.
phase_result raw_kafka_phase(const raw_kafka_options& o, const std::string& topic, std::size_t n,
                             double rate);

}  // namespace warp_bench
