// Short nemesis runs as part of the suite, one per strong engine: warp-nemesis starts its
// own warpd processes, records a concurrent get/set/delete history (and INCR/GET counters
// on Raft) while it kill -9s, restarts, pauses and resumes nodes with a fixed seed, and
// checks the history for linearizability, lost writes and counter anomalies.
// Longer and 5-node runs are the app's job (see docs/strong.md).
#include <catch2/catch.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"
#include "test/support/time_scale.hpp"

using namespace warp::test;

namespace {

nlohmann::json last_json_line(const std::string& out) {
  auto end = out.find_last_not_of("\n");
  if (end == std::string::npos) return {};
  auto start = out.rfind('\n', end);
  auto line = out.substr(start == std::string::npos ? 0 : start + 1,
                         end - (start == std::string::npos ? 0 : start + 1) + 1);
  return nlohmann::json::parse(line, nullptr, false);
}

}  // namespace

TEST_CASE(
    "nemesis: 3 nodes under kill -9 and SIGSTOP stay linearizable and lose no acknowledged write") {
  // The ABD engine (warp-nemesis's default is Raft, tested below).
  // At least three faults must fit in the run. A kill -9 is followed by a restart and a
  // catch-up of 1-2 s in a plain build, 8-13 s under TSan on a loaded machine (2 faults in
  // 20 s there): a sanitizer run gets up to 3x the time (WARP_TEST_TIME_SCALE), which the
  // 180 s ctest limit still holds.
  auto seconds = static_cast<int>(20 * std::min(time_scale(), 3.0));
  auto r = run({binary("apps/warp-nemesis/warp-nemesis"), "--nodes", "3", "--seconds",
                std::to_string(seconds), "--seed", "4242", "--engine", "abd", "--json", "--warpd",
                binary("apps/warpd/warpd")},
               std::chrono::seconds(240));
  INFO(r.out);
  INFO(r.err);
  auto j = last_json_line(r.out);
  REQUIRE(j.is_object());
  CHECK(j["violations"] == 0);
  CHECK(j["lost_writes"] == 0);
  CHECK(j["checker_gave_up"] == 0);
  CHECK(j["healthy"] == true);
  CHECK(j["faults"].get<int>() >= 3);
  CHECK(j["ops_checked"].get<int>() >= 500);
  CHECK(r.exit_code == 0);
}

TEST_CASE(
    "nemesis: raft, 3 nodes under kill -9 of a leader, of one node and of every node, and "
    "SIGSTOP of a leader, stay linearizable, lose no acknowledged write and count INCRs once") {
  // One round of the four Raft faults (the seed shuffles their order) fits in 20 s on a
  // loaded machine: kill -9 of every node costs a restart of all and an election per group.
  auto seconds = static_cast<int>(20 * std::min(time_scale(), 3.0));
  auto r = run(
      {binary("apps/warp-nemesis/warp-nemesis"), "--engine", "raft", "--nodes", "3", "--seconds",
       std::to_string(seconds), "--seed", "7", "--json", "--warpd", binary("apps/warpd/warpd")},
      std::chrono::seconds(240));
  INFO(r.out);
  INFO(r.err);
  auto j = last_json_line(r.out);
  REQUIRE(j.is_object());
  CHECK(j["engine"] == "raft");
  CHECK(j["violations"] == 0);
  CHECK(j["lost_writes"] == 0);
  CHECK(j["checker_gave_up"] == 0);
  CHECK(j["healthy"] == true);
  CHECK(j["faults"].get<int>() >= 2);
  CHECK(j["ops_checked"].get<int>() >= 100);
  CHECK(j["counter_incr_acknowledged"].get<int>() >= 5);
  CHECK(r.exit_code == 0);
}

TEST_CASE(
    "nemesis: raft, lock workload under kill -9, SIGSTOP, partitions and a paused holder: tokens "
    "increase, fenced writes never interleave and none acknowledged is lost") {
  // Every client takes one lock with a 3 s session and appends its token to a fenced
  // register inside the critical section (test/support/coord_check.hpp checks the history).
  auto seconds = static_cast<int>(20 * std::min(time_scale(), 3.0));
  auto r = run({binary("apps/warp-nemesis/warp-nemesis"), "--workload", "lock", "--partitions",
                "--nodes", "3", "--seconds", std::to_string(seconds), "--seed", "11", "--json",
                "--warpd", binary("apps/warpd/warpd")},
               std::chrono::seconds(240));
  INFO(r.out);
  INFO(r.err);
  auto j = last_json_line(r.out);
  REQUIRE(j.is_object());
  CHECK(j["workload"] == "lock");
  CHECK(j["violations"] == 0);
  CHECK(j["lost_writes"] == 0);
  CHECK(j["checker_gave_up"] == 0);
  CHECK(j["healthy"] == true);
  CHECK(j["faults"].get<int>() >= 2);
  CHECK(j["coordination"]["holds"].get<int>() >= 20);
  CHECK(j["coordination"]["fenced_writes_acknowledged"].get<int>() >= 10);
  CHECK(r.exit_code == 0);
}

TEST_CASE(
    "nemesis: raft, lease workload under kill -9, SIGSTOP and partitions: no attached key is "
    "read after its revoke was acknowledged or after its lease ran out") {
  auto seconds = static_cast<int>(20 * std::min(time_scale(), 3.0));
  auto r = run({binary("apps/warp-nemesis/warp-nemesis"), "--workload", "lease", "--partitions",
                "--nodes", "3", "--seconds", std::to_string(seconds), "--seed", "12", "--json",
                "--warpd", binary("apps/warpd/warpd")},
               std::chrono::seconds(240));
  INFO(r.out);
  INFO(r.err);
  auto j = last_json_line(r.out);
  REQUIRE(j.is_object());
  CHECK(j["workload"] == "lease");
  CHECK(j["violations"] == 0);
  CHECK(j["checker_gave_up"] == 0);
  CHECK(j["healthy"] == true);
  CHECK(j["faults"].get<int>() >= 2);
  CHECK(j["coordination"]["leases_revoked"].get<int>() >= 3);
  CHECK(j["coordination"]["lease_reads"].get<int>() >= 50);
  CHECK(r.exit_code == 0);
}
