// Pipelined strong_distributed commands through the sidecar on the Raft engine
// (docs/sidecar.md, "Pipelined strong commands"), on three real warpd processes driven by
// redis-py (Debian python3-redis): consecutive strong GET/SET and read-modify-writes (INCR,
// SETNX, SET NX, GETSET, GETDEL, APPEND, DEL...) of one connection are in flight together
// without a worker, and the replies still follow the commands' order and the
// single-connection semantics Redis gives (a later command observes an earlier one), byte
// for byte as redis-server answers them.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test/apps/warpd_fixture.hpp"
#include "test/sidecar/sidecar_fixture.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

struct pipeline_cluster : raft_redis_py_cluster {
  pipeline_cluster()
      : raft_redis_py_cluster{"warpd-strong-pipe",
                              {"--pattern", "s:*=strong_distributed", "--strong-engine", "raft",
                               "--raft-tick", "50ms", "--strong-timeout", "10s"}} {}

  /// As the cluster's, with `pipelined(i)`: node i's count of pipelined strong commands.
  command_result py(const std::string& body, std::vector<std::string> args = {}) const {
    return raft_redis_py_cluster::py(
        "def pipelined(i): return int(conn(i).info('stats')['strong_pipelined_commands'])\n" + body,
        std::move(args));
  }

  bool wait_serving() const { return raft_redis_py_cluster::wait_serving("s:"); }
};

}  // namespace

TEST_CASE(
    "warpd strong pipeline: 200 mixed strong and plain commands on one connection answer "
    "in order, as run one by one") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  // A model of the commands run one at a time gives every reply; few keys, so the runs
  // meet repeated keys and reads behind writes (where a run must end) all the time. The
  // same pipeline from each node: the keys' groups are led by different nodes, so some
  // commands are forwarded to a leader elsewhere.
  const std::string body = R"(
seed, node = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)
strong = ['s:p%d:%d' % (seed, i) for i in range(6)]
counters = ['s:p%d:c%d' % (seed, i) for i in range(2)]
plain = ['plain:p%d:%d' % (seed, i) for i in range(3)]
model, expected, cmds = {}, [], []
for n in range(200):
    r = rnd.random()
    if r < 0.35:
        k = rnd.choice(strong + plain); v = 'v%d' % n
        cmds.append(('SET', k, v)); model[k] = v; expected.append(True)
    elif r < 0.65:
        k = rnd.choice(strong + plain + counters)
        cmds.append(('GET', k)); expected.append(model.get(k))
    elif r < 0.8:
        k = rnd.choice(strong + plain)
        cmds.append(('DEL', k)); expected.append(1 if k in model else 0); model.pop(k, None)
    else:
        k = rnd.choice(counters)
        cmds.append(('INCR', k)); model[k] = str(int(model.get(k, '0')) + 1)
        expected.append(int(model[k]))
before = pipelined(node)
p = conn(node).pipeline(transaction=False)
for cmd in cmds: p.execute_command(*cmd)
got = p.execute(raise_on_error=False)
bad = [(i, cmds[i], expected[i], got[i]) for i in range(len(cmds)) if got[i] != expected[i]]
if len(got) != len(cmds) or bad:
    print('MISMATCH', len(got), bad[:10]); sys.exit(1)
# What another node reads is the model's final state.
other = conn((node + 1) % 3)
for k in strong + counters:
    if other.get(k) != model.get(k):
        print('FINAL', k, other.get(k), model.get(k)); sys.exit(1)
print('ok', pipelined(node) - before)
)";
  for (int round = 0; round < 3; ++round) {
    auto r = c.py(body, {std::to_string(100 + round), std::to_string(round)});
    INFO("round " << round << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.out.starts_with("ok "));
    // The strong GET/SETs went through runs, not one worker each.
    CHECK(std::stoi(r.out.substr(3)) > 0);
  }
}

TEST_CASE(
    "warpd strong pipeline: pipelines of 32 strong SETs and GETs of distinct keys are one "
    "run each, values read back from another node") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  const std::string body = R"(
r = conn(0)
before = pipelined(0)
for batch in range(20):
    p = r.pipeline(transaction=False)
    keys = ['s:run:%d:%d' % (batch, i) for i in range(32)]
    for i, k in enumerate(keys): p.set(k, 'x%d' % i)
    if p.execute() != [True] * 32: print('SET replies'); sys.exit(1)
    p = r.pipeline(transaction=False)
    for k in keys: p.get(k)
    if p.execute() != ['x%d' % i for i in range(32)]: print('GET replies'); sys.exit(1)
done = pipelined(0) - before
runs = int(r.info('stats')['strong_pipelined_runs'])
o = conn(2)
for batch in range(20):
    for i in range(32):
        if o.get('s:run:%d:%d' % (batch, i)) != 'x%d' % i: print('final', batch, i); sys.exit(1)
print('ok', done, runs)
)";
  auto r = c.py(body);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.starts_with("ok "));
  std::istringstream in{r.out.substr(3)};
  long done = 0, runs = 0;
  in >> done >> runs;
  CHECK(done == 20 * 64);
  // A redis-py pipeline arrives in one or a few reads: far fewer runs than commands.
  CHECK(runs > 0);
  CHECK(runs <= 20 * 2 * 8 + 8);
}

TEST_CASE(
    "warpd strong pipeline: two connections on two nodes pipelining INCRs and SETs on one "
    "strong key end with the exact count") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  const std::string body = R"(
errors = []
def client(node):
    try:
        r = conn(node)
        for batch in range(10):
            p = r.pipeline(transaction=False)
            for i in range(20):
                p.incr('s:count')
                p.set('s:side:%d:%d' % (node, i), str(batch))
                p.get('s:side:%d:%d' % ((node + 1) % 2, i))
            out = p.execute()
            incrs = out[0::3]
            if any(not isinstance(x, int) for x in incrs) or incrs != sorted(incrs):
                errors.append(('incr', node, batch, incrs))
            if out[1::3] != [True] * 20: errors.append(('set', node, batch))
    except Exception as e:
        errors.append(('exception', node, repr(e)))
ts = [threading.Thread(target=client, args=(n,)) for n in (0, 1)]
for t in ts: t.start()
for t in ts: t.join()
if errors: print(errors[:5]); sys.exit(1)
print(conn(2).get('s:count'))
)";
  auto r = c.py(body);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "400\n");
}

TEST_CASE(
    "warpd strong pipeline: a client that sends strong writes and closes at once leaves "
    "the node serving and the writes whole") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  // Closed normally (FIN): the sidecar still reads and runs what was sent, so every write
  // applies. Reset (RST, SO_LINGER 0): what was not read is lost; what applied is whole.
  const std::string body = R"(
import struct, time
def resp(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode(); out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out
for rnd in range(6):
    s = socket.create_connection(('127.0.0.1', ports[0]))
    data = b''.join(resp('SET', 's:gone:%d:%d' % (rnd, i), 'w%d' % i) for i in range(100))
    data += resp('GET', 's:gone:%d:0' % rnd)
    if rnd % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.sendall(data)
    s.close()
r = conn(0)
if r.ping() is not True or r.set('s:after', 'a') is not True or r.get('s:after') != 'a':
    print('not serving'); sys.exit(1)
o = conn(1)
deadline = time.time() + 60
while True:
    missing = 0
    for rnd in range(6):
        for i in range(100):
            v = o.get('s:gone:%d:%d' % (rnd, i))
            if v not in (None, 'w%d' % i): print('garbage', rnd, i, v); sys.exit(1)
            if v is None and rnd % 2 == 0: missing += 1
    if missing == 0: break
    if time.time() > deadline: print('missing', missing); sys.exit(1)
    time.sleep(0.5)
print('ok', r.info('clients')['connected_clients'])
)";
  auto r = c.py(body);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.starts_with("ok "));
  // The node still serves everyone afterwards.
  REQUIRE(c.wait_serving());
}

TEST_CASE(
    "warpd strong pipeline: pipelined strong read-modify-writes answer byte for byte what "
    "redis-server answers, all without a worker") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  redis_server redis;
  // The same random pipeline of INCR/INCRBY/DECR/DECRBY/SETNX/SET NX|XX|GET|KEEPTTL/GETSET/
  // GETDEL/APPEND/DEL/GET/SET (errors included: INCR of a word, a bad increment, SET GET
  // of...) on a few keys, sent in one write to a node's sidecar and to redis-server: the
  // raw reply streams must be equal. Few keys: runs meet chains of one key's
  // read-modify-writes, repeated keys and reads behind writes all the time.
  const std::string body = R"(
seed, node, rport = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
ctr = ['s:m%d:c%d' % (seed, i) for i in range(2)]
strs = ['s:m%d:s%d' % (seed, i) for i in range(3)]
keys = ctr + strs
def gen(n):
    r = rnd.random()
    c, s, k = rnd.choice(ctr), rnd.choice(strs), rnd.choice(keys)
    v = 'v%d' % n
    if r < 0.22: return ('INCR', c)
    if r < 0.30: return ('INCRBY', c, str(rnd.randint(-5, 9)))
    if r < 0.34: return ('DECR', c)
    if r < 0.38: return ('DECRBY', c, str(rnd.randint(-3, 3)))
    if r < 0.40: return ('INCRBY', c, 'abc')
    if r < 0.42: return ('INCR', s)
    if r < 0.47: return ('SETNX', k, v)
    if r < 0.52: return ('SET', s, v, 'NX')
    if r < 0.56: return ('SET', s, v, 'XX')
    if r < 0.60: return ('SET', s, v, 'GET')
    if r < 0.62: return ('SET', s, v, 'NX', 'GET')
    if r < 0.64: return ('SET', s, v, 'EX', '100')
    if r < 0.66: return ('SET', s, v, 'XX', 'KEEPTTL')
    if r < 0.68: return ('SET', s, v, 'NX', 'XX')
    if r < 0.72: return ('GETSET', s, v)
    if r < 0.76: return ('GETDEL', k)
    if r < 0.82: return ('APPEND', s, v)
    if r < 0.86: return ('DEL', k)
    if r < 0.88: return ('UNLINK', k)
    if r < 0.94: return ('GET', k)
    return ('SET', k, str(n))
cmds = [gen(n) for n in range(300)]
def resp(args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode(); out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out
tail = b'$15\r\nend-of-pipeline\r\n'
def send_all(port):
    s = socket.create_connection(('127.0.0.1', port)); s.settimeout(120)
    s.sendall(b''.join(resp(c) for c in cmds) + resp(('ECHO', 'end-of-pipeline')))
    buf = b''
    while not buf.endswith(tail):
        chunk = s.recv(65536)
        if not chunk: break
        buf += chunk
    s.close()
    return buf[:-len(tail)]
def split(buf):  # the replies, one per command (all are simple, integer, bulk or error)
    out, i = [], 0
    while i < len(buf):
        j = buf.index(b'\r\n', i)
        if buf[i:i+1] == b'$' and buf[i+1:j] != b'-1':
            j = j + 2 + int(buf[i+1:j])
        out.append(buf[i:j+2]); i = j + 2
    return out
before = pipelined(node)
ours, theirs = send_all(ports[node]), send_all(rport)
if ours != theirs:
    a, b = split(ours), split(theirs)
    bad = [(i, cmds[i], a[i] if i < len(a) else None, b[i]) for i in range(len(b)) if i >= len(a) or a[i] != b[i]]
    print('MISMATCH', len(a), len(b), bad[:8]); sys.exit(1)
taken = pipelined(node) - before
# Another node reads what redis-server holds.
ref = redis.Redis(host='127.0.0.1', port=rport, decode_responses=True)
other = conn((node + 1) % 3)
for k in keys:
    if other.get(k) != ref.get(k):
        print('FINAL', k, other.get(k), ref.get(k)); sys.exit(1)
print('ok', taken, len(cmds))
)";
  for (int round = 0; round < 3; ++round) {
    auto r = c.py(body,
                  {std::to_string(200 + round), std::to_string(round), std::to_string(redis.port)});
    INFO("round " << round << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.out.starts_with("ok "));
    // Every command of the pipeline was a strong one the loop started itself.
    std::istringstream in{r.out.substr(3)};
    long taken = 0, sent = 0;
    in >> taken >> sent;
    CHECK(taken == sent);
  }
}

TEST_CASE(
    "warpd strong pipeline: 32 INCRs in flight per connection from two nodes on one key "
    "count exactly, each reply a distinct step, in order") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  // A linearizable counter: the values the INCRs return are exactly 1..N across both
  // clients (a lost update repeats a value, a doubled one skips one), each pipeline's
  // replies ascend (a later command observes the earlier one), and another node reads N.
  const std::string body = R"(
replies, errors = [], []
def client(node):
    try:
        r = conn(node)
        for batch in range(15):
            p = r.pipeline(transaction=False)
            for i in range(32): p.incr('s:hot')
            out = p.execute()
            if any(not isinstance(x, int) for x in out): errors.append(('type', node, out)); return
            if any(b <= a for a, b in zip(out, out[1:])): errors.append(('order', node, out))
            replies.extend(out)
    except Exception as e:
        errors.append(('exception', node, repr(e)))
before = pipelined(0) + pipelined(1)
ts = [threading.Thread(target=client, args=(n,)) for n in (0, 1)]
for t in ts: t.start()
for t in ts: t.join()
if errors: print(errors[:3]); sys.exit(1)
if sorted(replies) != list(range(1, len(replies) + 1)): print('STEPS', sorted(replies)[:50]); sys.exit(1)
print('ok', conn(2).get('s:hot'), pipelined(0) + pipelined(1) - before)
)";
  auto r = c.py(body);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "ok 960 960\n");
}

TEST_CASE(
    "warpd strong pipeline: a client that closes with read-modify-writes in flight leaves "
    "the node serving and each one applied once or not at all") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  // Closed (FIN) or reset (RST, SO_LINGER 0) right after sending: the sidecar runs a prefix
  // of what was sent (it stops once it finds the connection gone), each command once and in
  // order. The INCRs and APPENDs alternate and never share a run, so the counter and the
  // number of appended items differ by at most one, and the appended string is a prefix of
  // the full one: a command applied twice or out of order breaks that.
  const std::string body = R"(
import struct, time
def resp(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode(); out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out
for rnd in range(6):
    s = socket.create_connection(('127.0.0.1', ports[rnd % 3]))
    data = b''
    for i in range(60):
        data += resp('INCR', 's:gone:c%d' % rnd) + resp('APPEND', 's:gone:a%d' % rnd, '%d,' % i)
    if rnd % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.sendall(data)
    s.close()
full = ''.join('%d,' % i for i in range(60))
r = conn(0)
if r.ping() is not True or r.incr('s:after') != 1:
    print('not serving'); sys.exit(1)
o = conn(1)
def state():
    return [(int(o.get('s:gone:c%d' % k) or 0), o.get('s:gone:a%d' % k) or '') for k in range(6)]
last, deadline = None, time.time() + 60
while time.time() < deadline:  # until two reads a second apart agree: nothing in flight
    now = state()
    if now == last: break
    last = now
    time.sleep(1)
applied = 0
for rnd, (n, a) in enumerate(last):
    items = a.count(',')
    if n > 60 or not full.startswith(a) or items not in (n - 1, n):
        print('garbage', rnd, n, a); sys.exit(1)
    applied += n
print('ok', applied > 0)
)";
  auto r = c.py(body);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "ok True\n");
  REQUIRE(c.wait_serving());
}

TEST_CASE(
    "warpd strong pipeline: pipelined typed writes on strong keys from two nodes answer byte "
    "for byte what redis-server answers, all without a worker") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  redis_server redis;
  // Random pipelines of list, sorted set, set and hash writes, EXPIRE/PEXPIRE/PERSIST and
  // DEL of several keys (errors and WRONGTYPE included), with a few reads among them, on a
  // handful of keys, sent in one write to a node's sidecar and to redis-server: the raw
  // reply streams must be equal. Rounds alternate between nodes 0 and 1 on the same keys,
  // and after each a third node's view of every key (type and contents; TTL of strong keys
  // is not compared: TTL/PTTL answer -2 for them, a known gap) must equal redis-server's. (SPOP is
  // left out: it pops a random member, so it is compared by count in the 64-LPUSH case.)
  const std::string body = R"(
seed, node, rport = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
lists = ['s:t:l%d' % i for i in range(2)]
zsets = ['s:t:z%d' % i for i in range(2)]
sets = ['s:t:s0']
hashes = ['s:t:h0']
keys = lists + zsets + sets + hashes + ['s:t:str']
writes = set()
def gen(n):
    r = rnd.random()
    l, z, s, h, k = rnd.choice(lists), rnd.choice(zsets), sets[0], hashes[0], rnd.choice(keys)
    e = 'e%d' % rnd.randint(0, 5)
    if r < 0.10: return ('LPUSH', l, e, 'e%d' % n)
    if r < 0.16: return ('RPUSH', l, e)
    if r < 0.18: return ('LPUSHX', l, e)
    if r < 0.20: return ('RPUSHX', k, e)
    if r < 0.24: return ('LPOP', l)
    if r < 0.26: return ('RPOP', l, str(rnd.randint(0, 3)))
    if r < 0.28: return ('LSET', l, str(rnd.randint(-3, 3)), e)
    if r < 0.30: return ('LREM', l, str(rnd.randint(-2, 2)), e)
    if r < 0.32: return ('LTRIM', l, str(rnd.randint(-4, 2)), str(rnd.randint(-3, 5)))
    if r < 0.40: return ('ZADD', z, str(rnd.randint(-5, 5)), e)
    if r < 0.42: return ('ZADD', z, rnd.choice(['NX', 'XX', 'GT', 'LT', 'CH']), str(rnd.randint(0, 9)), e)
    if r < 0.43: return ('ZADD', z, 'INCR', '1.5', e)
    if r < 0.44: return ('ZADD', z, 'abc', e)
    if r < 0.48: return ('ZINCRBY', z, str(rnd.randint(-3, 3)), e)
    if r < 0.51: return ('ZREM', z, e, 'e9')
    if r < 0.53: return ('ZPOPMIN', z)
    if r < 0.55: return ('ZPOPMAX', z, str(rnd.randint(1, 3)))
    if r < 0.60: return ('SADD', s, e, 'e%d' % rnd.randint(0, 5))
    if r < 0.63: return ('SREM', s, e)
    if r < 0.68: return ('HSET', h, 'f%d' % rnd.randint(0, 3), str(n))
    if r < 0.70: return ('HMSET', h, 'f%d' % rnd.randint(0, 3), 'x', 'g', 'y')
    if r < 0.72: return ('HDEL', h, 'f%d' % rnd.randint(0, 3), 'g')
    if r < 0.76: return ('HINCRBY', h, 'n', str(rnd.randint(-4, 9)))
    if r < 0.77: return ('HINCRBY', h, 'f0', '1')
    if r < 0.79: return ('EXPIRE', k, str(rnd.randint(100, 1000)))
    if r < 0.80: return ('PEXPIRE', k, str(rnd.randint(100000, 900000)))
    if r < 0.81: return ('EXPIRE', k, 'soon')
    if r < 0.83: return ('PERSIST', k)
    if r < 0.85: return ('DEL', rnd.choice(keys), rnd.choice(keys), rnd.choice(keys))
    if r < 0.87: return ('SET', 's:t:str', 'v%d' % n)
    if r < 0.89: return ('LPUSH', 's:t:str', e)
    if r < 0.91: return ('LRANGE', l, '0', '-1')
    if r < 0.93: return ('ZRANGE', z, '0', '-1', 'WITHSCORES')
    if r < 0.95: return ('HGET', h, 'n')
    if r < 0.97: return ('SCARD', s)
    return ('LLEN', l)
reads = {'LRANGE', 'ZRANGE', 'HGET', 'SCARD', 'LLEN'}
cmds = [gen(n) for n in range(300)]
nwrites = sum(1 for c in cmds if c[0] not in reads)
def resp(args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode(); out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out
tail = b'$15\r\nend-of-pipeline\r\n'
def send_all(port):
    s = socket.create_connection(('127.0.0.1', port)); s.settimeout(120)
    s.sendall(b''.join(resp(c) for c in cmds) + resp(('ECHO', 'end-of-pipeline')))
    buf = b''
    while not buf.endswith(tail):
        chunk = s.recv(65536)
        if not chunk: break
        buf += chunk
    s.close()
    return buf[:-len(tail)]
before = pipelined(node)
ours, theirs = send_all(ports[node]), send_all(rport)
if ours != theirs:
    at = 0
    while at < min(len(ours), len(theirs)) and ours[at] == theirs[at]: at += 1
    print('MISMATCH at byte', at, ours[max(0, at - 200):at + 100], theirs[max(0, at - 200):at + 100])
    sys.exit(1)
taken = pipelined(node) - before
ref = redis.Redis(host='127.0.0.1', port=rport, decode_responses=True)
other = conn(2)
def dump(r, k):
    t = r.type(k)
    if t == 'list': return (t, r.lrange(k, 0, -1))
    if t == 'zset': return (t, r.zrange(k, 0, -1, withscores=True))
    if t == 'set': return (t, sorted(r.smembers(k)))
    if t == 'hash': return (t, sorted(r.hgetall(k).items()))
    if t == 'string': return (t, r.get(k))
    return (t,)
for k in keys:
    if dump(other, k) != dump(ref, k):
        print('FINAL', k, dump(other, k), dump(ref, k)); sys.exit(1)
print('ok', taken, nwrites)
)";
  for (int round = 0; round < 4; ++round) {
    auto r = c.py(
        body, {std::to_string(500 + round), std::to_string(round % 2), std::to_string(redis.port)});
    INFO("round " << round << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.out.starts_with("ok "));
    // Every write of the pipeline was started by the loop itself, none took a worker.
    std::istringstream in{r.out.substr(3)};
    long taken = 0, writes = 0;
    in >> taken >> writes;
    CHECK(taken == writes);
    CHECK(writes > 200);
  }
}

TEST_CASE(
    "warpd strong pipeline: 32 LPUSHes in flight from each of two nodes on one key give "
    "exactly 64 elements") {
  pipeline_cluster c;
  REQUIRE(c.wait_serving());
  // Both clients send their 32 LPUSHes in one pipeline at once (a barrier lines them up):
  // the replies of each ascend (a later LPUSH observes the earlier one), the list ends
  // with every element exactly once, and all 64 went through the loop's runs. Then two
  // nodes SPOP a set of 64 members concurrently: every member popped exactly once.
  const std::string body = R"(
replies, errors = {}, []
go = threading.Barrier(2)
def client(node):
    try:
        r = conn(node)
        p = r.pipeline(transaction=False)
        for i in range(32): p.lpush('s:q', '%d-%d' % (node, i))
        go.wait()
        out = p.execute()
        if any(b <= a for a, b in zip(out, out[1:])): errors.append(('order', node, out))
        replies[node] = out
    except Exception as e:
        errors.append(('exception', node, repr(e)))
before = pipelined(0) + pipelined(1)
ts = [threading.Thread(target=client, args=(n,)) for n in (0, 1)]
for t in ts: t.start()
for t in ts: t.join()
if errors: print(errors[:3]); sys.exit(1)
items = conn(2).lrange('s:q', 0, -1)
expect = sorted('%d-%d' % (n, i) for n in (0, 1) for i in range(32))
if sorted(items) != expect: print('ITEMS', items); sys.exit(1)
taken = pipelined(0) + pipelined(1) - before
conn(0).sadd('s:pool', *['m%d' % i for i in range(64)])
popped, perrors = [], []
def popper(node):
    try:
        r = conn(node)
        while True:
            p = r.pipeline(transaction=False)
            for i in range(8): p.spop('s:pool')
            got = [x for x in p.execute() if x is not None]
            if not got: return
            popped.extend(got)
    except Exception as e:
        perrors.append(repr(e))
ts = [threading.Thread(target=popper, args=(n,)) for n in (0, 1)]
for t in ts: t.start()
for t in ts: t.join()
if perrors: print(perrors[:3]); sys.exit(1)
print('ok', len(items), conn(2).llen('s:q'), taken, max(replies[0] + replies[1]), len(popped), len(set(popped)))
)";
  auto r = c.py(body);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "ok 64 64 64 64 64 64\n");
}
