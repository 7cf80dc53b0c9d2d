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
#include <map>
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
    compact();
    try {
      return parse();
    } catch (const eof&) {
      return "<closed>";
    } catch (const timed_out&) {
      return "<timeout>";
    }
  }

  /// Reads one reply and returns its bytes exactly as sent (for byte-for-byte comparisons);
  /// `<closed>` / `<timeout>` as read() does.
  std::string read_raw(std::chrono::milliseconds timeout = std::chrono::milliseconds{5000}) {
    timeout_ = timeout;
    compact();
    const std::size_t start = pos_;
    try {
      parse();
    } catch (const eof&) {
      return "<closed>";
    } catch (const timed_out&) {
      return "<timeout>";
    }
    return buf_.substr(start, pos_ - start);
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
  // Between replies only: read_raw() needs the offsets of one reply to stay put.
  void compact() {
    if (pos_ > 1 << 20) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
  }
  std::string parse() {
    std::string l = line();
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

/// The elements of a raw RESP2 array of bulk strings (`*N` then `$L` items), as KEYS and
/// MGET send them; nullopt for any other shape.
inline std::optional<std::vector<std::string>> decode_bulk_array(std::string_view raw) {
  auto number = [&](char type, long long& out) {
    if (raw.empty() || raw[0] != type) return false;
    auto end = raw.find("\r\n");
    if (end == std::string_view::npos) return false;
    try {
      out = std::stoll(std::string(raw.substr(1, end - 1)));
    } catch (...) {
      return false;
    }
    raw.remove_prefix(end + 2);
    return true;
  };
  long long n = 0;
  if (!number('*', n) || n < 0) return std::nullopt;
  std::vector<std::string> out;
  for (long long i = 0; i < n; ++i) {
    long long len = 0;
    if (!number('$', len) || len < 0 || raw.size() < static_cast<std::size_t>(len) + 2)
      return std::nullopt;
    out.emplace_back(raw.substr(0, static_cast<std::size_t>(len)));
    raw.remove_prefix(static_cast<std::size_t>(len) + 2);
  }
  if (!raw.empty()) return std::nullopt;
  return out;
}

/// Every key and its value (KEYS * then one pipelined GET per key), binary safe. A key that
/// vanished between the two reads maps to nullopt.
inline std::map<std::string, std::optional<std::string>> dump_keyspace(resp_conn& c) {
  std::map<std::string, std::optional<std::string>> out;
  c.send({"KEYS", "*"});
  auto keys = decode_bulk_array(c.read_raw());
  if (!keys) throw std::runtime_error("KEYS * did not answer an array of bulk strings");
  std::string batch;
  for (const auto& k : *keys) batch += resp_conn::encode({"GET", k});
  c.send_raw(batch);
  for (const auto& k : *keys) {
    auto one = decode_bulk_array("*1\r\n" + c.read_raw());
    out[k] = one ? std::optional<std::string>((*one)[0]) : std::nullopt;
  }
  return out;
}

}  // namespace warp::test
