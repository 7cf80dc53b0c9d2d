// `warpctl members` against real warpd clusters: the view converges to `up` everywhere, a
// node killed with SIGKILL turns suspect, then down, in the survivors' views; the table and
// --json agree; exit codes match the other subcommands.
#include <catch2/catch.hpp>

#include <signal.h>

#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/support/view.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using namespace warp::test;

namespace {

// State of the member named `name` in `d`'s view ("" when absent or unreachable).
std::string state_of(const warpd_process& d, const std::string& name) {
  auto r = d.ctl({"--json", "members"});
  if (r.exit_code != 0) return {};
  auto doc = json::parse(r.out, nullptr, false);
  if (doc.is_discarded()) return {};
  for (auto& m : doc["members"])
    if (m.value("name", "") == name) return m.value("state", "");
  return {};
}

std::size_t up_count(const warpd_process& d) {
  auto r = d.ctl({"--json", "members"});
  if (r.exit_code != 0) return 0;
  return members_in_state(parse_view(r.out), "up");
}

}  // namespace

TEST_CASE(
    "warpctl members: a 3-node cluster converges to up, a killed node turns suspect, then down") {
  temp_dir dir{"warpctl-members"};
  std::vector<std::uint16_t> ports{free_port(), free_port(), free_port()};
  std::vector<std::unique_ptr<warpd_process>> nodes;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    // A failure timeout well above the heartbeat: a loaded test box must not flap.
    nodes.push_back(std::make_unique<warpd_process>(
        cluster_member_args(ports, i, dir.str(), {"--failure-timeout", "3s"}), false));
  }
  for (auto& n : nodes) {
    INFO(n->log());
    REQUIRE(n->wait_ready());
  }
  for (auto& n : nodes) {
    INFO("view of " << n->node() << ": " << n->ctl({"--json", "members"}).out);
    CHECK(eventually([&] { return up_count(*n) == 3; }));
  }

  auto& a = *nodes[0];
  // One cluster for every step (sections would start it three times): --json first.
  {
    auto r = a.ctl({"--json", "members"});
    REQUIRE(r.exit_code == 0);
    auto doc = json::parse(r.out);
    CHECK(doc["ranges"] == 271);
    REQUIRE(doc["members"].size() == 3);
    CHECK(doc["members"][0]["self"] == true);  // this node first
    CHECK(doc["members"][0]["name"] == "n0");
    std::size_t ranges = 0;
    for (auto& m : doc["members"]) {
      CHECK(m["state"] == "up");
      ranges += m["owned_ranges"].get<std::size_t>();
    }
    CHECK(ranges == 271);  // every range has exactly one owner
    CHECK(doc["stats"].contains("heartbeats_received"));
  }
  // The table names every member with its address and state.
  {
    auto r = a.ctl({"members"});
    REQUIRE(r.exit_code == 0);
    INFO(r.out);
    CHECK(r.out.rfind("NAME", 0) == 0);
    CHECK(r.out.find("n0 *") != std::string::npos);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(r.out.find("n" + std::to_string(i)) != std::string::npos);
      CHECK(r.out.find("127.0.0.1:" + std::to_string(ports[i])) != std::string::npos);
    }
    CHECK(r.out.find(" up ") != std::string::npos);
    CHECK(r.out.find("271 key ranges") != std::string::npos);
  }
  // kill -9 of one node: suspect or down, then down, in the others' views.
  {
    nodes[2]->process().signal(SIGKILL);
    REQUIRE(nodes[2]->process().wait(10s) >= 0);
    for (std::size_t i = 0; i < 2; ++i) {
      auto& n = *nodes[i];
      INFO("view of n" << i << ": " << n.ctl({"--json", "members"}).out);
      CHECK(eventually([&] {
        auto s = state_of(n, "n2");
        return s == "suspect" || s == "down";
      }));
      CHECK(eventually([&] { return state_of(n, "n2") == "down"; }));
      CHECK(state_of(n, "n0") == "up");
      CHECK(state_of(n, "n1") == "up");
    }
    auto table = a.ctl({"members"});
    INFO(table.out);
    CHECK(table.out.find(" down ") != std::string::npos);
    // Its ranges moved to the survivors.
    auto doc = json::parse(a.ctl({"--json", "members"}).out);
    for (auto& m : doc["members"])
      if (m["name"] == "n2") CHECK(m["owned_ranges"] == 0);
    // The dead node itself is unreachable: exit 3 like any other subcommand.
    auto dead = nodes[2]->ctl({"members"});
    CHECK(dead.exit_code == 3);
  }
}

TEST_CASE("warpctl members on a lone node shows itself, a closed port exits 3") {
  temp_dir dir{"warpctl-members-lone"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data", "--name", "solo"}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  auto r = d.ctl({"--json", "members"});
  REQUIRE(r.exit_code == 0);
  auto doc = json::parse(r.out);
  REQUIRE(doc["members"].size() == 1);
  CHECK(doc["members"][0]["name"] == "solo");
  CHECK(doc["members"][0]["self"] == true);
  CHECK(doc["members"][0]["state"] == "up");

  auto node = "127.0.0.1:" + std::to_string(free_port());
  auto closed = run({warpctl_bin(), "--node", node, "members"});
  CHECK(closed.exit_code == 3);
  CHECK(closed.err.find("cannot reach " + node) != std::string::npos);
  auto closed_json = run({warpctl_bin(), "--node", node, "--json", "members"});
  CHECK(closed_json.exit_code == 3);
  CHECK(json::parse(closed_json.out)["ok"] == false);
}
