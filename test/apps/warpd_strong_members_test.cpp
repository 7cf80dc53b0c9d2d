// Membership changes of the strong Raft groups on real processes (docs/strong.md,
// "Membership"): three warpd serve strong INCRs from a client loop while a fourth warpd,
// started with --strong-join, is added with `warpctl members add` and one of the
// originals is removed with `warpctl members remove`. No acknowledged INCR is lost or
// applied twice, and the added node answers linearizable reads.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <signal.h>

#include <nlohmann/json.hpp>

#include "test/apps/http_get.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

struct members_cluster {
  std::string redis_cli = find_program("redis-cli");
  temp_dir dir{"warpd-strong-members"};
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<warpd_process>> procs;

  members_cluster() {
    for (int i = 0; i < 4; ++i) ports.push_back(free_port());
    procs.resize(4);
  }

  std::string addr(std::size_t i) const { return "127.0.0.1:" + std::to_string(ports[i]); }

  /// Nodes 0-2 are the initial members; node 3 joins with the same --strong-members, and so
  /// does an initial member restarted on a wiped data dir (`join`).
  std::vector<std::string> args(std::size_t i, bool join = false) const {
    std::vector<std::uint16_t> initial{ports[0], ports[1], ports[2]};
    std::vector<std::string> extra{"--pattern", "account:*=strong_distributed", "--strong-engine",
                                   "raft", "--raft-tick", "50ms", "--strong-timeout", "5s",
                                   // Small snapshots: the added node catches up from one.
                                   "--raft-snapshot-entries", "40", "--strong-members",
                                   addr(0) + "," + addr(1) + "," + addr(2)};
    if (i == 3 || join) extra.insert(extra.end(), {"--strong-join", "true"});
    auto a = cluster_member_args(i == 3 ? ports : initial, i, dir.str(), extra);
    for (std::size_t k = 0; k + 1 < a.size(); ++k)
      if (a[k] == "--resp") a[k + 1] = "127.0.0.1:0";
    return a;
  }

  void start(std::size_t i, bool join = false) {
    procs[i] = std::make_unique<warpd_process>(args(i, join), false, dir.str());
    INFO(procs[i]->log());
    REQUIRE(procs[i]->wait_ready());
  }

  command_result cli(std::size_t i, std::vector<std::string> a) const {
    auto& resp = procs[i]->resp();
    std::vector<std::string> argv{redis_cli, "-h", "127.0.0.1", "-p",
                                  resp.substr(resp.rfind(':') + 1)};
    argv.insert(argv.end(), a.begin(), a.end());
    return run(argv, 30s);
  }

  bool wait_serving(std::vector<std::size_t> nodes) const {
    return eventually(
        [&] {
          for (auto i : nodes)
            if (cli(i, {"SET", "account:probe" + std::to_string(i), "p"}).out != "OK\n")
              return false;
          return true;
        },
        60s);
  }
};

bool is_integer_reply(const std::string& out) {
  if (out.size() < 2 || out.back() != '\n') return false;
  for (std::size_t k = 0; k + 1 < out.size(); ++k)
    if (out[k] < '0' || out[k] > '9') return false;
  return true;
}

}  // namespace

TEST_CASE(
    "warpd strong members: a node added and an original removed while INCRs run, no "
    "INCR lost or applied twice") {
  members_cluster c;
  REQUIRE_FALSE(c.redis_cli.empty());  // scripts/deps.sh installs redis-tools
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  REQUIRE(c.wait_serving({0, 1, 2}));

  // The client loop: INCRs through nodes 0 and 1 (they stay members). Each acknowledged
  // INCR answers the counter's new value; the values must all differ (no double apply).
  std::atomic<bool> stop{false};
  std::mutex mtx;
  std::set<long long> values;
  std::size_t acked = 0, failed = 0, duplicates = 0;
  std::string last_error;
  std::thread loop{[&] {
    for (std::size_t k = 0; !stop.load(); ++k) {
      auto r = c.cli(k % 2, {"INCR", "account:counter"});
      std::lock_guard<std::mutex> g{mtx};
      if (r.exit_code == 0 && is_integer_reply(r.out)) {
        ++acked;
        if (!values.insert(std::stoll(r.out)).second) ++duplicates;
      } else {
        ++failed;
        last_error = r.out + r.err;
      }
    }
  }};
  auto acked_now = [&] {
    std::lock_guard<std::mutex> g{mtx};
    return acked;
  };
  REQUIRE(eventually([&] { return acked_now() >= 100; }, 60s));  // past a snapshot

  c.start(3);
  // Until it is added, the joined node is in no group: not ready, and /readyz says why.
  {
    auto ready = http_get(c.procs[3]->http_port(), "/readyz");
    REQUIRE(ready);
    INFO(ready->body);
    CHECK(ready->status == 503);
    auto doc = nlohmann::json::parse(ready->body);
    CHECK(doc["checks"]["strong"]["member_of_no_group"] == true);
  }
  // It announces itself (hello) to the initial members; until then `add` says not_found.
  std::string report;
  REQUIRE(eventually(
      [&] {
        auto r = c.procs[0]->ctl({"members", "add", c.addr(3)});
        report = r.out + r.err;
        return r.exit_code == 0;
      },
      60s));
  INFO(report);
  CHECK(report.find("added") != std::string::npos);
  // Added to every group and caught up: ready.
  CHECK(eventually(
      [&] {
        auto r = http_get(c.procs[3]->http_port(), "/readyz");
        return r && r->status == 200;
      },
      60s));
  auto before_remove = acked_now();
  REQUIRE(eventually([&] { return acked_now() >= before_remove + 50; }, 60s));

  auto rm = c.procs[1]->ctl({"members", "remove", c.addr(2)});
  INFO(rm.out << rm.err);
  REQUIRE(rm.exit_code == 0);
  CHECK(rm.out.find("removed") != std::string::npos);
  auto after_remove = acked_now();
  REQUIRE(eventually([&] { return acked_now() >= after_remove + 50; }, 60s));
  // Node 2 stops for good: the three voters left (0, 1 and the added 3) keep serving.
  c.procs[2].reset();
  auto after_stop = acked_now();
  REQUIRE(eventually([&] { return acked_now() >= after_stop + 30; }, 60s));
  stop = true;
  loop.join();

  // The added node answers a linearizable read of the counter: every acknowledged INCR,
  // none twice. A failed INCR (unknown outcome) may or may not have applied.
  std::string got;
  REQUIRE(eventually(
      [&] {
        got = c.cli(3, {"GET", "account:counter"}).out;
        return is_integer_reply(got);
      },
      30s));
  auto final_value = static_cast<std::size_t>(std::stoll(got));
  INFO("acked " << acked << " failed " << failed << " final " << final_value
                << " last error: " << last_error);
  CHECK(duplicates == 0);
  CHECK(final_value >= acked);
  CHECK(final_value <= acked + failed);
  CHECK(values.size() == acked);
  if (!values.empty()) CHECK(static_cast<std::size_t>(*values.rbegin()) <= final_value);
  WARN("strong INCRs during add+remove: " << acked << " acknowledged, " << failed
                                          << " failed, final counter " << final_value);

  // The list on the added node: 0, 1 and itself vote in every group, node 2 in none.
  auto list = c.procs[3]->ctl({"members", "list"});
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  CHECK(list.out.find(c.addr(2)) != std::string::npos);
  CHECK(list.out.find("voter_of=0/") != std::string::npos);
  // Its keys written before it joined are there too (caught up from a snapshot).
  CHECK(c.cli(3, {"GET", "account:probe0"}).out == "p\n");
  // Adding it again is idempotent.
  auto again = c.procs[0]->ctl({"members", "add", c.addr(3)});
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("already a voter") != std::string::npos);
}

TEST_CASE(
    "warpd strong members: a node whose data dir was wiped rejoins as a new member and catches "
    "up from a snapshot") {
  members_cluster c;
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  REQUIRE(c.wait_serving({0, 1, 2}));
  // Past several snapshots (--raft-snapshot-entries 40) of the counter's group.
  for (int n = 1; n <= 120; ++n) {
    auto r = c.cli(n % 2, {"INCR", "account:counter"});
    INFO(r.out << r.err);
    REQUIRE(r.out == std::to_string(n) + "\n");
  }
  c.procs[2]->process().signal(SIGKILL);
  c.procs[2]->process().wait(10s);
  c.procs[2].reset();
  std::filesystem::remove_all(c.dir.str() + "/n2");
  // The same address, an empty data dir: it must come back as a new member (--strong-join),
  // never with its old id and an empty log.
  c.start(2, true);
  // Its old id is still a voter at that address, unlinked: remove it, add the new one.
  std::string old_id;
  REQUIRE(eventually(
      [&] {
        auto r = c.procs[0]->ctl({"members", "list"});
        std::istringstream in{r.out};
        for (std::string line; std::getline(in, line);)
          if (line.find(" " + c.addr(2) + " ") != std::string::npos &&
              line.find("unlinked") != std::string::npos)
            old_id = line.substr(0, line.find(' '));
        return !old_id.empty() && r.out.find(" linked") != std::string::npos;
      },
      60s));
  auto rm = c.procs[0]->ctl({"members", "remove", old_id});
  INFO(rm.out << rm.err);
  REQUIRE(rm.exit_code == 0);
  std::string report;
  REQUIRE(eventually(
      [&] {
        auto r = c.procs[1]->ctl({"members", "add", c.addr(2)});
        report = r.out + r.err;
        return r.exit_code == 0;
      },
      60s));
  INFO(report);
  CHECK(eventually(
      [&] {
        auto r = http_get(c.procs[2]->http_port(), "/readyz");
        return r && r->status == 200;
      },
      60s));
  // It serves every write made before it lost its disk, and its log starts at a snapshot
  // it was sent (the leaders had compacted the entries it lacked).
  CHECK(c.cli(2, {"GET", "account:counter"}).out == "120\n");
  CHECK(c.cli(2, {"INCR", "account:counter"}).out == "121\n");
  auto st = http_get(c.procs[2]->http_port(), "/admin/strong");
  REQUIRE(st);
  std::uint64_t from_snapshot = 0;
  const auto doc = nlohmann::json::parse(st->body);
  for (auto& g : doc["groups"]) from_snapshot += g["snapshot_index"].get<std::uint64_t>() > 0;
  INFO(st->body);
  CHECK(from_snapshot > 0);
}
