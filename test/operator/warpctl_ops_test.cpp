// warpctl's operator commands against a real warpd (docs/warpctl.md): values from stdin and
// files, ttl, exists, incr, mget, a cursor-based scan over many pages, health of one node
// and of a whole cluster (a killed member shows), --output table|json, help COMMAND, and
// the bash/zsh completion scripts.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/support/view.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using namespace warp::test;

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string sh_quote(const std::string& s) {
  return "'" + s + "'";  // test paths and keys hold no quote
}

}  // namespace

TEST_CASE("warpctl: set from stdin and --file, ttl, exists, incr, mget, in table and json") {
  temp_dir dir{"warpctl-ops"};
  warpd_process w{{"--storage", "memory", "--data-dir", dir.str()}};
  REQUIRE(w.wait_ready());

  // set KEY - : the value is stdin, bytes as given (newlines included).
  auto piped = run({"/bin/sh", "-c",
                    "printf 'line one\\nline two' | " + sh_quote(warpctl_bin()) + " --node " +
                        w.node() + " set multi -"});
  INFO(piped.err);
  REQUIRE(piped.exit_code == 0);
  CHECK(w.ctl({"get", "multi"}).out == "line one\nline two\n");
  // set KEY --file F
  {
    std::ofstream f{dir.str() + "/value.bin", std::ios::binary};
    f << std::string(100'000, 'x');
  }
  REQUIRE(w.ctl({"set", "big", "--file", dir.str() + "/value.bin"}).exit_code == 0);
  CHECK(w.ctl({"get", "big"}).out.size() == 100'001);
  auto nofile = w.ctl({"set", "big", "--file", dir.str() + "/missing"});
  CHECK(nofile.exit_code == 4);
  CHECK(nofile.err.find("cannot open") != std::string::npos);
  CHECK(w.ctl({"set", "novalue"}).exit_code == 2);

  // ttl
  REQUIRE(w.ctl({"set", "short", "v", "--ttl", "10m"}).exit_code == 0);
  auto ttl = w.ctl({"--output", "json", "ttl", "short"});
  REQUIRE(ttl.exit_code == 0);
  auto t = json::parse(ttl.out);
  CHECK(t["ttl_ms"].get<std::int64_t>() > 590'000);
  CHECK(t["ttl_ms"].get<std::int64_t>() <= 600'000);
  CHECK(w.ctl({"ttl", "short"}).out.ends_with("s\n"));
  CHECK(w.ctl({"ttl", "multi"}).out == "no expiry\n");
  CHECK(json::parse(w.ctl({"--json", "ttl", "multi"}).out)["ttl_ms"].is_null());
  CHECK(w.ctl({"ttl", "absent"}).exit_code == 1);

  // exists: exit 1 when any key asked for is absent
  auto ex = w.ctl({"--output", "json", "exists", "multi", "short", "absent"});
  CHECK(ex.exit_code == 1);
  auto e = json::parse(ex.out);
  CHECK(e["count"] == 2);
  CHECK(e["keys"]["absent"] == false);
  CHECK(e["keys"]["multi"] == true);
  CHECK(w.ctl({"exists", "multi"}).out == "yes\n");
  auto ex_table = w.ctl({"exists", "multi", "absent"});
  CHECK(ex_table.out.find("absent  no") != std::string::npos);

  // incr
  CHECK(w.ctl({"incr", "counter"}).out == "1\n");
  CHECK(w.ctl({"incr", "counter", "41"}).out == "42\n");
  CHECK(json::parse(w.ctl({"--json", "incr", "counter", "--", "-2"}).out)["value"] == 40);
  auto notint = w.ctl({"incr", "multi"});
  CHECK(notint.exit_code == 4);
  CHECK(notint.err.find("not an integer") != std::string::npos);
  CHECK(w.ctl({"get", "multi"}).out == "line one\nline two\n");  // left alone

  // mget
  auto mg = w.ctl({"--output", "json", "mget", "counter", "absent", "short"});
  REQUIRE(mg.exit_code == 0);
  auto m = json::parse(mg.out)["values"];
  REQUIRE(m.size() == 3);
  CHECK(m[0]["value"] == "40");
  CHECK(m[1]["value"].is_null());
  CHECK(m[2]["value"] == "v");
  auto mg_table = lines(w.ctl({"mget", "counter", "absent"}).out);
  REQUIRE(mg_table.size() == 3);
  CHECK(mg_table[0].starts_with("KEY"));
  CHECK(mg_table[2].find("(nil)") != std::string::npos);
  // Bounded: more keys than one request may carry is refused, not attempted.
  std::vector<std::string> many{"mget"};
  for (int i = 0; i < 1001; ++i) many.push_back("k" + std::to_string(i));
  auto too_many = w.ctl(many);
  CHECK(too_many.exit_code == 4);
  CHECK(too_many.err.find("1..1000 keys") != std::string::npos);
}

TEST_CASE("warpctl scan: cursor-based pages, --limit and --cursor, table and json") {
  temp_dir dir{"warpctl-scan"};
  warpd_process w{{"--storage", "sqlite", "--data-dir", dir.str()}};
  REQUIRE(w.wait_ready());
  // 300 keys under scan:, 20 others, written through the RESP sidecar in one pipeline.
  std::string script;
  for (int i = 0; i < 300; ++i) script += "SET scan:" + std::to_string(i) + " v\n";
  for (int i = 0; i < 20; ++i) script += "SET other:" + std::to_string(i) + " v\n";
  {
    std::ofstream f{dir.str() + "/load.txt"};
    f << script;
  }
  auto port = w.resp().substr(w.resp().rfind(':') + 1);
  auto load =
      run({"/bin/sh", "-c",
           "redis-cli -p " + port + " < " + sh_quote(dir.str() + "/load.txt") + " > /dev/null"});
  REQUIRE(load.exit_code == 0);

  auto all = w.ctl({"scan", "scan:*", "--count", "7"});
  INFO(all.err);
  REQUIRE(all.exit_code == 0);
  auto keys = lines(all.out);
  std::set<std::string> unique(keys.begin(), keys.end());
  CHECK(keys.size() == 300);
  CHECK(unique.size() == 300);
  CHECK(std::all_of(keys.begin(), keys.end(), [](auto& k) { return k.starts_with("scan:"); }));
  CHECK(all.err.empty());  // not a terminal: no progress line

  auto every = w.ctl({"--output", "json", "scan"});
  REQUIRE(every.exit_code == 0);
  auto doc = json::parse(every.out);
  CHECK(doc["count"] == 320);
  CHECK(doc["done"] == true);

  // --limit stops early and says where to go on; --cursor goes on from there.
  auto first = w.ctl({"--output", "json", "scan", "scan:*", "--count", "50", "--limit", "120"});
  REQUIRE(first.exit_code == 0);
  auto f = json::parse(first.out);
  CHECK(f["count"] == 120);
  CHECK(f["done"] == false);
  auto cursor = f["cursor"].get<std::string>();
  auto rest = w.ctl({"--output", "json", "scan", "scan:*", "--cursor", cursor});
  REQUIRE(rest.exit_code == 0);
  auto r = json::parse(rest.out);
  CHECK(r["count"] == 180);
  std::set<std::string> joined;
  for (auto& k : f["keys"]) joined.insert(k.get<std::string>());
  for (auto& k : r["keys"]) joined.insert(k.get<std::string>());
  CHECK(joined == unique);
  auto table_limit = w.ctl({"scan", "scan:*", "--limit", "5"});
  CHECK(lines(table_limit.out).size() == 5);
  CHECK(table_limit.err.find("--cursor") != std::string::npos);
  CHECK(w.ctl({"scan", "--count", "0"}).exit_code == 2);
  CHECK(w.ctl({"scan", "--count", "5000"}).exit_code == 2);
}

TEST_CASE("warpctl health: one node, and --cluster: every member in one table") {
  temp_dir dir{"warpctl-health"};
  std::vector<std::uint16_t> ports{free_port(), free_port(), free_port()};
  std::vector<std::unique_ptr<warpd_process>> nodes;
  for (std::size_t i = 0; i < ports.size(); ++i)
    nodes.push_back(std::make_unique<warpd_process>(
        cluster_member_args(ports, i, dir.str(), {"--failure-timeout", "3s"}), false));
  for (auto& n : nodes) REQUIRE(n->wait_ready());
  auto& a = *nodes[0];
  REQUIRE(eventually([&] {
    auto r = a.ctl({"--json", "members"});
    return r.exit_code == 0 && members_in_state(parse_view(r.out), "up") == 3;
  }));

  auto one = a.ctl({"health"});
  CHECK(one.exit_code == 0);
  CHECK(one.out.find("READY") != std::string::npos);
  auto one_json = json::parse(a.ctl({"--output", "json", "health"}).out);
  CHECK(one_json["ready"] == true);
  CHECK(one_json["name"] == "n0");
  CHECK(one_json["members_up"] == 3);

  auto all = a.ctl({"--output", "json", "health", "--cluster"});
  INFO(all.err);
  CHECK(all.exit_code == 0);
  auto doc = json::parse(all.out);
  REQUIRE(doc["members"].size() == 3);
  for (auto& m : doc["members"]) {
    CHECK(m["alive"] == true);
    CHECK(m["ready"] == true);
    CHECK(m["storage"] == "ok");
  }
  auto table = lines(a.ctl({"health", "--cluster"}).out);
  REQUIRE(table.size() == 4);
  CHECK(table[0].starts_with("NAME"));

  // A killed member: its row says so, and the exit code tells a script.
  nodes[2]->process().signal(SIGKILL);
  nodes[2]->process().wait(5s);
  auto after = a.ctl({"--output", "json", "health", "--cluster"});
  CHECK(after.exit_code == 4);
  auto d2 = json::parse(after.out);
  bool saw_dead = false;
  for (auto& m : d2["members"])
    if (m["name"] == "n2") {
      saw_dead = true;
      CHECK(m["alive"] == false);
      CHECK(m.contains("error"));
    } else {
      CHECK(m["alive"] == true);
    }
  CHECK(saw_dead);
}

TEST_CASE("warpctl help COMMAND and the shell completion scripts") {
  auto scan = run({warpctl_bin(), "help", "scan"});
  CHECK(scan.exit_code == 0);
  CHECK(scan.out.find("--count") != std::string::npos);
  CHECK(scan.out.find("--cursor") != std::string::npos);
  auto patterns = run({warpctl_bin(), "help", "patterns"});
  CHECK(patterns.out.find("rm") != std::string::npos);
  auto top = run({warpctl_bin(), "help"});
  CHECK(top.out.find("health") != std::string::npos);
  auto nope = run({warpctl_bin(), "help", "nope"});
  CHECK(nope.exit_code == 2);
  CHECK(nope.err.find("no command 'nope'") != std::string::npos);

  std::string dir = std::string{WARP_SOURCE_DIR} + "/apps/warpctl/completion";
  // bash: the function completes commands, sub-commands and modes.
  auto complete = [&](const std::string& words, int cword) {
    return run({"/bin/bash", "-c",
                "source " + sh_quote(dir + "/warpctl.bash") + "; COMP_WORDS=(" + words +
                    "); COMP_CWORD=" + std::to_string(cword) +
                    "; _warpctl; echo \"${COMPREPLY[*]}\""});
  };
  CHECK(complete("warpctl pat", 1).out == "patterns\n");
  CHECK(complete("warpctl --node h:1 patterns r", 4).out == "rm\n");
  CHECK(complete("warpctl patterns set 'u:*' even", 4).out == "eventual_distributed\n");
  CHECK(complete("warpctl --output j", 2).out == "json\n");
  CHECK(complete("warpctl help he", 2).out == "health help\n");
  // zsh: the script parses, and the completion system loads it as a completion function.
  auto zsh = run({"zsh", "-n", dir + "/_warpctl"});
  CHECK(zsh.exit_code == 0);
  std::string script = "fpath=(" + sh_quote(dir) +
                       " $fpath); autoload -Uz compinit; compinit -u -D; print -r -- "
                       "${_comps[warpctl]}";
  auto loads = run({"zsh", "-fc", script});
  CHECK(loads.out == "_warpctl\n");
}
