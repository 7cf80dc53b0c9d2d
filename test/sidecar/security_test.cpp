// The RESP port's defences, against a real warpd: TLS (redis-cli --tls, redis-py ssl=True,
// client certificates, plaintext and garbage on the TLS port), AUTH brute force (delay,
// disconnect, metrics, password file and environment), the total client buffer cap
// (RSS measured in /proc), and --maxmemory on the memory storage.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "test/apps/warpd_fixture.hpp"
#include "test/sidecar/resp_client.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/support/tls_certs.hpp"

using namespace warp::test;
using namespace std::chrono_literals;

namespace {

std::uint16_t port_of(const std::string& hostport) {
  return static_cast<std::uint16_t>(std::stoi(hostport.substr(hostport.rfind(':') + 1)));
}

/// A started warpd (memory storage, RESP on a free port, admin HTTP on any port).
struct secured_warpd {
  temp_dir dir{"warp-sec"};
  std::unique_ptr<warpd_process> proc;
  std::uint16_t resp = 0;
  std::uint16_t tls = 0;

  explicit secured_warpd(std::vector<std::string> extra, bool expect_ready = true) {
    std::vector<std::string> args = {"--listen",    "",          "--http", "127.0.0.1:0", "--resp",
                                     "127.0.0.1:0", "--storage", "memory", "--data-dir",  dir.str(),
                                     "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    proc = std::make_unique<warpd_process>(args, false, dir.str());
    if (!expect_ready) return;
    bool up = proc->wait_ready();
    INFO("warpd log:\n" << proc->log());
    REQUIRE(up);
    resp = port_of(proc->resp());
    static const std::regex tls_re{R"(resp-tls (\S+))"};
    std::smatch m;
    auto text = proc->log();
    if (std::regex_search(text, m, tls_re)) tls = port_of(m[1]);
  }

  std::string metrics() const {
    httplib::Client cli{"127.0.0.1", proc->http_port()};
    auto r = cli.Get("/metrics");
    REQUIRE(r);
    return r->body;
  }

  /// VmRSS of the warpd process in KiB.
  long rss_kib() {
    std::ifstream in("/proc/" + std::to_string(proc->process().pid()) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    FAIL("no VmRSS for warpd");
    return 0;
  }
};

/// The value of a Prometheus sample (first one of that family), -1 when absent.
double sample(const std::string& text, const std::string& family) {
  std::regex re{"\n" + family + R"((\{[^}]*\})? ([0-9.e+]+))"};
  std::smatch m;
  if (!std::regex_search(text, m, re)) return -1;
  return std::stod(m[2]);
}

std::string redis_cli() {
  auto rc = find_program("redis-cli");
  REQUIRE_FALSE(rc.empty());  // redis-tools must be installed
  return rc;
}

command_result cli(std::vector<std::string> args) {
  args.insert(args.begin(), redis_cli());
  return run(args, 30s);
}

std::vector<std::string> tls_cli_args(const test_pki& pki, std::uint16_t port) {
  return {"--tls", "--cacert", pki.ca_crt.string(), "-h", "127.0.0.1", "-p", std::to_string(port)};
}

std::string python3() {
  // Debian's interpreter, where python3-redis lives (a pyenv shim on PATH may lack it).
  const std::string py = "/usr/bin/python3";
  REQUIRE(std::filesystem::exists(py));
  return py;
}

void write_private(const std::filesystem::path& p, const std::string& text, mode_t mode) {
  std::ofstream(p) << text;
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

}  // namespace

TEST_CASE("tls: make_test_pki writes a CA, server and client certificates that verify",
          "[sidecar][tls]") {
  temp_dir d{"warp-pki"};
  auto pki = make_test_pki(d.path(), {"node1.test"});
  auto openssl = find_program("openssl");
  REQUIRE_FALSE(openssl.empty());
  auto ok = [&](const std::filesystem::path& ca, const std::filesystem::path& crt) {
    return run({openssl, "verify", "-CAfile", ca.string(), crt.string()}).exit_code == 0;
  };
  CHECK(ok(pki.ca_crt, pki.server_crt));
  CHECK(ok(pki.ca_crt, pki.client_crt));
  CHECK(ok(pki.other_ca_crt, pki.other_client_crt));
  CHECK_FALSE(ok(pki.ca_crt, pki.other_client_crt));  // the "wrong CA" case
  auto text = run({openssl, "x509", "-in", pki.server_crt.string(), "-noout", "-text"}).out;
  CHECK(text.find("IP Address:127.0.0.1") != std::string::npos);
  CHECK(text.find("DNS:localhost") != std::string::npos);
  CHECK(text.find("DNS:node1.test") != std::string::npos);
  auto [crt, key] = issue_test_cert(pki, "node7", "node7", {"DNS:node7", "IP:127.0.0.1"});
  CHECK(ok(pki.ca_crt, crt));
  CHECK(std::filesystem::exists(key));
}

TEST_CASE("resp tls: redis-cli --tls and redis-py ssl=True work, plaintext and garbage are refused",
          "[sidecar][tls]") {
  temp_dir d{"warp-pki"};
  auto pki = make_test_pki(d.path());
  secured_warpd w{
      {"--resp-tls-cert", pki.server_crt.string(), "--resp-tls-key", pki.server_key.string()}};
  REQUIRE(w.tls == w.resp);  // TLS on --resp itself
  auto base = tls_cli_args(pki, w.tls);

  auto args = base;
  args.push_back("PING");
  auto r = cli(args);
  INFO(r.out << r.err << "\n" << w.proc->log());
  REQUIRE(r.out == "PONG\n");
  args = base;
  args.insert(args.end(), {"SET", "tls-key", "hello over tls"});
  CHECK(cli(args).out == "OK\n");
  args = base;
  args.insert(args.end(), {"GET", "tls-key"});
  CHECK(cli(args).out == "hello over tls\n");
  // A value of several TLS records (16 KiB each); an argument stays under Linux's 128 KiB
  // per argv string. redis-py below moves 1 MiB.
  args = base;
  args.insert(args.end(), {"SET", "big", std::string(120 * 1024, 'x')});
  CHECK(cli(args).out == "OK\n");
  args = base;
  args.insert(args.end(), {"STRLEN", "big"});
  CHECK(cli(args).out == "122880\n");

  // redis-py, a pipeline of 2000 commands in one go (OpenSSL holds decrypted input the
  // loop must drain without a new epoll event), then a 1 MiB value read back.
  std::string script = R"(
import redis, sys
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), ssl=True, ssl_ca_certs=sys.argv[2])
assert r.ping()
p = r.pipeline(transaction=False)
for i in range(1000):
    p.set('k%d' % i, 'v%d' % i)
for i in range(1000):
    p.get('k%d' % i)
res = p.execute()
assert res[:1000] == [True] * 1000, res[:5]
assert res[1000:] == [('v%d' % i).encode() for i in range(1000)], res[1000:1005]
r.set('mb', b'y' * (1 << 20))
assert r.get('mb') == b'y' * (1 << 20)
print('ok')
)";
  auto py = run({python3(), "-c", script, std::to_string(w.tls), pki.ca_crt.string()}, 60s);
  INFO("python: " << py.out << py.err);
  CHECK(py.out == "ok\n");

  // Plaintext on the TLS port: the handshake fails, the connection closes, nothing crashes.
  {
    resp_conn plain{w.tls};
    plain.send({"PING"});
    CHECK(plain.read(3000ms) == "<closed>");
  }
  // Plain redis-cli: an error, not a hang.
  auto plain_cli = cli({"-h", "127.0.0.1", "-p", std::to_string(w.tls), "PING"});
  CHECK(plain_cli.out.find("PONG") == std::string::npos);
  // Garbage: a record header announcing a huge handshake, random bytes, a truncated hello.
  for (std::string junk : {std::string("\x16\x03\x01\xff\xff", 5) + std::string(1000, '\xab'),
                           std::string(4096, '\x00'), std::string("\x16\x03\x01\x00\x30\x01", 6)}) {
    resp_conn g{w.tls};
    g.send_raw(junk);
    // A truncated hello waits for the rest: either way the server never answers in RESP.
    auto reply = g.read(500ms);
    CHECK((reply == "<closed>" || reply == "<timeout>"));
  }
  // A wrong CA on the client side: the client refuses the server.
  args = {"--tls", "--cacert", pki.other_ca_crt.string(), "-p", std::to_string(w.tls), "PING"};
  CHECK(cli(args).out.find("PONG") == std::string::npos);

  REQUIRE(w.proc->process().running());
  args = base;
  args.push_back("PING");
  CHECK(cli(args).out == "PONG\n");
  auto m = w.metrics();
  INFO(m);
  CHECK(sample(m, "warp_resp_tls_handshake_failures_total") >= 3);
}

TEST_CASE("resp tls: a separate --resp-tls-port beside plaintext, client certificates required",
          "[sidecar][tls]") {
  temp_dir d{"warp-pki"};
  auto pki = make_test_pki(d.path());
  auto tls_port = free_port();
  secured_warpd w{{"--resp-tls-cert", pki.server_crt.string(), "--resp-tls-key",
                   pki.server_key.string(), "--resp-tls-ca", pki.ca_crt.string(), "--resp-tls-port",
                   std::to_string(tls_port), "--resp-tls-auth-clients", "yes"}};
  REQUIRE(w.tls == tls_port);
  REQUIRE(w.resp != w.tls);
  // The plain listener stays plain.
  CHECK(cli({"-p", std::to_string(w.resp), "PING"}).out == "PONG\n");
  auto base = tls_cli_args(pki, w.tls);
  // With a client certificate of our CA: in.
  auto args = base;
  args.insert(args.end(), {"--cert", pki.client_crt.string(), "--key", pki.client_key.string(),
                           "SET", "mtls", "yes"});
  auto r = cli(args);
  INFO(r.out << r.err);
  CHECK(r.out == "OK\n");
  // Without one: refused in the handshake.
  args = base;
  args.push_back("PING");
  CHECK(cli(args).out.find("PONG") == std::string::npos);
  // With one from another CA: refused.
  args = base;
  args.insert(args.end(), {"--cert", pki.other_client_crt.string(), "--key",
                           pki.other_client_key.string(), "PING"});
  CHECK(cli(args).out.find("PONG") == std::string::npos);
  CHECK(sample(w.metrics(), "warp_resp_tls_handshake_failures_total") >= 2);
}

TEST_CASE("resp tls: bad certificate settings stop warpd with a clear error", "[sidecar][tls]") {
  temp_dir d{"warp-pki"};
  auto pki = make_test_pki(d.path());
  // Key of another certificate.
  secured_warpd w{
      {"--resp-tls-cert", pki.server_crt.string(), "--resp-tls-key", pki.client_key.string()},
      false};
  CHECK(w.proc->process().wait(20s) != 0);
  CHECK(w.proc->log().find("key values mismatch") != std::string::npos);
  secured_warpd w2{{"--resp-tls-cert", pki.server_crt.string(), "--resp-tls-key",
                    pki.server_key.string(), "--resp-tls-auth-clients", "yes"},
                   false};
  CHECK(w2.proc->process().wait(20s) != 0);
  CHECK(w2.proc->log().find("resp-tls-ca") != std::string::npos);
}

TEST_CASE("resp auth: failures are slowed, counted, and the connection closed after N",
          "[sidecar][auth]") {
  secured_warpd w{{"--resp-password", "s3cret", "--resp-auth-max-failures", "5"}};
  resp_conn c{w.resp};
  // A guesser pipelines 1000 attempts: it gets 5 answers, then the door.
  std::string burst;
  for (int i = 0; i < 1000; ++i) burst += resp_conn::encode({"AUTH", "guess" + std::to_string(i)});
  auto t0 = std::chrono::steady_clock::now();
  c.send_raw(burst);
  int wrongpass = 0;
  std::string last;
  for (;;) {
    last = c.read(5000ms);
    if (last.rfind("!WRONGPASS", 0) != 0) break;
    ++wrongpass;
  }
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(wrongpass == 5);
  CHECK(last == "<closed>");
  // Delays of 10, 20, 40 and 80 ms between the five attempts.
  CHECK(took >= 140ms);
  auto m = w.metrics();
  INFO(m);
  CHECK(sample(m, "warp_resp_auth_failures_total") == 5);
  CHECK(sample(m, "warp_resp_auth_disconnects_total") == 1);
  // The right password still works, and a success does not count.
  resp_conn ok{w.resp};
  CHECK(ok.cmd({"AUTH", "s3cret"}) == "OK");
  CHECK(ok.cmd({"PING"}) == "PONG");
  // HELLO AUTH counts the same way.
  resp_conn h{w.resp};
  CHECK(h.cmd({"HELLO", "3", "AUTH", "default", "nope"}).rfind("!WRONGPASS", 0) == 0);
  CHECK(sample(w.metrics(), "warp_resp_auth_failures_total") == 6);
}

TEST_CASE("resp auth: the password comes from a file or WARP_RESP_PASSWORD", "[sidecar][auth]") {
  temp_dir d{"warp-secret"};
  auto file = d.path() / "resp.pass";
  write_private(file, "from-file\n", 0600);
  {
    secured_warpd w{{"--resp-password-file", file.string()}};
    resp_conn c{w.resp};
    CHECK(c.cmd({"GET", "x"}).rfind("!NOAUTH", 0) == 0);
    CHECK(c.cmd({"AUTH", "from-file\n"}).rfind("!WRONGPASS", 0) == 0);  // newline stripped
    CHECK(c.cmd({"AUTH", "from-file"}) == "OK");
  }
  {
    ::setenv("WARP_RESP_PASSWORD", "from-env", 1);
    secured_warpd w{{}};
    ::unsetenv("WARP_RESP_PASSWORD");
    resp_conn c{w.resp};
    CHECK(c.cmd({"AUTH", "from-env"}) == "OK");
  }
  {
    // A secret everyone can read is refused.
    write_private(file, "open\n", 0644);
    secured_warpd w{{"--resp-password-file", file.string()}, false};
    CHECK(w.proc->process().wait(20s) != 0);
    CHECK(w.proc->log().find("world-readable") != std::string::npos);
  }
  {
    secured_warpd w{{"--resp-password", "a", "--resp-password-file", file.string()}, false};
    CHECK(w.proc->process().wait(20s) != 0);
  }
}

TEST_CASE("resp limits: announced 512 MB bulks are bounded by --resp-max-client-memory",
          "[sidecar][limits]") {
  constexpr std::size_t cap = 32 * 1024 * 1024;
  secured_warpd w{{"--resp-max-client-memory", std::to_string(cap)}};
  const long rss_before = w.rss_kib();
  // Six clients announce 512 MB values and trickle 1 MiB chunks, round robin, 16 MiB each:
  // 96 MiB arrive in total, three times the cap.
  const std::string chunk(1024 * 1024, 'z');
  std::vector<std::unique_ptr<resp_conn>> conns;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(std::make_unique<resp_conn>(w.resp));
    conns.back()->send_raw("*3\r\n$3\r\nSET\r\n$4\r\nbig" + std::to_string(i) +
                           "\r\n$536870912\r\n");
  }
  long rss_peak = 0;
  for (int round = 0; round < 16; ++round) {
    for (auto& c : conns) c->send_raw(chunk);
    std::this_thread::sleep_for(20ms);
    rss_peak = std::max(rss_peak, w.rss_kib());
  }
  std::this_thread::sleep_for(200ms);
  rss_peak = std::max(rss_peak, w.rss_kib());
  int closed = 0;
  for (auto& c : conns)
    if (c->read(1000ms) == "<closed>") ++closed;
  auto growth_mib = (rss_peak - rss_before) / 1024;
  INFO("RSS before " << rss_before / 1024 << " MiB, peak " << rss_peak / 1024 << " MiB, " << closed
                     << " of 6 clients disconnected\n"
                     << w.proc->log());
  CHECK(closed >= 3);
  // The cap plus what is in flight in one loop iteration, and allocator slack.
  CHECK(growth_mib < 80);
  auto m = w.metrics();
  CHECK(sample(m, "warp_resp_client_memory_disconnects_total") >= 3);
  CHECK(w.proc->log().find("resp-max-client-memory") != std::string::npos);
  // A well-behaved client is unaffected.
  resp_conn ok{w.resp};
  CHECK(ok.cmd({"SET", "small", "v"}) == "OK");
  CHECK(ok.cmd({"INFO", "stats"}).find("evicted_clients:") != std::string::npos);
}

TEST_CASE("resp limits: an announced bulk costs only what arrived", "[sidecar][limits]") {
  secured_warpd w{{}};
  const long before = w.rss_kib();
  std::vector<std::unique_ptr<resp_conn>> conns;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(std::make_unique<resp_conn>(w.resp));
    conns.back()->send_raw("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n" +
                           std::string(100000, 'a'));
  }
  std::this_thread::sleep_for(300ms);
  const long after = w.rss_kib();
  INFO("RSS before " << before << " KiB, after " << after << " KiB");
  CHECK(after - before < 16 * 1024);  // six announced 512 MB: well under 16 MiB
}

TEST_CASE("maxmemory noeviction: writes answer -OOM like Redis, CONFIG GET and INFO tell",
          "[sidecar][maxmemory]") {
  secured_warpd w{{"--maxmemory", "1000000", "--maxmemory-policy", "noeviction"}};
  resp_conn c{w.resp};
  CHECK(c.cmd({"CONFIG", "GET", "maxmemory"}) == "[maxmemory,1000000]");
  CHECK(c.cmd({"CONFIG", "GET", "maxmemory-policy"}) == "[maxmemory-policy,noeviction]");
  const std::string value(1024, 'v');
  std::string reply;
  int stored = 0;
  for (int i = 0; i < 5000; ++i) {
    reply = c.cmd({"SET", "key:" + std::to_string(i), value});
    if (reply != "OK") break;
    ++stored;
  }
  CHECK(reply == "!OOM command not allowed when used memory > 'maxmemory'.");
  CHECK(stored > 500);  // ~1.2 KB a key
  CHECK(stored < 1000);
  auto info = c.cmd({"INFO", "memory"});
  std::smatch m;
  REQUIRE(std::regex_search(info, m, std::regex{R"(used_memory:(\d+))"}));
  CHECK(std::stoll(m[1]) <= 1000000);
  CHECK(std::stoll(m[1]) > 500000);
  CHECK(info.find("maxmemory_policy:noeviction") != std::string::npos);
  // Pipelined SETs (the batched path) are refused the same way.
  std::string pipe;
  for (int i = 0; i < 10; ++i) pipe += resp_conn::encode({"SET", "p" + std::to_string(i), value});
  c.send_raw(pipe);
  for (int i = 0; i < 10; ++i)
    CHECK(c.read() == "!OOM command not allowed when used memory > 'maxmemory'.");
  // Deleting makes room again; reads keep working.
  CHECK(c.cmd({"GET", "key:0"}) == value);
  CHECK(c.cmd({"DEL", "key:0", "key:1", "key:2"}) == ":3");
  CHECK(c.cmd({"SET", "again", value}) == "OK");
}

TEST_CASE("maxmemory allkeys-lru evicts the oldest keys, volatile-ttl those expiring first",
          "[sidecar][maxmemory]") {
  const std::string value(1024, 'v');
  {
    secured_warpd w{{"--maxmemory", "1000000", "--maxmemory-policy", "allkeys-lru"}};
    resp_conn c{w.resp};
    std::string pipe;
    for (int i = 0; i < 5000; ++i) {
      CHECK(c.cmd({"SET", "key:" + std::to_string(i), value}) == "OK");
      if (i % 500 == 0) std::this_thread::sleep_for(20ms);  // older keys: older LRU ticks
    }
    auto info = c.cmd({"INFO", "memory"});
    std::smatch m;
    REQUIRE(std::regex_search(info, m, std::regex{R"(used_memory:(\d+))"}));
    CHECK(std::stoll(m[1]) <= 1000000);
    REQUIRE(std::regex_search(info, m, std::regex{R"(evicted_keys:(\d+))"}));
    CHECK(std::stoll(m[1]) > 4000);
    int recent = 0, old = 0;
    for (int i = 4900; i < 5000; ++i)
      if (c.cmd({"EXISTS", "key:" + std::to_string(i)}) == ":1") ++recent;
    for (int i = 0; i < 1000; ++i)
      if (c.cmd({"GET", "key:" + std::to_string(i)}) != "nil") ++old;  // L1 dropped them too
    CHECK(recent >= 95);
    CHECK(old < 50);
    CHECK(c.cmd({"CONFIG", "GET", "maxmemory-policy"}) == "[maxmemory-policy,allkeys-lru]");
  }
  {
    secured_warpd w{{"--maxmemory", "1000000", "--maxmemory-policy", "volatile-ttl"}};
    resp_conn c{w.resp};
    for (int i = 0; i < 200; ++i)
      REQUIRE(c.cmd({"SET", "keep:" + std::to_string(i), value}) == "OK");
    // Keys with TTLs: the ones expiring soonest make room for later ones.
    for (int i = 0; i < 3000; ++i)
      REQUIRE(c.cmd({"SET", "ttl:" + std::to_string(i), value, "EX", std::to_string(1000 + i)}) ==
              "OK");
    for (int i = 0; i < 200; ++i) CHECK(c.cmd({"EXISTS", "keep:" + std::to_string(i)}) == ":1");
    CHECK(c.cmd({"EXISTS", "ttl:2999"}) == ":1");
    CHECK(c.cmd({"EXISTS", "ttl:0"}) == ":0");
    // With only keys without a TTL left to take, writes fail like noeviction.
    std::string reply;
    for (int i = 0; i < 3000 && reply.rfind("!OOM", 0) != 0; ++i) {
      c.cmd({"DEL", "ttl:" + std::to_string(i)});
      reply = c.cmd({"SET", "plain:" + std::to_string(i), value});
    }
    CHECK(reply == "!OOM command not allowed when used memory > 'maxmemory'.");
  }
}

TEST_CASE("maxmemory: refused for storage other than memory, and a bad policy is named",
          "[sidecar][maxmemory]") {
  secured_warpd a{{"--maxmemory-policy", "allkeys-random"}, false};
  CHECK(a.proc->process().wait(20s) != 0);
  CHECK(a.proc->log().find("maxmemory-policy") != std::string::npos);
}
