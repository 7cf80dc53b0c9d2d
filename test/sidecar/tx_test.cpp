// MULTI/EXEC/DISCARD/WATCH/UNWATCH: every reply compared byte for byte with a real
// redis-server running the same steps (two clients each, to change WATCHed keys from
// outside), then redis-py's transactional pipeline against both.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "test/support/process.hpp"
#include "test/sidecar/resp_client.hpp"
#include "test/sidecar/sidecar_fixture.hpp"

using namespace warp::test;
using namespace std::chrono_literals;

namespace {

struct step {
  int conn;  // 0 = client A, 1 = client B
  std::vector<std::string> args;
};

/// Runs `steps` on two connections to `port`, one reply per step, raw bytes.
std::vector<std::string> raw_steps(std::uint16_t port, const std::vector<step>& steps) {
  resp_conn a{port}, b{port};
  std::vector<std::string> out;
  for (const auto& s : steps) {
    auto& c = s.conn == 0 ? a : b;
    c.send(s.args);
    out.push_back(c.read_raw());
  }
  return out;
}

}  // namespace

TEST_CASE("transactions answer byte for byte like redis-server", "[sidecar][tx][diff]") {
  redis_server redis;
  warpd_sidecar warp;
  std::vector<step> steps = {
      {0, {"EXEC"}},
      {0, {"DISCARD"}},
      {0, {"UNWATCH"}},
      {0, {"WATCH"}},
      // a plain transaction, with a read that misses L1
      {0, {"MULTI"}},
      {0, {"SET", "k", "v"}},
      {0, {"INCR", "n"}},
      {0, {"GET", "k"}},
      {0, {"GET", "absent"}},
      {0, {"MGET", "k", "n", "absent"}},
      {0, {"PING"}},
      {0, {"EXEC"}},
      {0, {"MULTI"}},
      {0, {"EXEC"}},  // empty: *0
      // nesting, WATCH inside MULTI: errors that do not abort the transaction
      {0, {"MULTI"}},
      {0, {"MULTI"}},
      {0, {"WATCH", "k"}},
      {0, {"INCR", "n"}},
      {0, {"EXEC"}},
      // queuing errors abort at EXEC
      {0, {"MULTI"}},
      {0, {"SET", "k", "never"}},
      {0, {"NOSUCHCOMMAND", "x"}},
      {0, {"EXEC"}},
      {0, {"GET", "k"}},
      {0, {"MULTI"}},
      {0, {"SET", "k"}},
      {0, {"INCR", "n"}},
      {0, {"EXEC"}},
      {0, {"GET", "n"}},
      // runtime errors are per command, the others still run
      {0, {"SET", "s", "abc"}},
      {0, {"MULTI"}},
      {0, {"INCR", "s"}},
      {0, {"SET", "t", "1"}},
      {0, {"EXPIRE", "t", "notanumber"}},
      {0, {"INCRBY", "t", "41"}},
      {0, {"EXEC"}},
      // DISCARD drops the queue
      {0, {"MULTI"}},
      {0, {"SET", "t", "discarded"}},
      {0, {"DISCARD"}},
      {0, {"GET", "t"}},
      // WATCH: another client's change aborts EXEC (null array), the value stays
      {0, {"WATCH", "w"}},
      {1, {"SET", "w", "from-b"}},
      {0, {"MULTI"}},
      {0, {"SET", "w", "from-a"}},
      {0, {"EXEC"}},
      {0, {"GET", "w"}},
      // EXEC forgot the WATCH: the next transaction runs
      {1, {"SET", "w", "again"}},
      {0, {"MULTI"}},
      {0, {"SET", "w", "from-a"}},
      {0, {"EXEC"}},
      // unchanged WATCHed keys: EXEC runs
      {0, {"WATCH", "w", "k"}},
      {1, {"GET", "w"}},
      {0, {"MULTI"}},
      {0, {"INCR", "n"}},
      {0, {"EXEC"}},
      // UNWATCH forgets
      {0, {"WATCH", "w"}},
      {0, {"UNWATCH"}},
      {1, {"SET", "w", "b2"}},
      {0, {"MULTI"}},
      {0, {"GET", "w"}},
      {0, {"EXEC"}},
      // the client's own change aborts too; DEL and INCR count as changes
      {0, {"WATCH", "w"}},
      {0, {"SET", "w", "mine"}},
      {0, {"MULTI"}},
      {0, {"GET", "w"}},
      {0, {"EXEC"}},
      {0, {"WATCH", "w", "n"}},
      {1, {"INCR", "n"}},
      {0, {"MULTI"}},
      {0, {"GET", "n"}},
      {0, {"EXEC"}},
      {0, {"WATCH", "w"}},
      {1, {"DEL", "w"}},
      {0, {"MULTI"}},
      {0, {"SET", "w", "x"}},
      {0, {"EXEC"}},
      {0, {"EXISTS", "w"}},
      // DISCARD unwatches
      {0, {"WATCH", "k"}},
      {0, {"MULTI"}},
      {0, {"DISCARD"}},
      {1, {"SET", "k", "b3"}},
      {0, {"MULTI"}},
      {0, {"GET", "k"}},
      {0, {"EXEC"}},
      // RESET leaves MULTI
      {0, {"MULTI"}},
      {0, {"SET", "k", "reset"}},
      {0, {"RESET"}},
      {0, {"EXEC"}},
      {0, {"GET", "k"}},
      // RESP3: an aborted EXEC is a null
      {0, {"HELLO", "3"}},
      {0, {"WATCH", "k"}},
      {1, {"SET", "k", "b4"}},
      {0, {"MULTI"}},
      {0, {"GET", "k"}},
      {0, {"EXEC"}},
      {0, {"MULTI"}},
      {0, {"GET", "k"}},
      {0, {"GET", "absent"}},
      {0, {"EXEC"}},
  };
  // HELLO's map names the server and its version: compared apart from the rest
  auto want = raw_steps(redis.port, steps);
  auto got = raw_steps(warp.port, steps);
  REQUIRE(want.size() == got.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].args[0] == "HELLO") continue;
    std::string cmd;
    for (const auto& a : steps[i].args) cmd += a + " ";
    INFO("step " << i << " (client " << steps[i].conn << "): " << cmd);
    CHECK(got[i] == want[i]);
  }
}

TEST_CASE("a pipelined transaction answers like redis-server", "[sidecar][tx][diff]") {
  redis_server redis;
  warpd_sidecar warp;
  // One write: the whole transaction and its EXEC arrive in one read.
  std::string pipeline;
  for (const auto& a : std::vector<std::vector<std::string>>{{"MULTI"},
                                                             {"SET", "p", "1"},
                                                             {"INCR", "p"},
                                                             {"INCR", "p"},
                                                             {"GET", "p"},
                                                             {"EXEC"},
                                                             {"GET", "p"}})
    pipeline += resp_conn::encode(a);
  auto run = [&](std::uint16_t port) {
    resp_conn c{port};
    c.send_raw(pipeline);
    std::string all;
    for (int i = 0; i < 7; ++i) all += c.read_raw();
    return all;
  };
  CHECK(run(warp.port) == run(redis.port));
}

TEST_CASE("EXEC refuses strong_distributed keys and runs nothing", "[sidecar][tx]") {
  warpd_sidecar warp{{"--pattern", "strong:*=strong_distributed"}};
  resp_conn c{warp.port};
  CHECK(c.cmd({"MULTI"}) == "OK");
  CHECK(c.cmd({"SET", "plain", "1"}) == "QUEUED");
  CHECK(c.cmd({"SET", "strong:x", "1"}) == "QUEUED");
  auto r = c.cmd({"EXEC"});
  CHECK(r.starts_with("!ERR EXEC refused: key 'strong:x' is strong_distributed"));
  CHECK(r.find("consensus") != std::string::npos);
  CHECK(c.cmd({"GET", "plain"}) == "nil");
  CHECK(c.cmd({"EXEC"}) == "!ERR EXEC without MULTI");
}

TEST_CASE("a transaction's queue is bounded", "[sidecar][tx][security]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  CHECK(c.cmd({"MULTI"}) == "OK");
  // 600 MB in 8 MB values would pass the limit of 512 MB: refused, not stored.
  std::string big(8 * 1024 * 1024, 'x');
  std::string frame = resp_conn::encode({"SET", "big", big});
  std::string last;
  int queued = 0;
  for (int i = 0; i < 75; ++i) {
    c.send_raw(frame);
    last = c.read(30s);
    if (last != "QUEUED") break;
    ++queued;
  }
  INFO("last reply: " << last);
  CHECK(queued < 75);
  CHECK(last.starts_with("!ERR transaction too large"));
  CHECK(c.cmd({"EXEC"}) == "!EXECABORT Transaction discarded because of previous errors.");
  CHECK(c.cmd({"PING"}) == "PONG");
}

TEST_CASE("redis-py's transactional pipeline and WATCH", "[sidecar][tx][python]") {
  const std::string python = "/usr/bin/python3";
  REQUIRE(std::filesystem::exists(python));
  auto probe = run({python, "-c", "import redis"});
  INFO("python3-redis must be installed (Debian python3-redis): " << probe.err);
  REQUIRE(probe.exit_code == 0);
  const std::string script = R"PY(
import sys, redis
port = int(sys.argv[1])
r = redis.Redis(port=port)
other = redis.Redis(port=port)
r.delete('a', 'w', 's', 'cnt')
p = r.pipeline()  # transaction=True: MULTI ... EXEC
p.set('a', '1').incr('a').get('a').get('nope')
assert p.execute() == [True, 2, b'2', None], 'plain'
r.set('s', 'abc')
p = r.pipeline()
p.incr('s').set('a', '10')
res = p.execute(raise_on_error=False)
assert isinstance(res[0], redis.ResponseError) and res[1] is True, res
assert r.get('a') == b'10'
with r.pipeline() as p:
    p.watch('w')
    other.set('w', 'changed')
    p.multi()
    p.set('w', 'mine')
    try:
        p.execute()
        raise AssertionError('EXEC should have been aborted')
    except redis.WatchError:
        pass
assert r.get('w') == b'changed'
def bump(pipe):
    v = int(pipe.get('cnt') or 0)
    pipe.multi()
    pipe.set('cnt', v + 1)
for _ in range(20):
    r.transaction(bump, 'cnt')
assert r.get('cnt') == b'20'
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
