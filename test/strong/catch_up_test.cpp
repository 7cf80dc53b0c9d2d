// Catch-up of a restarted replica must not wait for a replica that is paused (SIGSTOP): the
// ranges that do not need the paused node become ready within a few seconds, the others as
// soon as it resumes. Five warpd processes, RF 3 (so every range of the restarted node that
// the paused node also replicates needs it: two of three copies impaired), kill -9 +
// restart of one node while others are stopped.
#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/quorum_actor.hpp"
#include "runtime/modes/strong.hpp"
#include "test/support/process.hpp"

using namespace warp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

struct proc_cluster {
  test::temp_dir dir{"warp-catch-up"};
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<test::child_process>> procs;

  explicit proc_cluster(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) ports.push_back(test::free_port());
    procs.resize(n);
  }
  ~proc_cluster() {
    for (auto& p : procs)
      if (p) {
        p->signal(SIGCONT);
        p->stop(SIGKILL, 5s);
      }
  }
  std::string address(std::size_t i) const { return "127.0.0.1:" + std::to_string(ports[i]); }
  void start(std::size_t i) {
    std::string peers;
    for (std::size_t j = 0; j < ports.size(); ++j)
      if (j != i) peers += (peers.empty() ? "" : ",") + address(j);
    auto d = dir.str() + "/n" + std::to_string(i);
    std::filesystem::create_directories(d);
    procs[i] = std::make_unique<test::child_process>(
        std::vector<std::string>{test::binary("apps/warpd/warpd"), "--name",
                                 "n" + std::to_string(i), "--listen", address(i), "--peers", peers,
                                 "--storage", "memory", "--data-dir", d, "--http", "", "--resp", "",
                                 "--pattern", "*=strong_distributed", "--strong-engine", "abd",
                                 "--log-level", "info"},
        d + ".log");
    REQUIRE(test::wait_for_port(ports[i], 20s));
  }
};

nlohmann::json strong_status(caf::actor_system& sys, std::uint16_t port) {
  auto js = actors::fetch_strong_status(sys, "127.0.0.1", port, 2s);
  if (!js) js = actors::fetch_strong_status_fresh("127.0.0.1", port, 2s);  // see its doc
  if (!js) return {};
  return nlohmann::json::parse(*js, nullptr, false);
}

}  // namespace

TEST_CASE("strong catch-up: a paused replica delays only the ranges that need it") {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  proc_cluster c{5};
  for (std::size_t i = 0; i < 5; ++i) c.start(i);
  auto all_recovered = [&] {
    for (std::size_t i = 0; i < 5; ++i) {
      auto j = strong_status(sys, c.ports[i]);
      if (!j.is_object() || !j.value("recovered", false)) return false;
    }
    return true;
  };
  auto deadline = steady::now() + 30s;
  while (!all_recovered() && steady::now() < deadline) std::this_thread::sleep_for(100ms);
  REQUIRE(all_recovered());

  // Node 0's ranges by whether nodes 1 and 2 replicate them too.
  std::vector<std::string> members;
  for (std::size_t i = 0; i < 5; ++i) members.push_back(c.address(i));
  detail::strong_placement pl{members, c.address(0), 3, 271};
  auto index_of = [&](std::size_t node) {
    for (std::size_t m = 0; m < pl.members().size(); ++m)
      if (pl.members()[m] == c.address(node)) return m;
    return detail::strong_placement::npos;
  };
  auto has = [&](std::uint32_t r, std::size_t node) {
    auto& reps = pl.replicas(r);
    return std::find(reps.begin(), reps.end(), index_of(node)) != reps.end();
  };
  std::size_t replicated = 0, without_2 = 0, with_2_not_1 = 0;
  for (std::uint32_t r = 0; r < pl.ranges(); ++r) {
    if (!pl.is_replica(r)) continue;
    ++replicated;
    without_2 += !has(r, 2);
    with_2_not_1 += has(r, 2) && !has(r, 1);
  }
  REQUIRE(with_2_not_1 > 0);
  // Every range that does not need both of them.
  auto not_both = without_2 + with_2_not_1;
  REQUIRE(not_both < replicated);

  // The last status node 0 answered (a poll can fail under load: then the previous one
  // is kept, and failed polls are counted for the failure message).
  int failed_polls = 0;
  auto wait_ready = [&](std::size_t at_least, std::chrono::seconds limit) {
    nlohmann::json j;
    auto until = steady::now() + limit;
    while (steady::now() < until) {
      auto now = strong_status(sys, c.ports[0]);
      if (now.is_object())
        j = std::move(now);
      else
        ++failed_polls;
      if (j.is_object() && j.value("ready_ranges", std::size_t{0}) >= at_least) break;
      std::this_thread::sleep_for(100ms);
    }
    return j;
  };

  // Node 2 stopped, node 0 killed and restarted with empty memory: it catches up every
  // range that does not need node 2 (with RF 3 a restarted replica needs both other copies,
  // docs/strong.md), and none that does.
  c.procs[2]->signal(SIGSTOP);
  c.procs[0]->signal(SIGKILL);
  c.procs[0]->wait(10s);
  c.start(0);
  auto j = wait_ready(without_2, 20s);
  INFO(j.dump() << " (" << failed_polls << " status polls failed)");
  REQUIRE(j.is_object());
  CHECK(j["replicated_ranges"].get<std::size_t>() == replicated);
  CHECK(j["ready_ranges"].get<std::size_t>() == without_2);
  // Now node 1 stops too, while connected to node 0 (it answers nothing), and node 2
  // resumes. The ranges that need node 2 but not node 1 must catch up within a few
  // seconds: a pass costs one timeout for the silent node 1, not one per range.
  c.procs[1]->signal(SIGSTOP);
  std::this_thread::sleep_for(300ms);
  c.procs[2]->signal(SIGCONT);
  auto t0 = steady::now();
  j = wait_ready(not_both, 10s);
  INFO(j.dump());
  INFO("ranges: "
       << replicated << " replicated, " << without_2 << " without node 2, " << with_2_not_1
       << " with node 2 but not node 1, waited "
       << std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count()
       << " ms");
  CHECK(j["ready_ranges"].get<std::size_t>() == not_both);
  CHECK_FALSE(j["recovered"].get<bool>());
  // Node 1 resumes: the rest catches up promptly.
  c.procs[1]->signal(SIGCONT);
  auto deadline2 = steady::now() + 15s;
  while (steady::now() < deadline2) {
    j = strong_status(sys, c.ports[0]);
    if (j.is_object() && j.value("recovered", false)) break;
    std::this_thread::sleep_for(100ms);
  }
  INFO(j.dump());
  REQUIRE(j.value("recovered", false));
  CHECK(j["catch_up_ms"].get<std::int64_t>() >= 0);
}
