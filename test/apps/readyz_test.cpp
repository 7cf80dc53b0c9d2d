// /readyz says which check fails: storage, open breakers, strong ranges not caught up.
// /healthz stays 200 whatever they say (the process is alive).
#include <catch2/catch.hpp>

#include <signal.h>

#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/apps/http_get.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using namespace warp::test;

TEST_CASE("/readyz: a healthy node answers 200 with every check passing, as JSON") {
  temp_dir dir{"readyz-ok"};
  warpd_process d{{"--storage", "sqlite:" + dir.str() + "/warp.db", "--data-dir", dir.str()}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  auto r = http_get(d.http_port(), "/readyz");
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "application/json");
  auto doc = json::parse(r->body);
  CHECK(doc["status"] == "ready");
  CHECK(doc["failing"].empty());
  CHECK(doc["checks"]["storage"]["ok"] == true);
  CHECK(doc["checks"]["breakers"]["ok"] == true);
  CHECK(doc["checks"]["breakers"]["open"].empty());
  // No strong mode here: no strong check.
  CHECK_FALSE(doc["checks"].contains("strong"));
  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("/readyz: strong ranges that cannot catch up make the node not ready") {
  temp_dir dir{"readyz-strong"};
  // Two members that never run (ports nothing listens on): the node replicates ranges it
  // can never copy from a majority, so they never become ready.
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str(), "--peers",
                   "127.0.0.1:1,127.0.0.1:2", "--pattern", "*=strong_distributed",
                   "--strong-timeout", "200ms",
                   // The ABD engine's ranges: /readyz does not check Raft groups yet.
                   "--strong-engine", "abd"}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  json doc;
  int status = 0;
  // The quorum actor may still be starting right after the ready line.
  REQUIRE(eventually([&] {
    auto r = http_get(d.http_port(), "/readyz");
    if (!r) return false;
    status = r->status;
    doc = json::parse(r->body, nullptr, false);
    return doc.is_object() && doc["checks"].contains("strong");
  }));
  INFO(doc.dump());
  CHECK(status == 503);
  CHECK(doc["status"] == "not_ready");
  CHECK(doc["failing"] == json::array({"strong"}));
  CHECK(doc["checks"]["storage"]["ok"] == true);
  auto strong = doc["checks"]["strong"];
  CHECK(strong["ok"] == false);
  CHECK(strong["replicated_ranges"].get<std::size_t>() > 0);
  CHECK(strong["ready_ranges"].get<std::size_t>() < strong["replicated_ranges"].get<std::size_t>());
  // Alive all the same.
  auto health = http_get(d.http_port(), "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  // The same counts on /metrics, for the alert rule.
  auto metrics = http_get(d.http_port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("# TYPE warp_strong_ranges_ready gauge") != std::string::npos);
  CHECK(metrics->body.find("# TYPE warp_strong_ranges_replicated gauge") != std::string::npos);
  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("/readyz: raft groups without a leader make the node not ready") {
  temp_dir dir{"readyz-raft"};
  // Two members that never run: no group reaches a majority, so none elects a leader.
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str(), "--peers",
                   "127.0.0.1:1,127.0.0.1:2", "--pattern", "*=strong_distributed",
                   "--strong-engine", "raft", "--raft-tick", "50ms"}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  json doc;
  int status = 0;
  REQUIRE(eventually([&] {
    auto r = http_get(d.http_port(), "/readyz");
    if (!r) return false;
    status = r->status;
    doc = json::parse(r->body, nullptr, false);
    return doc.is_object() && doc["checks"].contains("strong");
  }));
  INFO(doc.dump());
  CHECK(status == 503);
  CHECK(doc["failing"] == json::array({"strong"}));
  auto strong = doc["checks"]["strong"];
  CHECK(strong["engine"] == "raft");
  // 12 key groups (4 x members) and the coordination group.
  CHECK(strong["groups"].get<std::size_t>() == 13);
  CHECK(strong["leaderless_groups"].size() == 13);
  // /admin/strong: every group a follower or (pre-)candidate, none with a leader.
  auto admin = http_get(d.http_port(), "/admin/strong");
  REQUIRE(admin);
  CHECK(admin->status == 200);
  auto adoc = json::parse(admin->body);
  CHECK(adoc["leading"] == 0);
  for (auto& g : adoc["groups"]) CHECK(g["leader"] == 0);
  auto metrics = http_get(d.http_port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("warp_raft_groups_leaderless{node=") != std::string::npos);
  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("/admin/strong: 404 with a reason on a node without a strong mode") {
  temp_dir dir{"admin-strong-none"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str()}};
  REQUIRE(d.wait_ready());
  auto r = http_get(d.http_port(), "/admin/strong");
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body.find("no strong mode") != std::string::npos);
  auto ctl = d.ctl({"strong", "status"});
  CHECK(ctl.exit_code != 0);
  CHECK((ctl.out + ctl.err).find("no strong mode") != std::string::npos);
  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}
