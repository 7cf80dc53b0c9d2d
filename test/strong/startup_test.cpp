// A node must route strong_distributed keys to the quorum coordinator from the first
// request it accepts. Before 2026-11-23 the control actor was published before the
// coordinator existed: a set arriving in that window took the local path (L1 + local
// storage) and was acknowledged without any quorum, and the control actor's L1 fast path
// then kept answering that value. The nemesis saw it as a linearizability violation and
// hundreds of "lost" writes. Here: one warpd of a three-member cluster whose other members
// never start, so no strong operation can ever succeed; a client hammers the port while the
// node (re)starts; every set and get must fail.
#include <signal.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/control_actor.hpp"
#include "test/support/process.hpp"

using namespace warp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

TEST_CASE(
    "strong startup: no strong operation succeeds without a quorum, even on the first request") {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  actors::register_control_protocol(cfg);
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  test::temp_dir dir{"warp-strong-startup"};
  auto port = test::free_port();
  // Two members that never run (ports nothing listens on, so no other test's node can
  // answer there either): no quorum, ever.
  std::string peers = "127.0.0.1:1,127.0.0.1:2";
  std::vector<std::string> argv{test::binary("apps/warpd/warpd"),
                                "--name",
                                "lonely",
                                "--listen",
                                "127.0.0.1:" + std::to_string(port),
                                "--peers",
                                peers,
                                "--storage",
                                "memory",
                                "--data-dir",
                                dir.str(),
                                "--http",
                                "",
                                "--resp",
                                "",
                                "--pattern",
                                "*=strong_distributed",
                                "--strong-engine",  // the quorum actor's start-up path
                                "abd",
                                "--strong-timeout",
                                "200ms",
                                "--log-level",
                                "warn"};
  int successes = 0, attempts = 0;
  // A refusal must be the no-quorum kind, not any error: a request the node did not
  // understand, or a crash, must not pass for "no quorum".
  std::vector<std::string> other_errors;
  auto refused = [&](caf::error& err) {
    auto code = actors::from_caf_error(err).code();
    if (code != errc::timeout && code != errc::unknown_outcome && code != errc::unreachable)
      other_errors.push_back(caf::to_string(err));
  };
  for (int round = 0; round < 15; ++round) {
    test::child_process proc{argv, dir.str() + "/warpd.log"};
    // Connect as soon as the port accepts, then send at once.
    caf::actor h;
    auto until = steady::now() + 10s;
    while (!h && steady::now() < until) {
      caf::scoped_actor self{sys};
      self->request(sys.middleman().actor_handle(), 200ms, caf::connect_atom::value,
                    std::string{"127.0.0.1"}, port)
          .receive(
              [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
                if (ptr) h = caf::actor_cast<caf::actor>(ptr);
              },
              [](caf::error&) {});
      if (!h) std::this_thread::sleep_for(1ms);
    }
    REQUIRE(h);
    // A scoped_actor per request: a shared one leaks when the put's stale timeout lands
    // in the get's receive (fetch_strong_status in actors/quorum_actor.cpp).
    auto key = "k" + std::to_string(round);
    {
      caf::scoped_actor self{sys};
      self->request(h, 3s, caf::put_atom::value, key, std::string{"v"}, std::int64_t{0})
          .receive([&](caf::ok_atom) { ++successes; }, refused);
    }
    ++attempts;
    std::this_thread::sleep_for(50ms);
    {
      caf::scoped_actor self{sys};
      self->request(h, 3s, caf::get_atom::value, key)
          .receive([&](std::string&) { ++successes; }, refused);
    }
    ++attempts;
    proc.stop(SIGKILL, 5s);
  }
  INFO(successes << " of " << attempts << " strong operations succeeded without a quorum");
  CHECK(successes == 0);
  INFO("first other error: " << (other_errors.empty() ? "" : other_errors.front()));
  CHECK(other_errors.empty());
}
