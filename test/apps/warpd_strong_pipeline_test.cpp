// Pipelined strong_distributed commands through the sidecar on the Raft engine
// (docs/sidecar.md, "Pipelined strong commands"), on three real warpd processes driven by
// redis-py (Debian python3-redis): consecutive strong GET/SET of one connection are in
// flight together without a worker, and the replies still follow the commands' order and
// the single-connection semantics Redis gives (a later command observes an earlier one).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test/apps/warpd_fixture.hpp"
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
