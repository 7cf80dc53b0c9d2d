// The RESP sidecar end to end: a real warpd (--resp, memory storage) driven by redis-cli
// and by raw sockets; the same command script also runs against a real redis-server and
// the outputs must be identical.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "sidecar/resp_server.hpp"
#include "test/support/process.hpp"
#include "test/sidecar/resp_client.hpp"
#include "test/sidecar/sidecar_fixture.hpp"
#include "warp/node.hpp"

using namespace warp::test;
using namespace std::chrono_literals;

namespace {

std::string script_path() {
  return std::string(WARP_SOURCE_DIR) + "/test/sidecar/data/script.txt";
}

std::string run_script(std::uint16_t port) {
  auto cli = find_program("redis-cli");
  REQUIRE_FALSE(cli.empty());
  auto r = run({"/bin/sh", "-c", cli + " -p " + std::to_string(port) + " < " + script_path()});
  REQUIRE(r.exit_code == 0);
  return r.out;
}

}  // namespace

TEST_CASE("redis-cli script gives the same output as redis-server", "[sidecar][redis-cli]") {
  warpd_sidecar warp;
  redis_server redis;
  auto ours = run_script(warp.port);
  auto theirs = run_script(redis.port);
  CHECK(ours == theirs);
  CHECK(ours.find("hello world") != std::string::npos);  // the script really ran
}

TEST_CASE("redis-cli one-shot commands and SCAN iteration", "[sidecar][redis-cli]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  std::string batch;
  for (int i = 0; i < 250; ++i)
    batch += resp_conn::encode({"SET", "user:" + std::to_string(i), "v"});
  batch += resp_conn::encode({"SET", "other", "x"});
  c.send_raw(batch);
  for (int i = 0; i < 251; ++i) REQUIRE(c.read() == "OK");
  CHECK(warp.cli({"DBSIZE"}) == "251\n");
  // redis-cli --scan follows the numeric cursor until "0".
  auto scanned = warp.cli({"--scan", "--pattern", "user:*"});
  std::set<std::string> keys;
  std::istringstream in{scanned};
  for (std::string line; std::getline(in, line);) keys.insert(line);
  CHECK(keys.size() == 250);
  CHECK(keys.count("user:42") == 1);
  CHECK(keys.count("other") == 0);
  CHECK(warp.cli({"GET", "user:7"}) == "v\n");
  CHECK(warp.cli({"-3", "HELLO", "3"}).find("proto") != std::string::npos);
  CHECK(warp.cli({"INFO", "server"}).find("redis_version:") != std::string::npos);
  CHECK(warp.cli({"COMMAND", "COUNT"}) != "0\n");
  CHECK(warp.cli({"KEYS", "oth*"}) == "other\n");
}

TEST_CASE("reply shapes in RESP2 and RESP3", "[sidecar]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  CHECK(c.cmd({"PING"}) == "PONG");
  CHECK(c.cmd({"GET", "nope"}) == "nil");
  CHECK(c.cmd({"MGET", "nope", "nope2"}) == "[nil,nil]");
  CHECK(c.cmd({"SET", "k", "v"}) == "OK");
  CHECK(c.cmd({"SET", "k", "w", "NX"}) == "nil");
  CHECK(c.cmd({"SET", "k", "w", "NX", "GET"}) == "v");
  CHECK(c.cmd({"SET", "k", "v", "PXAT", "1"}) == "OK");  // in the past: gone
  CHECK(c.cmd({"GET", "k"}) == "nil");
  CHECK(c.cmd({"SET", "k", "v", "EXAT", std::to_string(std::time(nullptr) + 100)}) == "OK");
  auto ttl = c.cmd({"TTL", "k"});
  CHECK((ttl == ":100" || ttl == ":99"));
  CHECK(c.cmd({"SET", "k", "v2", "KEEPTTL"}) == "OK");
  ttl = c.cmd({"TTL", "k"});
  CHECK((ttl == ":100" || ttl == ":99"));
  CHECK(c.cmd({"SET", "k", "v3"}) == "OK");
  CHECK(c.cmd({"TTL", "k"}) == ":-1");
  CHECK(c.cmd({"PSETEX", "p", "5000", "x"}) == "OK");
  auto pttl = c.cmd({"PTTL", "p"});
  CHECK(pttl.size() > 1);
  CHECK(std::stoll(pttl.substr(1)) > 4000);
  CHECK(c.cmd({"SET", "k", "v", "EX", "10", "PX", "100"}) == "!ERR syntax error");
  CHECK(c.cmd({"SET", "k", "v", "EX", "abc"}) == "!ERR value is not an integer or out of range");
  CHECK(c.cmd({"GETDEL", "k"}) == "v3");
  CHECK(c.cmd({"GETDEL", "k"}) == "nil");
  CHECK(c.cmd({"SELECT", "0"}) == "OK");
  CHECK(c.cmd({"SELECT", "1"}) == "!ERR DB index is out of range");
  CHECK(c.cmd({"CLIENT", "SETNAME", "tester"}) == "OK");
  CHECK(c.cmd({"CLIENT", "GETNAME"}) == "tester");
  CHECK(c.cmd({"CLIENT", "NOPE"}) == "!ERR unknown subcommand 'NOPE'. Try CLIENT HELP.");
  CHECK(c.cmd({"ECHO"}) == "!ERR wrong number of arguments for 'echo' command");
  CHECK(c.cmd({"ping", "a", "b"}) == "!ERR wrong number of arguments for 'ping' command");
  CHECK(c.cmd({"foo", "a", "b"}) ==
        "!ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
  auto id = c.cmd({"CLIENT", "ID"});
  REQUIRE(id.rfind(":", 0) == 0);

  // RESP3 after HELLO 3: maps, nulls as `_`, sets.
  auto hello = c.cmd({"HELLO", "3"});
  CHECK(hello.rfind("{server:redis,version:", 0) == 0);
  CHECK(hello.find("proto::3") != std::string::npos);
  CHECK(hello.find("id:" + id) != std::string::npos);
  CHECK(c.cmd({"GET", "nope"}) == "nil");
  CHECK(c.cmd({"CLIENT", "TRACKINGINFO"}) == "{flags:~[off],redirect::-1,prefixes:[]}");
  CHECK(c.cmd({"HELLO", "2"}).rfind("[server,redis,", 0) == 0);
  CHECK(c.cmd({"HELLO", "4"}) == "!NOPROTO unsupported protocol version");
  CHECK(c.cmd({"COMMAND", "INFO", "get"}).rfind("[[get,:2,", 0) == 0);
  CHECK(c.cmd({"QUIT"}) == "OK");
  CHECK(c.closed());
}

TEST_CASE("pipelining, partial frames, inline commands and large values", "[sidecar]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  // 2000 commands in one write.
  std::string batch;
  for (int i = 0; i < 1000; ++i) {
    batch += resp_conn::encode({"SET", "p:" + std::to_string(i), std::to_string(i)});
    batch += resp_conn::encode({"GET", "p:" + std::to_string(i)});
  }
  c.send_raw(batch);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(c.read() == "OK");
    REQUIRE(c.read() == std::to_string(i));
  }
  // The same stream one byte per write (frames split at every byte).
  std::string small = resp_conn::encode({"INCR", "bytewise"}) + "INCR bytewise\r\n" +
                      resp_conn::encode({"GET", "bytewise"});
  for (char ch : small) c.send_raw(std::string_view(&ch, 1));
  CHECK(c.read() == ":1");
  CHECK(c.read() == ":2");
  CHECK(c.read() == "2");
  // Inline with quotes, like telnet.
  c.send_raw("SET \"in line\" 'q v'\r\nGET \"in line\"\r\n");
  CHECK(c.read() == "OK");
  CHECK(c.read() == "q v");
  // A 20 MB value (above the default 16 MB node value limit -> clear error), then 8 MB.
  std::string big(20 * 1024 * 1024, 'b');
  CHECK(c.cmd({"SET", "big", big}) == "!ERR string exceeds maximum allowed size");
  std::string value(8 * 1024 * 1024, 'x');
  for (std::size_t i = 0; i < value.size(); i += 4096) value[i] = static_cast<char>('a' + i % 26);
  CHECK(c.cmd({"SET", "big", value}) == "OK");
  CHECK(c.cmd({"STRLEN", "big"}) == ":" + std::to_string(value.size()));
  CHECK(c.cmd({"GET", "big"}) == value);
  CHECK(c.cmd({"APPEND", "big", "!"}) == ":" + std::to_string(value.size() + 1));
}

TEST_CASE("bad input is rejected and closes only that connection", "[sidecar][security]") {
  warpd_sidecar warp;
  resp_conn good{warp.port};
  CHECK(good.cmd({"SET", "safe", "1"}) == "OK");
  struct bad_case {
    std::string bytes;
    std::string reply;
  };
  std::vector<bad_case> cases = {
      {"*99999999999\r\n", "!ERR Protocol error: invalid multibulk length"},
      {"*1\r\n$99999999999\r\n", "!ERR Protocol error: invalid bulk length"},
      {"*1\r\n$-3\r\n", "!ERR Protocol error: invalid bulk length"},
      {"*2\r\nGET\r\n", "!ERR Protocol error: expected '$', got 'G'"},
      {"*x\r\n", "!ERR Protocol error: invalid multibulk length"},
      {"SET \"unbalanced\r\n", "!ERR Protocol error: unbalanced quotes in request"},
      {std::string(70 * 1024, 'A'), "!ERR Protocol error: too big inline request"},
  };
  for (auto& bc : cases) {
    INFO("input: " << bc.bytes.substr(0, 40));
    resp_conn bad{warp.port};
    bad.send_raw(bc.bytes);
    CHECK(bad.read() == bc.reply);
    CHECK(bad.closed());
  }
  // Random garbage: whatever the reply, the node survives and others are unaffected.
  std::uint64_t seed = 7;
  for (int round = 0; round < 50; ++round) {
    resp_conn bad{warp.port};
    std::string junk;
    for (int i = 0; i < 512; ++i) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      junk.push_back(static_cast<char>(seed >> 56));
    }
    bad.send_raw(junk);
  }
  CHECK(good.cmd({"GET", "safe"}) == "1");
  CHECK(good.cmd({"PING"}) == "PONG");
}

TEST_CASE("a password makes AUTH mandatory", "[sidecar][security]") {
  warpd_sidecar warp{{"--resp-password", "s3cret"}};
  resp_conn c{warp.port};
  CHECK(c.cmd({"GET", "k"}) == "!NOAUTH Authentication required.");
  CHECK(c.cmd({"PING"}) == "!NOAUTH Authentication required.");
  CHECK(c.cmd({"NOSUCH"}) == "!NOAUTH Authentication required.");
  CHECK(c.cmd({"HELLO", "3"})
            .rfind("!NOAUTH HELLO must be called with the client already authenticated", 0) == 0);
  CHECK(c.cmd({"AUTH", "wrong"}) ==
        "!WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(c.cmd({"AUTH", "admin", "s3cret"}) ==
        "!WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(c.cmd({"AUTH", "s3cret"}) == "OK");
  CHECK(c.cmd({"SET", "k", std::string(100000, 'v')}) == "OK");  // full limits after AUTH

  resp_conn d{warp.port};
  CHECK(d.cmd({"AUTH", "default", "s3cret"}) == "OK");
  CHECK(d.cmd({"STRLEN", "k"}) == ":100000");

  resp_conn h{warp.port};
  CHECK(h.cmd({"HELLO", "3", "AUTH", "default", "nope"}) ==
        "!WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(h.cmd({"HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "h"})
            .rfind("{server:redis", 0) == 0);
  CHECK(h.cmd({"CLIENT", "GETNAME"}) == "h");

  // Strangers cannot send big frames (Redis 7's unauthenticated limits).
  resp_conn s{warp.port};
  s.send_raw("*1\r\n$100000\r\n");
  CHECK(s.read() == "!ERR Protocol error: unauthenticated bulk length");
  CHECK(s.closed());
  resp_conn m{warp.port};
  m.send_raw("*50\r\n");
  CHECK(m.read() == "!ERR Protocol error: unauthenticated multibulk length");
  CHECK(m.closed());
  CHECK(warp.cli({"-a", "s3cret", "--no-auth-warning", "GET", "k"}).size() == 100001);
}

TEST_CASE("counters are exact under concurrent clients", "[sidecar]") {
  warpd_sidecar warp;
  constexpr int threads = 4, per_thread = 500;
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      try {
        resp_conn c{warp.port};
        // Pipelined in chunks of 50, like a busy service.
        for (int done = 0; done < per_thread; done += 50) {
          std::string batch;
          for (int i = 0; i < 50; ++i) batch += resp_conn::encode({"INCR", "counter"});
          batch += resp_conn::encode({"DECRBY", "counter2", "3"});
          c.send_raw(batch);
          for (int i = 0; i < 51; ++i)
            if (c.read().rfind(":", 0) != 0) ++failures;
        }
      } catch (...) {
        ++failures;
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(failures == 0);
  resp_conn c{warp.port};
  CHECK(c.cmd({"GET", "counter"}) == std::to_string(threads * per_thread));
  CHECK(c.cmd({"GET", "counter2"}) == std::to_string(-3 * threads * per_thread / 50));
}

TEST_CASE("thousands of concurrent connections", "[sidecar]") {
  warpd_sidecar warp;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  std::size_t n = std::min<std::size_t>(3000, rl.rlim_cur > 200 ? rl.rlim_cur / 2 - 50 : 100);
  std::vector<std::unique_ptr<resp_conn>> conns;
  for (std::size_t i = 0; i < n; ++i) conns.push_back(std::make_unique<resp_conn>(warp.port));
  for (std::size_t i = 0; i < n; ++i)
    conns[i]->send({"SET", "conn:" + std::to_string(i), std::to_string(i)});
  std::size_t ok = 0;
  for (auto& c : conns) ok += c->read() == "OK";
  CHECK(ok == n);
  std::size_t right = 0;
  for (std::size_t i = 0; i < n; ++i)
    right += conns[i]->cmd({"GET", "conn:" + std::to_string((i + 1) % n)}) ==
             std::to_string((i + 1) % n);
  CHECK(right == n);
  resp_conn c{warp.port};
  auto info = c.cmd({"INFO", "clients"});
  CHECK(info.find("connected_clients:" + std::to_string(n + 1)) != std::string::npos);
}

TEST_CASE("SUBSCRIBE streams key changes as keyspace notifications", "[sidecar][pubsub]") {
  warpd_sidecar warp;
  resp_conn sub{warp.port};
  resp_conn psub{warp.port};
  resp_conn w{warp.port};
  CHECK(sub.cmd({"SUBSCRIBE", "__keyspace@0__:watched", "__keyevent@0__:del"}) ==
        "[subscribe,__keyspace@0__:watched,:1]");
  CHECK(sub.read() == "[subscribe,__keyevent@0__:del,:2]");
  CHECK(sub.cmd({"GET", "x"}).rfind("!ERR Can't execute 'get'", 0) == 0);
  CHECK(sub.cmd({"PING"}) == "[pong,]");
  CHECK(psub.cmd({"PSUBSCRIBE", "__keyspace@0__:w*"}) == "[psubscribe,__keyspace@0__:w*,:1]");
  CHECK(w.cmd({"SET", "watched", "1"}) == "OK");
  CHECK(sub.read() == "[message,__keyspace@0__:watched,set]");
  CHECK(psub.read() == "[pmessage,__keyspace@0__:w*,__keyspace@0__:watched,set]");
  CHECK(w.cmd({"INCR", "watched"}) == ":2");
  CHECK(sub.read() == "[message,__keyspace@0__:watched,set]");
  CHECK(psub.read() == "[pmessage,__keyspace@0__:w*,__keyspace@0__:watched,set]");
  CHECK(w.cmd({"DEL", "watched"}) == ":1");
  CHECK(sub.read() == "[message,__keyspace@0__:watched,del]");
  CHECK(sub.read() == "[message,__keyevent@0__:del,watched]");
  CHECK(psub.read() == "[pmessage,__keyspace@0__:w*,__keyspace@0__:watched,del]");
  CHECK(w.cmd({"PUBLISH", "__keyspace@0__:watched", "hi"}) == ":2");
  CHECK(sub.read() == "[message,__keyspace@0__:watched,hi]");
  // A full UNSUBSCRIBE answers once per channel, in no particular order.
  CHECK(sub.cmd({"UNSUBSCRIBE"}).rfind("[unsubscribe,", 0) == 0);
  CHECK(sub.read().find(",:0]") != std::string::npos);
  CHECK(sub.cmd({"GET", "watched"}) == "nil");

  // RESP3: messages are push frames, and normal commands work while subscribed.
  resp_conn r3{warp.port};
  CHECK(r3.cmd({"HELLO", "3"}).rfind("{server", 0) == 0);
  CHECK(r3.cmd({"SUBSCRIBE", "__keyevent@0__:set"}) == ">[subscribe,__keyevent@0__:set,:1]");
  CHECK(r3.cmd({"SET", "k3", "v"}) == "OK");  // the reply, then the push it caused
  CHECK(r3.read() == ">[message,__keyevent@0__:set,k3]");
  CHECK(r3.cmd({"GET", "k3"}) == "v");
}

TEST_CASE("client-side caching: RESP3 invalidation pushes", "[sidecar][tracking]") {
  warpd_sidecar warp;
  resp_conn t{warp.port};
  resp_conn w{warp.port};
  CHECK(t.cmd({"HELLO", "3"}).rfind("{server", 0) == 0);
  CHECK(w.cmd({"MSET", "a", "1", "b", "2", "c", "3"}) == "OK");

  SECTION("default mode: keys the client read") {
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON"}) == "OK");
    CHECK(t.cmd({"GET", "a"}) == "1");
    CHECK(t.cmd({"MGET", "b", "zz"}) == "[2,nil]");
    CHECK(w.cmd({"SET", "a", "10"}) == "OK");
    CHECK(t.read() == ">[invalidate,[a]]");
    CHECK(w.cmd({"SET", "c", "30"}) == "OK");  // never read: no push
    CHECK(w.cmd({"DEL", "b"}) == ":1");
    CHECK(t.read() == ">[invalidate,[b]]");
    CHECK(w.cmd({"SET", "zz", "now"}) == "OK");  // a read miss is tracked too
    CHECK(t.read() == ">[invalidate,[zz]]");
    CHECK(w.cmd({"SET", "a", "11"}) == "OK");  // not read again since: no push
    CHECK(t.cmd({"PING"}) == "PONG");
    CHECK(t.cmd({"GET", "a"}) == "11");
    CHECK(w.cmd({"FLUSHDB"}) == "OK");
    CHECK(t.read() == ">[invalidate,nil]");
  }
  SECTION("own writes notify unless NOLOOP") {
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON"}) == "OK");
    CHECK(t.cmd({"GET", "a"}) == "1");
    CHECK(t.cmd({"SET", "a", "2"}) == "OK");
    CHECK(t.read() == ">[invalidate,[a]]");
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON", "NOLOOP"}) == "OK");
    CHECK(t.cmd({"GET", "a"}) == "2");
    CHECK(t.cmd({"SET", "a", "3"}) == "OK");
    CHECK(t.cmd({"GET", "b"}) == "2");
    CHECK(w.cmd({"SET", "b", "5"}) == "OK");
    CHECK(t.read() == ">[invalidate,[b]]");  // the first push is b's, not a's
  }
  SECTION("an expiring key is invalidated when it expires") {
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON"}) == "OK");
    CHECK(w.cmd({"SET", "short", "x", "PX", "300"}) == "OK");
    CHECK(t.cmd({"GET", "short"}) == "x");
    CHECK(t.read() == ">[invalidate,[short]]");
    CHECK(t.cmd({"GET", "short"}) == "nil");
    resp_conn sub{warp.port};
    CHECK(sub.cmd({"SUBSCRIBE", "__keyevent@0__:expired"}) ==
          "[subscribe,__keyevent@0__:expired,:1]");
    CHECK(w.cmd({"SET", "short2", "x", "PX", "200"}) == "OK");
    CHECK(sub.read() == "[message,__keyevent@0__:expired,short2]");
  }
  SECTION("OPTOUT skips reads after CLIENT CACHING no") {
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON", "OPTOUT"}) == "OK");
    CHECK(t.cmd({"CLIENT", "CACHING", "no"}) == "OK");
    CHECK(t.cmd({"GET", "a"}) == "1");
    CHECK(t.cmd({"GET", "b"}) == "2");
    CHECK(w.cmd({"SET", "a", "x"}) == "OK");
    CHECK(w.cmd({"SET", "b", "x"}) == "OK");
    CHECK(t.read() == ">[invalidate,[b]]");
  }
  SECTION("BCAST with prefixes") {
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "cfg:"}) ==
          "OK");
    CHECK(w.cmd({"SET", "user:1", "x"}) == "OK");
    CHECK(t.read() == ">[invalidate,[user:1]]");
    CHECK(w.cmd({"SET", "other", "x"}) == "OK");
    CHECK(w.cmd({"INCR", "cfg:n"}) == ":1");
    CHECK(t.read() == ">[invalidate,[cfg:n]]");
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON"}).rfind("!ERR You can't switch BCAST mode", 0) == 0);
  }
  SECTION("OPTIN tracks only after CLIENT CACHING yes") {
    CHECK(t.cmd({"CLIENT", "TRACKING", "ON", "OPTIN"}) == "OK");
    CHECK(t.cmd({"GET", "a"}) == "1");
    CHECK(t.cmd({"CLIENT", "CACHING", "yes"}) == "OK");
    CHECK(t.cmd({"GET", "b"}) == "2");
    CHECK(t.cmd({"GET", "c"}) == "3");  // CACHING covered only the previous command
    CHECK(w.cmd({"SET", "a", "x"}) == "OK");
    CHECK(w.cmd({"SET", "c", "x"}) == "OK");
    CHECK(w.cmd({"SET", "b", "x"}) == "OK");
    CHECK(t.read() == ">[invalidate,[b]]");
    CHECK(t.cmd({"PING"}) == "PONG");
  }
  SECTION("RESP2 with REDIRECT to a subscribed connection") {
    resp_conn r2{warp.port};
    resp_conn sink{warp.port};
    auto id = sink.cmd({"CLIENT", "ID"}).substr(1);
    CHECK(sink.cmd({"SUBSCRIBE", "__redis__:invalidate"}) == "[subscribe,__redis__:invalidate,:1]");
    CHECK(r2.cmd({"CLIENT", "TRACKING", "ON", "REDIRECT", id}) == "OK");
    CHECK(r2.cmd({"CLIENT", "GETREDIR"}) == ":" + id);
    CHECK(r2.cmd({"GET", "a"}) == "1");
    CHECK(w.cmd({"SET", "a", "9"}) == "OK");
    CHECK(sink.read() == "[message,__redis__:invalidate,[a]]");
    CHECK(r2.cmd({"CLIENT", "TRACKING", "ON", "REDIRECT", "999999"}) ==
          "!ERR The client ID you want redirect to does not exist");
  }
}

TEST_CASE("limits: output buffer, idle timeout, max clients (in-process server)",
          "[sidecar][security]") {
  warp::node_config cfg;
  cfg.listen = "";
  cfg.storage = "memory";
  temp_dir dir{"warp-sidecar-inproc"};
  cfg.data_dir = dir.str();
  auto n = warp::node::start(cfg);
  REQUIRE(n);
  warp::sidecar::resp_options opts;
  opts.listen = "127.0.0.1:0";
  opts.max_output_buffer = 1024 * 1024;
  opts.idle_timeout = std::chrono::seconds{1};
  opts.max_clients = 3;
  auto srv = warp::sidecar::resp_server::start(**n, opts);
  REQUIRE(srv);
  auto port = (*srv)->port();
  REQUIRE(port != 0);

  {
    resp_conn a{port};
    CHECK(a.cmd({"SET", "v", std::string(300 * 1024, 'x')}) == "OK");
    resp_conn hog{port};
    resp_conn b{port};
    CHECK(b.cmd({"PING"}) == "PONG");  // the third client fits
    resp_conn over{port};
    CHECK(over.read() == "!ERR max number of clients reached");
    CHECK(over.closed());
    // A client that pipelines GETs and never reads goes over 1 MB of pending output.
    std::string batch;
    for (int i = 0; i < 64; ++i) batch += resp_conn::encode({"GET", "v"});
    for (int i = 0; i < 8; ++i) hog.send_raw(batch);
    CHECK(a.cmd({"STRLEN", "v"}) == ":307200");
    // The hog is gone (its queued bytes may still drain first).
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) gone = hog.closed(100ms);
    CHECK(gone);
  }
  {
    // A subscriber that stops reading is cut off too, the publisher is not.
    resp_conn publisher{port};
    resp_conn stuck{port};
    CHECK(stuck.cmd({"SUBSCRIBE", "firehose"}) == "[subscribe,firehose,:1]");
    std::string big(256 * 1024, 'm');
    for (int i = 0; i < 200; ++i)
      REQUIRE(publisher.cmd({"PUBLISH", "firehose", big}).rfind(":", 0) == 0);
    CHECK(publisher.cmd({"PUBLISH", "firehose", "x"}) == ":0");  // the subscriber is gone
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) gone = stuck.closed(100ms);
    CHECK(gone);
  }
  {
    resp_conn idle{port};
    resp_conn subscriber{port};
    CHECK(subscriber.cmd({"SUBSCRIBE", "ch"}) == "[subscribe,ch,:1]");
    CHECK(idle.closed(5000ms));                    // idle over 1 s: disconnected
    CHECK(subscriber.cmd({"PING"}) == "[pong,]");  // subscribers are never idle
  }
  (*srv)->stop();
  (*srv)->stop();  // idempotent
  // A second server on a taken port fails with a clear error.
  auto first = warp::sidecar::resp_server::start(**n, opts);
  REQUIRE(first);
  opts.listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto clash = warp::sidecar::resp_server::start(**n, opts);
  REQUIRE_FALSE(clash);
  CHECK(clash.err().message().find("cannot listen") != std::string::npos);
}
