// Watch and history of strong keys on real processes (docs/coordination.md, "Watch",
// "History"): three warpd with the Raft engine, `warpctl watch` on one of them (through the
// admin port's Server-Sent Events), writes through all three; the watched node is killed
// with -9 and restarted, and a watch resumed from the last cursor misses nothing and repeats
// nothing; a start below the retained window gets the explicit compacted error.
#include <catch2/catch.hpp>

#include <signal.h>

#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using namespace warp::test;
using nlohmann::json;

namespace {

struct watch_cluster {
  temp_dir dir{"warpd-watch"};
  std::vector<std::uint16_t> ports;
  std::vector<std::unique_ptr<warpd_process>> procs;

  watch_cluster() {
    for (int i = 0; i < 3; ++i) ports.push_back(free_port());
    procs.resize(3);
  }
  void start(std::size_t i) {
    auto a =
        cluster_member_args(ports, i, dir.str(),
                            {"--pattern", "account:*=strong_distributed", "--strong-engine", "raft",
                             "--raft-tick", "50ms", "--strong-timeout", "5s",
                             "--watch-ring-entries", "16", "--watch-progress-interval", "200ms"});
    procs[i] = std::make_unique<warpd_process>(a, false, dir.str());
    INFO(procs[i]->log());
    REQUIRE(procs[i]->wait_ready());
  }
  void kill9(std::size_t i) {
    procs[i]->process().signal(SIGKILL);
    procs[i]->process().wait(10s);
    procs[i].reset();
  }
  bool wait_serving() const {
    return eventually(
        [&] {
          for (std::size_t i = 0; i < procs.size(); ++i)
            if (procs[i] && procs[i]->ctl({"set", "account:probe", "p"}).exit_code != 0)
              return false;
          return true;
        },
        60s);
  }
};

struct op {
  std::string type;  // "put" or "delete"
  std::string key;
  std::string value;
};

/// The JSON events a watcher printed (its log mixes stdout and stderr).
std::vector<json> events_in(const std::string& log) {
  std::vector<json> out;
  std::istringstream in{log};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::vector<std::string> watch_argv(const warpd_process& p, const std::string& prefix,
                                    const std::string& rev) {
  std::vector<std::string> a{warpctl_bin(), "watch",    prefix, "--admin",
                             p.http(),      "--output", "json", "--progress"};
  if (!rev.empty()) a.insert(a.end(), {"--rev", rev});
  return a;
}

}  // namespace

TEST_CASE("warpd watch: resumes across a kill -9 of the watched node, nothing missed or twice") {
  watch_cluster c;
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  REQUIRE(c.wait_serving());
  // The acknowledged operations that changed a key (a delete of an absent key changes
  // nothing, so no event: as in etcd).
  std::vector<op> acked;
  std::set<std::string> present;
  int n = 0;
  auto write = [&](std::size_t node) {
    auto key = "account:w" + std::to_string(n % 7);
    op o;
    if (n % 5 == 4) {
      o = {"delete", key, ""};
      auto r = c.procs[node]->ctl({"del", key});
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
    } else {
      o = {"put", key, "v" + std::to_string(n)};
      auto r = c.procs[node]->ctl({"set", key, o.value});
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
    }
    ++n;
    if (o.type == "delete" && !present.erase(key)) return;
    if (o.type == "put") present.insert(key);
    acked.push_back(o);
  };

  temp_dir logs{"warpctl-watch"};
  child_process first{watch_argv(*c.procs[0], "account:w", "0"), logs.str() + "/first.log"};
  // The watch is open once its first progress event arrives.
  REQUIRE(eventually(
      [&] { return first.log().find("\"progress\"") != std::string::npos || !first.running(); },
      20s));
  for (int k = 0; k < 20; ++k) write(static_cast<std::size_t>(k % 3));
  std::vector<json> seen;
  bool all_seen = eventually(
      [&] {
        seen.clear();
        for (auto& e : events_in(first.log()))
          if (e["type"] != "progress") seen.push_back(e);
        return seen.size() >= acked.size();
      },
      30s);
  INFO(first.log());
  REQUIRE(all_seen);
  std::string cursor = seen.back()["cursor"].get<std::string>();
  // The watched node dies; its watcher notices and says where to resume.
  c.kill9(0);
  CHECK(first.wait(20s) == 3);
  CHECK(first.log().find("resume with --rev") != std::string::npos);
  for (int k = 0; k < 10; ++k) write(1 + static_cast<std::size_t>(k % 2));
  c.start(0);
  child_process second{watch_argv(*c.procs[0], "account:w", cursor), logs.str() + "/second.log"};
  for (int k = 0; k < 10; ++k) write(static_cast<std::size_t>(k % 3));
  const std::size_t after_cursor = acked.size() - seen.size();
  REQUIRE(eventually(
      [&] {
        std::size_t changes = 0;
        for (auto& e : events_in(second.log())) changes += e["type"] != "progress";
        return changes >= after_cursor;
      },
      60s));
  std::this_thread::sleep_for(500ms);  // anything extra (a repeat) would show up now
  for (auto& e : events_in(second.log()))
    if (e["type"] != "progress") seen.push_back(e);
  INFO(second.log());
  REQUIRE(seen.size() == acked.size());

  // Per key, the events are exactly the acknowledged operations in their order; no
  // (group, revision) twice; revisions rise within each group.
  std::map<std::string, std::vector<op>> want, got;
  for (auto& o : acked) want[o.key].push_back(o);
  std::set<std::pair<std::uint32_t, std::uint64_t>> revs;
  std::map<std::uint32_t, std::uint64_t> last;
  for (auto& e : seen) {
    op o{e["type"].get<std::string>(), e["key"].get<std::string>(), e.value("value", "")};
    got[o.key].push_back(o);
    auto g = e["group"].get<std::uint32_t>();
    auto r = e["revision"].get<std::uint64_t>();
    CHECK(revs.insert({g, r}).second);
    CHECK(r > last[g]);
    last[g] = r;
  }
  for (auto& [key, ops] : want) {
    INFO(key);
    REQUIRE(got[key].size() == ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) {
      CHECK(got[key][i].type == ops[i].type);
      CHECK(got[key][i].value == ops[i].value);
    }
  }
  second.stop();
}

TEST_CASE("warpd watch: a start below the window is compacted, and history by revision") {
  watch_cluster c;
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  REQUIRE(c.wait_serving());
  // One key, one group: 40 versions through a ring of 16.
  for (int k = 1; k <= 40; ++k)
    REQUIRE(c.procs[k % 3]->ctl({"set", "account:hot", "v" + std::to_string(k)}).exit_code == 0);
  command_result hist;
  REQUIRE(eventually(
      [&] {
        hist = c.procs[2]->ctl({"history", "account:hot", "--output", "json"});
        auto doc = json::parse(hist.out, nullptr, false);
        return hist.exit_code == 0 && doc.is_object() && doc["versions"].size() == 16 &&
               doc["versions"][0]["value"] == "v40";
      },
      20s));
  auto doc = json::parse(hist.out);
  auto newest = doc["versions"][0]["revision"].get<std::uint64_t>();
  auto older = doc["versions"][5]["revision"].get<std::uint64_t>();
  auto oldest = doc["versions"][15]["revision"].get<std::uint64_t>();
  auto at = c.procs[2]->ctl({"get", "account:hot", "--rev", std::to_string(older)});
  CHECK(at.out == "v35\n");
  CHECK(c.procs[2]->ctl({"get", "account:hot", "--rev", std::to_string(newest)}).out == "v40\n");
  auto gone = c.procs[2]->ctl({"get", "account:hot", "--rev", "1"});
  CHECK(gone.exit_code != 0);
  CHECK(gone.err.find("compacted(") != std::string::npos);

  auto w = run(watch_argv(*c.procs[2], "account:hot", "1"), 20s);
  INFO(w.out << w.err);
  CHECK(w.exit_code == 1);
  CHECK(w.err.find("compacted(") != std::string::npos);
  // From inside the window: the retained versions, then it would stream on.
  auto r = run({warpctl_bin(), "watch", "account:hot", "--admin", c.procs[2]->http(), "--rev",
                std::to_string(oldest - 1), "--count", "16"},
               20s);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("put account:hot v25 rev=") == 0);
  // A malformed start is a clear 400, not a stream.
  auto bad = run(
      {warpctl_bin(), "watch", "account:", "--admin", c.procs[2]->http(), "--rev", "0:1,x"}, 20s);
  CHECK(bad.exit_code == 4);
  CHECK(bad.err.find("HTTP 400") != std::string::npos);
}
