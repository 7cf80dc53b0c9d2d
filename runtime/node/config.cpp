// node_config::validate(): what node::start refuses, checkable before anything starts. In
// the node layer: it asks the pattern parser and the endpoint parser.
#include "warp/config.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include <spdlog/spdlog.h>

#include "warp/endpoint.hpp"

namespace warp {

namespace {

bool region_name_ok(std::string_view r) {
  return !r.empty() && r.size() <= 64 && std::all_of(r.begin(), r.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

error at_least_one(const char* field, std::size_t fallback) {
  return error{errc::invalid_argument, std::string{field} + " must be at least 1 (default " +
                                           std::to_string(fallback) + ")"};
}

}  // namespace

result<void> federation_options::validate_links(std::string_view listen) const {
  if (region.empty()) {
    if (!links.empty())
      return error{errc::invalid_argument, "federation-link needs --region (this node's region)"};
    return {};
  }
  if (!region_name_ok(region))
    return error{errc::invalid_argument, "region '" + region +
                                             "': 1-64 letters, digits, '-', '_' or '.'"};
  if (listen.empty())
    return error{errc::invalid_argument,
                 "region: federation needs a listener (--listen): other regions reach it there"};
  for (const auto& l : links) {
    auto eq = l.find('=');
    if (eq == std::string::npos)
      return error{errc::invalid_argument, "federation-link '" + l + "' is not REGION=HOST:PORT"};
    auto r = l.substr(0, eq);
    if (!region_name_ok(r))
      return error{errc::invalid_argument, "federation-link '" + l + "': bad region name"};
    if (r == region)
      return error{errc::invalid_argument,
                   "federation-link '" + l + "' links the node's own region '" + region + "'"};
    // REGION=kafka: the region is reached over the Kafka topics, and only that way (one
    // transport per linked region).
    bool over_kafka = l.substr(eq + 1) == "kafka";
    for (const auto& other : links)
      if (other.substr(0, other.find('=')) == r &&
          (other.substr(other.find('=') + 1) == "kafka") != over_kafka)
        return error{errc::invalid_argument,
                     "federation-link: region '" + r + "' is linked both over Kafka and over CAF"};
    if (over_kafka) {
      if (kafka_brokers.empty())
        return error{errc::invalid_argument,
                     "federation-link '" + l + "' needs --federation-kafka BROKERS"};
      continue;
    }
    auto ep = parse_endpoint(l.substr(eq + 1));
    if (!ep || ep->second == 0)
      return error{errc::invalid_argument, "federation-link '" + l + "': HOST:PORT expected"};
  }
  if (batch_size == 0 || batch_size > 65536)
    return error{errc::invalid_argument, "federation batch size must be 1-65536 (default 500)"};
  if (max_delay.count() <= 0)
    return error{errc::invalid_argument, "federation max delay must be positive (default 1s)"};
  if (queue_limit == 0)
    return error{errc::invalid_argument, "federation queue limit must be at least 1"};
  if (queue_full != "repair")
    return error{errc::invalid_argument,
                 "federation-queue-full '" + queue_full +
                     "': only 'repair' (drop, count, repair by anti-entropy); writers are "
                     "never blocked"};
  if (ack_timeout.count() <= 0)
    return error{errc::invalid_argument, "federation ack timeout must be positive"};
  if (!kafka_brokers.empty()) {
    if (kafka_format != "msgpack" && kafka_format != "json")
      return error{errc::invalid_argument,
                   "federation-kafka-format '" + kafka_format + "': msgpack or json"};
    if (kafka_topic_prefix.size() > 128)
      return error{errc::invalid_argument, "federation-kafka-topic-prefix: over 128 bytes"};
  }
  return {};
}

result<void> node_config::validate() const {
  const node_config defaults;
  auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off")
    return error{errc::invalid_argument, "unknown log level '" + log_level + "'"};
  if (max_clock_skew.count() <= 0)
    return error{errc::invalid_argument, "max_clock_skew: must be positive, got " +
                                             std::to_string(max_clock_skew.count()) + "ms"};
  if (auto entries = pattern_registry::parse_specs(patterns); !entries) return entries.err();
  if (scheduler_threads == 0) return at_least_one("scheduler_threads", defaults.scheduler_threads);
  if (executor_threads == 0) return at_least_one("executor_threads", defaults.executor_threads);
  if (limits.max_key_size == 0)
    return at_least_one("limits.max_key_size", defaults.limits.max_key_size);
  if (limits.max_value_size == 0)
    return at_least_one("limits.max_value_size", defaults.limits.max_value_size);
  if (cluster.ranges == 0) return at_least_one("cluster.ranges", defaults.cluster.ranges);
  if (validator.interval.count() <= 0)
    return error{errc::invalid_argument, "validator.interval must be positive (default " +
                                             std::to_string(defaults.validator.interval.count()) +
                                             "ms)"};
  if (validator.grace.count() < 0)
    return error{errc::invalid_argument, "validator.grace must not be negative"};
  if (validator.max_batch == 0)
    return at_least_one("validator.max_batch", defaults.validator.max_batch);
  if (validator.sample > validator.max_batch)
    return error{errc::invalid_argument, "validator.sample (" + std::to_string(validator.sample) +
                                             ") must not exceed validator.max_batch (" +
                                             std::to_string(validator.max_batch) + ")"};
  if (strong.replication_factor == 0)
    return at_least_one("strong.replication_factor", defaults.strong.replication_factor);
  if (hot_keys.capacity == 0) return at_least_one("hot_keys.capacity", defaults.hot_keys.capacity);
  if (hot_keys.sample_every == 0 || hot_keys.sample_every > (1u << 20))
    return error{errc::invalid_argument, "hot_keys.sample_every: 1..1048576, got " +
                                             std::to_string(hot_keys.sample_every) + " (default " +
                                             std::to_string(defaults.hot_keys.sample_every) + ")"};
  if (hot_keys.capacity > 100'000)
    return error{errc::invalid_argument, "hot_keys.capacity: at most 100000, got " +
                                             std::to_string(hot_keys.capacity)};
  if (hot_keys.half_life.count() < 0)
    return error{errc::invalid_argument, "hot_keys.half_life: negative duration"};
  if (hot_keys.warmup_limit > 1'000'000)
    return error{errc::invalid_argument, "hot_keys.warmup_limit: at most 1000000, got " +
                                             std::to_string(hot_keys.warmup_limit)};
  if (default_policy.ttl.count() < 0)
    return error{errc::invalid_argument, "default_policy.ttl: negative TTL"};
  {
    const auto& g = default_policy.guard;
    if (!(g.rate >= 0) || g.rate > 1e9)
      return error{errc::invalid_argument,
                   "default_policy.guard.rate: fetches/s between 0 and 1e9, got " +
                       std::to_string(g.rate) + " (default 0 = unlimited)"};
    if (g.breaker_cooldown.count() < 0 || g.max_stale.count() < 0 || g.soft_timeout.count() < 0)
      return error{errc::invalid_argument,
                   "default_policy.guard: breaker_cooldown, max_stale and soft_timeout must not "
                   "be negative (default 0)"};
    if (g.refresh_ahead_pct > 99)
      return error{errc::invalid_argument, "default_policy.guard.refresh_ahead_pct: 0..99, got " +
                                               std::to_string(g.refresh_ahead_pct) +
                                               " (default 0 = off)"};
  }
  if (listen.empty()) return {};
  auto endpoint = parse_endpoint(listen);
  if (!endpoint) return endpoint.err();
  // Protected mode (as Redis's): without TLS anyone who reaches the port can read and
  // write every key and join the cluster, so only loopback unless the operator says so.
  if (!transport.tls() && !transport.insecure && !is_loopback_host(endpoint->first))
    return error{errc::invalid_argument,
                 "refusing to listen on " + listen +
                     " without TLS: anyone who can reach it could read and write every key "
                     "and join the cluster. Give --tls-cert, --tls-key and --tls-ca, listen on "
                     "127.0.0.1, or pass --insecure"};
  if (transport.max_message_size < limits.max_value_size + 64 * 1024)
    return error{errc::invalid_argument,
                 "max-message-size (" + std::to_string(transport.max_message_size) +
                     ") must exceed max-value-size (" + std::to_string(limits.max_value_size) +
                     ") by at least 64 KiB: a value travels in one message"};
  if (auto fed = federation.validate_links(listen); !fed) return fed;
  return {};
}

}  // namespace warp
