// The Kafka bridge (bus/kafka_bridge) against librdkafka's mock cluster in its own process:
// delivery reports, per-key order, the bounded in-flight queue, commit-after-apply across a
// crash and a clean restart, retried applies, and a broker that is not there.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <span>

#include "bus/kafka_bridge.hpp"
#include "bus/kafka_envelope.hpp"
#include "test/kafka/kafka_mock.hpp"
#include "test/support/eventually.hpp"

using namespace warp;
using namespace warp::bus;
using namespace warp::test;
using namespace std::chrono_literals;

namespace {

struct collected {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> records;  // key, payload
  std::size_t size() {
    std::lock_guard l{mu};
    return records.size();
  }
};

std::unique_ptr<kafka_consumer> consume(const std::string& brokers, const std::string& group,
                                        const std::string& topic, collected& out,
                                        bool commit_on_close = true) {
  kafka_consumer_config cc;
  cc.brokers = brokers;
  cc.group = group;
  cc.topics = {topic};
  cc.commit_on_close = commit_on_close;
  cc.commit_interval = 100ms;
  restart_quickly(cc);
  auto c = kafka_consumer::open(cc, [&out](const kafka_record& r) -> result<void> {
    std::lock_guard l{out.mu};
    out.records.emplace_back(std::string{r.key}, std::string{r.payload});
    return {};
  });
  REQUIRE(c);
  return std::move(*c);
}

std::unique_ptr<kafka_producer> produce_to(const std::string& brokers, const std::string& topic,
                                           std::atomic<int>* acks = nullptr) {
  kafka_producer_config pc;
  pc.brokers = brokers;
  pc.topic = topic;
  auto p = kafka_producer::open(pc, [acks](std::string_view, const result<void>& ok) {
    if (acks && ok) ++*acks;
  });
  REQUIRE(p);
  return std::move(*p);
}

}  // namespace

TEST_CASE("kafka bridge: envelopes delivered, acknowledged, and in order per key", "[kafka]") {
  kafka_mock mock{{"changes:4"}};
  std::atomic<int> acks{0};
  auto p = produce_to(mock.bootstrap(), "changes", &acks);
  std::size_t round = 0;
  for (auto f : {kafka_format::json, kafka_format::msgpack}) {
    INFO(to_string(f));
    ++round;
    collected got;
    auto c =
        consume(mock.bootstrap(), std::string{"g-"} + std::string{to_string(f)}, "changes", got);
    acks = 0;
    const int keys = 8, per_key = 50;
    for (int i = 0; i < per_key; ++i)
      for (int k = 0; k < keys; ++k) {
        kafka_change ch;
        ch.op = kafka_op::update;
        ch.key = "k" + std::to_string(k);
        ch.has_value = true;
        ch.value = std::to_string(i);
        ch.ver = version{static_cast<std::uint64_t>(i + 1), 1};
        ch.origin = "eu";
        ch.path = {"eu"};
        auto bytes = encode(ch, f);
        REQUIRE(bytes);
        REQUIRE(p->publish(ch.key, *bytes));
      }
    REQUIRE(p->flush(30s));
    CHECK(acks == keys * per_key);
    // A new group reads the topic from the start: every round so far.
    REQUIRE(eventually([&] { return got.size() >= round * std::size_t{keys * per_key}; }, 60s));
    // The topic holds both rounds: decode each and check per-key order of this round.
    std::map<std::string, std::vector<std::uint64_t>> seen;
    std::lock_guard l{got.mu};
    for (auto& [key, payload] : got.records) {
      auto ch =
          decode_kafka(payload, payload[0] == '{' ? kafka_format::json : kafka_format::msgpack);
      REQUIRE(ch);
      CHECK(ch->key == key);
      seen[key].push_back(ch->ver.hlc);
    }
    CHECK(seen.size() == keys);
    for (auto& [key, hlcs] : seen) {
      // Each round is 1..per_key in order; a key's records sit in one partition.
      REQUIRE(hlcs.size() % per_key == 0);
      for (std::size_t i = 0; i < hlcs.size(); ++i) CHECK(hlcs[i] == i % per_key + 1);
    }
  }
  CHECK(p->counters().failed == 0);
}

TEST_CASE("kafka bridge: a full in-flight queue is an error to the caller, counted", "[kafka]") {
  refused_port nobody;  // no broker: nothing is ever acknowledged
  kafka_producer_config pc;
  pc.brokers = "127.0.0.1:" + std::to_string(nobody.port());
  pc.topic = "t";
  pc.max_in_flight = 10;
  auto p = kafka_producer::open(pc);
  REQUIRE(p);
  for (int i = 0; i < 10; ++i) REQUIRE((*p)->publish("k", "v"));
  auto r = (*p)->publish("k", "v");
  CHECK(r.code() == errc::rate_limited);
  CHECK(r.err().message().find("in-flight queue full") != std::string::npos);
  CHECK((*p)->counters().rejected == 1);
  CHECK((*p)->counters().produced == 10);
  CHECK((*p)->flush(200ms).code() == errc::timeout);
  auto text = prometheus_text((*p)->counters(), kafka_side::producer, "warp_kafka", "{node=\"t\"}");
  INFO(text);
  CHECK(
      text.find(
          "# TYPE warp_kafka_rejected_total counter\nwarp_kafka_rejected_total{node=\"t\"} 1\n") !=
      std::string::npos);
  CHECK(text.find("warp_kafka_produced_total{node=\"t\"} 10\n") != std::string::npos);
  CHECK(text.find("warp_kafka_in_flight{node=\"t\"} 10\n") != std::string::npos);
  // The broker being absent is reported (error callback, counted), not fatal.
  CHECK(eventually([&] { return (*p)->counters().broker_errors > 0; }, 20s));
}

TEST_CASE("kafka bridge: offsets are committed only after apply, and a restart resumes from them",
          "[kafka]") {
  kafka_mock mock{{"cdc:2"}};
  auto p = produce_to(mock.bootstrap(), "cdc");
  for (int i = 0; i < 20; ++i)
    REQUIRE(p->publish("k" + std::to_string(i), "a" + std::to_string(i)));
  REQUIRE(p->flush(30s));

  {  // A crash after applying all 20, before any commit.
    collected got;
    kafka_consumer_config cc;
    cc.brokers = mock.bootstrap();
    cc.group = "g";
    cc.topics = {"cdc"};
    cc.commit_interval = std::chrono::hours{1};
    cc.commit_on_close = false;
    restart_quickly(cc);
    auto c = kafka_consumer::open(cc, [&got](const kafka_record& r) -> result<void> {
      std::lock_guard l{got.mu};
      got.records.emplace_back(std::string{r.key}, std::string{r.payload});
      return {};
    });
    REQUIRE(c);
    REQUIRE(eventually([&] { return got.size() >= 20; }, 60s));
    CHECK((*c)->counters().committed == 0);
  }
  {  // Restarted: all 20 come again (nothing lost); this time they are committed.
    collected got;
    auto c = consume(mock.bootstrap(), "g", "cdc", got);
    REQUIRE(eventually([&] { return got.size() >= 20; }, 60s));
    REQUIRE(c->commit());
    CHECK(c->counters().committed >= 1);
    CHECK(got.size() == 20);
  }
  for (int i = 0; i < 3; ++i) REQUIRE(p->publish("new" + std::to_string(i), "b"));
  REQUIRE(p->flush(30s));
  {  // Restarted after the commit: only what came since.
    collected got;
    auto c = consume(mock.bootstrap(), "g", "cdc", got);
    REQUIRE(eventually([&] { return got.size() >= 3; }, 60s));
    std::this_thread::sleep_for(1s);
    std::lock_guard l{got.mu};
    CHECK(got.records.size() == 3);
    for (auto& [k, v] : got.records) CHECK(k.rfind("new", 0) == 0);
  }
}

TEST_CASE("kafka bridge: a failed apply is retried and holds its partition back", "[kafka]") {
  kafka_mock mock{{"one:1"}};
  auto p = produce_to(mock.bootstrap(), "one");
  for (int i = 0; i < 10; ++i) REQUIRE(p->publish("k", std::to_string(i)));
  REQUIRE(p->flush(30s));
  std::mutex mu;
  std::vector<std::string> applied;
  int failures_left = 3;
  kafka_consumer_config cc;
  cc.brokers = mock.bootstrap();
  cc.group = "retry";
  cc.topics = {"one"};
  cc.retry_backoff = 50ms;
  auto c = kafka_consumer::open(cc, [&](const kafka_record& r) -> result<void> {
    std::lock_guard l{mu};
    if (r.payload == "4" && failures_left > 0) {
      --failures_left;
      return error{errc::storage_unavailable, "storage down (test)"};
    }
    applied.emplace_back(r.payload);
    return {};
  });
  REQUIRE(c);
  REQUIRE(eventually(
      [&] {
        std::lock_guard l{mu};
        return applied.size() >= 10;
      },
      60s));
  std::this_thread::sleep_for(500ms);
  std::lock_guard l{mu};
  REQUIRE(applied.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(applied[static_cast<std::size_t>(i)] == std::to_string(i));
  CHECK((*c)->counters().apply_errors == 3);
}

TEST_CASE(
    "kafka bridge: a batched consumer applies whole batches, a failed batch comes again from "
    "its first records, and only applied batches are committed",
    "[kafka]") {
  kafka_mock mock{{"two:2"}};
  auto p = produce_to(mock.bootstrap(), "two");
  constexpr int n = 300;
  for (int i = 0; i < n; ++i) REQUIRE(p->publish("k" + std::to_string(i % 7), std::to_string(i)));
  REQUIRE(p->flush(30s));
  std::mutex mu;
  std::map<std::string, std::vector<int>> applied;  // per key, in apply order
  std::size_t calls = 0, largest = 0;
  int failures_left = 2;
  kafka_consumer_config cc;
  cc.brokers = mock.bootstrap();
  cc.group = "batched";
  cc.topics = {"two"};
  cc.retry_backoff = 50ms;
  cc.max_batch = 40;
  restart_quickly(cc);
  auto open = [&] {
    return kafka_consumer::open_batched(
        cc, [&](std::span<const kafka_record> batch) -> result<void> {
          std::lock_guard l{mu};
          ++calls;
          largest = std::max(largest, batch.size());
          bool poisoned = std::any_of(batch.begin(), batch.end(),
                                      [](const kafka_record& r) { return r.payload == "150"; });
          if (poisoned && failures_left > 0) {
            --failures_left;
            return error{errc::storage_unavailable, "storage down (test)"};
          }
          for (const auto& r : batch)
            applied[std::string{r.key}].push_back(std::stoi(std::string{r.payload}));
          return {};
        });
  };
  auto total = [&] {
    std::lock_guard l{mu};
    std::size_t t = 0;
    for (auto& [k, v] : applied) t += v.size();
    return t;
  };
  {
    auto c = open();
    REQUIRE(c);
    REQUIRE(eventually([&] { return total() >= n; }, 60s));
    REQUIRE((*c)->commit());
    std::lock_guard l{mu};
    CHECK((*c)->counters().apply_errors > 0);
    CHECK(failures_left == 0);
    CHECK(largest > 1);  // batches, not one record a call
    CHECK(largest <= 40);
    CHECK(calls < static_cast<std::size_t>(n));
    // Every record once (the failed batches applied nothing), each key in publish order.
    std::size_t count = 0;
    for (auto& [k, v] : applied) {
      INFO(k);
      CHECK(std::is_sorted(v.begin(), v.end()));
      CHECK(std::adjacent_find(v.begin(), v.end()) == v.end());
      count += v.size();
    }
    CHECK(count == static_cast<std::size_t>(n));
  }
  // Restarted in the same group: everything was committed, nothing comes again.
  auto c = open();
  REQUIRE(c);
  REQUIRE(p->publish("last", "1000"));
  REQUIRE(p->flush(30s));
  REQUIRE(eventually([&] { return total() >= n + 1; }, 60s));
  std::this_thread::sleep_for(500ms);
  CHECK(total() == static_cast<std::size_t>(n + 1));
}

TEST_CASE("kafka bridge: a consumer without a broker reports errors and closes cleanly",
          "[kafka]") {
  refused_port nobody;
  collected got;
  auto c = consume("127.0.0.1:" + std::to_string(nobody.port()), "g", "t", got);
  CHECK(eventually([&] { return c->counters().broker_errors > 0; }, 20s));
  c.reset();
  CHECK(got.size() == 0);
}
