// warp-bench kafka: raw librdkafka produce->consume beside the same traffic through Warp's
// Kafka bridge (envelope encode + idempotent produce + consumer group + decode + apply
// callback), on one broker in the same run, printed as ratios (docs/kafka.md).
//
// Without --brokers it starts warp-kafka-mock (librdkafka's mock cluster) next to itself.
// Both sides use the same producer settings (idempotence, acks=all, linger.ms): the ratio
// is the bridge's own cost, not a difference of configuration.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/warp-bench/bench.hpp"
#include "apps/warp-bench/kafka_baseline.hpp"
#include "bus/kafka_bridge.hpp"
#include "bus/kafka_envelope.hpp"
#include "test/support/process.hpp"

namespace warp_bench {
namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct kafka_bench_options {
  std::string brokers;
  std::size_t messages = 100'000;
  std::size_t value_bytes = 64;
  std::size_t keys = 1000;
  int partitions = 4;
  double rate = 2000;  // paced phase, messages per second
  double seconds = 5;
  std::string format = "msgpack";
  // The mock does not wake a waiting fetch: latency sits near this on both sides.
  int fetch_wait_ms = 10;
  bool json = false;
};

// -- through the bridge ------------------------------------------------------------------------

phase_result run_bridge(const kafka_bench_options& o, const std::string& topic, std::size_t n,
                        double rate, warp::bus::kafka_format fmt) {
  using namespace warp::bus;
  kafka_producer_config pc;
  pc.brokers = o.brokers;
  pc.topic = topic;
  pc.max_in_flight = 500'000;
  auto prod = kafka_producer::open(pc);
  if (!prod) throw std::runtime_error(prod.err().to_string());
  latencies lat;
  std::atomic<std::size_t> got{0};
  std::mutex mu;
  std::unordered_map<std::string, std::string> applied;  // the "apply": newest value per key
  kafka_consumer_config cc;
  cc.brokers = o.brokers;
  cc.group = topic + "-bridge";
  cc.topics = {topic};
  cc.properties = {{"fetch.wait.max.ms", std::to_string(o.fetch_wait_ms)}};
  auto cons = kafka_consumer::open(cc, [&](const kafka_record& r) -> warp::result<void> {
    auto c = decode_kafka(r.payload, fmt);
    if (!c) return warp::result<void>{};  // counted by the caller in a real ingest
    lat.add(stamp_of(c->value));
    {
      std::lock_guard l{mu};
      applied[c->key] = std::move(c->value);
    }
    ++got;
    return {};
  });
  if (!cons) throw std::runtime_error(cons.err().to_string());
  {  // As in run_raw: one record through the joined group before the clock starts.
    kafka_change c;
    c.key = "warmup";
    c.has_value = true;
    c.value = stamped(o.value_bytes);
    auto bytes = encode(c, fmt);
    if (!bytes || !(*prod)->publish(c.key, *bytes))
      throw std::runtime_error("warm-up publish failed");
    await_warm_up(got, lat);
  }
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) {
    pace(t0, i, rate);
    kafka_change c;
    c.op = kafka_op::update;
    c.key = key_of(i, o.keys);
    c.has_value = true;
    c.value = stamped(o.value_bytes);
    c.ver = warp::version{static_cast<std::uint64_t>(i + 1) << 16, 1};
    c.origin = "bench";
    c.path = {"bench"};
    auto bytes = encode(c, fmt);
    if (!bytes) throw std::runtime_error(bytes.err().to_string());
    while (true) {
      auto ok = (*prod)->publish(c.key, *bytes);
      if (ok) break;
      if (ok.code() != warp::errc::rate_limited) throw std::runtime_error(ok.err().to_string());
      std::this_thread::sleep_for(100us);
    }
  }
  return finish_phase([&] { return std::uint64_t{got}; }, n, t0, &lat);
}

void run(const kafka_bench_options& opt) {
  kafka_bench_options o = opt;
  auto fmt = warp::bus::parse_kafka_format(o.format);
  if (!fmt) throw std::runtime_error(fmt.err().to_string());
  std::unique_ptr<kafka_mock_broker> mock;
  if (o.brokers.empty()) {
    std::vector<std::string> topics;
    for (const char* t : {"raw-tput", "bridge-tput", "raw-lat", "bridge-lat"})
      topics.push_back(std::string{t} + ":" + std::to_string(o.partitions));
    mock = std::make_unique<kafka_mock_broker>(topics);
    o.brokers = mock->bootstrap();
  }
  const raw_kafka_options raw_opt{o.brokers, o.value_bytes, o.keys, o.fetch_wait_ms};
  auto paced_n = static_cast<std::size_t>(o.rate * o.seconds);
  auto raw = raw_kafka_phase(raw_opt, "raw-tput", o.messages, 0);
  auto bridge = run_bridge(o, "bridge-tput", o.messages, 0, *fmt);
  auto raw_lat = raw_kafka_phase(raw_opt, "raw-lat", paced_n, o.rate);
  auto bridge_lat = run_bridge(o, "bridge-lat", paced_n, o.rate, *fmt);
  std::printf(
      "kafka on %s, %zu-byte values, %zu keys, %d partitions, envelope %s, "
      "fetch.wait.max.ms %d\n",
      mock ? "warp-kafka-mock" : o.brokers.c_str(), o.value_bytes, o.keys, o.partitions,
      o.format.c_str(), o.fetch_wait_ms);
  std::printf(
      "  throughput (%zu msgs, produce->consume): raw %.0f msg/s, bridge %.0f msg/s, ratio %.2f\n",
      o.messages, raw.msgs_per_s, bridge.msgs_per_s, bridge.msgs_per_s / raw.msgs_per_s);
  std::printf(
      "  latency at %.0f msg/s for %.0f s: raw p50 %.0f us p99 %.0f us; bridge p50 %.0f us p99 "
      "%.0f us; "
      "ratio p50 %.2f p99 %.2f\n",
      o.rate, o.seconds, raw_lat.p50_us, raw_lat.p99_us, bridge_lat.p50_us, bridge_lat.p99_us,
      bridge_lat.p50_us / std::max(raw_lat.p50_us, 1.0),
      bridge_lat.p99_us / std::max(raw_lat.p99_us, 1.0));
  bool complete = raw.received >= o.messages && bridge.received >= o.messages &&
                  raw_lat.received >= paced_n && bridge_lat.received >= paced_n;
  if (!complete)
    std::printf("  WARNING: not every message arrived (raw %zu/%zu, bridge %zu/%zu)\n",
                raw.received, o.messages, bridge.received, o.messages);
  if (o.json) {
    nlohmann::json j{{"bench", "kafka"},
                     {"complete", complete},
                     {"format", o.format},
                     {"raw_msgs_per_s", raw.msgs_per_s},
                     {"bridge_msgs_per_s", bridge.msgs_per_s},
                     {"throughput_ratio", bridge.msgs_per_s / raw.msgs_per_s},
                     {"rate", o.rate},
                     {"raw_p50_us", raw_lat.p50_us},
                     {"raw_p99_us", raw_lat.p99_us},
                     {"bridge_p50_us", bridge_lat.p50_us},
                     {"bridge_p99_us", bridge_lat.p99_us}};
    std::cout << j.dump() << std::endl;
  }
}

void setup(CLI::App& app) {
  static kafka_bench_options opt;
  auto* cmd = app.add_subcommand(
      "kafka", "Raw librdkafka produce->consume vs the same through Warp's Kafka bridge (ratios)");
  cmd->add_option("--brokers", opt.brokers, "Bootstrap servers; default: start warp-kafka-mock");
  cmd->add_option("--messages", opt.messages, "Messages of the throughput phase")
      ->capture_default_str();
  cmd->add_option("--value-bytes", opt.value_bytes, "Value size (>= 8)")->capture_default_str();
  cmd->add_option("--keys", opt.keys, "Distinct keys")->capture_default_str();
  cmd->add_option("--partitions", opt.partitions, "Partitions of the mock's topics")
      ->capture_default_str();
  cmd->add_option("--rate", opt.rate, "Paced phase: messages per second")->capture_default_str();
  cmd->add_option("--seconds", opt.seconds, "Paced phase: duration")->capture_default_str();
  cmd->add_option("--format", opt.format, "Envelope: msgpack or json")->capture_default_str();
  cmd->add_option("--fetch-wait-ms", opt.fetch_wait_ms, "fetch.wait.max.ms of both consumers")
      ->capture_default_str();
  cmd->add_flag("--json", opt.json, "Also print the figures as one JSON object");
  cmd->callback([] { run(opt); });
}

const bool registered = register_subcommand(&setup);

}  // namespace
}  // namespace warp_bench
