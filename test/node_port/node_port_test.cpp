// The node port as an attacker and an operator meet it (bus/node_transport.hpp): what a
// stranger's bytes can make warpd allocate, how many half-open connections it keeps,
// protected mode, and mutual TLS between nodes and for warpctl. Real warpd processes, real
// sockets, real certificates.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/support/eventually.hpp"
#include "test/support/process.hpp"
#include "test/support/tls_certs.hpp"
#include "test/support/view.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

/// A plain TCP connection to 127.0.0.1:port, closed on destruction.
class raw_socket {
 public:
  explicit raw_socket(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~raw_socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool send_all(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// Reads exactly n bytes within `timeout`; fewer when the peer closes or time runs out.
  std::string read(std::size_t n, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      auto got = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }

  /// True when the peer closed (or reset) the connection within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[4096];
        auto got = ::recv(fd_, buf, sizeof buf, 0);
        if (got <= 0) return true;
      }
    }
    return false;
  }

 private:
  int fd_ = -1;
};

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// A BASP header of CAF 0.17: operation, two padding bytes, flags, payload length,
/// operation data, source and destination actor ids, big-endian (32 bytes).
std::string basp_header(std::uint8_t op, std::uint32_t payload_len, std::uint64_t op_data,
                        std::uint8_t flags = 0, std::uint64_t src = 0, std::uint64_t dst = 0) {
  std::string h;
  h.push_back(static_cast<char>(op));
  h.push_back(0);
  h.push_back(0);
  h.push_back(static_cast<char>(flags));
  put_be(h, payload_len, 4);
  put_be(h, op_data, 8);
  put_be(h, src, 8);
  put_be(h, dst, 8);
  return h;
}

std::uint32_t payload_len_of(const std::string& header) {
  std::uint32_t v = 0;
  for (int i = 4; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(header[i]);
  return v;
}

/// The BASP server handshake a node sends on every new connection (header + payload).
std::string server_handshake_of(std::uint16_t port) {
  raw_socket s{port};
  REQUIRE(s.ok());
  auto header = s.read(32, 5s);
  REQUIRE(header.size() == 32);
  CHECK(static_cast<unsigned char>(header[0]) == 0);  // server_handshake
  auto len = payload_len_of(header);
  REQUIRE(len < 65536);
  auto payload = s.read(len, 5s);
  REQUIRE(payload.size() == len);
  return header + payload;
}

std::uint16_t port_of(const std::string& host_port) {
  return static_cast<std::uint16_t>(std::stoi(host_port.substr(host_port.rfind(':') + 1)));
}

/// Resident memory of a process, in KiB.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

/// Value of an unlabelled-beyond-node counter on /metrics (-1 when absent). `ca`: the admin
/// endpoint serves HTTPS (a node with --tls-* uses its certificate there too).
double metric(const warpd_process& d, const std::string& name,
              const std::filesystem::path& ca = {}) {
  auto scrape = [&](auto& client) -> std::string {
    client.set_read_timeout(5, 0);
    auto res = client.Get("/metrics");
    return res && res->status == 200 ? res->body : std::string{};
  };
  std::string body;
  if (ca.empty()) {
    httplib::Client client{"127.0.0.1", d.http_port()};
    body = scrape(client);
  } else {
    httplib::SSLClient client{"127.0.0.1", d.http_port()};
    client.set_ca_cert_path(ca.string().c_str());
    client.enable_server_certificate_verification(true);
    body = scrape(client);
  }
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  return -1;
}

std::vector<std::string> tls_flags(const std::filesystem::path& crt,
                                   const std::filesystem::path& key,
                                   const std::filesystem::path& ca) {
  return {"--tls-cert", crt.string(), "--tls-key", key.string(), "--tls-ca", ca.string()};
}

/// warpctl with extra global flags (TLS) against `d`.
command_result ctl_with(const warpd_process& d, std::vector<std::string> flags,
                        std::vector<std::string> args) {
  std::vector<std::string> argv{warpctl_bin(), "--node", d.node(), "--timeout", "5s"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, 30s);
}

}  // namespace

TEST_CASE("node port: headers announcing 4 GiB before any handshake allocate nothing") {
  warpd_process d{{"--storage", "memory"}};
  REQUIRE(d.wait_ready());
  auto port = port_of(d.node());
  auto before = rss_kib(d.process().pid());
  REQUIRE(before > 0);
  // The reported attack, three times over: a client_handshake header announcing
  // 0xFFFFFFFF payload bytes, then nothing.
  std::vector<std::unique_ptr<raw_socket>> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(std::make_unique<raw_socket>(port));
    REQUIRE(conns.back()->ok());
    REQUIRE(conns.back()->send_all(basp_header(1, 0xFFFFFFFFu, 1)));
  }
  for (auto& c : conns) CHECK(c->closed_by_peer(5s));
  std::this_thread::sleep_for(500ms);
  auto after = rss_kib(d.process().pid());
  INFO("RSS before " << before << " KiB, after " << after << " KiB");
  CHECK(after - before < 64 * 1024);
  CHECK(metric(d, "warp_node_port_refused_oversize_total") >= 3);
  CHECK(d.ctl({"ping"}).exit_code == 0);
}

TEST_CASE("node port: a message over --max-message-size after the handshake closes the "
          "connection, the node keeps serving") {
  warpd_process d{{"--storage", "memory", "--max-value-size", "1024", "--max-message-size",
                   "66560"}};
  REQUIRE(d.wait_ready());
  auto big = d.ctl({"set", "big", std::string(100 * 1024, 'x')});
  CHECK(big.exit_code != 0);
  CHECK(metric(d, "warp_node_port_refused_oversize_total") >= 1);
  CHECK(d.ctl({"set", "small", std::string(512, 'y')}).exit_code == 0);
  auto got = d.ctl({"get", "small"});
  CHECK(got.exit_code == 0);
  CHECK(got.out.find(std::string(512, 'y')) != std::string::npos);
  // Refused as a usage error: a value could never travel in one message.
  warpd_process bad{{"--storage", "memory", "--max-value-size", "1048576",
                     "--max-message-size", "1048576"}};
  CHECK_FALSE(bad.wait_ready(10s));
  CHECK(bad.log().find("max-message-size") != std::string::npos);
}

TEST_CASE("node port: connections stuck in their handshake hold at most "
          "--max-pending-connections slots, and only for 5 s") {
  warpd_process d{{"--storage", "memory", "--max-pending-connections", "4"}};
  REQUIRE(d.wait_ready());
  auto port = port_of(d.node());
  std::vector<std::unique_ptr<raw_socket>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<raw_socket>(port));
    REQUIRE(idle.back()->ok());
  }
  std::this_thread::sleep_for(300ms);
  // A fifth is closed on accept, whoever it is.
  raw_socket fifth{port};
  REQUIRE(fifth.ok());
  CHECK(fifth.closed_by_peer(3s));
  CHECK(metric(d, "warp_node_port_refused_pending_total") >= 1);
  // Once the idle ones are past the handshake timeout, the next accept evicts them.
  std::this_thread::sleep_for(5500ms);
  CHECK(eventually([&] { return d.ctl({"ping"}).exit_code == 0; }, 10s));
  for (auto& c : idle) CHECK(c->closed_by_peer(3s));
}

TEST_CASE("node port: protected mode refuses non-loopback listeners without TLS or password") {
  {
    warpd_process d{{"--listen", "0.0.0.0:0", "--http", "127.0.0.1:0", "--resp", "",
                     "--storage", "memory"},
                    false};
    CHECK_FALSE(d.wait_ready(15s));
    CHECK(d.log().find("without TLS") != std::string::npos);
  }
  {
    warpd_process d{{"--listen", "0.0.0.0:0", "--http", "127.0.0.1:0", "--resp", "",
                     "--storage", "memory", "--insecure"},
                    false};
    CHECK(d.wait_ready());
  }
  {
    warpd_process d{{"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--resp", "0.0.0.0:0",
                     "--storage", "memory"},
                    false};
    CHECK_FALSE(d.wait_ready(15s));
    CHECK(d.log().find("without a password") != std::string::npos);
    CHECK(d.process().wait(5s) == 2);
  }
  {
    warpd_process d{{"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--resp", "0.0.0.0:0",
                     "--storage", "memory", "--resp-password", "s3cret"},
                    false};
    CHECK(d.wait_ready());
  }
}

TEST_CASE("node port: a 3-node cluster runs on mutual TLS, nodes and warpctl without a "
          "certificate from the CA are refused") {
  temp_dir dir{"node-tls"};
  auto pki = make_test_pki(dir.path());
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> certs;
  for (int i = 0; i < 3; ++i)
    certs.push_back(issue_test_cert(pki, "node" + std::to_string(i), "warp-node-" + std::to_string(i),
                                    {"IP:127.0.0.1", "DNS:localhost"}, true));
  std::vector<std::uint16_t> ports{free_port(), free_port(), free_port()};
  std::vector<std::unique_ptr<warpd_process>> nodes;
  for (std::size_t i = 0; i < 3; ++i) {
    auto extra = tls_flags(certs[i].first, certs[i].second, pki.ca_crt);
    extra.insert(extra.end(), {"--pattern", "h:*=eventual_distributed+hydrate"});
    nodes.push_back(std::make_unique<warpd_process>(
        cluster_member_args(ports, i, dir.str(), extra), false));
  }
  for (auto& n : nodes) REQUIRE(n->wait_ready());
  auto client = tls_flags(pki.client_crt, pki.client_key, pki.ca_crt);
  auto up = [&](const warpd_process& d) {
    auto r = ctl_with(d, client, {"--json", "members"});
    return r.exit_code == 0 ? members_in_state(parse_view(r.out), "up") : std::size_t{0};
  };
  for (auto& n : nodes) CHECK(eventually([&] { return up(*n) == 3; }, 30s));

  // Data flows over the TLS links.
  REQUIRE(ctl_with(*nodes[0], client, {"set", "h:1", "over-tls"}).exit_code == 0);
  CHECK(eventually(
      [&] {
        auto r = ctl_with(*nodes[1], client, {"get", "h:1"});
        return r.exit_code == 0 && r.out.find("over-tls") != std::string::npos;
      },
      20s));

  // warpctl: no certificate, or one from another CA, gets nowhere.
  CHECK(ctl_with(*nodes[0], {}, {"ping"}).exit_code == 3);
  CHECK(ctl_with(*nodes[0],
                 tls_flags(pki.other_client_crt, pki.other_client_key, pki.ca_crt), {"ping"})
            .exit_code == 3);
  CHECK(ctl_with(*nodes[0], client, {"ping"}).exit_code == 0);

  // Rogue nodes (plaintext, or certified by another CA) never join the cluster.
  auto rogue_args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{"--name", "rogue", "--listen", "127.0.0.1:0", "--http",
                               "127.0.0.1:0", "--resp", "", "--storage", "memory",
                               "--log-level", "warn", "--heartbeat-interval", "100ms",
                               "--peers", "127.0.0.1:" + std::to_string(ports[0])};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  warpd_process plain_rogue{rogue_args({}), false};
  warpd_process other_ca_rogue{
      rogue_args(tls_flags(pki.other_client_crt, pki.other_client_key, pki.other_ca_crt)), false};
  REQUIRE(plain_rogue.wait_ready());
  REQUIRE(other_ca_rogue.wait_ready());
  std::this_thread::sleep_for(3s);
  auto view = parse_view(ctl_with(*nodes[0], client, {"--json", "members"}).out);
  CHECK(view["members"].size() == 3);
  for (auto& m : view["members"]) CHECK(m.value("name", "") != "rogue");
  CHECK(metric(*nodes[0], "warp_node_port_tls_failures_total", pki.ca_crt) >= 2);
  for (auto& n : nodes) CHECK(n->ctl({"ping"}).exit_code == 3);  // plain warpctl: refused
}

TEST_CASE("node port: a TLS node survives garbage and plaintext BASP on its port") {
  temp_dir dir{"node-tls-garbage"};
  auto pki = make_test_pki(dir.path());
  auto cert = issue_test_cert(pki, "node", "warp-node", {"IP:127.0.0.1"}, true);
  warpd_process d{tls_flags(cert.first, cert.second, pki.ca_crt)};
  REQUIRE(d.wait_ready());
  auto port = port_of(d.node());
  std::mt19937_64 rng{42};
  for (int i = 0; i < 200; ++i) {
    raw_socket s{port};
    REQUIRE(s.ok());
    std::string bytes = i % 2 ? basp_header(1, 0xFFFFFFFFu, 1) : std::string{};
    std::uniform_int_distribution<int> len(1, 2048), byte(0, 255);
    for (int n = len(rng); n > 0; --n) bytes.push_back(static_cast<char>(byte(rng)));
    s.send_all(bytes);
  }
  auto client = tls_flags(pki.client_crt, pki.client_key, pki.ca_crt);
  CHECK(ctl_with(d, client, {"ping"}).exit_code == 0);
  CHECK(metric(d, "warp_node_port_tls_failures_total", pki.ca_crt) >= 100);
}

TEST_CASE("node port: socket fuzzing of BASP framing (random, mutated handshakes, bounds) "
          "neither crashes nor bloats warpd") {
  warpd_process d{{"--storage", "memory"}};
  REQUIRE(d.wait_ready());
  auto port = port_of(d.node());
  // A real server handshake to mutate.
  auto server_hs = server_handshake_of(port);
  auto before = rss_kib(d.process().pid());
  std::mt19937_64 rng{std::random_device{}()};
  auto seed = rng();
  rng.seed(seed);
  INFO("seed " << seed);
  std::uniform_int_distribution<int> byte(0, 255);
  auto random_bytes = [&](std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(byte(rng)));
    return out;
  };
  const std::uint32_t lens[] = {0, 1, 31, 32, 1000, 65535, 65536, 65537, 1u << 20, 0x7FFFFFFFu,
                                0xFFFFFFFFu};
  int cases = 0;
  for (; cases < 1500; ++cases) {
    raw_socket s{port};
    REQUIRE(s.ok());
    std::string frame;
    switch (rng() % 5) {
      case 0:  // noise
        frame = random_bytes(1 + rng() % 4096);
        break;
      case 1: {  // well-formed header, any operation, a boundary length, some payload
        auto len = lens[rng() % std::size(lens)];
        frame = basp_header(static_cast<std::uint8_t>(rng() % 9), len, rng() % 5,
                            static_cast<std::uint8_t>(rng()), rng() % 3, rng() % 3);
        frame += random_bytes(std::min<std::uint32_t>(len, 4096));
        break;
      }
      case 2: {  // the server's handshake echoed as a client handshake, bytes flipped
        frame = server_hs;
        frame[0] = 1;
        for (int flips = 1 + rng() % 8; flips > 0; --flips)
          frame[rng() % frame.size()] = static_cast<char>(byte(rng));
        break;
      }
      case 3: {  // truncated handshake
        frame = server_hs.substr(0, rng() % server_hs.size());
        frame[0] = 1;
        break;
      }
      case 4: {  // client handshake, then random frames
        frame = server_hs;
        frame[0] = 1;
        for (int k = 1 + rng() % 4; k > 0; --k) {
          auto len = static_cast<std::uint32_t>(rng() % 512);
          frame += basp_header(static_cast<std::uint8_t>(2 + rng() % 5), len, rng(),
                               static_cast<std::uint8_t>(rng()), rng() % 4, rng() % 4);
          frame += random_bytes(len);
        }
        break;
      }
    }
    s.send_all(frame);
    if (cases % 250 == 249) REQUIRE(d.process().running());
  }
  REQUIRE(d.process().running());
  CHECK(eventually([&] { return d.ctl({"ping"}).exit_code == 0; }, 20s));
  auto after = rss_kib(d.process().pid());
  INFO(cases << " cases; RSS before " << before << " KiB, after " << after << " KiB");
  CHECK(after - before < 128 * 1024);
}

TEST_CASE("node port: BASP messages CAF 0.17 would crash or be corrupted by are refused "
          "before it sees them") {
  warpd_process d{{"--storage", "memory"}};
  REQUIRE(d.wait_ready());
  auto port = port_of(d.node());
  auto echo = server_handshake_of(port);
  echo[0] = 1;  // our own server handshake replayed as a client handshake: claims our id
  std::vector<std::string> frames = {
      basp_header(1, 0, 3),           // client handshake without payload (null deref in CAF)
      basp_header(0, 0, 3),           // server handshake sent to a server
      basp_header(3, 0, 0),           // routed message as the first message
      echo,                           // a peer claiming to be this node
      echo + basp_header(2, 0, 0),    // then a direct message without payload
  };
  for (int round = 0; round < 20; ++round)
    for (const auto& f : frames) {
      raw_socket s{port};
      REQUIRE(s.ok());
      s.send_all(f);
      CHECK(s.closed_by_peer(5s));
    }
  REQUIRE(d.process().running());
  CHECK(metric(d, "warp_node_port_refused_malformed_total") >= 100);
  CHECK(d.ctl({"ping"}).exit_code == 0);
}
