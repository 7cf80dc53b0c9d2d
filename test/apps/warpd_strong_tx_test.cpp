// Transactions and typed commands on strong_distributed keys with the Raft engine, on
// three real warpd processes driven by redis-py (Debian python3-redis) from two nodes at
// once: EXEC over keys of one group is one Raft proposal (counters exact under concurrent
// transactions), a WATCHed key written by another node makes EXEC answer null, keys of
// two groups are refused; LPUSH/LPOP/ZADD/HINCRBY on strong keys from two nodes are exact.
// WATCH is on revisions: the same bytes written, or a key created and deleted, by another
// node abort EXEC exactly where redis-server aborts it.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/membership/strong_placement.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "test/sidecar/sidecar_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

struct strong_tx_cluster : raft_redis_py_cluster {
  strong_tx_cluster()
      : raft_redis_py_cluster{"warpd-strong-tx",
                              {"--pattern", "account:*=strong_distributed", "--strong-engine",
                               "raft", "--raft-tick", "50ms", "--strong-timeout", "5s"}} {}

  /// The key's Raft group, computed as every node does (strong_raft: members sorted, 4 x
  /// members groups, replication factor 3).
  std::size_t group_of(const std::string& key) const {
    std::vector<std::string> members;
    for (auto p : ports) members.push_back("127.0.0.1:" + std::to_string(p));
    warp::detail::strong_placement placement{members, members.front(), 3, 4 * members.size()};
    return placement.range_of(key);
  }

  bool wait_serving() const { return raft_redis_py_cluster::wait_serving("account:"); }
};

/// Two keys of one group, and one key of another group.
struct key_set {
  std::string a, b, c, other;  // a, b, c share a group; other is in another
};
key_set pick_keys(const strong_tx_cluster& c, const std::string& prefix) {
  key_set k;
  k.a = prefix + "a";
  const auto g = c.group_of(k.a);
  for (int i = 0; k.b.empty() || k.c.empty() || k.other.empty(); ++i) {
    auto key = prefix + std::to_string(i);
    if (c.group_of(key) == g) {
      (k.b.empty() ? k.b : k.c) = key;
    } else if (k.other.empty()) {
      k.other = key;
    }
  }
  return k;
}

}  // namespace

TEST_CASE("warpd strong raft: MULTI/EXEC over strong keys is one proposal, exact from two nodes") {
  strong_tx_cluster c;
  REQUIRE(c.wait_serving());
  auto k = pick_keys(c, "account:tx:");
  INFO("keys " << k.a << ", " << k.b << " (group " << c.group_of(k.a) << "), " << k.other
               << " (group " << c.group_of(k.other) << ")");

  // Concurrent transactions from nodes 0 and 1: each INCRs a, INCRBYs b by 2 and records
  // itself; every EXEC must apply whole (the counters move together) and none be lost.
  const std::string body = R"(
node, n, a, b, c = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
r = conn(node)
for i in range(n):
    p = r.pipeline(transaction=True)
    p.incr(a)
    p.incrby(b, 2)
    p.get(a)
    p.get(b)
    p.set(c, '%d-%d' % (node, i))
    res = p.execute()
    assert res[2] == str(res[0]) and int(res[3]) == 2 * res[0], res
print('done')
)";
  const int n = 40;
  auto t0 = std::async(std::launch::async, [&] {
    return c.py(body, {"0", std::to_string(n), k.a, k.b, k.c});
  });
  auto t1 = std::async(std::launch::async, [&] {
    return c.py(body, {"1", std::to_string(n), k.a, k.b, k.c});
  });
  auto r0 = t0.get();
  auto r1 = t1.get();
  INFO("node 0: " << r0.out << r0.err);
  INFO("node 1: " << r1.out << r1.err);
  CHECK(r0.out == "done\n");
  CHECK(r1.out == "done\n");
  auto check = c.py("r = conn(2)\nprint(r.get(sys.argv[1]), r.get(sys.argv[2]))\n", {k.a, k.b});
  CHECK(check.out == std::to_string(2 * n) + " " + std::to_string(4 * n) + "\n");

  // A transaction's commands see each other's writes; errors stay elements of the reply;
  // typed commands run in it too.
  auto m = pick_keys(c, "account:m:");
  auto typed = c.py(R"(
r = conn(2)
p = r.pipeline(transaction=True)
p.set(sys.argv[1], 'text')
p.incr(sys.argv[1])
p.lpush(sys.argv[2], 'x', 'y')
p.lrange(sys.argv[2], 0, -1)
p.delete(sys.argv[2])
p.exists(sys.argv[2])
print(p.execute(raise_on_error=False))
print(r.get(sys.argv[1]), r.exists(sys.argv[2]))
)",
                    {m.a, m.b});
  INFO(typed.err);
  CHECK(typed.out ==
        "[True, ResponseError('value is not an integer or out of range'), 2, ['y', 'x'], 1, "
        "0]\ntext 0\n");
}

TEST_CASE("warpd strong raft: a WATCHed strong key written by another node aborts EXEC") {
  strong_tx_cluster c;
  REQUIRE(c.wait_serving());
  auto k = pick_keys(c, "account:w:");
  auto r = c.py(R"(
a, b = sys.argv[1], sys.argv[2]
r0, r1 = conn(0), conn(1)
r0.set(a, '1')
# WATCH, then another node writes the key: EXEC answers null (WatchError), nothing applied.
p = r0.pipeline(transaction=True)
p.watch(a)
before = p.get(a)
r1.set(a, '2')
p.multi()
p.set(a, 'mine')
p.set(b, 'mine')
try:
    p.execute()
    print('applied')
except redis.WatchError:
    print('aborted', r0.get(a), r0.get(b))
# The same without a concurrent write applies.
p = r0.pipeline(transaction=True)
p.watch(a)
p.multi()
p.set(a, 'mine')
p.set(b, 'mine')
print(p.execute(), r1.get(a), r1.get(b))
# A WATCHed key that was absent and is created elsewhere aborts too.
p = r0.pipeline(transaction=True)
p.watch(sys.argv[3])
r1.set(sys.argv[3], 'x')
p.multi()
p.get(a)
try:
    p.execute()
    print('applied')
except redis.WatchError:
    print('aborted')
)",
                {k.a, k.b, k.c});
  INFO(r.err);
  CHECK(r.out == "aborted 2 None\n[True, True] mine mine\naborted\n");
}

TEST_CASE(
    "warpd strong raft: WATCH is on revisions: identical bytes or a create and delete by "
    "another node abort EXEC, as in redis-server") {
  strong_tx_cluster c;
  REQUIRE(c.wait_serving());
  redis_server redis;
  auto k = pick_keys(c, "account:rev:");
  // The same scenarios against the cluster (the watcher on node 0, the other writer on
  // node 1) and against redis-server (two connections): the outcomes must be equal, and
  // are spelled out below so neither side can pass by being wrong alike.
  const std::string body = R"(
a, b, m, rport = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def scenarios(watcher, other):
    out = []
    def attempt(watch_key, meanwhile):
        p = watcher.pipeline(transaction=True)
        p.watch(watch_key)
        meanwhile()
        p.multi()
        p.incr(b)
        try:
            p.execute()
            return 'applied'
        except redis.WatchError:
            return 'aborted'
    watcher.delete(a, b, m)
    watcher.set(a, 'same')
    # The same bytes written by another client: Redis counts it as a change.
    out.append(attempt(a, lambda: other.set(a, 'same')))
    # A value of 200 KB rewritten identically: the same (WATCH keeps no copy of it).
    big = 'x' * 200000
    watcher.set(a, big)
    out.append(attempt(a, lambda: other.set(a, big)))
    # Nobody writes: applies.
    out.append(attempt(a, lambda: None))
    # A missing key created and deleted by another client: aborts.
    out.append(attempt(m, lambda: (other.set(m, 'x'), other.delete(m))))
    # A missing key that another client only deletes (nothing to delete): applies.
    out.append(attempt(m, lambda: other.delete(m)))
    # A key deleted by another client: aborts.
    watcher.set(a, 'v')
    out.append(attempt(a, lambda: other.delete(a)))
    # An EXPIRE that changes nothing but the TTL is a write too.
    watcher.set(a, 'v')
    out.append(attempt(a, lambda: other.expire(a, 1000)))
    out.append(watcher.get(b))
    return out
ours = scenarios(conn(0), conn(1))
ref = redis.Redis(host='127.0.0.1', port=rport, decode_responses=True)
ref2 = redis.Redis(host='127.0.0.1', port=rport, decode_responses=True)
theirs = scenarios(ref, ref2)
print(ours)
print(theirs)
)";
  auto r = c.py(body, {k.a, k.b, k.c, std::to_string(redis.port)});
  INFO(r.err);
  const std::string expected =
      "['aborted', 'aborted', 'applied', 'aborted', 'applied', 'aborted', 'aborted', '2']\n";
  CHECK(r.out == expected + expected);
}

TEST_CASE("warpd strong raft: EXEC refuses keys of two groups and strong mixed with plain keys") {
  strong_tx_cluster c;
  REQUIRE(c.wait_serving());
  auto k = pick_keys(c, "account:g:");
  auto r = c.py(R"(
a, other = sys.argv[1], sys.argv[2]
r = conn(0)
for keys in ([a, other], [a, 'plain:key']):
    p = r.pipeline(transaction=True)
    for key in keys:
        p.set(key, 'v')
    try:
        print(p.execute())
    except redis.ResponseError as e:
        print(e)
print(r.exists(a, other, 'plain:key'))
)",
                {k.a, k.other});
  INFO(r.err);
  const auto ga = std::to_string(c.group_of(k.a)), go = std::to_string(c.group_of(k.other));
  auto first = std::min(k.a, k.other), second = std::max(k.a, k.other);
  auto g1 = first == k.a ? ga : go, g2 = first == k.a ? go : ga;
  CHECK(r.out == "EXEC refused: keys '" + first + "' and '" + second +
                     "' are in different strong groups (" + g1 + " and " + g2 +
                     "); one transaction is one Raft proposal, so its keys must share a group. "
                     "Nothing was executed.\n"
                     "EXEC refused: key '" +
                     k.a +
                     "' is strong_distributed and key 'plain:key' is not; a transaction is "
                     "over strong_distributed keys only or over none. Nothing was executed.\n"
                     "0\n");
}

TEST_CASE(
    "warpd strong raft: lists, sorted sets and hashes on strong keys are exact from two nodes") {
  strong_tx_cluster c;
  REQUIRE(c.wait_serving());
  const std::string push = R"(
node, n = int(sys.argv[1]), int(sys.argv[2])
r = conn(node)
for i in range(n):
    r.lpush('account:queue', '%d-%d' % (node, i))
    r.zadd('account:board', {'%d-%d' % (node, i): i})
    r.hincrby('account:hash', 'count', 1)
print('done')
)";
  const int n = 30;
  auto t0 = std::async(std::launch::async, [&] { return c.py(push, {"0", std::to_string(n)}); });
  auto t1 = std::async(std::launch::async, [&] { return c.py(push, {"1", std::to_string(n)}); });
  auto p0 = t0.get(), p1 = t1.get();
  INFO(p0.err << p1.err);
  CHECK(p0.out == "done\n");
  CHECK(p1.out == "done\n");
  auto counts = c.py(
      "r = conn(2)\nprint(r.llen('account:queue'), r.zcard('account:board'), "
      "r.hget('account:hash', 'count'), r.zscore('account:board', '1-29'))\n");
  CHECK(counts.out == std::to_string(2 * n) + " " + std::to_string(2 * n) + " " +
                          std::to_string(2 * n) + " 29.0\n");
  // Two nodes pop the queue concurrently: every element exactly once.
  const std::string pop = R"(
r = conn(int(sys.argv[1]))
got = []
while True:
    v = r.lpop('account:queue')
    if v is None:
        break
    got.append(v)
print(' '.join(got))
)";
  auto q0 = std::async(std::launch::async, [&] { return c.py(pop, {"0"}); });
  auto q1 = std::async(std::launch::async, [&] { return c.py(pop, {"2"}); });
  auto o0 = q0.get(), o1 = q1.get();
  INFO(o0.err << o1.err);
  std::multiset<std::string> popped;
  for (auto* out : {&o0.out, &o1.out}) {
    std::istringstream in{*out};
    for (std::string w; in >> w;) popped.insert(w);
  }
  CHECK(popped.size() == 2 * n);
  std::set<std::string> unique{popped.begin(), popped.end()};
  CHECK(unique.size() == 2 * n);
  auto popmin = c.py("r = conn(1)\nprint(r.zpopmin('account:board', 2))\n");
  CHECK(popmin.out == "[('0-0', 0.0), ('1-0', 0.0)]\n");
}

TEST_CASE(
    "warpd strong raft: TTL and PTTL of a strong key read its expiry from its group, on every "
    "node") {
  // Found while testing typed writes: TTL read this node's storage, where a strong key on
  // the Raft engine is not, and answered -2 for a key GET returned.
  strong_tx_cluster c;
  REQUIRE(c.wait_serving());
  auto r = c.py(R"(import time
k = 'account:ttl:1'
conn(0).set(k, 'v', ex=100)
for i in range(3):
    t, p = conn(i).ttl(k), conn(i).pttl(k)
    assert 95 <= t <= 100 and 90000 <= p <= 100000, ('after SET EX', i, t, p)
assert conn(1).expire(k, 50)
for i in range(3):
    t = conn(i).ttl(k)
    assert 45 <= t <= 50, ('after EXPIRE', i, t)
assert conn(2).persist(k)
for i in range(3):
    assert conn(i).ttl(k) == -1, ('after PERSIST', i, conn(i).ttl(k))
conn(0).set('account:ttl:2', 'v')
assert conn(2).ttl('account:ttl:2') == -1
assert conn(1).ttl('account:ttl:missing') == -2
assert conn(1).pttl('account:ttl:missing') == -2
conn(0).set('account:ttl:3', 'v', px=300)
time.sleep(0.6)
assert conn(1).ttl('account:ttl:3') == -2, conn(1).ttl('account:ttl:3')
print('ok')
)");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "ok\n");
}
