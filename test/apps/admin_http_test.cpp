// The admin HTTP endpoint of a real warpd, and the Prometheus exposition format of
// warp::prometheus_text (checked by promtool and by our own checker).
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/apps/http_get.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "test/support/process.hpp"
#include "test/support/view.hpp"
#include "warp/build_info.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using namespace warp::test;

namespace {

// Checks the text exposition format 0.0.4 as far as Warp uses it: every sample belongs to
// a family announced by exactly one HELP and one TYPE line that precede it, names and
// labels are well-formed, values parse, counters end in _total. Returns "" when valid.
std::string check_exposition(const std::string& text) {
  static const std::regex help_re{R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)"};
  static const std::regex type_re{R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)"};
  static const std::regex sample_re{
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\} ([0-9.eE+-]+|NaN|\+Inf|-Inf)$)"};
  if (text.empty() || text.back() != '\n') return "must end with a newline";
  std::map<std::string, std::string> types;
  std::set<std::string> helps;
  std::istringstream in{text};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    auto where = "line " + std::to_string(n) + ": " + line;
    if (std::regex_match(line, m, help_re)) {
      if (!helps.insert(m[1]).second) return "duplicate HELP, " + where;
    } else if (std::regex_match(line, m, type_re)) {
      if (!helps.count(m[1])) return "TYPE before HELP, " + where;
      if (!types.emplace(m[1], m[2]).second) return "duplicate TYPE, " + where;
      if (m[2] == "counter" && !std::string{m[1]}.ends_with("_total"))
        return "counter not named *_total, " + where;
    } else if (std::regex_match(line, m, sample_re)) {
      std::string family = m[1];
      // A histogram's samples are FAMILY_bucket (with le), FAMILY_sum and FAMILY_count.
      for (std::string suffix : {"_bucket", "_sum", "_count"})
        if (family.ends_with(suffix)) {
          auto base = family.substr(0, family.size() - suffix.size());
          if (auto it = types.find(base); it != types.end() && it->second == "histogram") {
            if (suffix == "_bucket" && std::string{m[2]}.find("le=\"") == std::string::npos)
              return "bucket without le, " + where;
            family = base;
          }
        }
      if (!types.count(family)) return "sample without TYPE, " + where;
      if (std::string{m[2]}.find("node=\"") == std::string::npos)
        return "sample without node label, " + where;
    } else {
      return "malformed, " + where;
    }
  }
  return {};
}

}  // namespace

TEST_CASE("warpd serves /healthz, /metrics, /admin/stats and /admin/config") {
  temp_dir dir{"warpd-http"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data", "--name", "web\"node",
                   "--l1-max-entries", "1000", "--pattern", "user:*=strong_local:1m"}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  REQUIRE(d.ctl({"set", "user:1", "x"}).exit_code == 0);
  REQUIRE(d.ctl({"get", "user:1"}).exit_code == 0);
  REQUIRE(d.ctl({"get", "user:missing"}).exit_code == 1);

  auto health = http_get(d.http_port(), "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->body.starts_with("ok"));

  auto metrics = http_get(d.http_port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->get_header_value("Content-Type").starts_with("text/plain; version=0.0.4"));
  const auto& text = metrics->body;
  INFO(text);
  CHECK(check_exposition(text) == "");
  for (auto family : {"warp_l1_hits_total", "warp_l1_misses_total", "warp_l1_evictions_total",
                      "warp_l1_expirations_total", "warp_l1_sets_total", "warp_l1_removes_total",
                      "warp_l1_entries", "warp_l1_bytes", "warp_storage_fetches_total",
                      "warp_storage_errors_total", "warp_storage_writes_total",
                      "warp_coalesced_reads_total", "warp_node_info", "warp_build_info",
                      "warp_get_duration_seconds", "warp_set_duration_seconds",
                      "warp_storage_fetch_duration_seconds", "warp_storage_write_duration_seconds",
                      "warp_resp_commands_total", "warp_resp_errors_total",
                      "warp_resp_command_duration_seconds", "warp_resp_tracking_keys"}) {
    INFO(family);
    CHECK(text.find(std::string{"# TYPE "} + family + " ") != std::string::npos);
  }
  {
    auto b = warp::build();
    CHECK(text.find("warp_build_info{node=\"web\\\"node\",version=\"" + std::string{b.version} +
                    "\",commit=\"" + std::string{b.commit} + "\",compiler=\"" +
                    std::string{b.compiler} + "\"} 1\n") != std::string::npos);
  }
  // The quote in the node name is escaped in the label.
  CHECK(text.find(R"(warp_l1_entries{node="web\"node"} 1)") != std::string::npos);
  CHECK(text.find(R"(warp_l1_max_entries{node="web\"node"} 1000)") != std::string::npos);

  // scripts/deps.sh installs prometheus (for promtool): missing means a broken setup.
  auto promtool = find_program("promtool");
  INFO("promtool not found: install Debian's prometheus package (scripts/deps.sh does)");
  REQUIRE_FALSE(promtool.empty());
  {
    auto file = dir.str() + "/metrics.txt";
    std::ofstream{file} << text;
    auto r = run({"sh", "-c", promtool + " check metrics < " + file});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
  }

  auto stats = http_get(d.http_port(), "/admin/stats");
  REQUIRE(stats);
  CHECK(stats->status == 200);
  auto sdoc = json::parse(stats->body);
  CHECK(sdoc["node"]["name"] == "web\"node");
  CHECK(sdoc["l1"]["hits"].get<std::uint64_t>() >= 1);

  auto config = http_get(d.http_port(), "/admin/config");
  REQUIRE(config);
  CHECK(config->status == 200);
  auto cdoc = json::parse(config->body);
  CHECK(cdoc["storage"] == "memory");
  CHECK(cdoc["l1_max_entries"] == 1000);
  CHECK(cdoc["patterns"].size() == 1);

  auto missing = http_get(d.http_port(), "/nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);

  CHECK(d.process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE(
    "a clustered warpd's /metrics adds the cluster families and passes promtool, /admin/cluster") {
  temp_dir dir{"warpd-http-cluster"};
  std::vector<std::uint16_t> ports{free_port(), free_port()};
  std::vector<std::unique_ptr<warpd_process>> nodes;
  for (std::size_t i = 0; i < ports.size(); ++i)
    nodes.push_back(std::make_unique<warpd_process>(
        cluster_member_args(ports, i, dir.str(),
                            // Memory storage per member: unshared, allowed by the fixture
                            // (storage_identity_test is about refusing).
                            {"--failure-timeout", "3s", "--pattern", "k:*=eventual_distributed"}),
        false));
  for (auto& n : nodes) {
    INFO(n->log());
    REQUIRE(n->wait_ready());
  }
  auto& a = *nodes[0];
  // /admin/cluster is cluster_json: wait until both members are up in a's view.
  auto up_in_a = [&] {
    auto r = http_get(a.http_port(), "/admin/cluster");
    if (!r || r->status != 200) return std::size_t{0};
    return members_in_state(parse_view(r->body), "up");
  };
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (up_in_a() != 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  auto cluster = http_get(a.http_port(), "/admin/cluster");
  REQUIRE(cluster);
  CHECK(cluster->status == 200);
  CHECK(cluster->get_header_value("Content-Type").starts_with("application/json"));
  INFO(cluster->body);
  auto cdoc = json::parse(cluster->body);
  REQUIRE(cdoc["members"].size() == 2);
  CHECK(cdoc["members"][0]["self"] == true);
  CHECK(cdoc["ranges"] == 271);
  CHECK(up_in_a() == 2);

  // A change record goes out on the bus, so its counters are not all zero.
  REQUIRE(a.ctl({"set", "k:1", "v"}).exit_code == 0);
  auto metrics = http_get(a.http_port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  const auto& text = metrics->body;
  INFO(text);
  CHECK(check_exposition(text) == "");
  CHECK(text.find("# TYPE warp_l1_hits_total counter") != std::string::npos);  // node families
  for (auto family :
       {"warp_cluster_members", "warp_bus_records_published_total", "warp_bus_batches_sent_total",
        "warp_bus_batch_records_max", "warp_bus_batch_delay_seconds_total", "warp_bus_gaps_total",
        "warp_cluster_owner_fetch_fallbacks_total"}) {
    INFO(family);
    CHECK(text.find(std::string{"# TYPE "} + family + " ") != std::string::npos);
  }
  CHECK(text.find(R"(warp_cluster_members{node="n0",state="up"} 2)") != std::string::npos);
  CHECK(text.find(R"(warp_bus_records_published_total{node="n0"} 0)") == std::string::npos);

  auto promtool = find_program("promtool");
  INFO("promtool not found: install Debian's prometheus package (scripts/deps.sh does)");
  REQUIRE_FALSE(promtool.empty());
  auto file = dir.str() + "/metrics.txt";
  std::ofstream{file} << text;
  auto r = run({"sh", "-c", promtool + " check metrics < " + file});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
}

TEST_CASE("a clustered node's cluster metrics escape its name in the node label") {
  // Clustered by configuration: a seed peer that refuses connections (held, so another
  // test's warpd cannot take the port and join as a second member; the view says so).
  temp_dir dir{"warpd-http-cluster-label"};
  warp::test::refused_port seed;
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data", "--name", "web\"node",
                   "--peers", "127.0.0.1:" + std::to_string(seed.port())}};
  REQUIRE(d.wait_ready());
  auto metrics = http_get(d.http_port(), "/metrics");
  REQUIRE(metrics);
  const auto& text = metrics->body;
  INFO(text);
  CHECK(text.find("# TYPE warp_cluster_members gauge") != std::string::npos);
  CHECK(check_exposition(text) == "");
  CHECK(text.find(R"(warp_cluster_members{node="web\"node",state="up"} 1)") != std::string::npos);
}

TEST_CASE("a lone warpd without peers leaves the cluster families out of /metrics") {
  temp_dir dir{"warpd-http-lone"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data"}};
  REQUIRE(d.wait_ready());
  auto metrics = http_get(d.http_port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("warp_cluster_members") == std::string::npos);
  // /admin/cluster still answers: a single member, itself.
  auto cluster = http_get(d.http_port(), "/admin/cluster");
  REQUIRE(cluster);
  CHECK(json::parse(cluster->body)["members"].size() == 1);
}

TEST_CASE("warpd --http '' turns the admin endpoint off") {
  temp_dir dir{"warpd-nohttp"};
  warpd_process d{{"--storage", "memory", "--listen", "127.0.0.1:0", "--http", "", "--resp", ""},
                  false};
  REQUIRE(d.wait_ready());
  CHECK(d.http() == "off");
  CHECK(d.ctl({"ping"}).exit_code == 0);
}

TEST_CASE("prometheus_text of an embedded node is valid exposition") {
  warp::node_config cfg;
  cfg.name = "embedded";
  cfg.listen = "";
  cfg.storage = "memory";
  cfg.scheduler_threads = 1;
  auto started = warp::node::start(cfg);
  REQUIRE(started);
  auto& n = **started;
  REQUIRE(n.set("a", "1"));
  REQUIRE(n.get("a"));
  CHECK_FALSE(n.get("b"));
  auto text = warp::prometheus_text(n);
  INFO(text);
  CHECK(check_exposition(text) == "");
  CHECK(text.find("warp_l1_hits_total{node=\"embedded\"} 1\n") != std::string::npos);

  // Passwords in a storage spec never reach /admin/config or /metrics.
  auto pg = cfg;
  pg.storage = "postgres:host=db password=hunter2 user=warp";
  auto cj = warp::config_json(pg);
  CHECK(cj.find("hunter2") == std::string::npos);
  pg.storage = "postgresql://warp:hunter2@db/warp";
  CHECK(warp::config_json(pg).find("hunter2") == std::string::npos);
  CHECK(warp::display_name(warp::node_config{}).starts_with("warp-"));
}
