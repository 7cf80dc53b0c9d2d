// Federated CRDT keys through the shipped binaries (docs/merge.md, docs/federation.md): the
// sidecar's INCR/SADD/HSET on keys whose pattern says +federated=counter|set|map write the
// CRDT state, the federation ships it, and each region merges what arrives with its own.
// Two regions of two warpd processes, each region its own storage; writes on both sides
// while the gateways are stopped (so neither side sees the other's), then resumed: every
// node of both regions answers the exact sum, the union (add wins over a concurrent
// remove) and both regions' hash fields. And the replies of those commands on one node
// byte for byte against redis-server.
#include <catch2/catch.hpp>

#include <csignal>

#include "test/federation/federation_fixture.hpp"
#include "test/sidecar/resp_client.hpp"
#include "test/sidecar/sidecar_fixture.hpp"

using warp::test::eventually;
using warp::test::resp_conn;
using warp::test::warpd_process;
using namespace std::chrono_literals;
using namespace warp::test::fed;

namespace {

const std::vector<std::string> crdt_patterns{federated_pattern,
                                             "c:*=eventual_distributed+hydrate+federated=counter",
                                             "s:*=eventual_distributed+hydrate+federated=set",
                                             "m:*=eventual_distributed+hydrate+federated=map"};

// Two regions with the CRDT patterns and the sidecar; each reaches the other only through its
// node 0, node 1 of each takes the writes.
void start_crdt_regions(region& a, region& b) {
  for (auto* r : {&a, &b}) {
    r->patterns = crdt_patterns;
    r->resp = true;
  }
  a.start({b.gateway(0)});
  b.start({a.gateway(0)});
}

}  // namespace

TEST_CASE(
    "federation CRDT keys: concurrent INCRs in two regions converge to the exact sum, SADDs to "
    "the union with add-wins, HSETs to both fields",
    "[federation][warpd][partition]") {
  region a{"A", 2}, b{"B", 2};
  start_crdt_regions(a, b);
  auto& a1 = *a.nodes[1];
  auto& b1 = *b.nodes[1];

  REQUIRE(cmd(a1, {"INCR", "c:1"}) == ":1");
  REQUIRE(cmd(a1, {"SADD", "s:1", "x"}) == ":1");
  std::string last;
  REQUIRE(all_answer(b, {"GET", "c:1"}, "1", &last));
  REQUIRE(all_answer(b, {"SMEMBERS", "s:1"}, "[x]", &last));

  // Partition: both gateways stopped, so each region's writes wait in its queues and
  // neither side sees the other's.
  a.nodes[0]->process().signal(SIGSTOP);
  b.nodes[0]->process().signal(SIGSTOP);
  for (int i = 0; i < 5; ++i) REQUIRE(cmd(a1, {"INCRBY", "c:1", "10"}).starts_with(":"));
  REQUIRE(cmd(a1, {"DECR", "c:1"}) == ":50");
  for (int i = 0; i < 7; ++i) REQUIRE(cmd(b1, {"INCR", "c:1"}) == ":" + std::to_string(2 + i));
  REQUIRE(cmd(b1, {"DECRBY", "c:1", "3"}) == ":5");
  // A removes x while B adds it again: the add wins. Each side adds its own member; A adds
  // and removes one B never saw.
  REQUIRE(cmd(a1, {"SREM", "s:1", "x"}) == ":1");
  REQUIRE(cmd(a1, {"SADD", "s:1", "a", "gone"}) == ":2");
  REQUIRE(cmd(a1, {"SREM", "s:1", "gone"}) == ":1");
  REQUIRE(cmd(b1, {"SADD", "s:1", "x", "b"}) == ":1");
  REQUIRE(cmd(a1, {"HSET", "m:1", "fa", "1", "both", "a"}) == ":2");
  REQUIRE(cmd(b1, {"HSET", "m:1", "fb", "2"}) == ":1");
  std::this_thread::sleep_for(200ms);
  // B writes `both` last (a newer version): B's value wins that field everywhere.
  REQUIRE(cmd(b1, {"HSET", "m:1", "both", "b"}) == ":1");
  std::this_thread::sleep_for(1500ms);  // batches to the stopped gateways time out meanwhile
  a.nodes[0]->process().signal(SIGCONT);
  b.nodes[0]->process().signal(SIGCONT);

  // 1 + 5 x 10 - 1 (A) + 7 - 3 (B).
  for (auto* r : {&a, &b}) {
    INFO("region " << r->name);
    CHECK(all_answer(*r, {"GET", "c:1"}, "54", &last));
    INFO("last GET: " << last);
    CHECK(all_answer(*r, {"SMEMBERS", "s:1"}, "[a,b,x]", &last));
    INFO("last SMEMBERS: " << last);
    CHECK(all_answer(*r, {"HGETALL", "m:1"}, "[both,b,fa,1,fb,2]", &last));
    INFO("last HGETALL: " << last);
    CHECK(all_answer(*r, {"SCARD", "s:1"}, ":3"));
    CHECK(all_answer(*r, {"SISMEMBER", "s:1", "gone"}, ":0"));
  }
  // Increments after the partition keep adding up on both sides.
  REQUIRE(cmd(b1, {"INCRBY", "c:1", "100"}) == ":154");
  CHECK(all_answer(a, {"GET", "c:1"}, "154", &last));

  // The joins are counted per policy on the gateways that merged them.
  std::uint64_t joined = 0;
  CHECK(eventually(
      [&] {
        joined = 0;
        for (auto* r : {&a, &b}) {
          auto m = http_get(r->nodes[0]->http_port(), "/metrics");
          if (!m) return false;
          const std::string line = "warp_federation_conflicts_total{policy=\"counter\"} ";
          auto at = m->find(line);
          if (at == std::string::npos) return false;
          joined += std::stoull(m->substr(at + line.size()));
        }
        return joined >= 1;
      },
      20s));
  auto s = a.status(0);
  INFO(s.dump());
  CHECK(s["conflicts"].value("counter", 0) + b.status(0)["conflicts"].value("counter", 0) >= 1);
  CHECK(s["unknown_policy"] == 0);
}

TEST_CASE(
    "federation CRDT keys: SET on a counter, DEL then INCR, SPOP and a deleted hash merge the "
    "same way in both regions",
    "[federation][warpd][partition]") {
  region a{"A", 2}, b{"B", 2};
  start_crdt_regions(a, b);
  auto& a1 = *a.nodes[1];
  auto& b1 = *b.nodes[1];
  std::string last;
  REQUIRE(cmd(a1, {"INCRBY", "c:set", "10"}) == ":10");
  REQUIRE(cmd(a1, {"INCRBY", "c:del", "10"}) == ":10");
  REQUIRE(cmd(a1, {"INCRBY", "c:both", "4"}) == ":4");
  REQUIRE(cmd(a1, {"SADD", "s:pop", "a", "b"}) == ":2");
  REQUIRE(cmd(a1, {"HMSET", "m:del", "f", "1"}) == "OK");
  REQUIRE(all_answer(b, {"GET", "c:both"}, "4", &last));
  REQUIRE(all_answer(b, {"SCARD", "s:pop"}, ":2", &last));
  REQUIRE(all_answer(b, {"HGET", "m:del", "f"}, "1", &last));
  REQUIRE(all_answer(b, {"GET", "c:del"}, "10", &last));
  REQUIRE(all_answer(b, {"GET", "c:set"}, "10", &last));

  a.nodes[0]->process().signal(SIGSTOP);
  b.nodes[0]->process().signal(SIGSTOP);
  // A sets c:set to 100 while B adds 5: B's increment lands on top of A's value.
  REQUIRE(cmd(a1, {"SET", "c:set", "100"}) == "OK");
  REQUIRE(cmd(b1, {"INCRBY", "c:set", "5"}) == ":15");
  // A deletes c:del while B counts on: what B added after what A deleted is left.
  REQUIRE(cmd(a1, {"DEL", "c:del"}) == ":1");
  REQUIRE(cmd(a1, {"GET", "c:del"}) == "nil");
  REQUIRE(cmd(b1, {"INCR", "c:del"}) == ":11");
  REQUIRE(cmd(b1, {"INCR", "c:del"}) == ":12");
  // Both delete c:both: each increment is subtracted once, not twice.
  REQUIRE(cmd(a1, {"DEL", "c:both"}) == ":1");
  REQUIRE(cmd(b1, {"DEL", "c:both"}) == ":1");
  // A pops both members while B adds a third: B's add survives, A's pops stay popped.
  auto popped = cmd(a1, {"SPOP", "s:pop", "2"});
  CHECK((popped == "~[a,b]" || popped == "~[b,a]" || popped == "[a,b]" || popped == "[b,a]"));
  REQUIRE(cmd(a1, {"EXISTS", "s:pop"}) == ":0");
  REQUIRE(cmd(b1, {"SADD", "s:pop", "c"}) == ":1");
  // A deletes the hash while B writes another field: only B's field is left.
  REQUIRE(cmd(a1, {"DEL", "m:del"}) == ":1");
  REQUIRE(cmd(b1, {"HSET", "m:del", "g", "2"}) == ":1");
  std::this_thread::sleep_for(1500ms);  // batches to the stopped gateways time out meanwhile
  a.nodes[0]->process().signal(SIGCONT);
  b.nodes[0]->process().signal(SIGCONT);

  for (auto* r : {&a, &b}) {
    INFO("region " << r->name);
    CHECK(all_answer(*r, {"GET", "c:set"}, "105", &last));
    INFO("last GET c:set: " << last);
    CHECK(all_answer(*r, {"GET", "c:del"}, "2", &last));
    INFO("last GET c:del: " << last);
    CHECK(all_answer(*r, {"GET", "c:both"}, "nil", &last));
    CHECK(all_answer(*r, {"EXISTS", "c:both"}, ":0", &last));
    CHECK(all_answer(*r, {"SMEMBERS", "s:pop"}, "[c]", &last));
    INFO("last SMEMBERS: " << last);
    CHECK(all_answer(*r, {"HGETALL", "m:del"}, "[g,2]", &last));
    INFO("last HGETALL: " << last);
  }
  // After the merge the counters go on from the merged value in both regions.
  REQUIRE(cmd(b1, {"INCR", "c:both"}) == ":1");
  REQUIRE(cmd(a1, {"SET", "c:del", "50"}) == "OK");
  CHECK(all_answer(b, {"GET", "c:del"}, "50", &last));
  CHECK(all_answer(a, {"GET", "c:both"}, "1", &last));
}

TEST_CASE(
    "federation CRDT keys: an unregistered policy and a policy mismatch are refused and counted, "
    "never merged as lww",
    "[federation][warpd]") {
  region a{"A", 1}, b{"B", 1};
  a.resp = true;
  // u:* names a function neither region registered; c:x* is a counter in A and a function
  // in B (the regions disagree).
  a.patterns = {"c:*=eventual_distributed+federated=counter",
                "u:*=eventual_distributed+federated=nobody"};
  b.patterns = {"c:*=eventual_distributed+federated=counter",
                "c:x*=eventual_distributed+federated=nobody",
                "u:*=eventual_distributed+federated=nobody"};
  a.start({b.gateway(0)});
  b.start({a.gateway(0)});
  REQUIRE(cmd(*a.nodes[0], {"INCR", "c:1"}) == ":1");
  REQUIRE(cmd(*a.nodes[0], {"INCR", "c:x1"}) == ":1");
  REQUIRE(a.nodes[0]->ctl({"set", "u:1", "v"}).exit_code == 0);
  json s;
  CHECK(eventually(
      [&] {
        s = b.status(0);
        return s.contains("received_from") && s["received_from"].contains("A") &&
               s["received_from"]["A"].value("applied", 0) >= 1 &&
               s["received_from"]["A"].value("refused", 0) >= 2 &&
               s.value("unknown_policy", 0) >= 1;
      },
      30s));
  INFO(s.dump());
  // c:1 merged as a counter; the other two refused: B holds nothing for them.
  CHECK(b.nodes[0]->ctl({"get", "c:x1"}).exit_code == 1);
  CHECK(b.nodes[0]->ctl({"get", "u:1"}).exit_code == 1);
  auto m = http_get(b.nodes[0]->http_port(), "/metrics");
  REQUIRE(m);
  CHECK(m->find("warp_federation_unmergeable_total 1\n") != std::string::npos);
}

TEST_CASE("federation CRDT keys: the sidecar's replies match redis-server byte for byte",
          "[federation][warpd][sidecar]") {
  warp::test::temp_dir dir{"warp-fedcrdt"};
  warpd_process w{{"--storage", "memory", "--data-dir", dir.str(), "--region", "solo", "--pattern",
                   "c:*=eventual_distributed+federated=counter", "--pattern",
                   "s:*=eventual_distributed+federated=set", "--pattern",
                   "m:*=eventual_distributed+federated=map"}};
  REQUIRE(w.wait_ready());
  warp::test::redis_server redis;
  resp_conn ours{resp_port(w)}, theirs{redis.port};
  const std::vector<std::vector<std::string>> script{
      {"GET", "c:1"},
      {"INCR", "c:1"},
      {"INCRBY", "c:1", "10"},
      {"DECR", "c:1"},
      {"DECRBY", "c:1", "3"},
      {"GET", "c:1"},
      {"INCRBY", "c:1", "abc"},
      {"INCRBY", "c:1", "9223372036854775807"},
      {"DECRBY", "c:1", "-9223372036854775808"},
      {"INCRBY", "c:1", "-20"},
      {"GET", "c:1"},
      {"SADD", "c:1", "x"},
      {"HGET", "c:1", "f"},
      {"SADD", "s:1", "a", "b", "c", "a"},
      {"SADD", "s:1", "a"},
      {"SCARD", "s:1"},
      {"SISMEMBER", "s:1", "a"},
      {"SISMEMBER", "s:1", "z"},
      {"SREM", "s:1", "a", "z"},
      {"SREM", "s:1", "b"},
      {"SMEMBERS", "s:1"},
      {"SCARD", "s:1"},
      {"GET", "s:1"},
      {"INCR", "s:1"},
      {"HSET", "s:1", "f", "v"},
      {"SMEMBERS", "s:nothing"},
      {"SCARD", "s:nothing"},
      {"SREM", "s:nothing", "a"},
      {"HSET", "m:1", "f1", "v1", "f2", "v2"},
      {"HSET", "m:1", "f1", "v3"},
      {"HSET", "m:1", "f1"},
      {"HGET", "m:1", "f1"},
      {"HGET", "m:1", "nope"},
      {"HINCRBY", "m:1", "n", "5"},
      {"HINCRBY", "m:1", "n", "-7"},
      {"HINCRBY", "m:1", "f1", "1"},
      {"HINCRBY", "m:1", "n", "x"},
      {"HINCRBY", "m:1", "n", "9223372036854775807"},
      {"HDEL", "m:1", "f2", "nope"},
      {"HDEL", "m:1", "f2"},
      {"HGETALL", "m:1"},
      {"HGETALL", "m:nothing"},
      {"HGET", "m:nothing", "f"},
      {"GET", "m:1"},
      {"SADD", "m:1", "x"},
      // SET and the other string writes on a counter key set its value (issue #13).
      {"SET", "c:2", "10"},
      {"GET", "c:2"},
      {"INCR", "c:2"},
      {"SET", "c:2", "5", "GET"},
      {"SET", "c:2", "6", "NX"},
      {"SET", "c:2", "7", "XX"},
      {"SET", "c:new", "1", "XX"},
      {"EXISTS", "c:new"},
      {"SETNX", "c:2", "1"},
      {"SETNX", "c:3", "-4"},
      {"GETSET", "c:3", "40"},
      {"APPEND", "c:3", "12"},
      {"INCR", "c:3"},
      {"MSET", "c:3", "3", "c:4", "-9223372036854775808", "plain", "p"},
      {"MGET", "c:3", "c:4", "plain"},
      {"DECR", "c:4"},
      {"SETEX", "c:5", "100", "77"},
      {"GET", "c:5"},
      {"TYPE", "c:5"},
      // DEL of a counter: absent afterwards; an INCR starts from 0.
      {"DEL", "c:2", "c:5", "c:nothing"},
      {"GET", "c:2"},
      {"EXISTS", "c:2", "c:3"},
      {"TYPE", "c:2"},
      {"KEYS", "c:2"},
      {"DEL", "c:2"},
      {"INCR", "c:2"},
      {"GETDEL", "c:2"},
      {"GETDEL", "c:2"},
      {"SET", "c:2", "0"},
      {"GET", "c:2"},
      {"EXISTS", "c:2"},
      // SPOP, and an emptied set is absent.
      {"SADD", "s:2", "only"},
      {"SPOP", "s:2"},
      {"SPOP", "s:2"},
      {"SCARD", "s:2"},
      {"EXISTS", "s:2"},
      {"TYPE", "s:2"},
      {"KEYS", "s:2"},
      {"SADD", "s:3", "m"},
      {"SPOP", "s:3", "5"},
      {"SPOP", "s:3", "5"},
      {"SPOP", "s:nothing", "2"},
      {"SPOP", "s:3", "-1"},
      {"SPOP", "c:1"},
      {"SADD", "s:4", "a", "b"},
      {"TYPE", "s:4"},
      {"SREM", "s:4", "a", "b"},
      {"EXISTS", "s:4"},
      {"SADD", "s:4", "c"},
      {"EXISTS", "s:4"},
      {"DEL", "s:4"},
      {"SMEMBERS", "s:4"},
      {"DEL", "s:4"},
      // HMSET, HMGET and the other read commands; an emptied hash is absent.
      {"HMSET", "m:2", "a", "1", "b", "2"},
      {"HMSET", "m:2", "a"},
      {"HMGET", "m:2", "a", "zz", "b"},
      {"HMGET", "m:nothing", "a"},
      {"HMGET", "c:1", "a"},
      {"HLEN", "m:2"},
      {"HEXISTS", "m:2", "b"},
      {"HEXISTS", "m:2", "zz"},
      {"HKEYS", "m:2"},
      {"HVALS", "m:2"},
      {"TYPE", "m:2"},
      {"HDEL", "m:2", "a", "b"},
      {"EXISTS", "m:2"},
      {"TYPE", "m:2"},
      {"HGETALL", "m:2"},
      {"HLEN", "m:2"},
      {"KEYS", "m:2"},
      {"HSET", "m:3", "f", "v"},
      {"DEL", "m:3"},
      {"HGET", "m:3", "f"},
      {"EXISTS", "m:3"},
      {"DEL", "m:3"},
  };
  for (const auto& args : script) {
    std::string line;
    for (auto& a : args) line += a + " ";
    INFO(line);
    ours.send(args);
    theirs.send(args);
    CHECK(ours.read_raw() == theirs.read_raw());
  }
  // Pipelined INCR-family commands (one batch on the server) on a counter key and a plain
  // key mixed: each answered in order, as redis-server does.
  const std::vector<std::vector<std::string>> pipe{
      {"INCR", "c:p"}, {"INCRBY", "plain", "5"}, {"INCRBY", "c:p", "4"},
      {"DECR", "c:p"}, {"INCR", "s:1"},          {"DECRBY", "plain", "2"}};
  std::string batch;
  for (const auto& args : pipe) batch += resp_conn::encode(args);
  ours.send_raw(batch);
  theirs.send_raw(batch);
  for (const auto& args : pipe) {
    INFO(args[0] << " " << args[1]);
    CHECK(ours.read() == theirs.read());
  }
  CHECK(ours.cmd({"GET", "c:p"}) == "4");
  // Pipelined SETs on a counter key take SET's path, not the batch of plain SETs.
  const std::vector<std::vector<std::string>> sets{
      {"SET", "c:q", "8"}, {"SET", "plain2", "x"}, {"INCR", "c:q"}, {"SET", "c:q", "2"}};
  batch.clear();
  for (const auto& args : sets) batch += resp_conn::encode(args);
  ours.send_raw(batch);
  theirs.send_raw(batch);
  for (const auto& args : sets) {
    INFO(args[0] << " " << args[1]);
    CHECK(ours.read() == theirs.read());
  }
  CHECK(ours.cmd({"GET", "c:q"}) == "2");
  // Where redis-server would store a string that no region could merge, the key is left
  // as it was: a counter takes integers only, a set or map key keeps its type.
  const std::string not_int = "!ERR value is not an integer or out of range";
  CHECK(ours.cmd({"SET", "c:q", "abc"}) == not_int);
  CHECK(ours.cmd({"SET", "c:q", "1.5", "GET"}) == not_int);
  CHECK(ours.cmd({"APPEND", "c:q", "x"}) == not_int);
  CHECK(ours.cmd({"SETNX", "c:absent", "x"}) == not_int);
  CHECK(ours.cmd({"GET", "c:q"}) == "2");
  CHECK(ours.cmd({"EXISTS", "c:absent"}) == ":0");
  const std::string wrong = "!WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(ours.cmd({"SET", "s:1", "x"}) == wrong);
  CHECK(ours.cmd({"GETSET", "m:1", "x"}) == wrong);
  CHECK(ours.cmd({"MSET", "plain3", "1", "c:q", "nope"}) == not_int);
  CHECK(ours.cmd({"MSET", "plain3", "1", "m:1", "2"}) == wrong);
  CHECK(ours.cmd({"EXISTS", "plain3"}) == ":0");  // a refused MSET writes nothing
  CHECK(ours.cmd({"SMEMBERS", "s:1"}) == "[c]");
  // Emptied sets stay stored for merging but are not listed (s:2, s:3, s:4 above).
  CHECK(ours.cmd({"KEYS", "s:*"}) == "[s:1]");
  CHECK(ours.cmd({"SCAN", "0", "MATCH", "s:*", "COUNT", "1000"}) == "[0,[s:1]]");
  CHECK(ours.cmd({"SCAN", "0", "MATCH", "s:*", "COUNT", "1000", "TYPE", "set"}) == "[0,[s:1]]");
  CHECK(theirs.cmd({"KEYS", "s:*"}) == "[s:1]");
}
