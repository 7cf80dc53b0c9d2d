#include "apps/warpd/admin_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "runtime/core/openssl_util.hpp"
#include "warp/cluster.hpp"
#include "warp/endpoint.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"
#include "warp/strong_watch.hpp"

namespace warpd {

namespace {

using clock_type = std::chrono::steady_clock;

// A request head larger than this is refused with 431: admin requests carry a path and a
// few headers, nothing more.
constexpr std::size_t max_head = 16 * 1024;
// Requests a kept-alive connection may carry before it is closed (bounds what one client
// can pin on a connection it never lets go).
constexpr int max_requests_per_connection = 1000;
// Requests waiting for a worker; beyond this the endpoint answers 503 at once rather than
// queueing work nobody will wait for.
constexpr std::size_t max_pending_jobs = 64;
// After an error response the connection is closed gracefully: the client gets this long to
// take the response while its unread input is discarded (closing at once would reset the
// connection and lose the response).
constexpr std::chrono::milliseconds linger{1000};

// How long a probe waits for the strong mode's actors: a probe must answer fast, and an
// actor that cannot answer in this time is itself a reason not to be ready.
constexpr std::chrono::milliseconds strong_status_timeout{1000};

struct response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string extra_headers;  ///< complete lines, each ending in \r\n
};

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

response text(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct request {
  std::string method;
  std::string path;  ///< without the query string
  std::string query;  ///< after '?', undecoded
  std::string body;   ///< at most max_body bytes (checked before it is read)
  bool keep_alive = true;
  std::string authorization;
  std::string last_event_id;  ///< SSE resume (GET /v1/watch)
  std::size_t content_length = 0;
};

/// Outcome of parsing a request head: a request, an error response, or "need more bytes".
struct parse_outcome {
  enum { incomplete, done, failed } state = incomplete;
  request req;
  std::size_t head_size = 0;
  response error;
};

parse_outcome parse_head(std::string_view buf, std::size_t max_body) {
  parse_outcome out;
  auto fail = [&](int status, std::string why) {
    out.state = parse_outcome::failed;
    out.error = text(status, std::move(why) + "\n");
    return out;
  };
  auto end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buf.size() > max_head) return fail(431, "request head larger than 16 KiB");
    return out;
  }
  if (end + 4 > max_head) return fail(431, "request head larger than 16 KiB");
  out.head_size = end + 4;
  auto head = buf.substr(0, end);
  auto line_end = head.find("\r\n");
  auto line = head.substr(0, line_end);
  // METHOD SP TARGET SP HTTP/1.x
  auto sp1 = line.find(' ');
  auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return fail(400, "malformed request line");
  auto version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return fail(400, "unsupported HTTP version");
  auto& req = out.req;
  req.method = std::string{line.substr(0, sp1)};
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target.front() != '/') return fail(400, "malformed request target");
  req.path = std::string{target.substr(0, target.find('?'))};
  if (auto q = target.find('?'); q != std::string_view::npos)
    req.query = std::string{target.substr(q + 1)};
  req.keep_alive = version == "HTTP/1.1";
  bool have_length = false;
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
  while (!rest.empty()) {
    auto eol = rest.find("\r\n");
    auto h = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
    auto colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(400, "malformed header line");
    auto name = h.substr(0, colon);
    auto value = trim(h.substr(colon + 1));
    if (iequals(name, "content-length")) {
      // Digits only: "-5", "+5", "1e3", " 5 5" and values past 2^64 are all refused before a
      // single body byte is read, and a large one is refused by size, not by running out of
      // memory or waiting for bytes that never come.
      std::uint64_t n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      bool digits = !value.empty() && std::all_of(value.begin(), value.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) return fail(400, "malformed Content-Length");
      if (ec == std::errc::result_out_of_range || n > max_body)
        return fail(413, "request body larger than " + std::to_string(max_body) + " bytes");
      if (ec != std::errc{} || ptr != value.data() + value.size())
        return fail(400, "malformed Content-Length");
      if (have_length && n != req.content_length) return fail(400, "conflicting Content-Length");
      have_length = true;
      req.content_length = static_cast<std::size_t>(n);
    } else if (iequals(name, "transfer-encoding")) {
      // No admin endpoint takes a streamed body; chunked parsing would be attack surface.
      return fail(501, "Transfer-Encoding is not supported; send Content-Length");
    } else if (iequals(name, "connection")) {
      if (iequals(value, "close")) req.keep_alive = false;
      if (iequals(value, "keep-alive")) req.keep_alive = true;
    } else if (iequals(name, "authorization")) {
      req.authorization = std::string{value};
    } else if (iequals(name, "last-event-id")) {
      req.last_event_id = std::string{value};
    }
  }
  out.state = parse_outcome::done;
  return out;
}

bool loopback(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

using warp::detail::ssl_ctx_deleter;
using warp::detail::ssl_deleter;
using warp::detail::openssl_errors;

class fd_guard {
 public:
  explicit fd_guard(int fd = -1) noexcept : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const noexcept { return fd_; }
  void reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace

struct admin_http::impl {
  // -- configuration and handlers --------------------------------------------------------
  warp::node* node = nullptr;
  std::string config_json;
  std::function<std::string()> extra_metrics;  ///< other front doors' families (RESP)
  bool seeded = false;
  bool listens = false;
  admin_options opts;
  bool loopback_bind = false;
  std::array<unsigned char, SHA256_DIGEST_LENGTH> token_digest{};
  std::unique_ptr<SSL_CTX, ssl_ctx_deleter> ssl_ctx;

  // -- I/O thread ----------------------------------------------------------------------
  fd_guard listener;
  fd_guard epoll;
  fd_guard wake;  ///< eventfd: stop requests and finished jobs
  std::uint16_t port = 0;
  std::thread io_thread;
  std::atomic<bool> stopping{false};

  enum class phase { handshake, reading, working, writing, draining };
  struct connection {
    int fd = -1;
    std::uint64_t id = 0;
    std::unique_ptr<SSL, ssl_deleter> ssl;
    phase state = phase::reading;
    clock_type::time_point accepted;
    clock_type::time_point deadline;
    std::string in;
    std::string out;
    std::size_t out_sent = 0;
    bool close_after = false;
    bool got_bytes = false;  ///< this request started arriving (vs. an idle keep-alive)
    int served = 0;
    request req;
  };
  std::unordered_map<std::uint64_t, std::unique_ptr<connection>> conns;
  std::uint64_t next_id = 1;

  // -- workers -------------------------------------------------------------------------
  struct job {
    std::uint64_t conn;
    request req;
  };
  struct done_job {
    std::uint64_t conn;
    response res;
  };
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<job> jobs;
  std::vector<done_job> finished;
  std::vector<std::thread> workers;
  bool workers_stop = false;

  ~impl() { shutdown(); }

  void shutdown() {
    stopping = true;
    if (wake.get() >= 0) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof(one));
    }
    if (io_thread.joinable()) io_thread.join();
    {
      std::lock_guard lock{mtx};
      workers_stop = true;
    }
    cv.notify_all();
    for (auto& w : workers)
      if (w.joinable()) w.join();
    workers.clear();
    std::vector<sse_thread> streams;
    {
      std::lock_guard lock{sse_mtx};
      streams.swap(sse_threads);
    }
    for (auto& t : streams)
      if (t.thread.joinable()) t.thread.join();
  }

  // -- watch streams (GET /v1/watch, Server-Sent Events) ---------------------------------
  //
  // A stream is long-lived, so it leaves the epoll loop: its connection is handed to a thread
  // of its own that writes events as the node's watch hub queues them (blocking writes with
  // a send timeout: a client that stops reading is cut off, and its watch ends). Bounded by
  // max_watch_streams (503 beyond) and by the node's strong.watch_max_watchers.
  struct sse_thread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex sse_mtx;
  std::vector<sse_thread> sse_threads;
  std::atomic<std::size_t> sse_active{0};

  struct sse_conn {
    int fd = -1;
    std::unique_ptr<SSL, ssl_deleter> ssl;
    ~sse_conn() {
      if (ssl) {
        SSL_shutdown(ssl.get());
        ERR_clear_error();
      }
      if (fd >= 0) ::close(fd);
    }
    bool write_all(std::string_view data) {
      while (!data.empty()) {
        long n = 0;
        if (ssl) {
          int w = SSL_write(ssl.get(), data.data(),
                            static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20)));
          if (w <= 0) {
            ERR_clear_error();
            return false;
          }
          n = w;
        } else {
          n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
      }
      return true;
    }
  };

  static std::string sse_head(int status, std::string_view type, std::string_view body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string{reason(status)} +
           "\r\nContent-Type: " + std::string{type} +
           "\r\nCache-Control: no-store\r\nConnection: close\r\n" +
           (body.empty() && status == 200 ? std::string{"X-Accel-Buffering: no\r\n\r\n"}
                                          : "Content-Length: " + std::to_string(body.size()) +
                                                "\r\n\r\n" + std::string{body});
  }

  void start_watch(connection& c) {
    if (sse_active.load() >= opts.max_watch_streams) {
      c.close_after = true;
      auto r = text(503, "too many watch streams (" + std::to_string(opts.max_watch_streams) +
                             "); retry later\n");
      r.extra_headers = "Retry-After: 1\r\n";
      return respond(c, std::move(r));
    }
    auto filter = query_param(c.req.query, "prefix");
    if (!filter) filter = query_param(c.req.query, "key");
    if (!filter) filter = std::string{};
    // Last-Event-ID (a standard SSE client's reconnect) wins over ?from=: it is later.
    std::string from = c.req.last_event_id;
    if (from.empty()) from = query_param(c.req.query, "from").value_or("");
    auto prev = query_param(c.req.query, "prev").value_or("");
    bool with_prev = prev == "1" || prev == "true";
    auto conn = std::make_shared<sse_conn>();
    conn->fd = c.fd;
    conn->ssl = std::move(c.ssl);
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c.fd, nullptr);
    conns.erase(c.id);  // the fd now belongs to the stream's thread
    int flags = ::fcntl(conn->fd, F_GETFL, 0);
    if (flags >= 0) ::fcntl(conn->fd, F_SETFL, flags & ~O_NONBLOCK);
    timeval tv{};
    tv.tv_sec = static_cast<long>(std::max<long>(1, opts.request_timeout.count() / 1000));
    ::setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ++sse_active;
    std::lock_guard lock{sse_mtx};
    // Join the streams that ended, so their threads do not pile up.
    std::erase_if(sse_threads, [](sse_thread& t) {
      if (!t.done->load()) return false;
      t.thread.join();
      return true;
    });
    auto done = std::make_shared<std::atomic<bool>>(false);
    sse_threads.push_back({std::thread{[this, conn, done, filter = std::move(*filter),
                                        from = std::move(from), with_prev] {
                             run_watch(*conn, filter, from, with_prev);
                             done->store(true);
                           }},
                           done});
  }

  void run_watch(sse_conn& conn, const std::string& filter, const std::string& from, bool prev) {
    struct release {
      std::atomic<std::size_t>& n;
      ~release() { --n; }
    } rel{sse_active};
    auto stream = warp::open_watch(*node, filter, from, prev);
    if (!stream) {
      int status = stream.code() == warp::errc::rate_limited       ? 503
                   : stream.code() == warp::errc::unsupported      ? 501
                   : stream.code() == warp::errc::key_too_large    ? 400
                   : stream.code() == warp::errc::invalid_argument ? 400
                                                                   : 503;
      conn.write_all(
          sse_head(status, "text/plain; charset=utf-8", stream.err().to_string() + "\n"));
      return;
    }
    auto& s = **stream;
    if (!conn.write_all(sse_head(200, "text/event-stream", {})) ||
        !conn.write_all("retry: 1000\n\n")) {
      s.cancel();
      return;
    }
    while (!stopping) {
      auto e = s.next(std::chrono::milliseconds{250});
      if (!e) {
        if (s.ended()) break;
        continue;
      }
      std::string frame;
      if (!e->cursor.empty()) frame += "id: " + e->cursor + "\n";
      frame += "event: ";
      frame += warp::to_string(e->type);
      frame += "\ndata: " + warp::to_json(*e) + "\n\n";
      if (!conn.write_all(frame)) break;
      if (e->terminal()) break;
    }
    s.cancel();
  }

  // -- handlers --------------------------------------------------------------------------
  bool authorized(const request& req) const {
    constexpr std::string_view scheme = "Bearer ";
    std::string_view auth = req.authorization;
    if (auth.size() <= scheme.size() || !iequals(auth.substr(0, scheme.size()), scheme))
      return false;
    auto given = auth.substr(scheme.size());
    // Compare digests: constant time in the token's content and independent of its length.
    std::array<unsigned char, SHA256_DIGEST_LENGTH> d{};
    SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), d.data());
    return CRYPTO_memcmp(d.data(), token_digest.data(), d.size()) == 0;
  }

  // Runs on a worker thread: may touch the node and storage.
  response handle(const request& req) {
    const auto& path = req.path;
    if (path == "/readyz") return readiness();
    if (path == "/metrics") {
      auto body = warp::prometheus_text(*node);
      if (listens && (seeded || warp::view_of(*node).members.size() > 1))
        body += warp::cluster_prometheus_text(*node);
      if (auto strong = node->strong_state(strong_status_timeout))
        body += warp::strong_prometheus_text(*strong, warp::display_name(node->config()));
      body += node->federation_metrics();
      if (extra_metrics) body += extra_metrics();
      response r;
      r.body = std::move(body);
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    }
    response r;
    r.content_type = "application/json";
    if (path == "/admin/cluster") {
      r.body = warp::cluster_json(*node) + "\n";
    } else if (path == "/admin/stats") {
      r.body = warp::stats_json(*node) + "\n";
    } else if (path == "/admin/config") {
      r.body = config_json + "\n";
    } else if (path == "/admin/strong") {
      auto strong = node->strong_state(strong_status_timeout);
      if (!strong) {
        r.status = 404;
        r.body = "{\"error\":\"this node runs no strong mode\"}\n";
        return r;
      }
      r.body = warp::strong_json(*strong) + "\n";
    } else if (path == "/admin/validator") {
      r.body = node->validator_json() + "\n";
    } else if (path == "/admin/federation") {
      r.body = node->federation_json() + "\n";
    } else if (path == "/admin/patterns") {
      return patterns(req);
    } else if (path == "/admin/fault/partition" && opts.partition) {
      auto done = opts.partition(std::string{trim_line(req.body)});
      if (!done) return text(400, done.err().message() + "\n");
      r.body = *done + "\n";
    } else if (path == "/admin/hotkeys") {
      // ?limit=N (default 20, 0 = every key tracked); anything else is a clear 400.
      std::size_t limit = 20;
      for (std::string_view q = req.query; !q.empty();) {
        auto amp = q.find('&');
        auto param = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        if (param.substr(0, 6) != "limit=") continue;
        auto digits = param.substr(6);
        unsigned long long v = 0;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        if (ec != std::errc{} || end != digits.data() + digits.size() || v > 100000)
          return text(400, "limit: a number from 0 to 100000\n");
        limit = static_cast<std::size_t>(v);
      }
      r.body = warp::hot_keys_json(*node, limit) + "\n";
    } else {
      return text(404, "not found\n");
    }
    return r;
  }

  // GET: the table; PUT/POST, body = one spec (GLOB=MODE[:TTL]+options): set it; DELETE
  // ?glob=GLOB (percent-encoded) or body = GLOB: remove it. Answers with the table.
  response patterns(const request& req) {
    warp::result<void> done;
    if (req.method == "PUT" || req.method == "POST") {
      done = node->set_pattern(trim_line(req.body));
    } else if (req.method == "DELETE") {
      auto glob = query_param(req.query, "glob");
      if (!glob) glob = std::string{trim_line(req.body)};
      if (glob->empty()) return text(400, "DELETE needs ?glob=GLOB or the glob as the body\n");
      done = node->remove_pattern(*glob);
    }
    if (!done) {
      int status = done.code() == warp::errc::not_found          ? 404
                   : done.code() == warp::errc::unsupported      ? 409
                   : done.code() == warp::errc::invalid_argument ? 400
                                                                 : 503;
      return text(status, done.err().to_string() + "\n");
    }
    response r;
    r.content_type = "application/json";
    r.body = warp::to_json(node->pattern_table()) + "\n";
    return r;
  }

  static std::string_view trim_line(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
      s.remove_suffix(1);
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    return s;
  }

  // `name`'s value in a query string, percent-decoded ('+' is a literal plus: specs use it).
  static std::optional<std::string> query_param(std::string_view q, std::string_view name) {
    while (!q.empty()) {
      auto amp = q.find('&');
      auto part = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
      auto eq = part.find('=');
      if (eq == std::string_view::npos || part.substr(0, eq) != name) continue;
      std::string out;
      auto v = part.substr(eq + 1);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          unsigned x = 0;
          auto [p, ec] = std::from_chars(v.data() + i + 1, v.data() + i + 3, x, 16);
          if (ec == std::errc{} && p == v.data() + i + 3) {
            out.push_back(static_cast<char>(x));
            i += 2;
            continue;
          }
        }
        out.push_back(v[i]);
      }
      return out;
    }
    return std::nullopt;
  }

  // /readyz: each check says whether it passes and why; the status is 200 only when all
  // pass, so a load balancer stops sending traffic to a node that would only fail it.
  response readiness() {
    nlohmann::json checks = nlohmann::json::object();
    std::vector<std::string> failing;
    auto check = [&](const char* name, bool ok, nlohmann::json detail) {
      detail["ok"] = ok;
      checks[name] = std::move(detail);
      if (!ok) failing.emplace_back(name);
    };
    // Storage answers a cheap query (and passed its integrity check at open).
    if (auto st = node->check_storage(); !st)
      check("storage", false, {{"error", st.err().message()}});
    else
      check("storage", true, nlohmann::json::object());
    // No circuit breaker is open: reads of uncached keys would fail fast. Half-open is
    // ready: its probes are how the breaker closes again.
    std::vector<std::string> open;
    for (const auto& g : node->stats().protection)
      if (g.breaker == "open") open.push_back(g.pattern);
    check("breakers", open.empty(), {{"open", open}});
    // ABD: strong ranges caught up (a restarted replica copies its ranges before serving
    // them). Raft: every group this node is a member of knows a leader and has a working
    // log here; a group in an election or without a quorum would only fail or forward.
    if (auto strong = node->strong_state(strong_status_timeout)) {
      if (!strong->answered) {
        check("strong", false, {{"engine", strong->engine}, {"error", strong->error}});
      } else if (strong->engine == "abd") {
        check("strong", strong->ready(),
              {{"engine", "abd"},
               {"ready_ranges", strong->ready_ranges},
               {"replicated_ranges", strong->replicated_ranges},
               {"waiting_on", strong->waiting_on}});
      } else {
        std::vector<std::uint32_t> leaderless, failed;
        for (const auto& g : strong->groups) {
          if (g.leader == 0) leaderless.push_back(g.id);
          if (g.log_failed) failed.push_back(g.id);
        }
        check("strong", strong->ready(),
              {{"engine", "raft"},
               {"groups", strong->groups.size()},
               {"leaderless_groups", leaderless},
               {"log_failed_groups", failed},
               {"unanswered_groups", strong->missing_groups},
               {"member_of_no_group", strong->groups.empty() && strong->missing_groups.empty()}});
      }
    }
    // Eventual mode has no catch-up phase: a miss reads through to storage, and a node
    // that joins trusts nothing it has not fetched. Shown for the operator, never failing.
    if (listens) {
      auto v = warp::view_of(*node);
      std::size_t up = 0;
      for (const auto& m : v.members) up += m.state == warp::member_state::up;
      check("cluster", true, {{"members", v.members.size()}, {"members_up", up}});
    }
    nlohmann::json doc = {{"status", failing.empty() ? "ready" : "not_ready"},
                          {"failing", failing},
                          {"checks", std::move(checks)}};
    response r;
    r.status = failing.empty() ? 200 : 503;
    r.content_type = "application/json";
    // Storage messages are not ours: never let a stray byte turn the probe into an error.
    r.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return r;
  }

  void worker_loop() {
    for (;;) {
      job j;
      {
        std::unique_lock lock{mtx};
        cv.wait(lock, [&] { return workers_stop || !jobs.empty(); });
        if (workers_stop) return;
        j = std::move(jobs.front());
        jobs.pop_front();
      }
      response res;
      try {
        res = handle(j.req);
      } catch (const std::exception& e) {
        res = text(503, std::string{"internal error: "} + e.what() + "\n");
      }
      {
        std::lock_guard lock{mtx};
        finished.push_back({j.conn, std::move(res)});
      }
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof(one));
    }
  }

  // -- I/O -----------------------------------------------------------------------------
  void close_conn(std::uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, it->second->fd, nullptr);
    ::close(it->second->fd);
    conns.erase(it);
  }

  // Where the I/O thread decides what a complete request gets: probes and refusals are
  // answered here, the rest goes to a worker.
  void dispatch(connection& c) {
    const auto& req = c.req;
    // /admin/patterns changes the key-pattern table and /admin/fault/partition (test only)
    // the node's links; every other endpoint only reads.
    bool writable =
        req.path == "/admin/patterns" || (req.path == "/admin/fault/partition" && opts.partition);
    if (req.method != "GET" && req.method != "HEAD" &&
        !(writable && (req.method == "PUT" || req.method == "POST" || req.method == "DELETE"))) {
      auto r =
          text(405, writable ? "only GET, HEAD, PUT, POST and DELETE\n" : "only GET and HEAD\n");
      r.extra_headers =
          writable ? "Allow: GET, HEAD, PUT, POST, DELETE\r\n" : "Allow: GET, HEAD\r\n";
      return respond(c, std::move(r));
    }
    if (req.path == "/healthz") return respond(c, text(200, "ok\n"));
    bool probe = req.path == "/readyz" || req.path == "/metrics";
    if (!probe) {
      if (opts.token.empty() && !loopback_bind)
        return respond(c, text(403,
                               "admin endpoints need --admin-token-file on a non-loopback "
                               "bind\n"));
      if (!opts.token.empty() && !authorized(req)) {
        auto r = text(401, "bearer token required\n");
        r.extra_headers = "WWW-Authenticate: Bearer\r\n";
        return respond(c, std::move(r));
      }
    }
    if (req.path == "/v1/watch" && req.method == "GET") return start_watch(c);
    {
      std::lock_guard lock{mtx};
      if (jobs.size() >= max_pending_jobs) {
        c.close_after = true;
        return respond(c, text(503, "busy\n"));
      }
      jobs.push_back({c.id, req});
    }
    cv.notify_one();
    c.state = phase::working;
  }

  void respond(connection& c, response r) {
    if (r.status >= 400 && r.status != 401 && r.status != 403 && r.status != 404 && r.status != 405)
      c.close_after = true;  // the input stream is in an unknown state after these
    if (++c.served >= max_requests_per_connection || !c.req.keep_alive) c.close_after = true;
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " +
                       std::string{reason(r.status)} + "\r\nContent-Type: " + r.content_type +
                       "\r\nContent-Length: " + std::to_string(r.body.size()) +
                       "\r\nCache-Control: no-store\r\n" + r.extra_headers +
                       (c.close_after ? "Connection: close\r\n\r\n" : "\r\n");
    c.out = std::move(head);
    if (c.req.method != "HEAD") c.out += r.body;
    c.out_sent = 0;
    c.state = phase::writing;
    c.deadline = clock_type::now() + opts.request_timeout;
    drive(c);
  }

  enum class io { progress, would_block, closed };

  io read_some(connection& c) {
    char buf[16 * 1024];
    if (c.ssl) {
      int n = SSL_read(c.ssl.get(), buf, sizeof(buf));
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        return io::progress;
      }
      int e = SSL_get_error(c.ssl.get(), n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return io::would_block;
      ERR_clear_error();
      return io::closed;
    }
    auto n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      c.in.append(buf, static_cast<std::size_t>(n));
      return io::progress;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return io::would_block;
    return io::closed;
  }

  io write_some(connection& c) {
    auto* data = c.out.data() + c.out_sent;
    auto size = c.out.size() - c.out_sent;
    if (c.ssl) {
      int n = SSL_write(c.ssl.get(), data, static_cast<int>(std::min<std::size_t>(size, 1 << 20)));
      if (n > 0) {
        c.out_sent += static_cast<std::size_t>(n);
        return io::progress;
      }
      int e = SSL_get_error(c.ssl.get(), n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return io::would_block;
      ERR_clear_error();
      return io::closed;
    }
    auto n = ::send(c.fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<std::size_t>(n);
      return io::progress;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return io::would_block;
    return io::closed;
  }

  // Moves a connection as far as its socket allows (edge-triggered: until it would block).
  void drive(connection& c) {
    const auto id = c.id;
    for (;;) {
      switch (c.state) {
        case phase::handshake: {
          int r = SSL_accept(c.ssl.get());
          if (r == 1) {
            c.state = phase::reading;
            continue;
          }
          int e = SSL_get_error(c.ssl.get(), r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
          ERR_clear_error();
          return close_conn(id);
        }
        case phase::reading: {
          // Parse what is buffered first: a pipelined request may already be complete.
          auto parsed = parse_head(c.in, opts.max_body);
          if (parsed.state == parse_outcome::failed) {
            c.close_after = true;
            c.req = {};
            c.req.keep_alive = false;
            return respond(c, std::move(parsed.error));
          }
          if (parsed.state == parse_outcome::done &&
              c.in.size() >= parsed.head_size + parsed.req.content_length) {
            c.req = std::move(parsed.req);
            // Only /admin/patterns reads a body; it is bounded by max_body already.
            c.req.body = c.in.substr(parsed.head_size, c.req.content_length);
            c.in.erase(0, parsed.head_size + c.req.content_length);
            return dispatch(c);
          }
          auto r = read_some(c);
          if (r == io::closed) return close_conn(id);
          if (r == io::would_block) return;
          if (!c.got_bytes) {
            // The request's clock starts with its first byte (an idle keep-alive connection
            // ran on the idle clock until now).
            c.got_bytes = true;
            c.deadline = clock_type::now() + opts.request_timeout;
          }
          continue;
        }
        case phase::working:
          return;  // a worker has it; its answer comes through the wake fd
        case phase::writing: {
          while (c.out_sent < c.out.size()) {
            auto r = write_some(c);
            if (r == io::closed) return close_conn(id);
            if (r == io::would_block) return;
          }
          c.out.clear();
          c.out_sent = 0;
          if (c.close_after) {
            if (c.ssl) {
              SSL_shutdown(c.ssl.get());
              ERR_clear_error();
            }
            ::shutdown(c.fd, SHUT_WR);
            c.state = phase::draining;
            c.deadline = clock_type::now() + linger;
            c.in.clear();
            continue;
          }
          c.state = phase::reading;
          c.got_bytes = !c.in.empty();
          c.deadline = clock_type::now() + opts.request_timeout;
          continue;
        }
        case phase::draining: {
          // Read and discard until the client closes (or the linger deadline passes).
          char buf[4096];
          auto n = ::recv(c.fd, buf, sizeof(buf), 0);
          if (n > 0) continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
          return close_conn(id);
        }
      }
    }
  }

  void accept_all() {
    for (;;) {
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      int fd = ::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors: the next readiness event retries
      }
      if (conns.size() >= opts.max_connections && !make_room()) {
        ::close(fd);
        continue;
      }
      auto c = std::make_unique<connection>();
      c->fd = fd;
      c->id = next_id++;
      c->accepted = clock_type::now();
      c->deadline = c->accepted + opts.request_timeout;
      if (ssl_ctx) {
        c->ssl.reset(SSL_new(ssl_ctx.get()));
        if (!c->ssl || SSL_set_fd(c->ssl.get(), fd) != 1) {
          ERR_clear_error();
          ::close(fd);
          continue;
        }
        c->state = phase::handshake;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = c->id;
      if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      auto& ref = *c;
      conns.emplace(c->id, std::move(c));
      drive(ref);
    }
  }

  // At the connection cap: the oldest connection still waiting for its request (or idle)
  // goes. Connections whose request is being answered are kept.
  bool make_room() {
    connection* oldest = nullptr;
    for (auto& [id, c] : conns) {
      if (c->state == phase::working || c->state == phase::writing) continue;
      if (!oldest || c->accepted < oldest->accepted) oldest = c.get();
    }
    if (!oldest) return false;
    close_conn(oldest->id);
    return true;
  }

  void sweep(clock_type::time_point now) {
    std::vector<std::uint64_t> expired;
    for (auto& [id, c] : conns)
      if (c->state != phase::working && now >= c->deadline) expired.push_back(id);
    for (auto id : expired) close_conn(id);
  }

  void take_finished() {
    std::vector<done_job> done;
    {
      std::lock_guard lock{mtx};
      done.swap(finished);
    }
    for (auto& d : done) {
      auto it = conns.find(d.conn);
      if (it == conns.end()) continue;  // the client went away meanwhile
      respond(*it->second, std::move(d.res));
    }
  }

  void io_loop() {
    constexpr int max_events = 64;
    epoll_event events[max_events];
    auto next_sweep = clock_type::now();
    while (!stopping) {
      int n = ::epoll_wait(epoll.get(), events, max_events, 100);
      if (n < 0 && errno != EINTR) {
        spdlog::error("admin http: epoll_wait: {}", std::strerror(errno));
        break;
      }
      for (int i = 0; i < n; ++i) {
        auto tag = events[i].data.u64;
        if (tag == 0) {
          accept_all();
        } else if (tag == ~std::uint64_t{0}) {
          std::uint64_t count = 0;
          [[maybe_unused]] auto r = ::read(wake.get(), &count, sizeof(count));
          take_finished();
        } else if (auto it = conns.find(tag); it != conns.end()) {
          drive(*it->second);
        }
      }
      auto now = clock_type::now();
      if (now >= next_sweep) {
        sweep(now);
        next_sweep = now + std::chrono::milliseconds{50};
      }
    }
    for (auto& [id, c] : conns) ::close(c->fd);
    conns.clear();
  }

  warp::result<void> bind(const std::string& host, std::uint16_t wanted) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    auto service = std::to_string(wanted);
    if (int rc =
            ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
        rc != 0)
      return {warp::errc::unreachable, "cannot resolve '" + host + "': " + gai_strerror(rc)};
    std::string last_error = "no address";
    for (auto* ai = res; ai; ai = ai->ai_next) {
      int fd =
          ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      // SO_REUSEADDR for a quick restart; never SO_REUSEPORT, which would let a second warpd
      // bind the same port and silently split the traffic.
      int yes = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
        sockaddr_storage local{};
        socklen_t len = sizeof(local);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
        port =
            ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
        loopback_bind = loopback(local);
        listener.reset(fd);
        ::freeaddrinfo(res);
        return {};
      }
      last_error = std::strerror(errno);
      ::close(fd);
    }
    ::freeaddrinfo(res);
    return {warp::errc::unreachable, last_error};
  }

  warp::result<void> setup_tls() {
    ssl_ctx.reset(SSL_CTX_new(TLS_server_method()));
    if (!ssl_ctx) return {warp::errc::invalid_argument, "TLS: " + openssl_errors()};
    SSL_CTX_set_min_proto_version(ssl_ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_mode(ssl_ctx.get(),
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx.get(), opts.tls_cert.c_str()) != 1)
      return {warp::errc::invalid_argument,
              "TLS certificate '" + opts.tls_cert + "': " + openssl_errors()};
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx.get(), opts.tls_key.c_str(), SSL_FILETYPE_PEM) != 1)
      return {warp::errc::invalid_argument, "TLS key '" + opts.tls_key + "': " + openssl_errors()};
    if (SSL_CTX_check_private_key(ssl_ctx.get()) != 1)
      return {warp::errc::invalid_argument,
              "TLS key '" + opts.tls_key + "' does not match certificate '" + opts.tls_cert + "'"};
    return {};
  }
};

admin_http::admin_http(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

admin_http::~admin_http() {
  stop();
}

std::uint16_t admin_http::port() const noexcept {
  return impl_->port;
}

bool admin_http::tls() const noexcept {
  return impl_->ssl_ctx != nullptr;
}

void admin_http::stop() {
  if (impl_) impl_->shutdown();
}

warp::result<std::unique_ptr<admin_http>> admin_http::start(
    warp::node& n, const std::string& listen, std::string config_json, bool seeded,
    const admin_options& opts, std::function<std::string()> extra_metrics) {
  auto endpoint = warp::parse_endpoint(listen);
  if (!endpoint) return endpoint.err();
  auto p = std::make_unique<impl>();
  p->node = &n;
  p->config_json = std::move(config_json);
  p->seeded = seeded;
  // A clustered node's members and bus numbers belong in the same scrape. A lone node
  // with a listener (a seed nobody contacted yet) has nothing to say about a cluster;
  // once a peer joined it, it is part of one.
  p->listens = n.listen_port() != 0;
  p->opts = opts;
  p->extra_metrics = std::move(extra_metrics);
  if (p->opts.max_connections == 0) p->opts.max_connections = 1;
  if (!opts.token.empty())
    SHA256(reinterpret_cast<const unsigned char*>(opts.token.data()), opts.token.size(),
           p->token_digest.data());
  if (!opts.tls_cert.empty() || !opts.tls_key.empty())
    if (auto st = p->setup_tls(); !st) return st.err();
  const auto& [host, port] = *endpoint;
  if (auto st = p->bind(host, port); !st)
    return warp::error{warp::errc::unreachable, "cannot listen on " + listen + ": " + st.err().message() +
                                                    " (address in use or not local?)"};
  p->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  p->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (p->epoll.get() < 0 || p->wake.get() < 0)
    return warp::error{warp::errc::internal, std::string{"admin http: "} + std::strerror(errno)};
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 0;
  ::epoll_ctl(p->epoll.get(), EPOLL_CTL_ADD, p->listener.get(), &ev);
  ev.data.u64 = ~std::uint64_t{0};
  ::epoll_ctl(p->epoll.get(), EPOLL_CTL_ADD, p->wake.get(), &ev);
  if (!p->loopback_bind && opts.token.empty())
    spdlog::warn(
        "admin http on non-loopback {} without --admin-token-file: only /healthz, /readyz "
        "and /metrics are served",
        listen);
  for (int i = 0; i < 2; ++i) p->workers.emplace_back([raw = p.get()] { raw->worker_loop(); });
  p->io_thread = std::thread{[raw = p.get()] { raw->io_loop(); }};
  return std::unique_ptr<admin_http>{new admin_http(std::move(p))};
}

}  // namespace warpd
