// warp-bench kafka: raw librdkafka produce->consume beside the same traffic through Warp's
// Kafka bridge (envelope encode + idempotent produce + consumer group + decode + apply
// callback), on one broker in the same run, printed as ratios (docs/kafka.md).
//
// Without --brokers it starts warp-kafka-mock (librdkafka's mock cluster) next to itself.
// Both sides use the same producer settings (idempotence, acks=all, linger.ms): the ratio
// is the bridge's own cost, not a difference of configuration.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/warp-bench/bench.hpp"
#include "bus/kafka_bridge.hpp"
#include "bus/kafka_envelope.hpp"
#include "test/support/process.hpp"

namespace warp_bench {
namespace {

namespace fs = std::filesystem;
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

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now().time_since_epoch())
      .count();
}

struct latencies {
  std::mutex mu;
  std::vector<double> us;
  void add(std::int64_t sent_ns) {
    std::lock_guard l{mu};
    us.push_back(static_cast<double>(now_ns() - sent_ns) / 1000.0);
  }
  void clear() {
    std::lock_guard l{mu};
    us.clear();
  }
  double pct(double p) {
    std::lock_guard l{mu};
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1,
                       static_cast<std::size_t>(p * static_cast<double>(us.size())))];
  }
};

std::string key_of(std::size_t i, std::size_t keys) {
  return "user:" + std::to_string(i % keys);
}

// A value whose first 8 bytes are the send time, for latency.
std::string stamped(std::size_t bytes) {
  std::string v(std::max<std::size_t>(bytes, 8), 'x');
  auto t = now_ns();
  std::memcpy(v.data(), &t, 8);
  return v;
}
std::int64_t stamp_of(std::string_view v) {
  std::int64_t t = 0;
  if (v.size() >= 8) std::memcpy(&t, v.data(), 8);
  return t;
}

// -- raw librdkafka --------------------------------------------------------------------------

rd_kafka_t* raw_client(rd_kafka_type_t type,
                       const std::vector<std::pair<std::string, std::string>>& props) {
  char err[512];
  auto* conf = rd_kafka_conf_new();
  for (auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(k + ": " + err);
  auto* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(err);
  return rk;
}

struct phase_result {
  double msgs_per_s = 0;
  double p50_us = 0, p99_us = 0;
  std::size_t received = 0;
};

// Produces `n` messages (paced at `rate` per second when > 0) and consumes them in a group
// of its own; the clock runs from the first produce to the last record consumed.
phase_result run_raw(const kafka_bench_options& o, const std::string& topic, std::size_t n,
                     double rate) {
  auto* prod = raw_client(RD_KAFKA_PRODUCER, {{"bootstrap.servers", o.brokers},
                                              {"enable.idempotence", "true"},
                                              {"acks", "all"},
                                              {"linger.ms", "1"},
                                              {"queue.buffering.max.messages", "1000000"},
                                              {"log_level", "2"}});
  auto* cons =
      raw_client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", o.brokers},
                                     {"group.id", topic + "-raw"},
                                     {"enable.auto.commit", "false"},
                                     {"auto.offset.reset", "earliest"},
                                     {"fetch.wait.max.ms", std::to_string(o.fetch_wait_ms)},
                                     {"log_level", "2"}});
  // A topic handle, as the bridge keeps one: no lookup by name per record.
  auto* rkt = rd_kafka_topic_new(prod, topic.c_str(), nullptr);
  rd_kafka_poll_set_consumer(cons);
  auto* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(cons, list);
  rd_kafka_topic_partition_list_destroy(list);
  latencies lat;
  std::atomic<std::size_t> got{0};
  std::atomic<bool> stop{false};
  std::thread consumer{[&] {
    while (!stop) {
      auto* m = rd_kafka_consumer_poll(cons, 50);
      if (!m) continue;
      if (!m->err) {
        lat.add(stamp_of({static_cast<const char*>(m->payload), m->len}));
        ++got;
      }
      rd_kafka_message_destroy(m);
    }
  }};
  std::thread poller{[&] {
    while (!stop) rd_kafka_poll(prod, 50);
  }};
  // The group join takes seconds: one record through first, so the clock measures traffic.
  {
    auto v = stamped(o.value_bytes);
    rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY("warmup", 6),
                      RD_KAFKA_V_VALUE(v.data(), v.size()),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    auto until = clk::now() + 60s;
    while (got < 1 && clk::now() < until) std::this_thread::sleep_for(1ms);
    got = 0;
    lat.clear();
  }
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) {
    if (rate > 0)
      std::this_thread::sleep_until(t0 + std::chrono::nanoseconds{static_cast<std::int64_t>(
                                             1e9 * static_cast<double>(i) / rate)});
    auto k = key_of(i, o.keys);
    auto v = stamped(o.value_bytes);
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, v.data(), v.size(),
                            k.data(), k.size(), nullptr) != 0 &&
           rd_kafka_last_error() == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      std::this_thread::sleep_for(100us);
  }
  auto deadline = clk::now() + 120s;
  while (got < n && clk::now() < deadline) std::this_thread::sleep_for(1ms);
  auto elapsed = std::chrono::duration<double>(clk::now() - t0).count();
  stop = true;
  consumer.join();
  poller.join();
  rd_kafka_flush(prod, 5000);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_consumer_close(cons);
  rd_kafka_destroy(cons);
  rd_kafka_destroy(prod);
  phase_result r;
  r.received = got;
  r.msgs_per_s = static_cast<double>(got) / elapsed;
  r.p50_us = lat.pct(0.50);
  r.p99_us = lat.pct(0.99);
  return r;
}

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
    auto until = clk::now() + 60s;
    while (got < 1 && clk::now() < until) std::this_thread::sleep_for(1ms);
    got = 0;
    lat.clear();
  }
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) {
    if (rate > 0)
      std::this_thread::sleep_until(t0 + std::chrono::nanoseconds{static_cast<std::int64_t>(
                                             1e9 * static_cast<double>(i) / rate)});
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
  auto deadline = clk::now() + 120s;
  while (got < n && clk::now() < deadline) std::this_thread::sleep_for(1ms);
  auto elapsed = std::chrono::duration<double>(clk::now() - t0).count();
  phase_result r;
  r.received = got;
  r.msgs_per_s = static_cast<double>(got) / elapsed;
  r.p50_us = lat.pct(0.50);
  r.p99_us = lat.pct(0.99);
  return r;
}

void run(const kafka_bench_options& opt) {
  kafka_bench_options o = opt;
  auto fmt = warp::bus::parse_kafka_format(o.format);
  if (!fmt) throw std::runtime_error(fmt.err().to_string());
  std::unique_ptr<warp::test::temp_dir> dir;
  std::unique_ptr<warp::test::child_process> mock;
  std::vector<std::string> topics{"raw-tput", "bridge-tput", "raw-lat", "bridge-lat"};
  if (o.brokers.empty()) {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    auto bin = self.parent_path().parent_path() / "warp-kafka-mock/warp-kafka-mock";
    dir = std::make_unique<warp::test::temp_dir>("warp-bench-kafka");
    std::vector<std::string> argv{bin.string()};
    for (auto& t : topics)
      argv.insert(argv.end(), {"--topic", t + ":" + std::to_string(o.partitions)});
    mock = std::make_unique<warp::test::child_process>(argv, dir->str() + "/mock.log");
    std::regex re{R"(bootstrap: (\S+))"};
    for (int i = 0; i < 500 && o.brokers.empty(); ++i) {
      std::smatch m;
      auto text = mock->log();
      if (std::regex_search(text, m, re))
        o.brokers = m[1];
      else
        std::this_thread::sleep_for(20ms);
    }
    if (o.brokers.empty())
      throw std::runtime_error("warp-kafka-mock did not start: " + mock->log());
  }
  auto paced_n = static_cast<std::size_t>(o.rate * o.seconds);
  auto raw = run_raw(o, "raw-tput", o.messages, 0);
  auto bridge = run_bridge(o, "bridge-tput", o.messages, 0, *fmt);
  auto raw_lat = run_raw(o, "raw-lat", paced_n, o.rate);
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
  if (mock) mock->stop(SIGTERM, 10s);
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
