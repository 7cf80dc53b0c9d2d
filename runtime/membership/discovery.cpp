#include "runtime/membership/discovery.hpp"

#include "runtime/core/log.hpp"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <memory>

#include <spdlog/spdlog.h>

namespace warp::detail {

namespace {

// Resolver timing: one second per try, two tries per server. A dead server costs the
// work-pool thread a few seconds per query, not the resolv.conf default of 5 s x 2.
constexpr int query_timeout_s = 1;
constexpr int query_tries = 2;

std::string normalize(std::string name) {
  while (!name.empty() && name.back() == '.') name.pop_back();
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::uint16_t get16(const unsigned char* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || port == 0 ||
      port > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

std::string endpoint(const std::string& address, std::uint16_t port) {
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

void add_unique(std::vector<std::string>& out, std::string s) {
  if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
}

const char* type_name(int type) {
  switch (type) {
    case ns_t_srv:
      return "SRV";
    case ns_t_a:
      return "A";
    case ns_t_aaaa:
      return "AAAA";
  }
  return "?";
}

/// One libresolv resolver state: the system's, or one aimed at a given server.
class resolver {
 public:
  explicit resolver(const std::optional<dns_server_address>& server) {
    if (res_ninit(&st_) != 0) {
      init_error_ = "res_ninit failed (cannot read the resolver configuration)";
      return;
    }
    ready_ = true;
    st_.retrans = query_timeout_s;
    st_.retry = query_tries;
    if (server) {
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_port = htons(server->port);
      inet_pton(AF_INET, server->host.c_str(), &sin.sin_addr);  // validated by the parser
      st_.nsaddr_list[0] = sin;
      st_.nscount = 1;
    }
  }
  ~resolver() {
    if (ready_) res_nclose(&st_);
  }
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  /// Queries `name` for `type` (class IN) and parses the answer.
  result<dns_answer> query(const std::string& name, int type) {
    if (!ready_) return error{errc::unreachable, init_error_};
    std::vector<unsigned char> buf(65536);
    int n = res_nquery(&st_, name.c_str(), ns_c_in, type, buf.data(), static_cast<int>(buf.size()));
    std::string what = std::string{type_name(type)} + " " + name;
    if (n < 0) {
      switch (st_.res_h_errno) {
        case HOST_NOT_FOUND:
          return error{errc::not_found, what + ": NXDOMAIN (no such name)"};
        case NO_DATA:
          return error{errc::not_found, what + ": no records of that type (NODATA)"};
        case TRY_AGAIN:
          return error{errc::timeout, what + ": no answer (timeout or SERVFAIL)"};
        case NO_RECOVERY:
          return error{errc::unreachable,
                       what + ": unrecoverable server error (FORMERR, REFUSED or NOTIMP)"};
        default:
          return error{errc::unreachable,
                       what + ": lookup failed (h_errno " + std::to_string(st_.res_h_errno) + ")"};
      }
    }
    // res_nquery returns the full length even when it did not fit the buffer.
    auto len = std::min(static_cast<std::size_t>(n), buf.size());
    auto parsed = parse_dns_answer(buf.data(), len);
    if (!parsed) return error{parsed.code(), what + ": " + parsed.err().message()};
    return parsed;
  }

 private:
  struct __res_state st_ {};
  bool ready_ = false;
  std::string init_error_;
};

/// A/AAAA addresses of `host`, through `r` (a given server) or getaddrinfo (system).
result<std::vector<std::string>> addresses_of(const std::string& host, resolver* r) {
  std::vector<std::string> out;
  if (r) {
    auto a = r->query(host, ns_t_a);
    if (!a && a.err().message().find("NXDOMAIN") != std::string::npos) return a.err();
    auto aaaa = r->query(host, ns_t_aaaa);
    for (auto* ans : {&a, &aaaa})
      if (*ans)
        for (auto& rec : (*ans)->addresses)
          if (!rec.additional) add_unique(out, rec.address);
    if (out.empty()) {
      if (!a && !aaaa && a.code() != errc::not_found) return a.err();
      if (!a && !aaaa && aaaa.code() != errc::not_found) return aaaa.err();
      return error{errc::not_found, "A/AAAA " + host + ": no address records"};
    }
    return out;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0)
    return error{rc == EAI_NONAME ? errc::not_found : errc::unreachable,
                 "A/AAAA " + host + ": " + gai_strerror(rc)};
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard{res, &freeaddrinfo};
  for (auto* ai = res; ai; ai = ai->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) ==
        0)
      add_unique(out, text);
  }
  if (out.empty()) return error{errc::not_found, "A/AAAA " + host + ": no address records"};
  return out;
}

}  // namespace

result<discovery_spec> parse_discovery_spec(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return error{errc::invalid_argument,
                 "expected NAME, NAME:PORT or srv:NAME, got '" + text + "' (" + why + ")"};
  };
  discovery_spec spec;
  std::string_view rest = text;
  if (rest.size() >= 4 && (rest.substr(0, 4) == "srv:" || rest.substr(0, 4) == "SRV:")) {
    spec.srv = true;
    rest.remove_prefix(4);
    if (rest.find(':') != std::string_view::npos)
      return bad("an SRV record carries its own port: no :PORT after srv:NAME");
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    auto port = parse_port(rest.substr(colon + 1));
    if (!port) return bad("PORT must be a number 1-65535");
    spec.port = *port;
    rest = rest.substr(0, colon);
    if (rest.find(':') != std::string_view::npos) return bad("NAME is a DNS name, not an address");
  }
  spec.name = normalize(std::string{rest});
  if (spec.name.empty()) return bad("empty name");
  if (spec.name.size() > 253) return bad("name longer than 253 characters");
  return spec;
}

result<dns_server_address> parse_dns_server(const std::string& text) {
  dns_server_address out;
  std::string_view host = text;
  if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    auto port = parse_port(host.substr(colon + 1));
    if (!port)
      return error{errc::invalid_argument,
                   "expected HOST or HOST:PORT (PORT 1-65535), got '" + text + "'"};
    out.port = *port;
    host = host.substr(0, colon);
  }
  out.host = std::string{host};
  in_addr addr{};
  if (inet_pton(AF_INET, out.host.c_str(), &addr) != 1)
    return error{errc::invalid_argument,
                 "HOST must be a numeric IPv4 address (e.g. 10.0.0.2:53), got '" + text + "'"};
  return out;
}

result<dns_answer> parse_dns_answer(const unsigned char* msg, std::size_t len) {
  if (!msg || len > static_cast<std::size_t>(INT_MAX))
    return error{errc::codec_error, "malformed DNS message (no data or oversized)"};
  ns_msg h;
  if (ns_initparse(msg, static_cast<int>(len), &h) < 0)
    return error{errc::codec_error, "malformed or truncated DNS message (" + std::to_string(len) +
                                        " bytes: header or record bounds)"};
  if (!ns_msg_getflag(h, ns_f_qr)) return error{errc::codec_error, "not a DNS response"};
  if (ns_msg_getflag(h, ns_f_tc))
    return error{errc::codec_error, "truncated DNS response (TC bit set)"};
  switch (int rcode = ns_msg_getflag(h, ns_f_rcode)) {
    case ns_r_noerror:
      break;
    case ns_r_nxdomain:
      return error{errc::not_found, "NXDOMAIN (no such name)"};
    case ns_r_servfail:
      return error{errc::timeout, "SERVFAIL"};
    default:
      return error{errc::unreachable, "server answered RCODE " + std::to_string(rcode)};
  }
  dns_answer out;
  for (auto sect : {ns_s_an, ns_s_ar}) {
    for (int i = 0; i < ns_msg_count(h, sect); ++i) {
      ns_rr rr;
      if (ns_parserr(&h, sect, i, &rr) < 0)
        return error{errc::codec_error, "malformed record " + std::to_string(i) + " in the " +
                                            (sect == ns_s_an ? "answer" : "additional") +
                                            " section"};
      if (ns_rr_class(rr) != ns_c_in) continue;
      auto type = ns_rr_type(rr);
      const unsigned char* rd = ns_rr_rdata(rr);
      auto rdlen = static_cast<std::size_t>(ns_rr_rdlen(rr));
      if (type == ns_t_a || type == ns_t_aaaa) {
        bool v4 = type == ns_t_a;
        if (rdlen != (v4 ? 4u : 16u))
          return error{errc::codec_error, std::string{v4 ? "A" : "AAAA"} + " record of " +
                                              std::to_string(rdlen) + " bytes"};
        char text[INET6_ADDRSTRLEN];
        if (!inet_ntop(v4 ? AF_INET : AF_INET6, rd, text, sizeof text))
          return error{errc::codec_error, "unprintable address record"};
        out.addresses.push_back({normalize(ns_rr_name(rr)), text, sect == ns_s_ar});
      } else if (type == ns_t_srv && sect == ns_s_an) {
        // RFC 2782: priority, weight, port (16 bits each), then the target's name.
        if (rdlen < 7)
          return error{errc::codec_error,
                       "SRV record of " + std::to_string(rdlen) + " bytes (at least 7)"};
        char target[NS_MAXDNAME];
        int used = ns_name_uncompress(ns_msg_base(h), ns_msg_end(h), rd + 6, target, sizeof target);
        if (used < 0 || static_cast<std::size_t>(used) + 6 != rdlen)
          return error{errc::codec_error, "SRV record with a malformed target name"};
        out.srv.push_back({get16(rd), get16(rd + 2), get16(rd + 4), normalize(target)});
      }
    }
  }
  return out;
}

discovery_result resolve_peers(const discovery_spec& spec, const std::string& server,
                               std::uint16_t listen_port) {
  discovery_result out;
  try {
    std::optional<dns_server_address> srv_addr;
    if (!server.empty()) {
      auto s = parse_dns_server(server);
      if (!s) {
        out.errors.push_back("discovery-dns-server: " + s.err().message());
        return out;
      }
      srv_addr = *s;
    }
    resolver r{srv_addr};
    resolver* via = srv_addr ? &r : nullptr;
    if (!spec.srv) {
      auto port = spec.port ? spec.port : listen_port;
      if (port == 0) {
        out.errors.push_back(spec.name + ": no port (give NAME:PORT or a listen port)");
        return out;
      }
      auto addrs = addresses_of(spec.name, via);
      if (!addrs) {
        out.errors.push_back(addrs.err().message());
        return out;
      }
      for (auto& a : *addrs) add_unique(out.peers, endpoint(a, port));
      return out;
    }
    auto ans = r.query(spec.name, ns_t_srv);
    if (!ans) {
      out.errors.push_back(ans.err().message());
      return out;
    }
    if (ans->srv.empty()) {
      out.errors.push_back("SRV " + spec.name + ": the answer holds no SRV records");
      return out;
    }
    for (auto& rec : ans->srv) {
      if (rec.target.empty()) continue;  // "." : the service is decidedly not available
      std::vector<std::string> addrs;
      for (auto& a : ans->addresses)
        if (a.owner == rec.target) add_unique(addrs, a.address);
      if (addrs.empty()) {
        auto looked_up = addresses_of(rec.target, via);
        if (!looked_up) {
          out.errors.push_back("SRV " + spec.name + " target " + rec.target + ": " +
                               looked_up.err().message());
          continue;
        }
        addrs = std::move(*looked_up);
      }
      for (auto& a : addrs) add_unique(out.peers, endpoint(a, rec.port));
    }
  } catch (const std::exception& e) {
    out.errors.push_back(std::string{"unexpected failure: "} + e.what());
  }
  return out;
}

std::vector<std::string> discover_peers(const std::string& spec_text, const std::string& server,
                                        std::uint16_t listen_port) {
  auto log = detail::log();
  auto spec = parse_discovery_spec(spec_text);
  if (!spec) {
    log->warn("discovery-dns: {}", spec.err().message());
    return {};
  }
  auto res = resolve_peers(*spec, server, listen_port);
  auto where = server.empty() ? std::string{} : " (server " + server + ")";
  for (auto& e : res.errors)
    log->warn("discovery-dns '{}'{}: {}{}", spec_text, where, e,
              res.peers.empty() ? "; keeping the current view" : "");
  log->debug("discovery-dns '{}': {} peer(s)", spec_text, res.peers.size());
  return std::move(res.peers);
}

}  // namespace warp::detail
