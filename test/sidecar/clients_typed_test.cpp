// Real clients on lists, sorted sets, sets and hashes: redis-benchmark's default test list
// (it stops at the first command a server does not answer), node-redis and ioredis
// (npm) with multi() and a list-based job queue, and redis-py (Debian python3-redis).
// Each runs against redis-server too, so a script that is wrong fails there first.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "test/support/process.hpp"
#include "test/sidecar/sidecar_fixture.hpp"

using namespace warp::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// The test names of a `redis-benchmark -q` run whose line reports a rate ("SET: 123.4
/// requests per second, p50=..."), and every other non-empty line.
struct bench_report {
  std::set<std::string> done;
  std::vector<std::string> other;
};

bench_report parse_bench(const std::string& out) {
  bench_report rep;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line, '\n')) {
    // -q rewrites its progress line with '\r': the last piece is the final one.
    if (auto cr = line.rfind('\r'); cr != std::string::npos) line = line.substr(cr + 1);
    if (line.empty()) continue;
    auto colon = line.find(": ");
    if (colon != std::string::npos && line.find("requests per second") != std::string::npos)
      rep.done.insert(line.substr(0, colon));
    else
      rep.other.push_back(line);
  }
  return rep;
}

}  // namespace

TEST_CASE("redis-benchmark's default test list runs to the end", "[sidecar][typed][benchmark]") {
  auto bench = find_program("redis-benchmark");
  INFO("redis-benchmark must be installed (Debian redis-tools)");
  REQUIRE_FALSE(bench.empty());
  redis_server redis;
  warpd_sidecar warp;
  auto run_bench = [&](std::uint16_t port) {
    auto r =
        run({bench, "-h", "127.0.0.1", "-p", std::to_string(port), "-n", "2000", "-c", "10", "-q"},
            180s);
    INFO("redis-benchmark output:\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    return parse_bench(r.out + r.err);
  };
  auto want = run_bench(redis.port);
  auto got = run_bench(warp.port);
  std::string names;
  for (const auto& n : want.done) names += n + ", ";
  INFO("tests redis-server completed: " << names);
  REQUIRE(want.done.size() >= 15);  // PING_INLINE ... MSET (+ XADD on newer versions)
  for (const auto& name : want.done) {
    if (name == "XADD") continue;  // streams: not built (docs/sidecar.md)
    INFO("test " << name);
    CHECK(got.done.count(name) == 1);
  }
  for (const auto& line : got.other) {
    INFO("unexpected line from the run against warp: " << line);
    CHECK(line.find("rror") == std::string::npos);
  }
}

TEST_CASE("node-redis and ioredis: multi() and a list-based job queue", "[sidecar][typed][node]") {
  auto node = find_program("node");
  auto npm = find_program("npm");
  INFO("node: '" << node << "' npm: '" << npm << "'");
  REQUIRE_FALSE(node.empty());
  REQUIRE_FALSE(npm.empty());
  fs::path src = fs::path(WARP_SOURCE_DIR) / "test/sidecar/node";
  fs::path work = fs::path(binary("test/sidecar-node-typed"));
  fs::create_directories(work);
  for (auto name : {"package.json", "job_queue_test.mjs"})
    fs::copy_file(src / name, work / name, fs::copy_options::overwrite_existing);
  if (!fs::exists(work / "node_modules/redis/package.json") ||
      !fs::exists(work / "node_modules/ioredis/package.json")) {
    auto install =
        run({"/bin/sh", "-c",
             "cd '" + work.string() + "' && '" + npm + "' install --no-audit --no-fund 2>&1"},
            240s);
    INFO("npm install output:\n" << install.out << install.err);
    REQUIRE(install.exit_code == 0);
  }
  redis_server redis;
  warpd_sidecar warp;
  for (auto port : {redis.port, warp.port}) {
    auto r = run({node, (work / "job_queue_test.mjs").string(), std::to_string(port)}, 120s);
    INFO((port == redis.port ? "redis-server" : "warp") << " output:\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("ALL PASSED") != std::string::npos);
  }
}

TEST_CASE("redis-py: lists, sorted sets, sets, hashes, in pipelines", "[sidecar][typed][python]") {
  const std::string python = "/usr/bin/python3";
  REQUIRE(fs::exists(python));
  auto probe = run({python, "-c", "import redis"});
  INFO("python3-redis must be installed (Debian python3-redis): " << probe.err);
  REQUIRE(probe.exit_code == 0);
  const std::string script = R"PY(
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), decode_responses=True)
r.delete('jobs', 'board', 'tags', 'user', 'str')
# a job queue: producer transaction, consumer pops
p = r.pipeline()
for i in range(10):
    p.lpush('jobs', 'job%d' % i)
p.llen('jobs')
res = p.execute()
assert res == list(range(1, 11)) + [10], res
assert r.rpop('jobs') == 'job0'
assert r.rpop('jobs', 3) == ['job1', 'job2', 'job3']
assert r.lrange('jobs', 0, 1) == ['job9', 'job8']
assert r.lindex('jobs', -1) == 'job4'
r.lset('jobs', 0, 'first')
assert r.lrem('jobs', 0, 'first') == 1
r.ltrim('jobs', 0, 2)
assert r.lrange('jobs', 0, -1) == ['job8', 'job7', 'job6']
# a leaderboard
r.zadd('board', {'ann': 10, 'bob': 20, 'cy': 15})
assert r.zadd('board', {'ann': 30}, gt=True, ch=True) == 1
assert r.zincrby('board', 2.5, 'cy') == 17.5
assert r.zrange('board', 0, -1, desc=True, withscores=True) == [('ann', 30.0), ('bob', 20.0), ('cy', 17.5)]
assert r.zrangebyscore('board', 15, '(30') == ['cy', 'bob']
assert r.zcount('board', '-inf', '+inf') == 3
assert r.zrank('board', 'ann') == 2 and r.zscore('board', 'bob') == 20.0
assert r.zpopmin('board') == [('cy', 17.5)]
assert r.zpopmax('board', 5) == [('ann', 30.0), ('bob', 20.0)]
assert r.zcard('board') == 0
# sets and hashes
assert r.sadd('tags', 'a', 'b', 'c') == 3 and r.smembers('tags') == {'a', 'b', 'c'}
assert r.sismember('tags', 'b') and r.srem('tags', 'b') == 1 and r.scard('tags') == 2
assert r.hset('user', mapping={'name': 'ann', 'visits': '1'}) == 2
assert r.hincrby('user', 'visits', 4) == 5
assert r.hgetall('user') == {'name': 'ann', 'visits': '5'}
assert r.hmget('user', 'name', 'nope') == ['ann', None]
# types and WRONGTYPE
r.set('str', 'x')
assert [r.type(k) for k in ('str', 'jobs', 'tags', 'user', 'board')] == ['string', 'list', 'set', 'hash', 'none']
try:
    r.lpush('str', 'x')
    raise AssertionError('no WRONGTYPE')
except redis.ResponseError as e:
    assert str(e).startswith('WRONGTYPE'), e
print('ALL PASSED')
)PY";
  redis_server redis;
  warpd_sidecar warp;
  for (auto port : {redis.port, warp.port}) {
    auto r = run({python, "-c", script, std::to_string(port)}, 60s);
    INFO((port == redis.port ? "redis-server" : "warp") << " output:\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("ALL PASSED") != std::string::npos);
  }
}
