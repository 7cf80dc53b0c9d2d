// A minimal blocking RESP client for the sidecar tests: raw bytes in, parsed replies out,
// rendered as compact text so expectations read like redis-cli output.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace warp::test {

/// A reply rendered as text: +OK -> `OK`, -ERR x -> `!ERR x`, :5 -> `:5`, $3 bar -> `bar`,
/// nulls -> `nil`, arrays -> `[a,b]`, sets -> `~[a]`, push -> `>[a,b]`, maps -> `{k:v,k:v}`,
/// booleans -> `#t`, doubles -> `,1.5`. EOF -> `<closed>`, timeout -> `<timeout>`.
class resp_conn {
 public:
  explicit resp_conn(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("cannot connect to port " + std::to_string(port));
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~resp_conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  resp_conn(const resp_conn&) = delete;
  resp_conn& operator=(const resp_conn&) = delete;

  void send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may have closed us: the next read says so
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  static std::string encode(const std::vector<std::string>& args) {
    std::string s = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return s;
  }

  void send(const std::vector<std::string>& args) { send_raw(encode(args)); }

  /// Sends a command and reads one reply.
  std::string cmd(const std::vector<std::string>& args) {
    send(args);
    return read();
  }

  /// Reads one reply (waits up to `timeout`).
  std::string read(std::chrono::milliseconds timeout = std::chrono::milliseconds{5000}) {
    timeout_ = timeout;
    try {
      return parse();
    } catch (const eof&) {
      return "<closed>";
    } catch (const timed_out&) {
      return "<timeout>";
    }
  }

  /// True if the server closed the connection (EOF within `timeout`).
  bool closed(std::chrono::milliseconds timeout = std::chrono::milliseconds{3000}) {
    timeout_ = timeout;
    try {
      for (;;) {
        fill();
        buf_.clear();
        pos_ = 0;
      }
    } catch (const eof&) {
      return true;
    } catch (const timed_out&) {
      return false;
    }
  }

  int fd() const { return fd_; }

 private:
  struct eof {};
  struct timed_out {};

  void fill() {
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    if (rc <= 0) throw timed_out{};
    char tmp[65536];
    auto n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) throw eof{};
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
  std::string line() {
    for (;;) {
      auto nl = buf_.find("\r\n", pos_);
      if (nl != std::string::npos) {
        std::string l = buf_.substr(pos_, nl - pos_);
        pos_ = nl + 2;
        return l;
      }
      fill();
    }
  }
  std::string bytes(std::size_t n) {
    while (buf_.size() - pos_ < n + 2) fill();
    std::string s = buf_.substr(pos_, n);
    pos_ += n + 2;
    return s;
  }
  std::string parse() {
    std::string l = line();
    if (pos_ > 1 << 20) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char t = l.empty() ? '?' : l[0];
    std::string rest = l.substr(1);
    switch (t) {
      case '+':
        return rest;
      case '-':
        return "!" + rest;
      case ':':
        return ":" + rest;
      case '#':
        return "#" + rest;
      case ',':
        return "," + rest;
      case '_':
        return "nil";
      case '$':
      case '=': {
        long long n = std::stoll(rest);
        if (n < 0) return "nil";
        std::string s = bytes(static_cast<std::size_t>(n));
        return t == '=' ? s.substr(4) : s;
      }
      case '*':
      case '~':
      case '>':
      case '%': {
        long long n = std::stoll(rest);
        if (n < 0) return "nil";
        std::string out = t == '~' ? "~[" : t == '>' ? ">[" : t == '%' ? "{" : "[";
        long long items = t == '%' ? n * 2 : n;
        for (long long i = 0; i < items; ++i) {
          if (i) out += (t == '%' && i % 2 == 1) ? ":" : ",";
          out += parse();
        }
        out += t == '%' ? "}" : "]";
        return out;
      }
      default:
        return "<bad reply: " + l + ">";
    }
  }

  int fd_ = -1;
  std::string buf_;
  std::size_t pos_ = 0;
  std::chrono::milliseconds timeout_{5000};
};

}  // namespace warp::test
