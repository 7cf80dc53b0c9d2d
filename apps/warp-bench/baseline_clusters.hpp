// The servers and clients of warp-bench's comparisons against etcd (`strong`, `coord`): 3
// warpd processes and a 3-member etcd cluster started in the same run with their data dirs
// under one directory (the same medium), a blocking RESP2 client, a client of etcd's v3 JSON
// gateway, and the cell runner (an operation at N client threads for a while, with p50/p99).
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

namespace warp_bench {

// -- a minimal blocking RESP2 client: one connection, one command at a time ------------------

struct resp_reply {
  bool ok = false;   ///< a reply arrived and it is not an error
  std::string text;  ///< the error text, or a simple/bulk string, or the integer
};

class resp_client {
 public:
  static constexpr long max_bulk = 16 << 20;

  explicit resp_client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A server that stops answering ends the call instead of hanging the bench.
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~resp_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  resp_client(const resp_client&) = delete;
  resp_client& operator=(const resp_client&) = delete;

  bool connected() const { return fd_ >= 0; }

  resp_reply call(std::initializer_list<std::string_view> args) {
    out_.clear();
    encode(out_, args);
    if (!send(out_)) return {};
    return read_reply();
  }

  /// Appends one command's RESP2 encoding to `out`, for a pipeline sent with send().
  static void encode(std::string& out, std::initializer_list<std::string_view> args) {
    out += '*' + std::to_string(args.size()) + "\r\n";
    for (auto a : args) {
      out += '$' + std::to_string(a.size()) + "\r\n";
      out.append(a);
      out += "\r\n";
    }
  }

  /// Writes `bytes` whole (a pipeline of commands); false when the connection failed.
  bool send(std::string_view bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// The next reply of a pipeline sent with send().
  resp_reply read() { return read_reply(); }

  /// The next array of bulk strings (a Pub/Sub message: kind, channel, payload); nullopt
  /// when the connection failed or something else arrived.
  std::optional<std::vector<std::string>> read_array() {
    auto l = line();
    if (!l || l->size() < 2 || (*l)[0] != '*') return std::nullopt;
    long n = std::strtol(l->c_str() + 1, nullptr, 10);
    if (n < 0 || n > 16) return std::nullopt;  // a Pub/Sub message has 3 or 4 parts
    std::vector<std::string> parts;
    for (long i = 0; i < n; ++i) {
      auto r = read_reply();
      if (!r.ok) return std::nullopt;
      parts.push_back(std::move(r.text));
    }
    return parts;
  }

  /// Receive timeout of later reads (a subscriber waits longer than a caller).
  void set_timeout(std::chrono::seconds s) {
    timeval tv{static_cast<time_t>(s.count()), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

 private:
  bool fill() {
    if (pos_ > 0) {
      in_.erase(0, pos_);
      pos_ = 0;
    }
    char buf[16384];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    // A status line with no end is as bad as an oversized bulk string.
    if (in_.size() > static_cast<std::size_t>(max_bulk) + 64) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  std::optional<std::string> line() {
    for (;;) {
      auto end = in_.find("\r\n", pos_);
      if (end != std::string::npos) {
        std::string l = in_.substr(pos_, end - pos_);
        pos_ = end + 2;
        return l;
      }
      if (!fill()) return std::nullopt;
    }
  }
  resp_reply read_reply() {
    auto l = line();
    if (!l || l->empty()) return {};
    char kind = (*l)[0];
    std::string rest = l->substr(1);
    switch (kind) {
      case '+':
      case ':':
        return {true, rest};
      case '-':
        return {false, rest};
      case '$': {
        long len = std::strtol(rest.c_str(), nullptr, 10);
        if (len < 0) return {true, {}};  // nil
        // Bounded before anything is buffered for it: the bench's values are small.
        if (len > max_bulk) return {};
        while (in_.size() - pos_ < static_cast<std::size_t>(len) + 2)
          if (!fill()) return {};
        std::string v = in_.substr(pos_, static_cast<std::size_t>(len));
        pos_ += static_cast<std::size_t>(len) + 2;
        return {true, std::move(v)};
      }
      default:
        return {};  // nothing the bench sends answers with anything else
    }
  }

  int fd_ = -1;
  std::string out_, in_;
  std::size_t pos_ = 0;
};

// -- etcd's v3 JSON gateway ---------------------------------------------------------------------

/// The gateway's bytes fields are base64.
std::string b64(std::string_view in);
std::string unb64(std::string_view in);

class etcd_client {
 public:
  static constexpr std::size_t max_body = 1 << 20;

  explicit etcd_client(std::uint16_t port) : cli_("127.0.0.1", port) {
    cli_.set_keep_alive(true);  // one connection per client thread, reused
    // Headers and body leave in separate writes: without this, Nagle + delayed ACK add
    // ~40 ms to every call.
    cli_.set_tcp_nodelay(true);
    cli_.set_connection_timeout(5, 0);
    cli_.set_read_timeout(5, 0);
    cli_.set_write_timeout(5, 0);
  }

  std::optional<nlohmann::json> post(const char* path, const nlohmann::json& body) {
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    // The answer is bounded while it arrives: a key range of the bench's own small values.
    std::string in;
    bool too_big = false;
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (in.size() + n > max_body) {
        too_big = true;
        return false;
      }
      in.append(data, n);
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    if (!cli_.send(req, res, err) || too_big || res.status != 200) return std::nullopt;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  bool put(const std::string& key, const std::string& value) {
    return post("/v3/kv/put", {{"key", b64(key)}, {"value", b64(value)}}).has_value();
  }

  /// Linearizable (the gateway's default: serializable=false).
  bool get(const std::string& key) { return post("/v3/kv/range", {{"key", b64(key)}}).has_value(); }

  /// What a counter costs on etcd: read value and mod_revision, write value + 1 if the
  /// key's mod_revision is still the one read, else again. `conflicts` counts the retries.
  bool incr(const std::string& key, std::uint64_t& conflicts) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      auto r = post("/v3/kv/range", {{"key", b64(key)}});
      if (!r) return false;
      std::int64_t n = 0;
      std::string mod = "0";  // a missing key's mod_revision
      if (auto kvs = r->find("kvs"); kvs != r->end() && kvs->is_array() && !kvs->empty()) {
        auto& kv = (*kvs)[0];
        n = std::strtoll(unb64(kv.value("value", "")).c_str(), nullptr, 10);
        mod = kv.value("mod_revision", "0");
      }
      nlohmann::json txn = {
          {"compare",
           {{{"key", b64(key)}, {"result", "EQUAL"}, {"target", "MOD"}, {"mod_revision", mod}}}},
          {"success",
           {{{"request_put", {{"key", b64(key)}, {"value", b64(std::to_string(n + 1))}}}}}}};
      auto t = post("/v3/kv/txn", txn);
      if (!t) return false;
      // The gateway leaves false booleans out: no "succeeded" is a failed compare.
      if (t->value("succeeded", false)) return true;
      ++conflicts;
    }
    return false;
  }

 private:
  httplib::Client cli_;
};

// -- the clusters ------------------------------------------------------------------------------

/// Prints `msg` to stderr and exits 1: a server that cannot be started is an error, never
/// a skip.
[[noreturn]] void die(const std::string& msg);

/// A fresh directory under `parent` (empty: /tmp) holding every data dir of one run, removed
/// with everything in it when this goes.
class scratch_dir {
 public:
  explicit scratch_dir(const std::string& parent);
  ~scratch_dir();
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& parent() const { return parent_; }

 private:
  std::filesystem::path parent_, path_;
};

struct warp_cluster {
  std::vector<std::uint16_t> resp_ports;
  std::vector<std::uint16_t> admin_ports;  ///< warpd's --http (the SSE watch endpoint)
  std::vector<std::unique_ptr<warp::test::child_process>> procs;
  void stop();
};

/// Starts 3 warpd (`warpd` empty: the one next to this binary in the build tree) with
/// `s:*` strong_distributed and `extra_args`, and returns once a strong write succeeds
/// through every node 10 times in a row.
void start_warp(warp_cluster& c, const std::string& warpd,
                const std::vector<std::string>& extra_args, const std::filesystem::path& dir);

struct etcd_cluster {
  std::vector<std::uint16_t> client_ports;
  std::vector<std::unique_ptr<warp::test::child_process>> procs;
  void stop();
};

/// Starts a 3-member etcd cluster (`etcd` empty: from PATH) and returns once a put succeeds
/// through every member 10 times in a row.
void start_etcd(etcd_cluster& c, const std::string& etcd, const std::filesystem::path& dir);

// -- one cell: an operation at a number of clients, for a while -------------------------------

enum class outcome { ok, error, unsupported };

struct cell {
  std::uint64_t ops = 0, errors = 0, conflicts = 0;
  double seconds = 0, p50_us = 0, p99_us = 0;
  bool unsupported = false;
  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

/// The operation of one client thread: `k` a random key index below `keys`; `conflicts`
/// counts its retries.
using cell_op = std::function<outcome(std::uint64_t k, std::uint64_t& conflicts)>;

/// `make(t)` builds client thread t's operation (it owns that thread's connection).
cell run_cell(std::size_t clients, double seconds, const std::function<cell_op(std::size_t)>& make,
              std::size_t keys);

nlohmann::json cell_json(const cell& c);

}  // namespace warp_bench
