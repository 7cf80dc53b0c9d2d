// External change streams (docs/kafka.md, "CDC ingest"): a consumer of a Kafka topic of
// Debezium-format change events written by the primary database's connector, mapping each
// row's key columns to a cache key by a template and invalidating or hydrating that key
// through the node's normal write path (so the whole region sees it).
//
//   event  = {"schema":..., "payload":{...}} or the payload alone (schemas disabled)
//   payload: op (c|u|d|r), before (row|null), after (row|null), source {...}, ts_ms
//   mode invalidate: c/u/r/d remove the key (the next read loads the new row)
//   mode hydrate   : c/u/r put the `after` row's JSON as the key's value; d removes it
// An update whose key columns changed also removes the old key. A Kafka tombstone (null
// value, Debezium's follow-up of a delete) is skipped. A malformed event is counted, logged
// and skipped (its offset is committed: it can never apply, and must not stall its
// partition); a failed apply (storage down) is retried and holds the partition's offset.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bus/kafka_bridge.hpp"
#include "warp/error.hpp"

namespace warp::federation {

/// What the ingest does to the node (warpd implements it with node::remove / node::set).
class cdc_target {
 public:
  virtual ~cdc_target() = default;
  /// The row changed or went away: drop the key everywhere in the region.
  virtual result<void> invalidate(std::string_view key) = 0;
  /// The row's new content: store it as the key's value.
  virtual result<void> hydrate(std::string_view key, std::string_view row_json) = 0;
};

enum class cdc_mode : std::uint8_t { invalidate, hydrate };
result<cdc_mode> parse_cdc_mode(std::string_view text);

/// "user:{id}", "order:{tenant}:{id}": {column} is replaced by the column's value (a string
/// as is, an integer in decimal); "{{" and "}}" are literal braces.
class key_template {
 public:
  static result<key_template> parse(std::string_view text);
  /// The key for `row_json` (a JSON object); errc::codec_error when a column is missing,
  /// null or neither a string nor an integer.
  result<std::string> render(const nlohmann::json& row) const;
  const std::vector<std::string>& columns() const noexcept { return columns_; }

 private:
  // Alternating literal text and column names: parts_[0] text, columns_[0], parts_[1], ...
  std::vector<std::string> parts_;
  std::vector<std::string> columns_;
};

struct cdc_action {
  enum class kind : std::uint8_t { invalidate, hydrate } what = kind::invalidate;
  std::string key;
  std::string value;  ///< hydrate: the row as JSON
  friend bool operator==(const cdc_action&, const cdc_action&) = default;
};

struct cdc_limits {
  std::size_t max_event_bytes = 4 * 1024 * 1024;
  std::size_t max_json_depth = 32;
  std::size_t max_key_bytes = 64 * 1024;
};

/// What one event asks for (pure: no I/O). An empty list for a tombstone (empty payload);
/// errc::codec_error, with a reason, for anything malformed.
result<std::vector<cdc_action>> plan_cdc(std::string_view event, const key_template& tmpl,
                                         cdc_mode mode, const cdc_limits& limits = {});

struct cdc_config {
  std::string brokers;
  std::string topic;
  std::string group = "warp-cdc";
  std::string key_template;
  cdc_mode mode = cdc_mode::invalidate;
  std::chrono::milliseconds commit_interval{200};
  std::vector<std::pair<std::string, std::string>> properties;  ///< extra librdkafka settings
};

/// Counters beside the consumer's (bus::kafka_counters).
struct cdc_counters {
  std::atomic<std::uint64_t> invalidated{0};
  std::atomic<std::uint64_t> hydrated{0};
  std::atomic<std::uint64_t> malformed{0};
  std::atomic<std::uint64_t> tombstones{0};
};

class cdc_ingest {
 public:
  /// Validates the config, joins the consumer group and starts consuming. `target` must
  /// outlive the ingest.
  static result<std::unique_ptr<cdc_ingest>> start(cdc_config cfg, cdc_target& target);
  ~cdc_ingest();  ///< commits what was applied, leaves the group

  const bus::kafka_counters& consumer() const noexcept { return consumer_->counters(); }
  const cdc_counters& counters() const noexcept { return counters_; }
  const cdc_config& config() const noexcept { return cfg_; }
  /// Prometheus families warp_cdc_* (docs/kafka.md, "Metrics"), `labels` as `{node="n0"}`.
  std::string prometheus_text(std::string_view labels) const;

 private:
  cdc_ingest() = default;
  cdc_config cfg_;
  cdc_counters counters_;
  std::unique_ptr<bus::kafka_consumer> consumer_;
};

}  // namespace warp::federation
