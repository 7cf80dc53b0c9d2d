// Federation over the Kafka transport through the shipped binaries (docs/federation.md,
// "Kafka transport"): two regions of warpd processes, each a cluster with its own storage,
// linked `REGION=kafka` through librdkafka's mock cluster hosted in apps/warp-kafka-mock. A
// write in one region reaches every node of the other, as the documented envelope on the
// topic; with the broker stopped, both sides write the same keys and counters, and once it
// resumes every node converges (LWW, the exact sum); a gateway killed with changes it never
// delivered loses none (the next gateway re-ships them), and a consumer killed mid-stream
// leaves its partitions to the other members with nothing lost.
#include <catch2/catch.hpp>

#include <csignal>
#include <map>
#include <mutex>
#include <thread>

#include "bus/kafka_bridge.hpp"
#include "bus/kafka_envelope.hpp"
#include "test/federation/federation_fixture.hpp"
#include "test/kafka/kafka_mock.hpp"

using warp::test::eventually;
using warp::test::kafka_mock;
using warp::test::warpd_process;
using namespace std::chrono_literals;
using namespace warp::test::fed;

namespace {

const std::vector<std::string> fed_topics{"warp.fed.A.B:4", "warp.fed.B.A:4"};

std::vector<std::string> kafka_flags(const kafka_mock& mock) {
  return {"--federation-kafka", mock.bootstrap()};
}

std::uint64_t rederived(const json& status) {
  return status.value("rederived", std::uint64_t{0});
}

}  // namespace

TEST_CASE("federation over kafka: a write in region A reaches every node of region B and back",
          "[federation][kafka][warpd]") {
  kafka_mock mock{fed_topics};
  region a{"A", 2}, b{"B", 2};
  a.start({"B=kafka"}, kafka_flags(mock));
  b.start({"A=kafka"}, kafka_flags(mock));

  // The group join takes seconds the first time: the first key may wait for it.
  REQUIRE(a.nodes[1]->ctl({"set", "f:1", "from-a"}).exit_code == 0);
  CHECK(everywhere(b, "f:1", "from-a", 60s));
  REQUIRE(b.nodes[0]->ctl({"set", "f:2", "from-b"}).exit_code == 0);
  CHECK(everywhere(a, "f:2", "from-b", 60s));
  REQUIRE(a.nodes[0]->ctl({"set", "local:1", "x"}).exit_code == 0);
  REQUIRE(b.nodes[1]->ctl({"del", "f:1"}).exit_code == 0);
  CHECK(everywhere(a, "f:1", "(nil)"));
  CHECK(everywhere(b, "f:1", "(nil)"));
  CHECK(get(*b.nodes[0], "local:1") == "(nil)");

  // The link and the bridge in /admin/federation and /metrics.
  auto s = a.status(1);
  INFO(s.dump());
  REQUIRE(s["links"].size() == 1);
  CHECK(s["links"][0]["region"] == "B");
  CHECK(s["links"][0]["addresses"] == json::array({"kafka"}));
  CHECK(s["links"][0]["state"] == "up");
  CHECK(s["kafka"]["group"] == "warp-fed-A");
  CHECK(s["kafka"]["topics_in"] == json::array({"warp.fed.B.A"}));
  CHECK(s["kafka"]["producers"]["B"]["topic"] == "warp.fed.A.B");
  CHECK(s["gateway"] == "A0");
  // Every record delivered by A's producers, each applied by one consumer of B's group.
  std::uint64_t delivered = 0, applied = 0;
  CHECK(eventually(
      [&] {
        delivered = applied = 0;
        for (std::size_t i = 0; i < 2; ++i) {
          delivered += a.status(i)["kafka"]["producers"]["B"].value("delivered", 0ull);
          applied += b.status(i)["kafka"]["consumer"].value("applied", 0ull);
        }
        return delivered >= 1 && applied >= delivered;
      },
      10s));
  INFO("delivered " << delivered << ", applied " << applied);
  auto metrics = http_get(a.nodes[1]->http_port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->find("warp_federation_kafka_producer_delivered_total ") != std::string::npos);
  CHECK(metrics->find("warp_federation_kafka_consumer_applied_total ") != std::string::npos);
  CHECK(metrics->find("warp_federation_gateway 0\n") != std::string::npos);  // A1 is not

  // What travels is the documented envelope (docs/kafka.md), readable by any consumer.
  std::mutex mu;
  std::vector<warp::bus::kafka_change> seen;
  warp::bus::kafka_consumer_config rc;
  rc.brokers = mock.bootstrap();
  rc.group = "test-reader";
  rc.topics = {"warp.fed.A.B"};
  auto reader = warp::bus::kafka_consumer::open(rc, [&](const warp::bus::kafka_record& r) {
    auto k = warp::bus::decode_kafka(r.payload, warp::bus::kafka_format::msgpack);
    if (k) {
      std::lock_guard<std::mutex> g{mu};
      seen.push_back(*k);
    }
    return warp::result<void>{};
  });
  REQUIRE(reader);
  REQUIRE(eventually(
      [&] {
        std::lock_guard<std::mutex> g{mu};
        return !seen.empty();
      },
      30s));
  std::lock_guard<std::mutex> g{mu};
  CHECK(seen[0].op == warp::bus::kafka_op::update);
  CHECK(seen[0].key == "f:1");
  CHECK(seen[0].value == "from-a");
  CHECK(seen[0].origin == "A");
  CHECK(seen[0].path == std::vector<std::string>{"A"});
  CHECK(seen[0].ver.hlc != 0);
}

TEST_CASE(
    "federation over kafka: the broker stopped, the same keys and counters written on both "
    "sides, resumed: every node converges to the last writer and the exact sum",
    "[federation][kafka][warpd][partition]") {
  kafka_mock mock{fed_topics};
  region a{"A", 2}, b{"B", 2};
  for (auto* r : {&a, &b}) {
    r->patterns = {federated_pattern, "c:*=eventual_distributed+hydrate+federated=counter"};
    r->resp = true;
  }
  a.start({"B=kafka"}, kafka_flags(mock));
  b.start({"A=kafka"}, kafka_flags(mock));
  REQUIRE(cmd(*a.nodes[1], {"INCR", "c:1"}) == ":1");
  REQUIRE(a.nodes[0]->ctl({"set", "f:warm", "1"}).exit_code == 0);
  REQUIRE(everywhere(b, "f:warm", "1", 60s));
  REQUIRE(all_answer(b, {"GET", "c:1"}, "1"));

  mock.process().signal(SIGSTOP);
  // B writes first, A later (newer HLC): A's values must win everywhere; f:last the other
  // way round. Each region's counter increments add up.
  for (int i = 0; i < 5; ++i)
    REQUIRE(b.nodes[1]->ctl({"set", "f:k" + std::to_string(i), "b"}).exit_code == 0);
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < 5; ++i)
    REQUIRE(a.nodes[i % 2]->ctl({"set", "f:k" + std::to_string(i), "a"}).exit_code == 0);
  REQUIRE(a.nodes[1]->ctl({"set", "f:last", "a"}).exit_code == 0);
  std::this_thread::sleep_for(50ms);
  REQUIRE(b.nodes[0]->ctl({"set", "f:last", "b"}).exit_code == 0);
  for (int i = 0; i < 3; ++i) REQUIRE(cmd(*a.nodes[1], {"INCRBY", "c:1", "2"}).starts_with(":"));
  for (int i = 0; i < 4; ++i) REQUIRE(cmd(*b.nodes[1], {"INCR", "c:1"}).starts_with(":"));
  REQUIRE(cmd(*b.nodes[1], {"DECRBY", "c:1", "3"}).starts_with(":"));
  // Neither side sees the other's writes while the broker is stopped.
  CHECK(all_answer(a, {"GET", "c:1"}, "7"));
  CHECK(get(*b.nodes[0], "f:k0") == "b");
  mock.process().signal(SIGCONT);

  // On failure: each node's values and federation status, and the tail of its log.
  auto show = [&](const region& r) {
    std::string out;
    for (std::size_t i = 0; i < r.nodes.size(); ++i) {
      auto log = r.nodes[i]->log();
      out += r.name + std::to_string(i) + ":";
      for (const char* k : {"f:k0", "f:k1", "f:k2", "f:k3", "f:k4", "f:last", "c:1"})
        out += std::string{" "} + k + "=" + get(*r.nodes[i], k);
      out += "\nstatus " + r.status(i).dump() + "\nlog tail:\n" +
             log.substr(log.size() > 4000 ? log.size() - 4000 : 0) + "\n";
    }
    return out;
  };
  auto converged = [&](const std::string& key, const std::string& value) {
    if (everywhere(a, key, value, 60s) && everywhere(b, key, value, 60s)) return true;
    FAIL_CHECK(key << " did not converge to " << value << "\n" << show(a) << show(b));
    return false;
  };
  for (int i = 0; i < 5; ++i)
    if (!converged("f:k" + std::to_string(i), "a")) return;
  if (!converged("f:last", "b")) return;
  // 1 + 3 x 2 in A, 4 - 3 in B.
  std::string last;
  if (!all_answer(a, {"GET", "c:1"}, "8", &last) || !all_answer(b, {"GET", "c:1"}, "8", &last))
    FAIL_CHECK("c:1 is not the exact sum 8 everywhere: " << last << "\n" << show(a) << show(b));
}

TEST_CASE(
    "federation over kafka: kill -9 of a gateway with undelivered changes and of a consumer "
    "mid-stream loses no change",
    "[federation][kafka][warpd]") {
  kafka_mock mock{fed_topics};
  region a{"A", 2}, b{"B", 2};
  // Writes through the sidecar and reads by one mget: a warpctl process per write and per
  // read took most of this case's time on a loaded machine.
  a.resp = true;
  a.start({"B=kafka"}, kafka_flags(mock));
  b.start({"A=kafka"}, kafka_flags(mock));
  REQUIRE(a.nodes[0]->ctl({"set", "f:warm", "1"}).exit_code == 0);
  REQUIRE(everywhere(b, "f:warm", "1", 60s));
  REQUIRE(eventually([&] { return a.status(1)["gateway"] == "A0"; }, 10s));

  // The broker stopped, A0 (the gateway) commits changes it cannot deliver, then dies: A1
  // becomes the gateway and re-ships them from the region's storage.
  mock.process().signal(SIGSTOP);
  constexpr int n = 20;
  std::map<std::string, std::string> shipped;
  for (int i = 0; i < n; ++i) {
    auto key = "f:s" + std::to_string(i);
    REQUIRE(cmd(*a.nodes[0], {"SET", key, std::to_string(i)}) == "OK");
    shipped[key] = std::to_string(i);
  }
  std::this_thread::sleep_for(300ms);
  a.nodes[0]->process().signal(SIGKILL);
  CHECK(eventually([&] { return rederived(a.status(1)) >= n; }, 30s));
  mock.process().signal(SIGCONT);
  auto s = a.status(1);
  INFO(s.dump());
  CHECK(s["gateway"] == "A1");
  std::string diff;
  if (!everywhere(b, shipped, 60s, &diff)) FAIL_CHECK("B differs: " << diff);

  // A stream from A1; B0 (a consumer of B's group) killed a third of the way: B1 takes its
  // partitions over, uncommitted records included.
  constexpr int m = 40;
  std::map<std::string, std::string> streamed;
  for (int i = 0; i < m; ++i) {
    if (i == m / 3) b.nodes[0]->process().signal(SIGKILL);
    auto key = "f:t" + std::to_string(i);
    REQUIRE(cmd(*a.nodes[1], {"SET", key, std::to_string(i)}) == "OK");
    streamed[key] = std::to_string(i);
  }
  if (!holds(*b.nodes[1], streamed, 90s, &diff)) {
    auto log = b.nodes[1]->log();
    FAIL_CHECK("b1 differs: " << diff << "\nB1 status " << b.status(1).dump() << "\nB1 log tail:\n"
                              << log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
  }
}

TEST_CASE(
    "federation over kafka: a full queue drops and counts and re-sends the dropped keys once it "
    "drains",
    "[federation][kafka][warpd]") {
  kafka_mock mock{fed_topics};
  region a{"A", 1}, b{"B", 1};
  b.start({"A=kafka"}, kafka_flags(mock));
  auto flags = kafka_flags(mock);
  flags.insert(flags.end(), {"--federation-queue-limit", "5", "--federation-batch-size", "5"});
  a.start({"B=kafka"}, flags);
  REQUIRE(a.nodes[0]->ctl({"set", "f:warm", "1"}).exit_code == 0);
  REQUIRE(everywhere(b, "f:warm", "1", 60s));

  // The broker stopped: one batch waits for it, and the queue of 5 behind it overflows.
  mock.process().signal(SIGSTOP);
  constexpr int n = 40;
  for (int i = 0; i < n; ++i)
    REQUIRE(a.nodes[0]->ctl({"set", "f:q" + std::to_string(i), std::to_string(i)}).exit_code == 0);
  REQUIRE(a.nodes[0]->ctl({"del", "f:warm"}).exit_code == 0);
  CHECK(
      eventually([&] { return a.status(0)["links"][0]["dropped"].get<std::uint64_t>() > 0; }, 10s));
  mock.process().signal(SIGCONT);
  for (int i = 0; i < n; ++i)
    CHECK(eventually(
        [&] { return get(*b.nodes[0], "f:q" + std::to_string(i)) == std::to_string(i); }, 60s));
  CHECK(everywhere(b, "f:warm", "(nil)"));
  auto s = a.status(0);
  INFO(s.dump());
  CHECK(s["links"][0]["repaired"].get<std::uint64_t>() > 0);
}
