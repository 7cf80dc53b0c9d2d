// The shared parts of warp-bench's Kafka comparisons (kafka_baseline.hpp).
#include "apps/warp-bench/kafka_baseline.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <thread>
#include <utility>

namespace warp_bench {
namespace {

namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

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

}  // namespace

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now().time_since_epoch())
      .count();
}

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

void latencies::add(std::int64_t sent_ns) {
  add_us(static_cast<double>(now_ns() - sent_ns) / 1000.0);
}

void latencies::add_us(double us) {
  std::lock_guard l{mu_};
  us_.push_back(us);
}

void latencies::clear() {
  std::lock_guard l{mu_};
  us_.clear();
}

std::size_t latencies::size() {
  std::lock_guard l{mu_};
  return us_.size();
}

double latencies::pct(double p) {
  std::lock_guard l{mu_};
  if (us_.empty()) return 0;
  std::sort(us_.begin(), us_.end());
  return us_[std::min(us_.size() - 1,
                      static_cast<std::size_t>(p * static_cast<double>(us_.size())))];
}

void pace(clk::time_point t0, std::size_t i, double rate) {
  if (rate <= 0) return;
  std::this_thread::sleep_until(t0 + std::chrono::nanoseconds{static_cast<std::int64_t>(
                                         1e9 * static_cast<double>(i) / rate)});
}

phase_result finish_phase(const std::function<std::uint64_t()>& count, std::size_t n,
                          clk::time_point t0, latencies* lat, std::chrono::milliseconds limit,
                          std::chrono::milliseconds poll) {
  std::uint64_t got = 0;
  auto deadline = clk::now() + limit;
  while ((got = count()) < n && clk::now() < deadline) std::this_thread::sleep_for(poll);
  phase_result r;
  r.received = got;
  r.msgs_per_s = static_cast<double>(got) / std::chrono::duration<double>(clk::now() - t0).count();
  if (lat) {
    r.p50_us = lat->pct(0.50);
    r.p99_us = lat->pct(0.99);
  }
  return r;
}

void await_warm_up(std::atomic<std::size_t>& got, latencies& lat) {
  auto until = clk::now() + 60s;
  while (got < 1 && clk::now() < until) std::this_thread::sleep_for(1ms);
  got = 0;
  lat.clear();
}

std::string key_of(std::size_t i, std::size_t keys) {
  return "user:" + std::to_string(i % keys);
}

kafka_mock_broker::kafka_mock_broker(const std::vector<std::string>& topics) {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  auto bin = self.parent_path().parent_path() / "warp-kafka-mock/warp-kafka-mock";
  dir_ = std::make_unique<warp::test::temp_dir>("warp-bench-kafka");
  std::vector<std::string> argv{bin.string()};
  for (const auto& t : topics) argv.insert(argv.end(), {"--topic", t});
  proc_ = std::make_unique<warp::test::child_process>(argv, dir_->str() + "/mock.log");
  std::regex re{R"(bootstrap: (\S+))"};
  for (int i = 0; i < 500 && bootstrap_.empty(); ++i) {
    std::smatch m;
    auto text = proc_->log();
    if (std::regex_search(text, m, re))
      bootstrap_ = m[1];
    else
      std::this_thread::sleep_for(20ms);
  }
  if (bootstrap_.empty())
    throw std::runtime_error("warp-kafka-mock did not start: " + proc_->log());
}

kafka_mock_broker::~kafka_mock_broker() {
  if (proc_) proc_->stop(SIGTERM, 10s);
}

phase_result raw_kafka_phase(const raw_kafka_options& o, const std::string& topic, std::size_t n,
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
    await_warm_up(got, lat);
  }
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) {
    pace(t0, i, rate);
    auto k = key_of(i, o.keys);
    auto v = stamped(o.value_bytes);
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, v.data(), v.size(),
                            k.data(), k.size(), nullptr) != 0 &&
           rd_kafka_last_error() == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      std::this_thread::sleep_for(100us);
  }
  auto r = finish_phase([&] { return std::uint64_t{got}; }, n, t0, &lat);
  stop = true;
  consumer.join();
  poller.join();
  rd_kafka_flush(prod, 5000);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_consumer_close(cons);
  rd_kafka_destroy(cons);
  rd_kafka_destroy(prod);
  return r;
}

}  // namespace warp_bench
