// Kafka transport (docs/kafka.md): an idempotent producer and a consumer-group consumer on
// librdkafka's C API. Each owns one thread that runs librdkafka's poll loop (delivery
// reports, fetches, commits), so nothing here ever runs on a CAF scheduler thread and no
// caller blocks on the network.
//
// Producer: enable.idempotence=true (implies acks=all and ordered retries), the message key
// is the cache key so every change of one key lands in one partition, in order. At most
// `max_in_flight` records are unacknowledged; past that publish() fails with
// errc::rate_limited and the rejection is counted: never a silent drop. The delivery report
// of each record calls the `acknowledged` callback with its outcome.
//
// Consumer: enable.auto.commit=false. The apply callback runs on the consumer's thread, one
// record at a time in partition order; a partition's offset is committed only after the
// callback succeeded for every record up to it. A failed apply is retried (same record,
// with a backoff) and the partition does not advance meanwhile, so a restart resumes from
// the last committed offset: at-least-once, nothing lost. Apply callbacks must therefore
// be idempotent (Warp's are: versions decide).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "warp/error.hpp"

namespace warp::bus {

/// Counters of a producer or consumer (read by /metrics; relaxed atomics).
struct kafka_counters {
  std::atomic<std::uint64_t> produced{0};       ///< handed to librdkafka
  std::atomic<std::uint64_t> delivered{0};      ///< acknowledged by the brokers (acks=all)
  std::atomic<std::uint64_t> failed{0};         ///< delivery failed after librdkafka's retries
  std::atomic<std::uint64_t> rejected{0};       ///< publish refused: in-flight queue full
  std::atomic<std::uint64_t> consumed{0};       ///< records read
  std::atomic<std::uint64_t> applied{0};        ///< apply callback succeeded
  std::atomic<std::uint64_t> apply_errors{0};   ///< apply failed (retried)
  std::atomic<std::uint64_t> committed{0};      ///< successful offset commits
  std::atomic<std::uint64_t> commit_lag{0};     ///< records between committed offsets and the ends
  std::atomic<std::uint64_t> broker_errors{0};  ///< librdkafka error callbacks (broker down ...)
  std::atomic<std::int64_t> in_flight{0};
};

enum class kafka_side : std::uint8_t { producer, consumer };

/// Prometheus families `<prefix>_produced_total`, `_delivered_total`, `_failed_total`,
/// `_rejected_total`, `_in_flight` (producer) or `_consumed_total`, `_applied_total`,
/// `_apply_errors_total`, `_commits_total`, `_commit_lag_records` (consumer), plus
/// `_broker_errors_total`; `labels` as `{node="n0"}` (docs/kafka.md, "Metrics").
std::string prometheus_text(const kafka_counters& c, kafka_side side, std::string_view prefix,
                            std::string_view labels);

struct kafka_producer_config {
  std::string brokers;  ///< bootstrap servers, HOST:PORT[,...]
  std::string topic;
  std::size_t max_in_flight = 100'000;
  std::chrono::milliseconds linger{1};
  /// Extra librdkafka properties (name, value), applied last.
  std::vector<std::pair<std::string, std::string>> properties;
};

class kafka_producer {
 public:
  /// Called on the producer's thread once per record: its key and the delivery outcome.
  using ack_fn = std::function<void(std::string_view key, const result<void>& outcome)>;

  static result<std::unique_ptr<kafka_producer>> open(kafka_producer_config cfg,
                                                      ack_fn on_ack = {});
  ~kafka_producer();  ///< flushes for up to 5 s, then stops the thread
  kafka_producer(const kafka_producer&) = delete;
  kafka_producer& operator=(const kafka_producer&) = delete;

  /// Queues one record (key = cache key). errc::rate_limited when max_in_flight records
  /// are unacknowledged (counted in `rejected`); errc::invalid_argument for a record
  /// librdkafka refuses (too large).
  result<void> publish(std::string_view key, std::string_view payload);
  /// Waits until every queued record is acknowledged or failed; errc::timeout otherwise.
  result<void> flush(std::chrono::milliseconds timeout);

  const kafka_counters& counters() const noexcept { return *counters_; }
  const std::string& topic() const noexcept { return cfg_.topic; }

  struct impl;

 private:
  explicit kafka_producer(kafka_producer_config cfg);
  kafka_producer_config cfg_;
  std::shared_ptr<kafka_counters> counters_;
  std::unique_ptr<impl> impl_;
};

/// One record handed to the consumer's apply callback.
struct kafka_record {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string_view key;
  std::string_view payload;
};

struct kafka_consumer_config {
  std::string brokers;
  std::string group;
  std::vector<std::string> topics;
  /// Commit at most this often (and on close, and before a partition is revoked).
  std::chrono::milliseconds commit_interval{200};
  /// Backoff before retrying a record whose apply failed.
  std::chrono::milliseconds retry_backoff{200};
  /// false simulates a crash: close without committing what was applied since the last
  /// commit (tests).
  bool commit_on_close = true;
  /// open_batched: at most this many records in one call of the batch callback.
  std::size_t max_batch = 500;
  std::vector<std::pair<std::string, std::string>> properties;
};

class kafka_consumer {
 public:
  /// Runs on the consumer's thread. An error means "not applied, retry": the record is
  /// redelivered after retry_backoff and nothing after it in its partition is committed.
  /// Records that can never apply (malformed) should be counted and return success.
  using apply_fn = std::function<result<void>(const kafka_record&)>;

  static result<std::unique_ptr<kafka_consumer>> open(kafka_consumer_config cfg, apply_fn apply);

  /// Records already fetched, from any of the consumer's partitions, in one call (at most
  /// cfg.max_batch, in fetch order: per partition in offset order), applied all or none:
  /// an error rewinds every partition of the batch to its first record in it and the
  /// batch comes again after retry_backoff, so the callback must be idempotent. What a
  /// per-record round trip costs (a federation apply through an actor) is paid once a batch.
  using apply_batch_fn = std::function<result<void>(std::span<const kafka_record>)>;

  static result<std::unique_ptr<kafka_consumer>> open_batched(kafka_consumer_config cfg,
                                                              apply_batch_fn apply);
  ~kafka_consumer();  ///< commits (unless commit_on_close is false), leaves the group
  kafka_consumer(const kafka_consumer&) = delete;
  kafka_consumer& operator=(const kafka_consumer&) = delete;

  /// Commits the applied offsets now (waits for the consumer thread, up to `timeout`).
  result<void> commit(std::chrono::milliseconds timeout = std::chrono::seconds{10});

  const kafka_counters& counters() const noexcept { return *counters_; }

  struct impl;

 private:
  kafka_consumer() = default;
  static result<std::unique_ptr<kafka_consumer>> start(kafka_consumer_config cfg, apply_fn apply,
                                                       apply_batch_fn apply_batch);
  std::shared_ptr<kafka_counters> counters_;
  std::unique_ptr<impl> impl_;
};

}  // namespace warp::bus
