#include "apps/warpctl/watch_client.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <iostream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "warp/endpoint.hpp"

namespace warpctl {

namespace {

// A line of the stream is bounded: a value (1 MiB by default) escaped as JSON fits.
constexpr std::size_t max_line = 16u << 20;

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '*') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

int connect_to(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (auto* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

struct reader {
  int fd;
  std::string buf;
  bool eof = false;
  // One line without its CR/LF; false at the end of the stream or beyond max_line.
  bool line(std::string& out) {
    for (;;) {
      auto nl = buf.find('\n');
      if (nl != std::string::npos) {
        out.assign(buf, 0, nl);
        if (!out.empty() && out.back() == '\r') out.pop_back();
        buf.erase(0, nl + 1);
        return true;
      }
      if (eof || buf.size() > max_line) return false;
      char tmp[64 * 1024];
      auto n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) {
        eof = true;
        continue;
      }
      buf.append(tmp, static_cast<std::size_t>(n));
    }
  }
};

}  // namespace

int run_watch(const watch_options& o) {
  auto ep = warp::parse_endpoint(o.admin);
  if (!ep || ep->second == 0) {
    std::cerr << "warpctl: --admin: '" << o.admin << "' is not HOST:PORT" << std::endl;
    return 2;
  }
  int fd = connect_to(ep->first, ep->second);
  if (fd < 0) {
    std::cerr << "warpctl: watch: cannot connect to " << o.admin << std::endl;
    return 3;
  }
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_fd{fd};
  std::string req = "GET /v1/watch?prefix=" + url_encode(o.prefix);
  if (!o.from.empty()) req += "&from=" + url_encode(o.from);
  if (o.prev) req += "&prev=1";
  req += " HTTP/1.1\r\nHost: " + o.admin + "\r\nAccept: text/event-stream\r\n";
  if (!o.token.empty()) req += "Authorization: Bearer " + o.token + "\r\n";
  req += "Connection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<long>(req.size())) {
    std::cerr << "warpctl: watch: cannot send to " << o.admin << std::endl;
    return 3;
  }
  reader rd{fd, {}};
  std::string line;
  if (!rd.line(line)) {
    std::cerr << "warpctl: watch: no answer from " << o.admin << std::endl;
    return 3;
  }
  int status = 0;
  if (line.size() > 12) status = std::atoi(line.c_str() + 9);
  while (rd.line(line) && !line.empty()) {
  }
  if (status != 200) {
    std::string body;
    while (rd.line(line)) body += line + "\n";
    std::cerr << "warpctl: watch: HTTP " << status << ": " << body;
    return status == 503 || status == 501 ? 3 : 4;
  }
  std::string cursor = o.from, data;
  std::size_t seen = 0;
  while (rd.line(line)) {
    if (line.rfind("data:", 0) == 0) {
      data += std::string_view{line}.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
      continue;
    }
    if (!line.empty() || data.empty()) continue;
    auto e = nlohmann::json::parse(data, nullptr, false);
    data.clear();
    if (!e.is_object()) continue;
    auto type = e.value("type", "");
    if (auto c = e.value("cursor", ""); !c.empty()) cursor = c;
    bool change = type == "put" || type == "delete";
    if (o.json) {
      if (type != "progress" || o.progress) std::cout << e.dump() << '\n';
    } else if (change) {
      std::cout << type << ' ' << e.value("key", "");
      if (type == "put") std::cout << ' ' << e.value("value", "");
      std::cout << " rev=" << e.value("group", 0u) << ':' << e.value("revision", 0ull);
      if (e.contains("prev_value")) std::cout << " prev=" << e.value("prev_value", "");
      std::cout << '\n';
    } else if (type == "progress" && o.progress) {
      std::cout << "progress " << cursor << '\n';
    }
    std::cout.flush();
    if (change && o.count && ++seen >= o.count) return 0;
    if (type == "compacted") {
      std::cerr << "warpctl: watch: " << e.value("reason", "compacted") << std::endl;
      return 1;
    }
    if (type == "slow" || type == "canceled" || type == "resync") {
      std::cerr << "warpctl: watch ended: " << e.value("reason", type) << "; resume with --rev '"
                << cursor << "'" << std::endl;
      return 4;
    }
  }
  std::cerr << "warpctl: watch: the connection to " << o.admin << " ended; resume with --rev '"
            << cursor << "'" << std::endl;
  return 3;
}

}  // namespace warpctl
