// DNS discovery (runtime/membership/discovery.*): the answer parser against malformed and
// truncated messages, resolution against the test DNS server (test/support/dns_server.*),
// and real warpd processes that find each other through SRV or A records only (no
// --peers), growing when a record is added (re-resolution every --discovery-interval).
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/cluster_actor.hpp"
#include "runtime/membership/discovery.hpp"
#include "test/support/dns_server.hpp"
#include "test/support/process.hpp"

using namespace std::chrono_literals;
using warp::test::dns_server;
namespace dns_type = warp::test::dns_type;
namespace detail = warp::detail;

namespace {

// -- hand-made DNS messages -------------------------------------------------------------

struct msg_builder {
  std::vector<unsigned char> b;
  void u8(unsigned v) { b.push_back(static_cast<unsigned char>(v)); }
  void u16(unsigned v) {
    u8(v >> 8);
    u8(v & 0xff);
  }
  void u32(unsigned v) {
    u16(v >> 16);
    u16(v & 0xffff);
  }
  void name(const std::string& n) {  // "a.b" -> 1 a 1 b 0
    std::size_t s = 0;
    while (s < n.size()) {
      auto d = n.find('.', s);
      if (d == std::string::npos) d = n.size();
      u8(static_cast<unsigned>(d - s));
      b.insert(b.end(), n.begin() + static_cast<long>(s), n.begin() + static_cast<long>(d));
      s = d + 1;
    }
    u8(0);
  }
  /// Response header (QR, AA, RD) + the question `q` of type `type`.
  void response(unsigned rcode, unsigned an, unsigned ar, const std::string& q, unsigned type,
                unsigned extra_flags = 0) {
    u16(0x1234);
    u16(0x8500 | extra_flags | rcode);
    u16(1);
    u16(an);
    u16(0);
    u16(ar);
    name(q);
    u16(type);
    u16(1);
  }
  /// RR header owned by the question's name (pointer to offset 12).
  void rr(unsigned type, unsigned rdlen) {
    u16(0xc00c);
    u16(type);
    u16(1);
    u32(0);
    u16(rdlen);
  }
};

std::string error_of(const std::vector<unsigned char>& m) {
  auto r = detail::parse_dns_answer(m.data(), m.size());
  return r ? std::string{} : r.err().message();
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : " | ") + s;
  return out;
}

// -- warpd nodes that only know a DNS name ----------------------------------------------

class dns_cluster {
 public:
  dns_cluster() {
    cfg_.load<caf::io::middleman>();
    cfg_.set("scheduler.max-threads", 2);
    cfg_.set("logger.verbosity", caf::atom("quiet"));
    sys_ = std::make_unique<caf::actor_system>(cfg_);
  }
  ~dns_cluster() {
    for (auto& n : nodes_)
      if (n.proc) n.proc->stop(15, 10s);
    sys_.reset();
  }

  /// Starts a warpd listening on HOST:PORT that finds peers only through `discovery`.
  std::size_t start(const std::string& host, std::uint16_t port, const std::string& discovery,
                    const std::string& server) {
    auto i = nodes_.size();
    auto name = "d" + std::to_string(i);
    std::vector<std::string> argv{warp::test::binary("apps/warpd/warpd"),
                                  "--name",
                                  name,
                                  "--listen",
                                  host + ":" + std::to_string(port),
                                  "--storage",
                                  "sqlite:" + dir_.str() + "/shared.db",
                                  "--data-dir",
                                  dir_.str() + "/" + name,
                                  "--default-mode",
                                  "eventual_distributed",
                                  "--http",
                                  "127.0.0.1:" + std::to_string(warp::test::free_port()),
                                  "--resp",
                                  "127.0.0.1:" + std::to_string(warp::test::free_port()),
                                  "--log-level",
                                  "warn",
                                  "--discovery-dns",
                                  discovery,
                                  "--discovery-dns-server",
                                  server,
                                  "--discovery-interval",
                                  "300ms"};
    nodes_.push_back(
        {host, port,
         std::make_unique<warp::test::child_process>(argv, dir_.str() + "/" + name + ".log")});
    return i;
  }

  warp::test::child_process& proc(std::size_t i) { return *nodes_[i].proc; }

  /// Addresses node i holds `up`; empty when it cannot be asked.
  std::set<std::string> up_members(std::size_t i) {
    auto js = warp::actors::fetch_members_json(*sys_, nodes_[i].host, nodes_[i].port, 2s);
    if (!js) return {};
    auto j = nlohmann::json::parse(*js, nullptr, false);
    std::set<std::string> out;
    if (!j.is_object() || !j.contains("members")) return out;
    for (auto& m : j["members"])
      if (m.value("state", "") == "up") out.insert(m.value("address", std::string{}));
    return out;
  }

  /// Waits until every node sees exactly the expected addresses up; false after `limit`.
  bool wait_view(const std::set<std::string>& expected, std::chrono::milliseconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      bool all = true;
      for (std::size_t i = 0; i < nodes_.size() && all; ++i) all = up_members(i) == expected;
      if (all) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(100ms);
    }
  }

  /// What went wrong, for a failed check: every node's view and the tail of its log.
  std::string report() {
    std::string out;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      out += "node " + std::to_string(i) + " (" + nodes_[i].host + ":" +
             std::to_string(nodes_[i].port) + ", " +
             (nodes_[i].proc->running() ? "running" : "EXITED") + ") sees up:";
      for (auto& a : up_members(i)) out += " " + a;
      auto log = nodes_[i].proc->log();
      out += "\n  log: " + (log.size() > 1500 ? log.substr(log.size() - 1500) : log) + "\n";
    }
    return out;
  }

 private:
  struct node {
    std::string host;
    std::uint16_t port;
    std::unique_ptr<warp::test::child_process> proc;
  };
  warp::test::temp_dir dir_{"warp-dns"};
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::vector<node> nodes_;
};

std::string ep(std::uint16_t port, const std::string& host = "127.0.0.1") {
  return host + ":" + std::to_string(port);
}

}  // namespace

TEST_CASE("dns discovery: the spec and server syntax") {
  auto a = detail::parse_discovery_spec("Warp.Example.:4700");
  REQUIRE(a);
  CHECK_FALSE(a->srv);
  CHECK(a->name == "warp.example");
  CHECK(a->port == 4700);
  auto plain = detail::parse_discovery_spec("warp.example");
  REQUIRE(plain);
  CHECK(plain->port == 0);
  auto s = detail::parse_discovery_spec("srv:_warp._tcp.example");
  REQUIRE(s);
  CHECK(s->srv);
  CHECK(s->name == "_warp._tcp.example");
  for (auto bad : {"", "srv:", "srv:_warp._tcp.example:4700", "warp:http", "warp:0", ":4700",
                   "warp:70000", "::1:4700"}) {
    INFO(bad);
    CHECK_FALSE(detail::parse_discovery_spec(bad));
  }
  auto srv = detail::parse_dns_server("127.0.0.1:5353");
  REQUIRE(srv);
  CHECK(srv->port == 5353);
  CHECK(detail::parse_dns_server("10.0.0.2")->port == 53);
  for (auto bad : {"", "dns.example:53", "127.0.0.1:", "127.0.0.1:x", "[::1]:53"}) {
    INFO(bad);
    CHECK_FALSE(detail::parse_dns_server(bad));
  }
}

TEST_CASE("dns discovery: malformed and truncated answers are errors and never crash") {
  dns_server dns;
  dns.set_srv("_warp._tcp.t", {{"a.t", 7001}, {"b.t", 7002}, {"c.t", 7003}});
  dns.set_a("a.t", {"127.0.0.1"});
  dns.set_a("b.t", {"127.0.0.2"});
  dns.set_a("c.t", {"127.0.0.3"});
  auto q = warp::test::dns_query("_warp._tcp.t", dns_type::srv);
  auto good = dns.answer(q.data(), q.size());
  auto parsed = detail::parse_dns_answer(good.data(), good.size());
  REQUIRE(parsed);
  REQUIRE(parsed->srv.size() == 3);
  CHECK(parsed->srv[1].target == "b.t");
  CHECK(parsed->srv[1].port == 7002);
  REQUIRE(parsed->addresses.size() == 3);
  CHECK(parsed->addresses[2].owner == "c.t");
  CHECK(parsed->addresses[2].address == "127.0.0.3");
  CHECK(parsed->addresses[2].additional);

  SECTION("every truncation is an error") {
    for (std::size_t len = 0; len < good.size(); ++len) {
      INFO("truncated to " << len << " of " << good.size() << " bytes");
      CHECK_FALSE(detail::parse_dns_answer(good.data(), len));
    }
    CHECK_FALSE(detail::parse_dns_answer(nullptr, 0));
  }
  SECTION("random corruption: an answer or an error, no crash, bounded names") {
    std::mt19937 rng{42};
    for (int round = 0; round < 20000; ++round) {
      auto m = good;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<unsigned char>(rng());
      auto r = detail::parse_dns_answer(m.data(), m.size());
      if (r)
        for (auto& s : r->srv) REQUIRE(s.target.size() <= 255);
    }
  }
  SECTION("hand-made malformations") {
    msg_builder short_srv;  // SRV rdata of 5 bytes: no room for the target
    short_srv.response(0, 1, 0, "x.t", 33);
    short_srv.rr(33, 5);
    for (int k = 0; k < 5; ++k) short_srv.u8(0);
    CHECK(error_of(short_srv.b).find("SRV record of 5 bytes") != std::string::npos);

    msg_builder loop;  // the target is a compression pointer to itself
    loop.response(0, 1, 0, "x.t", 33);
    loop.rr(33, 8);
    loop.u16(1);
    loop.u16(1);
    loop.u16(7000);
    loop.u16(0xc000 | static_cast<unsigned>(loop.b.size()));
    CHECK(error_of(loop.b).find("malformed") != std::string::npos);

    msg_builder trailing;  // rdlength longer than the target name: garbage after it
    trailing.response(0, 1, 0, "x.t", 33);
    trailing.rr(33, 6 + 5 + 2);
    trailing.u16(1);
    trailing.u16(1);
    trailing.u16(7000);
    trailing.name("a.t");
    trailing.u16(0xffff);
    CHECK(error_of(trailing.b).find("malformed target") != std::string::npos);

    msg_builder overlong;  // rdlength past the end of the message
    overlong.response(0, 1, 0, "x.t", 33);
    overlong.rr(33, 200);
    overlong.u16(1);
    CHECK(error_of(overlong.b).find("malformed") != std::string::npos);

    msg_builder bad_a;  // an A record of 3 bytes
    bad_a.response(0, 1, 0, "x.t", 1);
    bad_a.rr(1, 3);
    bad_a.u8(127);
    bad_a.u8(0);
    bad_a.u8(1);
    CHECK(error_of(bad_a.b).find("A record of 3 bytes") != std::string::npos);

    msg_builder too_many;  // ANCOUNT claims 2, one is there
    too_many.response(0, 2, 0, "x.t", 1);
    too_many.rr(1, 4);
    too_many.u32(0x7f000001);
    CHECK(error_of(too_many.b).find("malformed or truncated") != std::string::npos);

    msg_builder nx;
    nx.response(3, 0, 0, "x.t", 33);
    CHECK(error_of(nx.b).find("NXDOMAIN") != std::string::npos);

    msg_builder tc;
    tc.response(0, 0, 0, "x.t", 33, 0x0200);
    CHECK(error_of(tc.b).find("TC bit") != std::string::npos);

    msg_builder query;  // QR clear: a query, not an answer
    query.b = warp::test::dns_query("x.t", 33);
    CHECK(error_of(query.b).find("not a DNS response") != std::string::npos);

    msg_builder root;  // target "." = no service: parsed, skipped by resolution
    root.response(0, 1, 0, "x.t", 33);
    root.rr(33, 7);
    root.u16(0);
    root.u16(0);
    root.u16(0);
    root.u8(0);
    auto r = detail::parse_dns_answer(root.b.data(), root.b.size());
    REQUIRE(r);
    REQUIRE(r->srv.size() == 1);
    CHECK(r->srv[0].target.empty());
  }
}

TEST_CASE("dns discovery: SRV and A resolution against the test DNS server") {
  dns_server dns;
  dns.set_srv("_warp._tcp.warp.test", {{"n0.warp.test", 7001}, {"n1.warp.test", 7002}});
  dns.set_a("n0.warp.test", {"127.0.0.1"});
  dns.set_a("n1.warp.test", {"127.0.0.2"});
  dns.set_a("warp.test", {"127.0.0.1", "127.0.0.3"});
  auto srv = *detail::parse_discovery_spec("srv:_warp._tcp.warp.test");
  const std::vector<std::string> want{"127.0.0.1:7001", "127.0.0.2:7002"};

  SECTION("SRV with addresses in the additional section") {
    auto r = detail::resolve_peers(srv, dns.address(), 4700);
    INFO(joined(r.errors));
    CHECK(r.errors.empty());
    CHECK(r.peers == want);
    CHECK(dns.queries("n0.warp.test", dns_type::a) == 0);  // the glue was used
  }
  SECTION("SRV without glue: the targets are looked up") {
    dns.set_glue(false);
    auto r = detail::resolve_peers(srv, dns.address(), 4700);
    INFO(joined(r.errors));
    CHECK(r.errors.empty());
    CHECK(r.peers == want);
    CHECK(dns.queries("n0.warp.test", dns_type::a) >= 1);
    CHECK(dns.queries("n1.warp.test", dns_type::a) >= 1);
  }
  SECTION("a target without address: the others still count, the error names it") {
    dns.set_glue(false);
    dns.set_srv("_warp._tcp.warp.test", {{"n0.warp.test", 7001}, {"gone.warp.test", 7009}});
    auto r = detail::resolve_peers(srv, dns.address(), 4700);
    CHECK(r.peers == std::vector<std::string>{"127.0.0.1:7001"});
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("gone.warp.test") != std::string::npos);
    CHECK(r.errors[0].find("NXDOMAIN") != std::string::npos);
  }
  SECTION("A records at the listen port, or at the given one") {
    auto r = detail::resolve_peers(*detail::parse_discovery_spec("warp.test"), dns.address(), 4700);
    INFO(joined(r.errors));
    CHECK(r.peers == std::vector<std::string>{"127.0.0.1:4700", "127.0.0.3:4700"});
    r = detail::resolve_peers(*detail::parse_discovery_spec("warp.test:5000"), dns.address(), 4700);
    CHECK(r.peers == std::vector<std::string>{"127.0.0.1:5000", "127.0.0.3:5000"});
  }
  SECTION("NXDOMAIN, NODATA and a dead server are errors with no peers") {
    auto nx = detail::resolve_peers(*detail::parse_discovery_spec("srv:_nope._tcp.warp.test"),
                                    dns.address(), 4700);
    CHECK(nx.peers.empty());
    REQUIRE(nx.errors.size() == 1);
    CHECK(nx.errors[0].find("NXDOMAIN") != std::string::npos);
    auto nodata = detail::resolve_peers(*detail::parse_discovery_spec("srv:n0.warp.test"),
                                        dns.address(), 4700);
    CHECK(nodata.peers.empty());
    REQUIRE(nodata.errors.size() == 1);
    CHECK(nodata.errors[0].find("NODATA") != std::string::npos);
    // Nobody answers on this port (UDP): an error within the resolver's bounded retries.
    auto t0 = std::chrono::steady_clock::now();
    auto dead =
        detail::resolve_peers(srv, "127.0.0.1:" + std::to_string(warp::test::free_port()), 4700);
    CHECK(std::chrono::steady_clock::now() - t0 < 15s);
    CHECK(dead.peers.empty());
    CHECK(dead.errors.size() == 1);
    // discover_peers logs instead of failing, whatever it is given.
    CHECK(detail::discover_peers("srv:_nope._tcp.warp.test", dns.address(), 4700).empty());
    CHECK(detail::discover_peers("bad:spec:x", dns.address(), 4700).empty());
    CHECK(detail::discover_peers("srv:_warp._tcp.warp.test", "not-an-ip", 4700).empty());
    CHECK(detail::discover_peers("srv:_warp._tcp.warp.test", dns.address(), 4700) == want);
  }
}

TEST_CASE(
    "dns discovery: 3 warpd nodes converge through SRV records and a 4th joins on re-resolution") {
  dns_server dns;
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < 4; ++i) ports.push_back(warp::test::free_port());
  std::vector<dns_server::srv_target> targets;
  for (int i = 0; i < 3; ++i) {
    auto host = "n" + std::to_string(i) + ".warp.test";
    dns.set_a(host, {"127.0.0.1"});
    targets.push_back({host, ports[i]});
  }
  dns.set_srv("_warp._tcp.warp.test", targets);

  dns_cluster c;
  for (int i = 0; i < 3; ++i)
    c.start("127.0.0.1", ports[i], "srv:_warp._tcp.warp.test", dns.address());
  std::set<std::string> three{ep(ports[0]), ep(ports[1]), ep(ports[2])};
  bool converged = c.wait_view(three);
  INFO(c.report());
  REQUIRE(converged);
  CHECK(dns.queries("_warp._tcp.warp.test", dns_type::srv) >= 3);

  // The 4th node's own name does not exist (NXDOMAIN: logged, it keeps running); the others
  // find it only because they re-resolve their name, which now lists it too.
  dns.set_a("n3.warp.test", {"127.0.0.1"});
  targets.push_back({"n3.warp.test", ports[3]});
  dns.set_srv("_warp._tcp.warp.test", targets);
  auto before = dns.queries("_warp._tcp.warp.test", dns_type::srv);
  c.start("127.0.0.1", ports[3], "srv:_new._tcp.warp.test", dns.address());
  auto four = three;
  four.insert(ep(ports[3]));
  bool grew = c.wait_view(four);
  INFO(c.report());
  REQUIRE(grew);
  CHECK(dns.queries("_warp._tcp.warp.test", dns_type::srv) > before);
  CHECK(dns.queries("_new._tcp.warp.test", dns_type::srv) >= 1);
  for (int i = 0; i < 4; ++i) CHECK(c.proc(static_cast<std::size_t>(i)).running());
  CHECK(c.proc(3).log().find("NXDOMAIN") != std::string::npos);
}

TEST_CASE("dns discovery: warpd nodes converge through A records at the listen port") {
  // A records carry no port: every node listens on the same port, on 127.0.0.1/2/3.
  dns_server dns;
  auto port = warp::test::free_port();
  dns.set_a("warp.test", {"127.0.0.1", "127.0.0.2", "127.0.0.3"});
  dns_cluster c;
  std::set<std::string> want;
  for (auto host : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
    c.start(host, port, "warp.test", dns.address());
    want.insert(ep(port, host));
  }
  bool converged = c.wait_view(want);
  INFO(c.report());
  REQUIRE(converged);
  CHECK(dns.queries("warp.test", dns_type::a) >= 3);
}

TEST_CASE("dns discovery: warpd refuses malformed discovery flags with a usage error") {
  struct bad_case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (auto& c : std::vector<bad_case>{
           {{"--discovery-dns", "srv:_warp._tcp.example:4700"}, "discovery-dns: expected"},
           {{"--discovery-dns", "srv:"}, "discovery-dns: expected"},
           {{"--discovery-dns", "warp.example", "--discovery-dns-server", "dns.example"},
            "discovery-dns-server: HOST must be a numeric IPv4"},
           {{"--discovery-dns", "warp.example", "--discovery-dns-server", "127.0.0.1:x"},
            "discovery-dns-server: expected HOST"},
           {{"--discovery-dns-server", "127.0.0.1:53"}, "discovery-dns-server: only used with"}}) {
    std::vector<std::string> argv{warp::test::binary("apps/warpd/warpd"),
                                  "--storage",
                                  "memory",
                                  "--http",
                                  "",
                                  "--resp",
                                  "",
                                  "--listen",
                                  "127.0.0.1:0"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = warp::test::run(argv, 20s);
    INFO(joined(c.args) << " -> exit " << r.exit_code << ", stderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.needle) != std::string::npos);
  }
}
