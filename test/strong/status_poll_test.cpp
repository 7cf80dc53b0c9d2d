// Polling the strong-mode status of a paused node (SIGSTOP), as warp-nemesis and the
// catch-up test do: each poll fails within its bound, and the node answers again once it
// resumes.
//
// Also the regression check for a CAF 0.17 leak that LeakSanitizer found at warp-nemesis's
// exit: fetch_strong_status() used one scoped_actor for its three steps. Against a paused
// node the connect is answered from the middleman's cache, the registry lookup then waits
// out its timeout, and the connect's request timeout (still armed after its answer) fires
// during that wait: the receive skips it into the mailbox cache, the message names the
// actor as its sender, and the actor never dies. In a plain build nothing shows; under
// `scripts/sanitize.sh address` this binary then fails at exit with a LeakSanitizer report
// (scoped_actor, the clock's timeout message, a node id, an error: 704 bytes).
#include <signal.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/quorum_actor.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace warp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

TEST_CASE("strong status of a paused node: bounded failures, an answer again after it resumes") {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  test::temp_dir dir{"warp-status-poll"};
  auto port = test::free_port();
  // A strong member whose peers never run: it has a quorum actor (and so a status) but no
  // quorum, which this test does not need.
  test::child_process proc{
      {test::binary("apps/warpd/warpd"), "--name", "polled", "--listen",
       "127.0.0.1:" + std::to_string(port), "--peers", "127.0.0.1:1,127.0.0.1:2", "--storage",
       "memory", "--data-dir", dir.str(), "--http", "", "--resp", "", "--pattern",
       "*=strong_distributed", "--strong-engine", "abd", "--log-level", "warn"},
      dir.str() + "/warpd.log"};
  REQUIRE(test::wait_for_port(port, 20s));
  // An answer from this warpd (its members list our address and the two dead peers), not
  // from another process that took the port first on a shared machine.
  auto ours = [&](const result<std::string>& js) {
    return js && js->find("\"127.0.0.1:" + std::to_string(port) + "\"") != std::string::npos &&
           js->find("\"127.0.0.1:1\"") != std::string::npos;
  };
  auto answers = [&] { return ours(actors::fetch_strong_status(sys, "127.0.0.1", port, 2s)); };
  // The first answer also puts the node into the middleman's connection cache, so the
  // polls below get past the connect step while the node is stopped.
  REQUIRE(test::eventually(answers, 30s));
  REQUIRE(proc.running());

  proc.signal(SIGSTOP);
  // kill() only queues the stop: wait until the kernel reports the process stopped.
  auto stopped = [&] {
    std::ifstream stat{"/proc/" + std::to_string(proc.pid()) + "/stat"};
    std::string text{std::istreambuf_iterator<char>{stat}, {}};
    auto paren = text.rfind(')');
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'T';
  };
  REQUIRE(test::eventually(stopped, 10s));
  constexpr auto timeout = 300ms;
  for (int i = 0; i < 3; ++i) {
    auto t0 = steady::now();
    auto js = actors::fetch_strong_status(sys, "127.0.0.1", port, timeout);
    auto took = steady::now() - t0;
    INFO("poll " << i << " of the stopped node answered: " << (js ? *js : js.err().to_string()));
    CHECK_FALSE(js.has_value());
    // Three steps, each bounded by the timeout; generous slack for a sanitizer build.
    CHECK(took < 3 * timeout + 5s);
  }
  proc.signal(SIGCONT);
  CHECK(test::eventually(answers, 30s));
  proc.stop(SIGTERM, 10s);
}
