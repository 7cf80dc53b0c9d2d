// A consumer group through a broker pause (bus/kafka_bridge): the broker stopped while a
// rebalance waits for its members, longer than their session timeout, then resumed. The
// broker may drop the pending JoinGroup requests without an answer (librdkafka's mock
// cluster does); librdkafka retries one only after max.poll.interval.ms + 3 s, so with its
// default (300 s) the group consumed nothing for five minutes. The bridge bounds it.
#include <catch2/catch.hpp>

#include <csignal>
#include <mutex>
#include <set>

#include "bus/kafka_bridge.hpp"
#include "test/kafka/kafka_mock.hpp"
#include "test/support/eventually.hpp"

using namespace warp;
using namespace warp::bus;
using namespace warp::test;
using namespace std::chrono_literals;

namespace {

struct seen_keys {
  std::mutex mu;
  std::set<std::string> keys;
  std::size_t count(const std::string& prefix) {
    std::lock_guard l{mu};
    return static_cast<std::size_t>(std::count_if(
        keys.begin(), keys.end(), [&](const std::string& k) { return k.starts_with(prefix); }));
  }
};

std::unique_ptr<kafka_consumer> member(const std::string& brokers, seen_keys& out) {
  kafka_consumer_config cc;
  cc.brokers = brokers;
  cc.group = "paused";
  cc.topics = {"grp"};
  cc.commit_interval = 100ms;
  restart_quickly(cc);  // the federation consumer's session timeout
  auto c = kafka_consumer::open_batched(cc, [&out](std::span<const kafka_record> rs) {
    std::lock_guard l{out.mu};
    for (const auto& r : rs) out.keys.emplace(r.key);
    return result<void>{};
  });
  REQUIRE(c);
  return std::move(*c);
}

}  // namespace

TEST_CASE(
    "kafka group: the broker stopped mid-rebalance past the session timeout, resumed: the group "
    "consumes again within the bridge's bound",
    "[kafka]") {
  kafka_mock mock{{"grp:4"}};
  kafka_producer_config pc;
  pc.brokers = mock.bootstrap();
  pc.topic = "grp";
  auto p = kafka_producer::open(pc, [](std::string_view, const result<void>&) {});
  REQUIRE(p);
  seen_keys seen;
  auto first = member(mock.bootstrap(), seen);
  REQUIRE((*p)->publish("warm", "1"));
  REQUIRE(eventually([&] { return seen.count("warm") == 1; }, 30s));

  // A second member joins: the broker waits for the first to rejoin, and stops meanwhile.
  auto second = member(mock.bootstrap(), seen);
  std::this_thread::sleep_for(700ms);
  mock.process().signal(SIGSTOP);
  std::this_thread::sleep_for(8s);
  mock.process().signal(SIGCONT);

  constexpr int n = 40;
  for (int i = 0; i < n; ++i) REQUIRE((*p)->publish("k" + std::to_string(i), "v"));
  REQUIRE((*p)->flush(30s));
  auto start = std::chrono::steady_clock::now();
  CHECK(eventually([&] { return seen.count("k") == n; }, 60s));
  INFO("consumed " << seen.count("k") << " of " << n << " after "
                   << std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - start)
                          .count()
                   << " s");
  CHECK(seen.count("k") == n);
}
