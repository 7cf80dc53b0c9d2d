// The admin endpoint under hostile clients (slowloris, absurd Content-Length), its bearer
// token, its loopback-only default for non-probe endpoints, TLS (checked with curl) and
// /readyz. Every case runs a real warpd and talks to it over real sockets.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

using steady = std::chrono::steady_clock;

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  return fd;
}

// Sends `request` on a fresh connection and reads until the server closes or `limit`
// passes; what arrived by then.
std::string roundtrip(std::uint16_t port, const std::string& request,
                      std::chrono::milliseconds limit = 10s) {
  int fd = connect_to(port);
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) break;
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    // A complete response with a body of Content-Length bytes is enough.
    auto head_end = out.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      auto cl = out.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end) {
        auto len = std::stoul(out.substr(cl + 16));
        if (out.size() >= head_end + 4 + len) break;
      }
    }
  }
  ::close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}

std::string get_request(const std::string& path, const std::string& extra_headers = {}) {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra_headers + "\r\n";
}

// Connections that send a request one byte at a time and never finish it: each would hold
// one worker of a thread-per-connection server for as long as it keeps trickling.
class slowloris {
 public:
  slowloris(std::uint16_t port, int count) {
    for (int i = 0; i < count; ++i) fds_.push_back(connect_to(port));
    thread_ = std::thread{[this] {
      const std::string drip = "GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
      std::size_t i = 0;
      while (!stop_) {
        for (int fd : fds_) ::send(fd, &drip[i % drip.size()], 1, MSG_NOSIGNAL);
        ++i;
        for (int k = 0; k < 10 && !stop_; ++k) std::this_thread::sleep_for(50ms);
      }
    }};
    // Let the server accept them all and (old code) hand them to its workers.
    std::this_thread::sleep_for(500ms);
  }
  ~slowloris() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) ::close(fd);
  }

 private:
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The time /healthz takes on a fresh connection, and its status.
std::pair<std::chrono::milliseconds, int> timed_healthz(std::uint16_t port) {
  auto t0 = steady::now();
  auto r = roundtrip(port, get_request("/healthz"), 30s);
  return {std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0), status_of(r)};
}

// Liveness must answer well within a probe's timeout. Generous for a loaded 2-core box;
// a thread-per-connection server answers after its clients' read timeouts (about 20 s).
constexpr auto probe_bound = 1000ms;

std::string write_file(const temp_dir& dir, const std::string& name, const std::string& text) {
  auto path = dir.str() + "/" + name;
  std::ofstream{path} << text;
  return path;
}

// A CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI.
// (To be unified with test/support/tls_certs make_test_pki once that lands.)
struct test_pki {
  std::string ca_cert, server_cert, server_key;
};

test_pki make_pki_with_openssl(const temp_dir& dir) {
  auto openssl = find_program("openssl");
  INFO("openssl CLI missing: scripts/deps.sh installs it");
  REQUIRE_FALSE(openssl.empty());
  auto d = dir.str();
  auto ext = write_file(dir, "san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  auto sh = [&](const std::string& cmd) {
    auto r = run({"sh", "-c", cmd}, 60s);
    INFO(cmd << "\n" << r.out << r.err);
    REQUIRE(r.exit_code == 0);
  };
  sh(openssl + " req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=warp-test-ca -keyout " + d +
     "/ca.key -out " + d + "/ca.pem");
  sh(openssl + " req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d +
     "/server.key -out " + d + "/server.csr");
  sh(openssl + " x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
     "/ca.key -CAcreateserial -days 2 -extfile " + ext + " -out " + d + "/server.pem");
  return {d + "/ca.pem", d + "/server.pem", d + "/server.key"};
}

}  // namespace

TEST_CASE("admin /healthz answers at once while 2 slowloris connections trickle bytes") {
  temp_dir dir{"admin-slow2"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str()}};
  REQUIRE(d.wait_ready());
  slowloris slow{d.http_port(), 2};
  auto [took, status] = timed_healthz(d.http_port());
  INFO("healthz took " << took.count() << " ms");
  CHECK(status == 200);
  CHECK(took < probe_bound);
}

TEST_CASE("admin /healthz and /readyz answer at once under 50 slowloris connections") {
  temp_dir dir{"admin-slow50"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str()}};
  REQUIRE(d.wait_ready());
  slowloris slow{d.http_port(), 50};
  for (int i = 0; i < 5; ++i) {
    auto [took, status] = timed_healthz(d.http_port());
    INFO("healthz took " << took.count() << " ms");
    CHECK(status == 200);
    CHECK(took < probe_bound);
  }
  auto t0 = steady::now();
  auto ready = roundtrip(d.http_port(), get_request("/readyz"));
  CHECK(status_of(ready) == 200);
  CHECK(steady::now() - t0 < probe_bound);
}

TEST_CASE("admin connections are capped: the oldest unfinished one makes room") {
  temp_dir dir{"admin-cap"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str(), "--admin-max-connections", "4"}};
  REQUIRE(d.wait_ready());
  slowloris slow{d.http_port(), 10};
  auto [took, status] = timed_healthz(d.http_port());
  INFO("healthz took " << took.count() << " ms");
  CHECK(status == 200);
  CHECK(took < probe_bound);
}

TEST_CASE("an admin request must arrive whole within --admin-request-timeout") {
  temp_dir dir{"admin-deadline"};
  warpd_process d{
      {"--storage", "memory", "--data-dir", dir.str(), "--admin-request-timeout", "1s"}};
  REQUIRE(d.wait_ready());
  // One byte every 500 ms never lets a per-read timeout fire; the total deadline does.
  int fd = connect_to(d.http_port());
  auto t0 = steady::now();
  bool closed = false;
  const std::string drip = "GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
  for (std::size_t i = 0; i < drip.size() && steady::now() - t0 < 10s; ++i) {
    if (::send(fd, &drip[i], 1, MSG_NOSIGNAL) < 0) {
      closed = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 500) > 0) {
      char c;
      if (::recv(fd, &c, 1, 0) <= 0) {
        closed = true;
        break;
      }
    }
  }
  auto took = steady::now() - t0;
  ::close(fd);
  CHECK(closed);
  CHECK(took < 3s);
  CHECK(took >= 900ms);
}

TEST_CASE("admin refuses a huge, negative or malformed Content-Length at once") {
  temp_dir dir{"admin-cl"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str()}};
  REQUIRE(d.wait_ready());
  auto port = d.http_port();
  struct probe {
    std::string length;
    int status;
  };
  for (const auto& [length, expected] :
       {probe{"100000000000000000000", 413}, probe{"1000000000", 413}, probe{"65537", 413},
        probe{"-5", 400}, probe{"+5", 400}, probe{"12abc", 400}, probe{"", 400},
        probe{"5, 6", 400}}) {
    for (const char* path : {"/healthz", "/admin/config"}) {
      auto t0 = steady::now();
      auto r = roundtrip(port,
                         std::string{"POST "} + path +
                             " HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + "\r\n\r\n",
                         10s);
      auto took = steady::now() - t0;
      INFO("Content-Length '" << length << "' on " << path << ": " << r);
      CHECK(status_of(r) == expected);
      CHECK(took < probe_bound);
    }
  }
  // Chunked bodies are not taken at all.
  auto chunked = roundtrip(
      port, "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n");
  CHECK(status_of(chunked) == 501);
  // A head beyond 16 KiB is refused, not buffered without end.
  auto big =
      roundtrip(port, "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  CHECK(status_of(big) == 431);
  // A small body within the limit is fine (and ignored); the node still answers.
  auto small = roundtrip(port,
                         "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\nabc");
  CHECK(status_of(small) == 405);
  CHECK(status_of(roundtrip(port, get_request("/healthz"))) == 200);
}

TEST_CASE("admin endpoints beyond the probes require the bearer token when one is configured") {
  temp_dir dir{"admin-token"};
  const std::string token = "s3cret-token-0123456789";
  auto token_file = write_file(dir, "token", token + "\n");
  warpd_process d{
      {"--storage", "memory", "--data-dir", dir.str(), "--admin-token-file", token_file}};
  REQUIRE(d.wait_ready());
  auto port = d.http_port();
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    INFO(path);
    CHECK(status_of(roundtrip(port, get_request(path))) == 200);
  }
  for (const char* path : {"/admin/config", "/admin/stats", "/admin/cluster", "/admin/nope"}) {
    INFO(path);
    auto none = roundtrip(port, get_request(path));
    CHECK(status_of(none) == 401);
    CHECK(none.find("WWW-Authenticate: Bearer") != std::string::npos);
    CHECK(status_of(roundtrip(port, get_request(path, "Authorization: Bearer wrong\r\n"))) == 401);
    CHECK(status_of(roundtrip(
              port, get_request(path, "Authorization: Bearer " + token + "x\r\n"))) == 401);
    CHECK(status_of(roundtrip(
              port, get_request(path, "Authorization: Bearer " + token.substr(0, token.size() - 1) +
                                          "\r\n"))) == 401);
    CHECK(status_of(roundtrip(port, get_request(path, "Authorization: Basic " + token + "\r\n"))) ==
          401);
  }
  auto ok =
      roundtrip(port, get_request("/admin/config", "Authorization: Bearer " + token + "\r\n"));
  CHECK(status_of(ok) == 200);
  CHECK(ok.find("\"storage\"") != std::string::npos);
  // The token never appears in /admin/config; that one is configured does.
  CHECK(ok.find(token) == std::string::npos);
  CHECK(ok.find("\"token\":true") != std::string::npos);
  CHECK(status_of(roundtrip(
            port, get_request("/admin/nope", "Authorization: Bearer " + token + "\r\n"))) == 404);
}

TEST_CASE("without a token file, admin endpoints are served on loopback binds only") {
  temp_dir dir{"admin-bind"};
  // Loopback bind (the default): everything is served.
  {
    warpd_process d{{"--storage", "memory", "--data-dir", dir.str()}};
    REQUIRE(d.wait_ready());
    CHECK(status_of(roundtrip(d.http_port(), get_request("/admin/config"))) == 200);
  }
  // Any-address bind: probes only, until a token file is configured.
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str(), "--listen", "127.0.0.1:0",
                   "--http", "0.0.0.0:0", "--resp", "", "--log-level", "warn"},
                  false};
  REQUIRE(d.wait_ready());
  CHECK(status_of(roundtrip(d.http_port(), get_request("/healthz"))) == 200);
  CHECK(status_of(roundtrip(d.http_port(), get_request("/metrics"))) == 200);
  auto refused = roundtrip(d.http_port(), get_request("/admin/config"));
  CHECK(status_of(refused) == 403);
  CHECK(refused.find("--admin-token-file") != std::string::npos);
  CHECK(d.log().find("without --admin-token-file") != std::string::npos);
}

TEST_CASE("admin HTTPS with --admin-tls-cert/--admin-tls-key, checked by curl --cacert") {
  temp_dir dir{"admin-tls"};
  auto pki = make_pki_with_openssl(dir);
  const std::string token = "tls-token-abcdefghijkl";
  auto token_file = write_file(dir, "token", token);
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str(), "--admin-tls-cert",
                   pki.server_cert, "--admin-tls-key", pki.server_key, "--admin-token-file",
                   token_file}};
  REQUIRE(d.wait_ready());
  CHECK(d.log().find("admin-tls on") != std::string::npos);
  auto curl = find_program("curl");
  INFO("curl missing: scripts/deps.sh installs it");
  REQUIRE_FALSE(curl.empty());
  auto url = "https://127.0.0.1:" + std::to_string(d.http_port());
  // Silent connections (no handshake at all) hold nothing up either.
  std::vector<int> silent;
  for (int i = 0; i < 5; ++i) silent.push_back(connect_to(d.http_port()));
  auto t0 = steady::now();
  auto health = run({curl, "-sS", "--max-time", "10", "--cacert", pki.ca_cert, url + "/healthz"});
  auto took = steady::now() - t0;
  INFO(health.err);
  CHECK(health.exit_code == 0);
  CHECK(health.out == "ok\n");
  CHECK(took < 5s);  // curl's own start and the RSA handshake included
  for (int fd : silent) ::close(fd);

  auto denied = run({curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", pki.ca_cert,
                     url + "/admin/config"});
  CHECK(denied.out == "401");
  auto config = run({curl, "-sS", "--cacert", pki.ca_cert, "-H", "Authorization: Bearer " + token,
                     url + "/admin/config"});
  CHECK(config.exit_code == 0);
  CHECK(config.out.find("\"storage\"") != std::string::npos);
  // Without the CA curl refuses the certificate; plain HTTP gets no answer.
  auto untrusted = run({curl, "-sS", "--max-time", "10", url + "/healthz"});
  CHECK(untrusted.exit_code != 0);
  auto plain = roundtrip(d.http_port(), get_request("/healthz"), 3s);
  CHECK(status_of(plain) == -1);
  // And the plain-text garbage did not take the server down.
  CHECK(run({curl, "-sS", "--cacert", pki.ca_cert, url + "/healthz"}).out == "ok\n");
}

TEST_CASE("warpd refuses bad admin TLS and token settings with a usage error") {
  temp_dir dir{"admin-bad"};
  auto base =
      std::vector<std::string>{warpd_bin(), "--storage",   "memory", "--listen", "127.0.0.1:0",
                               "--http",    "127.0.0.1:0", "--resp", ""};
  auto expect = [&](std::vector<std::string> extra, int code, const std::string& needle) {
    auto argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = run(argv, 20s);
    INFO(r.err);
    CHECK(r.exit_code == code);
    CHECK(r.err.find(needle) != std::string::npos);
  };
  expect({"--admin-tls-cert", dir.str() + "/nope.pem"}, 2, "give both or neither");
  expect({"--admin-token-file", dir.str() + "/missing"}, 2, "--admin-token-file");
  expect({"--admin-token-file", write_file(dir, "short", "abc\n")}, 2, "at least 16");
  expect({"--admin-token-file", dir.str()}, 2, "--admin-token-file");
  auto junk = write_file(dir, "junk.pem", "not a certificate\n");
  expect({"--admin-tls-cert", junk, "--admin-tls-key", junk}, 1, "TLS certificate");
}

TEST_CASE("a damaged SQLite file: warpd starts, logs it, /readyz 503 while /healthz stays 200") {
  temp_dir dir{"admin-damaged"};
  auto db = dir.str() + "/warp.db";
  {
    warpd_process d{{"--storage", "sqlite:" + db, "--data-dir", dir.str()}};
    REQUIRE(d.wait_ready());
    CHECK(status_of(roundtrip(d.http_port(), get_request("/readyz"))) == 200);
    // 1000 x 1 KB through the RESP sidecar (one redis-cli session).
    auto redis_cli = find_program("redis-cli");
    REQUIRE_FALSE(redis_cli.empty());
    auto cmds = dir.str() + "/set.txt";
    {
      std::ofstream out{cmds};
      for (int i = 0; i < 1000; ++i) out << "SET k" << i << ' ' << std::string(1024, 'v') << '\n';
    }
    auto resp_port = d.resp().substr(d.resp().rfind(':') + 1);
    auto r = run({"sh", "-c", redis_cli + " -p " + resp_port + " < " + cmds + " | grep -c OK"});
    INFO(r.out << r.err);
    REQUIRE(r.out == "1000\n");
    REQUIRE(d.process().stop(SIGTERM, 20s) == 0);
  }
  {
    auto size = std::filesystem::file_size(db);
    std::fstream f{db, std::ios::in | std::ios::out | std::ios::binary};
    for (std::uintmax_t off = size / 3; off < size / 3 + 64 * 1024; off += 8192) {
      f.seekp(static_cast<std::streamoff>(off));
      std::string junk(8192, '\xA5');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
  }
  warpd_process d{{"--storage", "sqlite:" + db, "--data-dir", dir.str()}};
  REQUIRE(d.wait_ready());
  INFO(d.log());
  CHECK(d.log().find("DAMAGED") != std::string::npos);
  CHECK(status_of(roundtrip(d.http_port(), get_request("/healthz"))) == 200);
  auto ready = roundtrip(d.http_port(), get_request("/readyz"));
  CHECK(status_of(ready) == 503);
  CHECK(ready.find("integrity check") != std::string::npos);
  // The JSON body names the failing check.
  CHECK(ready.find(R"("failing":["storage"])") != std::string::npos);
  CHECK(ready.find(R"("status":"not_ready")") != std::string::npos);
  // Reads that hit the damage are counted per operation.
  {
    auto redis_cli = find_program("redis-cli");
    auto cmds = dir.str() + "/get.txt";
    {
      std::ofstream out{cmds};
      for (int i = 0; i < 1000; ++i) out << "GET k" << i << '\n';
    }
    auto resp_port = d.resp().substr(d.resp().rfind(':') + 1);
    run({"sh", "-c", redis_cli + " -p " + resp_port + " < " + cmds + " > /dev/null"});
  }
  auto metrics = roundtrip(d.http_port(), get_request("/metrics"));
  CHECK(metrics.find("warp_storage_errors_total{node=") != std::string::npos);
  CHECK(metrics.find("op=\"check\"} 0") == std::string::npos);
  CHECK(metrics.find("op=\"fetch\"} 0") == std::string::npos);
}

TEST_CASE("a file that is not a SQLite database: warpd refuses to start, saying so") {
  temp_dir dir{"admin-notdb"};
  auto db = dir.str() + "/warp.db";
  std::ofstream{db} << std::string(10000, 'z');
  auto r = run({warpd_bin(), "--storage", "sqlite:" + db, "--listen", "127.0.0.1:0", "--http",
                "127.0.0.1:0", "--resp", ""},
               30s);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is not a SQLite database") != std::string::npos);
}
