// The clock skew bound end to end: a real warpd whose clock runs 60 s ahead (libfaketime)
// joins two others; its clock readings (heartbeats, replicated writes) are ignored by a
// node with the default --max-clock-skew (5 s), counted in warp_hlc_remote_skew_total and
// logged, and followed by a node whose bound is 2 minutes.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <string>

#include <httplib.h>

#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace warp::test;

namespace {

const char* const faketime_lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The value of a counter (labelled with the node only) in warpd's /metrics (-1 when absent).
long long metric(const warpd_process& d, const std::string& name) {
  httplib::Client client{"127.0.0.1", d.http_port()};
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  auto r = client.Get("/metrics");
  if (!r || r->status != 200) return -1;
  // warp_x_total{node="..."} VALUE
  auto at = r->body.find("\n" + name + "{");
  if (at == std::string::npos) return -1;
  auto space = r->body.find(' ', at + 1);
  if (space == std::string::npos) return -1;
  return std::stoll(r->body.substr(space + 1));
}

}  // namespace

TEST_CASE("hlc skew: a node 60 s ahead is counted, logged and not followed past the bound") {
  // Fails (not skips) without libfaketime: scripts/deps.sh installs the faketime package.
  REQUIRE(std::filesystem::exists(faketime_lib));
  auto started = std::chrono::steady_clock::now();
  temp_dir dir{"hlc-skew"};
  std::vector<std::uint16_t> ports{free_port(), free_port(), free_port()};
  auto args = [&](std::size_t i, std::vector<std::string> extra) {
    extra.insert(extra.end(), {"--failure-timeout", "5s", "--pattern", "k:*=eventual_distributed"});
    return cluster_member_args(ports, i, dir.str(), extra);
  };
  warpd_process strict{args(0, {}), false};
  warpd_process loose{args(1, {"--max-clock-skew", "2m"}), false};
  // The skewed node: the preload is in the environment only while it is spawned.
  ::setenv("LD_PRELOAD", faketime_lib, 1);
  ::setenv("FAKETIME", "+60s", 1);
  ::setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
  warpd_process ahead{args(2, {}), false};
  ::unsetenv("LD_PRELOAD");
  ::unsetenv("FAKETIME");
  ::unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
  for (auto* d : {&strict, &loose, &ahead}) {
    INFO(d->log());
    REQUIRE(d->wait_ready());
  }
  // A write on the skewed node ships its version (60 s ahead) to the others, as its heartbeats
  // ship its clock.
  REQUIRE(eventually([&] { return ahead.ctl({"set", "k:1", "from-the-future"}).exit_code == 0; }));
  INFO("strict log: " << strict.log());
  CHECK(eventually([&] { return metric(strict, "warp_hlc_remote_skew_total") > 0; }));
  CHECK(strict.log().find("ignored a remote clock reading") != std::string::npos);
  // The loose node's bound (2 minutes) covers 60 s: nothing ignored.
  CHECK(metric(loose, "warp_hlc_remote_skew_total") == 0);
  CHECK(loose.log().find("ignored a remote clock reading") == std::string::npos);
  // The count grows while the skewed node talks (heartbeats carry its clock too), and the
  // warning is rate-limited to one per 10 s: far fewer lines than counted readings.
  auto count = metric(strict, "warp_hlc_remote_skew_total");
  std::size_t lines = 0;
  auto log = strict.log();
  for (auto at = log.find("ignored a remote clock reading"); at != std::string::npos;
       at = log.find("ignored a remote clock reading", at + 1))
    ++lines;
  INFO("counted " << count << ", logged " << lines);
  auto elapsed_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
          .count();
  CHECK(lines >= 1);
  CHECK(lines <= static_cast<std::size_t>(elapsed_s / 10 + 1));
  CHECK(static_cast<long long>(lines) <= count);
}
