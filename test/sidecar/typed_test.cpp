// Lists, sorted sets, sets and hashes (sidecar/*_commands.cpp): scripted steps, every reply
// compared byte for byte with a real redis-server, in RESP2 and RESP3; WRONGTYPE and TYPE
// across all types; strings that look like the typed header; BLPOP's error; values stored
// through the node (a second warpd on the same SQLite file reads them back).
#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sidecar/resp_server.hpp"
#include "test/sidecar/resp_client.hpp"
#include "test/sidecar/sidecar_fixture.hpp"
#include "test/support/process.hpp"
#include "warp/node.hpp"

using namespace warp::test;

namespace {

using args = std::vector<std::string>;

std::vector<std::string> run_steps(std::uint16_t port, const std::vector<args>& steps) {
  resp_conn c{port};
  std::vector<std::string> out;
  for (const auto& s : steps) {
    c.send(s);
    out.push_back(c.read_raw());
  }
  return out;
}

void compare(std::uint16_t warp_port, std::uint16_t redis_port, const std::vector<args>& steps) {
  auto want = run_steps(redis_port, steps);
  auto got = run_steps(warp_port, steps);
  REQUIRE(want.size() == got.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i][0] == "HELLO") continue;  // names the server: differs by design
    std::string cmd;
    for (const auto& a : steps[i]) cmd += a + " ";
    INFO("step " << i << ": " << cmd);
    CHECK(got[i] == want[i]);
  }
}

const std::vector<args> list_steps = {
    {"LPUSH", "l", "a", "b", "c"},
    {"RPUSH", "l", "d", "e"},
    {"LRANGE", "l", "0", "-1"},
    {"LRANGE", "l", "-100", "100"},
    {"LRANGE", "l", "3", "1"},
    {"LRANGE", "l", "9223372036854775807", "-9223372036854775808"},
    {"LRANGE", "l", "x", "1"},
    {"LRANGE", "nolist", "0", "-1"},
    {"LLEN", "l"},
    {"LLEN", "nolist"},
    {"LINDEX", "l", "0"},
    {"LINDEX", "l", "-1"},
    {"LINDEX", "l", "99"},
    {"LINDEX", "l", "x"},
    {"LINDEX", "nolist", "x"},
    {"LSET", "l", "1", "B"},
    {"LSET", "l", "-1", "E"},
    {"LSET", "l", "10", "z"},
    {"LSET", "l", "x", "z"},
    {"LSET", "nolist", "0", "z"},
    {"LRANGE", "l", "0", "-1"},
    {"LPUSHX", "nolist", "a"},
    {"RPUSHX", "l", "a", "a", "x", "a"},
    {"LREM", "l", "2", "a"},
    {"LRANGE", "l", "0", "-1"},
    {"LREM", "l", "-1", "a"},
    {"LREM", "l", "0", "zz"},
    {"LREM", "l", "x", "a"},
    {"LREM", "nolist", "1", "a"},
    {"LTRIM", "l", "1", "-2"},
    {"LRANGE", "l", "0", "-1"},
    {"LTRIM", "nolist", "0", "1"},
    {"LTRIM", "l", "x", "1"},
    {"LPOP", "l"},
    {"RPOP", "l"},
    {"LPOP", "l", "2"},
    {"RPOP", "l", "0"},
    {"LPOP", "l", "-1"},
    {"LPOP", "l", "x"},
    {"LPOP", "l", "1", "2"},
    {"RPUSH", "q", "1", "2", "3"},
    {"RPOP", "q", "100"},
    {"EXISTS", "q"},
    {"LPOP", "q"},
    {"LPOP", "q", "2"},
    {"RPOP", "q", "0"},
    {"LPUSH", "t", "x"},
    {"LTRIM", "t", "5", "10"},
    {"EXISTS", "t"},
    {"LPUSH", "ttl", "x"},
    {"EXPIRE", "ttl", "100"},
    {"RPUSH", "ttl", "y"},
    {"TTL", "ttl"},
    {"LPUSH"},
    {"LPUSH", "l"},
    {"LRANGE", "l", "0"},
};

const std::vector<args> zset_steps = {
    {"ZADD", "z", "1", "a", "2", "b", "3", "c"},
    {"ZADD", "z", "1.5", "a", "2", "b"},
    {"ZADD", "z", "CH", "1.5", "a", "2.5", "b", "4", "d"},
    {"ZADD", "z", "NX", "10", "a", "5", "e"},
    {"ZADD", "z", "XX", "10", "a", "5", "f"},
    {"ZADD", "z", "GT", "CH", "1", "a", "20", "b"},
    {"ZADD", "z", "LT", "CH", "1", "a", "30", "b"},
    {"ZADD", "z", "INCR", "0.1", "c"},
    {"ZADD", "z", "NX", "INCR", "1", "c"},
    {"ZADD", "z", "XX", "INCR", "1", "nosuch"},
    {"ZADD", "z", "NX", "XX", "1", "a"},
    {"ZADD", "z", "GT", "LT", "1", "a"},
    {"ZADD", "z", "GT", "NX", "1", "a"},
    {"ZADD", "z", "INCR", "1", "a", "2", "b"},
    {"ZADD", "z", "1", "a", "2"},
    {"ZADD", "z", "x", "a"},
    {"ZADD", "z", "nan", "a"},
    {"ZADD", "z", " 1", "a"},
    {"ZADD", "z", "inf", "top", "-inf", "bottom", "-0", "zero"},
    {"ZADD", "z", "BOGUS", "1", "a"},
    {"ZADD", "nozset", "XX", "1", "a"},
    {"EXISTS", "nozset"},
    {"ZINCRBY", "z", "2", "a"},
    {"ZINCRBY", "z", "x", "a"},
    {"ZINCRBY", "z", "1", "new"},
    {"ZINCRBY", "z", "-inf", "top"},
    {"ZSCORE", "z", "a"},
    {"ZSCORE", "z", "c"},
    {"ZSCORE", "z", "top"},
    {"ZSCORE", "z", "nosuch"},
    {"ZSCORE", "nozset", "a"},
    {"ZCARD", "z"},
    {"ZCARD", "nozset"},
    {"ZRANGE", "z", "0", "-1"},
    {"ZRANGE", "z", "0", "-1", "WITHSCORES"},
    {"ZRANGE", "z", "1", "3", "REV", "WITHSCORES"},
    {"ZRANGE", "z", "-2", "-1"},
    {"ZRANGE", "z", "5", "1"},
    {"ZRANGE", "z", "0", "1", "LIMIT", "0", "1"},
    {"ZRANGE", "z", "(1", "3", "BYSCORE"},
    {"ZRANGE", "z", "1", "(3", "BYSCORE", "WITHSCORES"},
    {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"},
    {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1"},
    {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"},
    {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "100", "2"},
    {"ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "3", "WITHSCORES"},
    {"ZRANGE", "z", "3", "(1", "BYSCORE", "REV"},
    {"ZRANGE", "z", "x", "1", "BYSCORE"},
    {"ZRANGE", "z", "0", "1", "BOGUS"},
    {"ZRANGE", "z", "0", "1", "REV", "REV"},
    {"ZRANGE", "z", "0", "1", "LIMIT", "1"},
    {"ZRANGE", "nozset", "0", "-1"},
    {"ZREVRANGE", "z", "0", "2", "WITHSCORES"},
    {"ZREVRANGE", "z", "0", "2", "BYSCORE"},
    {"ZRANGEBYSCORE", "z", "1", "3"},
    {"ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES", "LIMIT", "2", "2"},
    {"ZRANGEBYSCORE", "z", "1", "3", "REV"},
    {"ZREVRANGEBYSCORE", "z", "3", "1", "WITHSCORES"},
    {"ZCOUNT", "z", "-inf", "+inf"},
    {"ZCOUNT", "z", "(1", "3"},
    {"ZCOUNT", "z", "x", "3"},
    {"ZCOUNT", "nozset", "0", "1"},
    {"ZRANK", "z", "a"},
    {"ZRANK", "z", "nosuch"},
    {"ZRANK", "nozset", "a"},
    {"ZREVRANK", "z", "a"},
    {"ZREM", "z", "a", "nosuch", "zero"},
    {"ZREM", "nozset", "a"},
    {"ZPOPMIN", "z"},
    {"ZPOPMAX", "z", "2"},
    {"ZPOPMIN", "z", "0"},
    {"ZPOPMIN", "z", "-1"},
    {"ZPOPMIN", "z", "x"},
    {"ZPOPMIN", "z", "1", "2"},
    {"ZPOPMIN", "z", "100"},
    {"EXISTS", "z"},
    {"ZPOPMIN", "z"},
    {"ZPOPMAX", "z", "3"},
    {"ZADD", "z2", "1", "m"},
    {"ZREM", "z2", "m"},
    {"EXISTS", "z2"},
};

const std::vector<args> set_hash_steps = {
    {"SADD", "s", "b", "a", "c", "a"},
    {"SADD", "s", "a"},
    {"SCARD", "s"},
    {"SCARD", "noset"},
    {"SISMEMBER", "s", "a"},
    {"SISMEMBER", "s", "z"},
    {"SISMEMBER", "noset", "z"},
    {"SREM", "s", "a", "zz"},
    {"SREM", "noset", "a"},
    {"SMEMBERS", "noset"},
    {"SADD", "one", "x"},
    {"SMEMBERS", "one"},
    {"SPOP", "one"},
    {"EXISTS", "one"},
    {"SPOP", "one"},
    {"SPOP", "one", "3"},
    {"SPOP", "s", "0"},
    {"SPOP", "s", "-1"},
    {"SPOP", "s", "1", "2"},
    {"SADD", "one", "y"},
    {"SPOP", "one", "5"},
    {"HSET", "h", "f1", "v1", "f2", "v2"},
    {"HSET", "h", "f1", "V1", "f3", "v3"},
    {"HSET", "h", "f1"},
    {"HMSET", "h", "f4", "v4"},
    {"HMSET", "h", "f4"},
    {"HGET", "h", "f1"},
    {"HGET", "h", "nosuch"},
    {"HGET", "nohash", "f"},
    {"HMGET", "h", "f1", "nosuch", "f2"},
    {"HMGET", "nohash", "f1", "f2"},
    {"HGETALL", "h"},
    {"HGETALL", "nohash"},
    {"HKEYS", "h"},
    {"HVALS", "h"},
    {"HLEN", "h"},
    {"HLEN", "nohash"},
    {"HEXISTS", "h", "f2"},
    {"HEXISTS", "h", "zz"},
    {"HDEL", "h", "f2", "zz"},
    {"HGETALL", "h"},
    {"HINCRBY", "h", "n", "5"},
    {"HINCRBY", "h", "n", "-7"},
    {"HINCRBY", "h", "f1", "1"},
    {"HINCRBY", "h", "n", "x"},
    {"HINCRBY", "h", "n", "9223372036854775807"},
    {"HGETALL", "h"},
    {"HDEL", "h", "f1", "f3", "f4", "n"},
    {"EXISTS", "h"},
};

// Every type against every other type's commands, TYPE of each.
const std::vector<args> type_steps = {
    {"SET", "str", "v"},
    {"RPUSH", "list", "a"},
    {"ZADD", "zset", "1", "a"},
    {"SADD", "set", "a"},
    {"HSET", "hash", "f", "v"},
    {"TYPE", "str"},
    {"TYPE", "list"},
    {"TYPE", "zset"},
    {"TYPE", "set"},
    {"TYPE", "hash"},
    {"TYPE", "none"},
    {"GET", "list"},
    {"MGET", "str", "list", "zset", "none"},
    {"INCR", "list"},
    {"INCRBY", "zset", "2"},
    {"APPEND", "set", "x"},
    {"STRLEN", "hash"},
    {"GETSET", "list", "x"},
    {"GETDEL", "zset"},
    {"GETEX", "set", "EX", "100"},
    {"SET", "hash", "x", "GET"},
    {"SET", "set", "x", "NX"},
    {"SETNX", "set", "x"},
    {"LPUSH", "str", "a"},
    {"LRANGE", "zset", "0", "-1"},
    {"LLEN", "set"},
    {"LPOP", "hash"},
    {"ZADD", "list", "1", "a"},
    {"ZRANGE", "str", "0", "-1"},
    {"ZSCORE", "list", "a"},
    {"ZPOPMIN", "set"},
    {"ZPOPMIN", "set", "0"},
    {"SADD", "zset", "a"},
    {"SMEMBERS", "str"},
    {"SPOP", "hash"},
    {"HSET", "list", "f", "v"},
    {"HGET", "zset", "f"},
    {"HGETALL", "set"},
    {"HINCRBY", "str", "f", "1"},
    {"EXPIRE", "list", "100"},
    {"TTL", "list"},
    {"PERSIST", "list"},
    {"TTL", "list"},
    {"EXISTS", "str", "list", "zset", "set", "hash", "none"},
    {"SET", "list", "now a string"},
    {"TYPE", "list"},
    {"GET", "list"},
    {"DEL", "zset", "set", "hash"},
    {"TYPE", "zset"},
};

}  // namespace

TEST_CASE("lists answer byte for byte like redis-server", "[sidecar][typed][diff]") {
  redis_server redis;
  warpd_sidecar warp;
  compare(warp.port, redis.port, list_steps);
  auto resp3 = list_steps;
  resp3.insert(resp3.begin(), {"HELLO", "3"});
  REQUIRE(resp_conn{redis.port}.cmd({"FLUSHALL"}) == "OK");
  REQUIRE(resp_conn{warp.port}.cmd({"FLUSHALL"}) == "OK");
  compare(warp.port, redis.port, resp3);
}

TEST_CASE("sorted sets answer byte for byte like redis-server", "[sidecar][typed][diff]") {
  redis_server redis;
  warpd_sidecar warp;
  compare(warp.port, redis.port, zset_steps);
  auto resp3 = zset_steps;
  resp3.insert(resp3.begin(), {"HELLO", "3"});
  REQUIRE(resp_conn{redis.port}.cmd({"FLUSHALL"}) == "OK");
  REQUIRE(resp_conn{warp.port}.cmd({"FLUSHALL"}) == "OK");
  compare(warp.port, redis.port, resp3);
}

TEST_CASE("sets and hashes answer byte for byte like redis-server", "[sidecar][typed][diff]") {
  redis_server redis;
  warpd_sidecar warp;
  compare(warp.port, redis.port, set_hash_steps);
  auto resp3 = set_hash_steps;
  resp3.insert(resp3.begin(), {"HELLO", "3"});
  REQUIRE(resp_conn{redis.port}.cmd({"FLUSHALL"}) == "OK");
  REQUIRE(resp_conn{warp.port}.cmd({"FLUSHALL"}) == "OK");
  compare(warp.port, redis.port, resp3);
  // Several members: order is unspecified in Redis; compared as sets.
  resp_conn w{warp.port};
  CHECK(w.cmd({"SADD", "m", "3", "1", "2"}) == ":3");
  CHECK(w.cmd({"SMEMBERS", "m"}) == "[1,2,3]");
  auto popped = w.cmd({"SPOP", "m"});
  CHECK((popped == "1" || popped == "2" || popped == "3"));
  CHECK(w.cmd({"SCARD", "m"}) == ":2");
}

TEST_CASE("WRONGTYPE and TYPE answer like redis-server for every type", "[sidecar][typed][diff]") {
  redis_server redis;
  warpd_sidecar warp;
  compare(warp.port, redis.port, type_steps);
  resp_conn w{warp.port}, r{redis.port};
  for (const args& a : std::vector<args>{{"ZADD", "zset", "1", "a"},
                                         {"SADD", "set", "a"},
                                         {"HSET", "hash", "f", "v"},
                                         {"RPUSH", "l2", "a"}})
    CHECK(w.cmd(a) == r.cmd(a));
  CHECK(w.cmd({"SCAN", "0", "TYPE", "string"}) == "[0,[list,str]]");  // both SET last
  for (auto t : {"list", "zset", "set", "hash"}) {
    // One key of each type: the order of SCAN's keys (which differs) does not matter.
    CHECK(w.cmd({"SCAN", "0", "TYPE", t}) == r.cmd({"SCAN", "0", "TYPE", t}));
  }
  CHECK(w.cmd({"SCAN", "0", "TYPE", "stream"}) == "[0,[]]");
}

TEST_CASE("strings that look like the typed header stay strings", "[sidecar][typed]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  const std::string fake_list = std::string("\xffWT\x01l\x01\x01x", 8);
  const std::string magic_only = "\xffWT";
  for (const auto& v : {fake_list, magic_only}) {
    REQUIRE(c.cmd({"SET", "k", v}) == "OK");
    CHECK(c.cmd({"TYPE", "k"}) == "string");
    CHECK(c.cmd({"GET", "k"}) == v);
    CHECK(c.cmd({"STRLEN", "k"}) == ":" + std::to_string(v.size()));
    CHECK(c.cmd({"LLEN", "k"}).starts_with("!WRONGTYPE"));
    CHECK(c.cmd({"APPEND", "k", "z"}) == ":" + std::to_string(v.size() + 1));
    CHECK(c.cmd({"GETSET", "k", v}) == v + "z");
    CHECK(c.cmd({"MSET", "k2", v, "k3", "plain"}) == "OK");
    CHECK(c.cmd({"MGET", "k2", "k3"}) == "[" + v + ",plain]");
  }
  // Pipelined SETs (the batched path) escape too.
  std::string pipeline;
  for (int i = 0; i < 5; ++i)
    pipeline += resp_conn::encode({"SET", "p" + std::to_string(i), fake_list});
  c.send_raw(pipeline);
  for (int i = 0; i < 5; ++i) CHECK(c.read() == "OK");
  CHECK(c.cmd({"TYPE", "p3"}) == "string");
  CHECK(c.cmd({"GET", "p3"}) == fake_list);
}

TEST_CASE("blocking pops answer a clear error", "[sidecar][typed]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  for (const args& a : std::vector<args>{{"BLPOP", "q", "0"},
                                         {"BRPOP", "q", "1"},
                                         {"BZPOPMIN", "z", "0"},
                                         {"BZPOPMAX", "z", "0"},
                                         {"BRPOPLPUSH", "a", "b", "0"}}) {
    auto r = c.cmd(a);
    INFO(a[0] << " -> " << r);
    CHECK(r.starts_with("!ERR blocking command"));
    CHECK(r.find("not supported") != std::string::npos);
  }
  CHECK(c.cmd({"PING"}) == "PONG");  // the connection is not stuck
}

TEST_CASE("typed values live in storage: a restarted warpd reads them back", "[sidecar][typed]") {
  temp_dir dir{"warp-typed"};
  const std::string storage = "sqlite:" + dir.str() + "/data.db";
  {
    warpd_sidecar warp{{}, storage};
    resp_conn c{warp.port};
    CHECK(c.cmd({"RPUSH", "jobs", "j1", "j2", "j3"}) == ":3");
    CHECK(c.cmd({"ZADD", "board", "10", "ann", "20", "bob"}) == ":2");
    CHECK(c.cmd({"HSET", "user", "name", "ann"}) == ":1");
    CHECK(c.cmd({"SADD", "tags", "x"}) == ":1");
    CHECK(c.cmd({"SET", "s", "plain"}) == "OK");
  }
  warpd_sidecar warp{{}, storage};
  resp_conn c{warp.port};
  CHECK(c.cmd({"LRANGE", "jobs", "0", "-1"}) == "[j1,j2,j3]");
  CHECK(c.cmd({"ZRANGE", "board", "0", "-1", "WITHSCORES"}) == "[ann,10,bob,20]");
  CHECK(c.cmd({"HGET", "user", "name"}) == "ann");
  CHECK(c.cmd({"TYPE", "tags"}) == "set");
  CHECK(c.cmd({"GET", "s"}) == "plain");
  CHECK(c.cmd({"RPOP", "jobs"}) == "j3");
}

TEST_CASE("pipelined typed writes run as one batch: replies in order, one event per write",
          "[sidecar][typed][pipeline]") {
  // In process, to see the node's change events (a run of typed writes in one read buffer
  // is one node.update_many: every change of a key carries the version of the key's final
  // write, which is how this test knows the batch ran).
  warp::node_config cfg;
  cfg.listen = "";
  cfg.storage = "memory";
  temp_dir dir{"warp-typed-batch"};
  cfg.data_dir = dir.str();
  auto n = warp::node::start(cfg);
  REQUIRE(n);
  warp::sidecar::resp_options opts;
  opts.listen = "127.0.0.1:0";
  auto srv = warp::sidecar::resp_server::start(**n, opts);
  REQUIRE(srv);
  std::mutex mtx;
  std::vector<warp::change_event> events;
  auto id = (*n)->watch([&](const warp::change_event& ev) {
    std::lock_guard lock{mtx};
    events.push_back(ev);
  });
  const std::vector<std::pair<args, std::string>> steps = {
      {{"LPUSH", "q", "a", "b"}, ":2"},
      {{"RPUSH", "q", "c"}, ":3"},
      {{"ZADD", "z", "1", "m"}, ":1"},
      {{"LPOP", "q"}, "b"},
      {{"lpush", "other", "x"}, ":1"},
      {{"ZADD", "z", "2", "m"}, ":0"},
      {{"ZADD", "z", "CH", "2", "m"}, ":0"},  // no change: no write, no event
      {{"RPOP", "q", "5"}, "[c,a]"},          // empties q: deleted
      {{"LPUSHX", "q", "y"}, ":0"},
      {{"LPOP", "other", "-1"}, "!ERR value is out of range, must be positive"},  // alone
      {{"ZADD", "z", "x", "m"}, "!ERR value is not a valid float"},               // alone
      {{"LPOP", "nothing"}, "nil"},
      {{"RPUSH", "q", "again"}, ":1"},
      {{"LRANGE", "q", "0", "-1"}, "[again]"},
      {{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, "[m,2]"},
  };
  resp_conn c{(*srv)->port()};
  std::string pipeline;
  for (const auto& [cmd, reply] : steps) pipeline += resp_conn::encode(cmd);
  c.send_raw(pipeline);  // one write: the sidecar reads it in one buffer
  for (const auto& [cmd, reply] : steps) {
    INFO(cmd[0] << " " << cmd[1]);
    CHECK(c.read() == reply);
  }
  auto events_of = [&](const std::string& key) {
    std::lock_guard lock{mtx};
    std::vector<warp::change_event> out;
    for (const auto& ev : events)
      if (ev.key == key) out.push_back(ev);
    return out;
  };
  // One event per write that changed something (watchers run on the writer's thread).
  auto q = events_of("q");
  REQUIRE(q.size() == 5);
  using kind = warp::change_event::kind;
  CHECK(q[0].what == kind::set);
  CHECK(q[2].what == kind::set);
  CHECK(q[3].what == kind::removed);
  CHECK(q[4].what == kind::set);
  // The first four took effect with q's final write of their batch; RPUSH again did not.
  CHECK(q[0].ver == q[3].ver);
  CHECK(q[1].ver == q[3].ver);
  CHECK(q[4].ver != q[3].ver);
  CHECK(events_of("z").size() == 2);
  CHECK(events_of("other").size() == 1);
  CHECK(events_of("nothing").empty());
  (*n)->unwatch(id);
  (*srv)->stop();
}
