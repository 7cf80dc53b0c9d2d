#include "test/support/dns_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace warp::test {

namespace {

constexpr std::size_t header_size = 12;
constexpr std::size_t max_udp_payload = 512;  // RFC 1035 4.2.1, no EDNS here
constexpr std::uint16_t class_in = 1;
constexpr int rcode_formerr = 1, rcode_nxdomain = 3, rcode_notimp = 4, rcode_refused = 5;

std::string normalize(std::string name) {
  while (!name.empty() && name.back() == '.') name.pop_back();
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

void put16(std::vector<unsigned char>& out, std::uint16_t v) {
  out.push_back(static_cast<unsigned char>(v >> 8));
  out.push_back(static_cast<unsigned char>(v & 0xff));
}

void put32(std::vector<unsigned char>& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v >> 16));
  put16(out, static_cast<std::uint16_t>(v & 0xffff));
}

std::uint16_t get16(const unsigned char* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

/// A name as uncompressed labels ending in the root label.
void put_name(std::vector<unsigned char>& out, const std::string& name) {
  std::size_t start = 0;
  auto n = normalize(name);
  while (start < n.size()) {
    auto dot = n.find('.', start);
    if (dot == std::string::npos) dot = n.size();
    auto len = dot - start;
    if (len == 0 || len > 63) throw std::invalid_argument("bad DNS label in '" + name + "'");
    out.push_back(static_cast<unsigned char>(len));
    out.insert(out.end(), n.begin() + static_cast<std::ptrdiff_t>(start),
               n.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  out.push_back(0);
}

/// Header of a response to `id`/`flags` (QR, AA, the query's opcode and RD; RA off).
void put_header(std::vector<unsigned char>& out, std::uint16_t id, std::uint16_t query_flags,
                int rcode, std::uint16_t qd, std::uint16_t an, std::uint16_t ar) {
  std::uint16_t flags = 0x8000 | 0x0400 | (query_flags & 0x7800) | (query_flags & 0x0100) |
                        static_cast<std::uint16_t>(rcode & 0xf);
  put16(out, id);
  put16(out, flags);
  put16(out, qd);
  put16(out, an);
  put16(out, 0);  // NSCOUNT
  put16(out, ar);
}

/// RR header with the owner given as a pointer to offset 12 (the question's name).
void put_rr_to_question(std::vector<unsigned char>& out, std::uint16_t type) {
  put16(out, 0xc000 | header_size);
  put16(out, type);
  put16(out, class_in);
  put32(out, 0);  // TTL 0: discovery re-resolves, nothing may be cached
}

}  // namespace

dns_server::dns_server() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string{"dns_server: socket: "} + strerror(errno));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;  // the kernel picks a free port
  socklen_t sl = sizeof sin;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &sl) != 0) {
    std::string err = strerror(errno);
    ::close(fd_);
    throw std::runtime_error("dns_server: bind: " + err);
  }
  port_ = ntohs(sin.sin_port);
  thread_ = std::thread([this] { serve(); });
}

dns_server::~dns_server() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

std::string dns_server::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

void dns_server::set_srv(const std::string& name, std::vector<srv_target> targets) {
  std::lock_guard<std::mutex> lk{mtx_};
  table_[normalize(name)].srv = std::move(targets);
}

void dns_server::set_a(const std::string& name, std::vector<std::string> ipv4) {
  std::lock_guard<std::mutex> lk{mtx_};
  table_[normalize(name)].a = std::move(ipv4);
}

void dns_server::remove(const std::string& name) {
  std::lock_guard<std::mutex> lk{mtx_};
  table_.erase(normalize(name));
}

void dns_server::set_glue(bool on) {
  std::lock_guard<std::mutex> lk{mtx_};
  glue_ = on;
}

std::size_t dns_server::queries(const std::string& name, std::uint16_t type) const {
  std::lock_guard<std::mutex> lk{mtx_};
  auto n = normalize(name);
  return static_cast<std::size_t>(std::count_if(log_.begin(), log_.end(), [&](auto& e) {
    return (n.empty() || e.first == n) && (type == 0 || e.second == type);
  }));
}

std::vector<unsigned char> dns_server::answer(const unsigned char* q, std::size_t len) {
  std::vector<unsigned char> out;
  if (len < header_size) return out;  // not even a header: no answer
  auto id = get16(q);
  auto flags = get16(q + 2);
  if (flags & 0x8000) return out;  // a response, not a query
  auto fail = [&](int rcode) {
    out.clear();
    put_header(out, id, flags, rcode, 0, 0, 0);
    return out;
  };
  if (((flags >> 11) & 0xf) != 0) return fail(rcode_notimp);  // only QUERY
  if (get16(q + 4) != 1) return fail(rcode_formerr);          // exactly one question
  // QNAME: uncompressed labels (a query has nothing to point back to), then QTYPE, QCLASS.
  std::string name;
  std::size_t pos = header_size;
  for (;;) {
    if (pos >= len) return fail(rcode_formerr);
    unsigned l = q[pos++];
    if (l == 0) break;
    if ((l & 0xc0) != 0 || pos + l > len || name.size() + l + 1 > 255) return fail(rcode_formerr);
    if (!name.empty()) name += '.';
    name.append(reinterpret_cast<const char*>(q + pos), l);
    pos += l;
  }
  if (pos + 4 > len) return fail(rcode_formerr);
  auto qtype = get16(q + pos);
  auto qclass = get16(q + pos + 2);
  pos += 4;
  name = normalize(name);
  std::vector<unsigned char> question(q + header_size, q + pos);  // echoed verbatim

  std::lock_guard<std::mutex> lk{mtx_};
  log_.emplace_back(name, qtype);
  auto respond = [&](int rcode, std::uint16_t an, std::uint16_t ar,
                     const std::vector<unsigned char>& body) {
    out.clear();
    put_header(out, id, flags, rcode, 1, an, ar);
    out.insert(out.end(), question.begin(), question.end());
    out.insert(out.end(), body.begin(), body.end());
    if (out.size() > max_udp_payload) {  // does not fit: TC, the client retries over TCP
      out.clear();
      put_header(out, id, flags, rcode, 1, 0, 0);
      out[2] |= 0x02;  // TC
      out.insert(out.end(), question.begin(), question.end());
    }
    return out;
  };
  if (qclass != class_in) return respond(rcode_refused, 0, 0, {});
  auto it = table_.find(name);
  if (it == table_.end()) return respond(rcode_nxdomain, 0, 0, {});
  std::vector<unsigned char> body;
  std::uint16_t an = 0, ar = 0;
  auto put_a = [&](const std::string& ip) {
    in_addr addr{};
    if (inet_pton(AF_INET, ip.c_str(), &addr) != 1)
      throw std::invalid_argument("dns_server: not an IPv4 address: " + ip);
    put16(body, 4);
    auto* b = reinterpret_cast<const unsigned char*>(&addr.s_addr);  // network order
    body.insert(body.end(), b, b + 4);
  };
  if (qtype == dns_type::a) {
    for (auto& ip : it->second.a) {
      put_rr_to_question(body, dns_type::a);
      put_a(ip);
      ++an;
    }
  } else if (qtype == dns_type::srv) {
    for (auto& t : it->second.srv) {
      put_rr_to_question(body, dns_type::srv);
      std::vector<unsigned char> rdata;
      put16(rdata, t.priority);
      put16(rdata, t.weight);
      put16(rdata, t.port);
      put_name(rdata, t.target);  // RFC 2782: the target is not compressed
      put16(body, static_cast<std::uint16_t>(rdata.size()));
      body.insert(body.end(), rdata.begin(), rdata.end());
      ++an;
    }
    if (glue_) {
      for (auto& t : it->second.srv) {
        auto g = table_.find(normalize(t.target));
        if (g == table_.end()) continue;
        for (auto& ip : g->second.a) {
          put_name(body, t.target);
          put16(body, dns_type::a);
          put16(body, class_in);
          put32(body, 0);
          put_a(ip);
          ++ar;
        }
      }
    }
  }
  // A known name without records of the type asked for: NOERROR, no answers (NODATA).
  return respond(0, an, ar, body);
}

void dns_server::serve() {
  std::vector<unsigned char> buf(65536);
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    auto n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n <= 0) continue;
    std::vector<unsigned char> reply;
    try {
      reply = answer(buf.data(), static_cast<std::size_t>(n));
    } catch (const std::exception&) {
      reply.clear();  // a bad table entry: no answer (the client times out)
    }
    if (!reply.empty())
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
  }
}

std::vector<unsigned char> dns_query(const std::string& name, std::uint16_t type,
                                     std::uint16_t id) {
  std::vector<unsigned char> out;
  put16(out, id);
  put16(out, 0x0100);  // standard query, RD
  put16(out, 1);
  put16(out, 0);
  put16(out, 0);
  put16(out, 0);
  put_name(out, name);
  put16(out, type);
  put16(out, class_in);
  return out;
}

}  // namespace warp::test
