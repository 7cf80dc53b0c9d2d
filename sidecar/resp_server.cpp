// The sidecar's event loop: one thread, epoll (level triggered), non-blocking sockets.
//
// Why one thread: a hit is an L1 read (lock-free, no actor) and a memcpy into the client's
// output buffer, so the loop is bound by syscalls like Redis is; one thread also keeps
// pub/sub and tracking state free of locks. Commands that may wait (an L1 miss, a quorum,
// PostgreSQL) run on a few worker threads while their client is paused (needs_worker,
// start_job, finish_jobs); local writes stay on the loop (docs/sidecar.md).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <spdlog/spdlog.h>

#include "sidecar/resp_server_impl.hpp"
#include "sidecar/typed_commands.hpp"
#include "sidecar/typed_value.hpp"
#include "warp/l1.hpp"
#include "warp/metrics.hpp"

namespace warp::sidecar {

namespace detail {

// -- byte_buffer -----------------------------------------------------------------------

void byte_buffer::reserve_tail(std::size_t n, std::size_t total_hint) {
  if (cap_ - size_ >= n) return;
  std::size_t want = std::max<std::size_t>(cap_ * 2, size_ + n);
  want = std::max<std::size_t>(want, 16 * 1024);
  // Doubling past a known frame size only wastes: a 512 MB bulk would take 1 GB.
  if (total_hint > size_ + n) want = std::min(want, total_hint);
  auto next = std::make_unique_for_overwrite<char[]>(want);
  if (size_) std::memcpy(next.get(), data_.get(), size_);
  data_ = std::move(next);
  cap_ = want;
}

void byte_buffer::consume(std::size_t n) noexcept {
  if (n >= size_) {
    size_ = 0;
    return;
  }
  std::memmove(data_.get(), data_.get() + n, size_ - n);
  size_ -= n;
}

void byte_buffer::shrink_if_idle(std::size_t keep) {
  if (size_ == 0 && cap_ > keep) {
    data_.reset();
    cap_ = 0;
  }
}

namespace {

// Sentinels stored in epoll_event.data.ptr for the two non-client descriptors.
char listen_tag;
char tls_listen_tag;
char wake_tag;

// Set on the loop thread: a change raised there by our own command needs no lock.
thread_local const server* tl_loop_server = nullptr;
// Set on a worker while it runs a job: the change events it raises travel with the job
// (handled after its reply, naming its client for NOLOOP), and remember_read is skipped
// there (start_job remembered the keys on the loop before the read).
thread_local const server* tl_job_server = nullptr;
thread_local job* tl_job = nullptr;

constexpr std::size_t read_chunk = 16 * 1024;
/// How long a closing connection's late input is read and dropped (lingering close).
constexpr std::int64_t lingering_close_ms = 2000;
// How long the loop polls for more work after a busy iteration before it blocks.
constexpr std::chrono::microseconds spin_window{50};
constexpr std::size_t max_tracked_keys = 1'000'000;
constexpr std::size_t max_cursors = 100'000;

std::string endpoint_string(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

parser_limits limits_for(const resp_options& o, bool authenticated) {
  parser_limits l{o.max_bulk_length, o.max_multibulk_length, o.max_inline_length, false};
  if (!authenticated) {
    // Redis 7's limits for strangers: small enough that nobody can make us allocate much
    // before proving they know the password.
    l.max_multibulk_length = std::min<std::size_t>(l.max_multibulk_length, 10);
    l.max_bulk_length = std::min<std::size_t>(l.max_bulk_length, 16384);
    l.unauthenticated = true;
  }
  return l;
}

/// Case-insensitive compare of a command name with a lower-case table name (same length).
bool same_name(std::string_view input, std::string_view lower) noexcept {
  for (std::size_t i = 0; i < lower.size(); ++i) {
    char ch = input[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != lower[i]) return false;
  }
  return true;
}

std::string_view event_name(change_event::kind k) {
  switch (k) {
    case change_event::kind::set:
      return "set";
    case change_event::kind::removed:
      return "del";
    case change_event::kind::expired:
      return "expired";
    case change_event::kind::invalidated:
      return "invalidated";
    case change_event::kind::cleared:
      return "flushdb";
    case change_event::kind::distrusted:
      return "distrusted";
  }
  return "unknown";
}

}  // namespace

// -- lifecycle -----------------------------------------------------------------------------

namespace {

// The kinds an error reply is counted under: a fixed set, so /metrics stays bounded
// whatever clients send. Redis's leading words, then Warp's own codes, then "other".
const std::vector<std::string>& error_kinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> v{"ERR",    "WRONGTYPE", "NOAUTH",    "WRONGPASS", "NOPERM",
                               "OOM",    "EXECABORT", "NOPROTO",   "BUSY",      "NOSCRIPT",
                               "LOADING", "READONLY", "NOTBUSY",   "UNBLOCKED"};
    for (int i = 1; i <= static_cast<int>(errc::internal); ++i)
      v.push_back("warp_" + std::string{to_string(static_cast<errc>(i))});
    v.emplace_back("other");
    return v;
  }();
  return kinds;
}

std::size_t error_kind_of(std::string_view reply) {
  const auto& kinds = error_kinds();
  // reply: "-WORD rest\r\n"; Warp's: "-ERR warp <code>: ...".
  reply.remove_prefix(1);
  auto word = reply.substr(0, reply.find_first_of(" \r"));
  if (word == "ERR" && reply.substr(word.size()).starts_with(" warp ")) {
    auto rest = reply.substr(word.size() + 6);
    auto code = "warp_" + std::string{rest.substr(0, rest.find_first_of(": \r"))};
    for (std::size_t i = 0; i < kinds.size(); ++i)
      if (kinds[i] == code) return i;
  }
  for (std::size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i] == word) return i;
  return kinds.size() - 1;
}

}  // namespace

void server::meter(const command_def* cmd, std::chrono::steady_clock::duration took,
                   const std::string& reply, std::size_t from) noexcept {
  const auto& table = commands();
  auto index = cmd ? static_cast<std::size_t>(cmd - table.data()) : table.size();
  command_latency_[index].observe(took);
  if (from < reply.size() && reply[from] == '-')
    errors_by_kind_[error_kind_of(std::string_view{reply}.substr(from))].fetch_add(
        1, std::memory_order_relaxed);
}

server::server(node& n, resp_options options) : node_(n), options_(std::move(options)) {
  started_ms = now_ms();
  command_latency_ = std::make_unique<latency_histogram[]>(commands().size() + 1);
  errors_by_kind_ = std::make_unique<std::atomic<std::uint64_t>[]>(error_kinds().size());
  remote_storage_ = node_.storage().describe().starts_with("postgres");
}

server::~server() {
  stop();
}

result<std::pair<int, std::uint16_t>> server::bind_one(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos)
    return error{errc::invalid_argument, "resp listen address must be HOST:PORT: " + listen};
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";  // never all interfaces by accident

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return error{errc::invalid_argument, "cannot resolve " + listen + ": " + gai_strerror(rc)};
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard{res, &freeaddrinfo};
  std::string last_error = "no address";
  for (auto* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 511) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    std::uint16_t bound = ss.ss_family == AF_INET6
                              ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                              : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return std::pair<int, std::uint16_t>{fd, bound};
  }
  return error{errc::unreachable, "cannot listen on " + listen + ": " + last_error};
}

result<std::uint16_t> server::bind() {
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    resp_tls_settings ts{options_.tls_cert, options_.tls_key, options_.tls_ca,
                         options_.tls_auth_clients};
    auto ctx = tls_context::make(ts);
    if (!ctx) return ctx.err();
    tls_ = std::move(*ctx);
  } else if (!options_.tls_listen.empty()) {
    return error{errc::invalid_argument,
                 "resp-tls-port needs a certificate and key (--resp-tls-cert, --resp-tls-key)"};
  }
  if (!options_.listen.empty()) {
    auto main = bind_one(options_.listen);
    if (!main) return main.err();
    listen_fd_ = main->first;
    port_ = main->second;
  }
  if (tls_ && !options_.tls_listen.empty()) {
    auto t = bind_one(options_.tls_listen);
    if (!t) return t.err();
    tls_listen_fd_ = t->first;
    tls_port_ = t->second;
  } else if (tls_) {
    tls_on_main_ = true;
    tls_port_ = port_;
  }
  if (listen_fd_ < 0 && tls_listen_fd_ < 0)
    return error{errc::invalid_argument, "resp: neither a plain nor a TLS listener"};

  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return error{errc::internal, std::strerror(errno)};
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (listen_fd_ >= 0) {
    ev.data.ptr = &listen_tag;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  }
  if (tls_listen_fd_ >= 0) {
    ev.data.ptr = &tls_listen_tag;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, tls_listen_fd_, &ev);
  }
  ev.data.ptr = &wake_tag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  return port_;
}

void server::start_thread() {
  inbox_->wake_fd = wake_fd_;
  const server* self = this;  // compared, never dereferenced, by the callback
  watch_ = node_.watch([self, box = inbox_, this](const change_event& ev) {
    // Runs on whatever thread applied the change: keep it short. Nobody subscribed or
    // tracking = nothing to do (the common case on the benchmark's write path).
    if (!box->interest.load(std::memory_order_acquire)) return;
    if (tl_loop_server == self) {  // our own command, on the loop thread: no lock
      local_events_.push_back({ev, current_client_});
      return;
    }
    if (tl_job_server == self && tl_job) {  // a job of ours, on a worker: it carries them
      tl_job->events.push_back({ev, tl_job->client_id});
      return;
    }
    std::lock_guard<std::mutex> guard{box->mtx};
    if (box->wake_fd < 0) return;  // stopped
    bool wake = box->events.empty();
    box->events.push_back({ev, 0});
    if (wake) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(box->wake_fd, &one, sizeof(one));
    }
  });
  thread_ = std::thread([this] { run(); });
}

void server::stop() {
  std::lock_guard<std::mutex> guard{stop_mtx_};
  if (stopped_) return;
  stopped_ = true;
  if (watch_) node_.unwatch(watch_);
  watch_ = 0;
  stopping_.store(true);
  if (wake_fd_ >= 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  // Waiting WARP.LOCKs leave their queues (their answers reach no one).
  for (auto& [id, w] : lock_waits_)
    if (w.cancel) w.cancel();
  lock_waits_.clear();
  coord_keeper_.stop();
  {
    // Running jobs finish (a quorum answers within its timeout); queued ones are dropped.
    // Before wake_fd_ closes: a finishing job writes to it.
    std::unique_lock<std::mutex> jobs_lock{jobs_mtx_};
    jobs_stopping_ = true;
    jobs_.clear();
    jobs_cv_.wait(jobs_lock, [this] { return jobs_running_ == 0; });
  }
  done_.clear();
  {
    std::unique_lock<std::shared_mutex> alive_guard{inbox_->alive_mtx};
    inbox_->alive = false;
  }
  {
    std::lock_guard<std::mutex> box_guard{inbox_->mtx};
    inbox_->wake_fd = -1;
    inbox_->events.clear();
    inbox_->strong.clear();
    inbox_->locks.clear();
  }
  for (auto& [id, c] : clients_) {
    if (c->tls) c->tls->shutdown();
    c->tls.reset();
    if (c->fd >= 0) ::close(c->fd);
  }
  clients_.clear();
  pending_.clear();
  graveyard_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (tls_listen_fd_ >= 0) ::close(tls_listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = tls_listen_fd_ = epoll_fd_ = wake_fd_ = -1;
}

// -- the loop ------------------------------------------------------------------------------

void server::run() {
  tl_loop_server = this;
  loop_now_ms_ = now_ms();
  refresh_patterns();
  std::vector<epoll_event> events(256);
  std::int64_t last_idle_check = now_ms();
  while (!stopping_.load(std::memory_order_relaxed)) {
    int timeout = options_.idle_timeout.count() > 0 ? 1000 : -1;
    if (!expiries_.empty()) {
      auto wait = std::max<std::int64_t>(0, expiries_.top().first - now_ms() + 1);
      if (timeout < 0 || wait < timeout)
        timeout = static_cast<int>(std::min<std::int64_t>(wait, 1000));
    }
    if (!paused_.empty()) {
      auto wait = std::max<std::int64_t>(0, paused_.top().first - now_ms());
      if (timeout < 0 || wait < timeout)
        timeout = static_cast<int>(std::min<std::int64_t>(wait, 1000));
    }
    if (!lingering_.empty()) {
      auto wait = std::max<std::int64_t>(0, lingering_.front().first - now_ms());
      if (timeout < 0 || wait < timeout)
        timeout = static_cast<int>(std::min<std::int64_t>(wait, 1000));
    }
    if (!tls_pending_.empty()) timeout = 0;  // decrypted input waits in OpenSSL
    // Busy clients: poll without sleeping for a short while before blocking. A blocked
    // loop pays a sleep and a wake-up (two context switches) for every request of an
    // unpipelined client; while requests keep coming, the next one is microseconds away.
    int n = 0;
    if (busy_) {
      auto spin_until = std::chrono::steady_clock::now() + spin_window;
      do {
        n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 0);
      } while (n == 0 && std::chrono::steady_clock::now() < spin_until);
    }
    if (n == 0)
      n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
    busy_ = n > 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    loop_now_ms_ = now_ms();  // one clock read per batch, not one per client
    if (loop_now_ms_ - patterns_checked_ms_ >= 1000) refresh_patterns();
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &listen_tag) {
        on_accept(listen_fd_, tls_on_main_);
      } else if (tag == &tls_listen_tag) {
        on_accept(tls_listen_fd_, true);
      } else if (tag == &wake_tag) {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof(v));
        drain_remote_events();
        finish_jobs();
        finish_strong();
        finish_locks();
      } else {
        auto* c = static_cast<client*>(tag);
        if (c->closed) continue;
        const auto what = events[i].events;
        // Waiting for a lock, it hung up: it gives up its place now (close_client), as
        // Redis frees a blocked client that closed, instead of at its TIMEOUT.
        if (c->lock_wait != 0 && (what & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
          close_client(*c);
          continue;
        }
        // A TLS read or handshake that waited for writability goes on when it comes.
        if ((what & (EPOLLIN | EPOLLHUP | EPOLLERR)) || (c->tls_want_write && (what & EPOLLOUT)))
          on_readable(*c);
        if (!c->closed && (what & EPOLLOUT) && c->epollout) flush(*c);
      }
    }
    if (!tls_pending_.empty()) {
      std::vector<std::uint64_t> ids;
      ids.swap(tls_pending_);
      for (auto id : ids)
        if (client* c = find_client(id); c && !c->busy && !c->paused) on_readable(*c);
    }
    if (!paused_.empty()) resume_paused();
    if (!lingering_.empty()) expire_lingering();
    if (!expiries_.empty()) fire_expirations();
    dispatch_events();
    if (options_.max_client_memory > 0) {
      // Output grown this iteration (replies, pushes) counts before it is sent.
      for (client* c : pending_)
        if (!c->closed) account(*c);
      if (client_memory_ > options_.max_client_memory) enforce_client_memory();
    }
    // Replies of this iteration go out in one write per client (pipelining).
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      client* c = pending_[i];
      c->pending_write = false;
      if (!c->closed) flush(*c);
    }
    pending_.clear();
    graveyard_.clear();
    // Once per iteration rather than at each of the table's many edits.
    tracked_keys_gauge.store(tracked_.size(), std::memory_order_relaxed);
    if (options_.idle_timeout.count() > 0) {
      auto now = now_ms();
      if (now - last_idle_check >= 1000) {
        last_idle_check = now;
        check_idle();
        graveyard_.clear();
      }
    }
  }
}

void server::on_accept(int listen_fd, bool tls) {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd =
        ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN, or out of descriptors: try again on the next readiness
    }
    if (clients_.size() >= options_.max_clients) {
      ++rejected_connections;
      static constexpr std::string_view msg = "-ERR max number of clients reached\r\n";
      // A TLS client could not read plaintext: it just sees the connection close.
      if (!tls) [[maybe_unused]]
        auto w = ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<client>();
    if (tls) {
      c->tls = tls_->accept(fd);
      if (!c->tls) {
        ::close(fd);
        continue;
      }
    }
    c->id = next_client_id_++;
    c->fd = fd;
    c->addr = endpoint_string(ss);
    sockaddr_storage local{};
    len = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0)
      c->laddr = endpoint_string(local);
    c->authenticated = options_.password.empty();
    c->parser.set_limits(limits_for(options_, c->authenticated));
    c->created_ms = c->last_ms = now_ms();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c.get();
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    ++total_connections;
    clients_.emplace(c->id, std::move(c));
    clients_gauge.store(clients_.size(), std::memory_order_relaxed);
  }
}

bool server::tls_handshake(client& c) {
  switch (c.tls->handshake()) {
    case tls_io::done:
      if (c.tls_want_write) {
        c.tls_want_write = false;
        set_events(c);
      }
      return true;
    case tls_io::want_read:
      if (c.tls_want_write) {
        c.tls_want_write = false;
        set_events(c);
      }
      return true;
    case tls_io::want_write:
      if (!c.tls_want_write) {
        c.tls_want_write = true;
        set_events(c);
      }
      return true;
    case tls_io::closed:
    case tls_io::failed:
      // Plaintext on the TLS port, a scanner, a bad or missing client certificate.
      tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("resp: TLS handshake with {} failed: {}", c.addr, c.tls->last_error());
      close_client(c);
      return false;
  }
  return false;
}

long server::read_some(client& c, std::size_t want) {
  if (!c.tls) {
    ssize_t n = ::recv(c.fd, c.in.data() + c.in.size(), want, 0);
    if (n == 0) return -1;
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    return static_cast<long>(n);
  }
  std::size_t n = 0;
  switch (c.tls->read(c.in.data() + c.in.size(), want, n)) {
    case tls_io::done:
      if (c.tls_want_write) {
        c.tls_want_write = false;
        set_events(c);
      }
      return static_cast<long>(n);
    case tls_io::want_read:
      return 0;
    case tls_io::want_write:
      if (!c.tls_want_write) {
        c.tls_want_write = true;
        set_events(c);
      }
      return 0;
    case tls_io::closed:
      return -1;
    case tls_io::failed:
      spdlog::debug("resp: TLS read from {} failed: {}", c.addr, c.tls->last_error());
      return -1;
  }
  return -1;
}

void server::on_readable(client& c) {
  // Read what the parser says the frame needs (a large bulk arrives in one buffer).
  // Grow towards the announced size, but never reserve more than twice what actually
  // arrived: a 20-byte "$500000000" header must not cost 500 MB per connection.
  std::size_t want = read_chunk;
  const std::size_t hint = c.parser.hint_total();
  if (hint > c.in.size())
    want = std::clamp<std::size_t>(hint - c.in.size(), read_chunk,
                                   std::max<std::size_t>(read_chunk, c.in.size()));
  if (c.lingering) {
    discard_input(c);
    return;
  }
  if (c.tls && !c.tls->handshake_done()) {
    if (!tls_handshake(c) || !c.tls->handshake_done()) return;
  }
  c.in.reserve_tail(want, hint);
  long n = read_some(c, want);
  if (n < 0) {
    close_client(c);
    return;
  }
  if (n > 0) {
    c.in.commit(static_cast<std::size_t>(n));
    c.last_ms = loop_now_ms_;
    process_input(c);
  }
  if (c.closed) return;
  if (options_.max_client_memory > 0) account(c);
  // Input OpenSSL already decrypted (more than `want`) is invisible to epoll: come back.
  if (c.tls && !c.busy && !c.paused && c.tls->has_pending()) tls_pending_.push_back(c.id);
}

void server::process_input(client& c) {
  std::size_t start = 0;
  while (!c.closed && !c.close_after_write && !c.busy && !c.paused && start < c.in.size()) {
    std::size_t consumed = 0;
    std::span<char> frame{c.in.data() + start, c.in.size() - start};
    auto st = c.parser.parse(frame, consumed);
    if (st == resp_parser::status::incomplete) break;
    if (st == resp_parser::status::error) {
      if (!batch_empty()) run_batch(c);
      ++protocol_errors;
      if (c.run) {
        // Answered after the strong run's replies, then the connection closes.
        c.run->protocol_error = "ERR " + c.parser.error();
        start = c.in.size();
        break;
      }
      resp_writer w{c.out, c.proto};
      w.error("ERR " + c.parser.error());
      c.close_after_write = true;
      mark_pending(c);
      start = c.in.size();
      break;
    }
    c.parser.args(c.in.view(start), argv_);
    start += consumed;
    if (argv_.empty()) continue;
    // Strong GET/SET and read-modify-writes on the Raft engine: started at once, no worker
    // (strong_pipeline.cpp).
    if (take_strong(c, argv_)) continue;
    if (c.run) {
      // Not for this run: it waits, with its arguments owned, for the run's replies.
      c.run->next.assign(argv_.begin(), argv_.end());
      break;
    }
    if (try_batch(c, argv_)) continue;
    if (!batch_empty()) run_batch(c);
    execute(c, argv_);
    if (!local_events_.empty()) dispatch_events();
    if (c.out.size() - c.out_pos > options_.max_output_buffer) {
      ++output_limit_disconnects;
      close_client(c);
      return;
    }
  }
  if (c.closed) {
    set_batch_.clear();
    incr_batch_.clear();
    typed_batch_.clear();
    return;
  }
  // The run started from this input owns copies of what it needs: it waits for its replies.
  if (c.run) close_run(c);
  // Before consume(): the batch views c.in (every parsed argument, inline or multibulk,
  // lives there until these bytes are dropped).
  if (!batch_empty()) run_batch(c);
  c.in.consume(start);
  c.in.shrink_if_idle(1024 * 1024);
}

void server::mark_pending(client& c) {
  if (c.pending_write || c.closed) return;
  c.pending_write = true;
  pending_.push_back(&c);
}

bool server::reply_ready(client& c) {
  c.last_ms = loop_now_ms_;
  mark_pending(c);
  if (c.out.size() - c.out_pos > options_.max_output_buffer) {
    ++output_limit_disconnects;
    close_client(c);
    return false;
  }
  set_events(c);
  return true;
}

void server::flush(client& c) {
  if (c.held.size() > options_.max_output_buffer) {  // pushes held while a job runs
    ++output_limit_disconnects;
    close_client(c);
    return;
  }
  if (c.tls && !c.tls->handshake_done()) return;  // replies wait for the handshake
  while (c.out_pos < c.out.size()) {
    ssize_t n = 0;
    if (c.tls) {
      std::size_t sent = 0;
      auto r = c.tls->write(c.out.data() + c.out_pos, c.out.size() - c.out_pos, sent);
      if (r == tls_io::done) {
        n = static_cast<ssize_t>(sent);
      } else if (r == tls_io::want_write || r == tls_io::want_read) {
        n = -1;
        errno = EAGAIN;
      } else {
        close_client(c);
        return;
      }
    } else {
      n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // A client that does not read (a stuck subscriber, a pipeline it never drains)
        // must not make the node buffer without bound.
        if (c.out.size() - c.out_pos > options_.max_output_buffer) {
          ++output_limit_disconnects;
          close_client(c);
          return;
        }
        if (!c.epollout) {
          c.epollout = true;
          set_events(c);
        }
        return;
      }
      close_client(c);
      return;
    }
    c.out_pos += static_cast<std::size_t>(n);
  }
  c.out.clear();
  c.out_pos = 0;
  if (c.out.capacity() > 4 * 1024 * 1024) c.out.shrink_to_fit();
  if (options_.max_client_memory > 0) account(c);
  if (c.epollout) {
    c.epollout = false;
    set_events(c);
  }
  if (c.close_after_write) start_lingering_close(c);
}

void server::start_lingering_close(client& c) {
  // close() with input still unread makes the kernel answer with a reset, and a reset
  // discards the replies still queued for the client: a pipelining client that is still
  // writing would lose the end of its replies, the error that ended the stream among them.
  // So, as web servers do: FIN after the last reply, then read and drop whatever the
  // client still sends until it closes too, for at most lingering_close_ms.
  if (c.lingering || c.closed) return;
  if (c.tls) {
    c.tls->shutdown();  // close_notify goes out after the last reply
    c.tls.reset();      // what follows is read raw and dropped
  }
  if (::shutdown(c.fd, SHUT_WR) != 0) {
    close_client(c);
    return;
  }
  c.lingering = true;
  c.in.clear();
  c.in.shrink_if_idle(0);
  c.tls_want_write = false;
  c.epollout = false;
  set_events(c);
  lingering_.emplace_back(loop_now_ms_ + lingering_close_ms, c.id);
  discard_input(c);
}

void server::discard_input(client& c) {
  // At most 1 MB a call: a client that never stops sending must not hold the loop; the
  // socket stays readable (level-triggered), so the rest is dropped on later rounds.
  char sink[64 * 1024];
  for (int reads = 0; reads < 16; ++reads) {
    ssize_t n = ::recv(c.fd, sink, sizeof(sink), 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_client(c);  // the client closed too (or reset): nothing is left to lose
    return;
  }
}

void server::expire_lingering() {
  while (!lingering_.empty() && lingering_.front().first <= loop_now_ms_) {
    const auto id = lingering_.front().second;
    lingering_.pop_front();
    if (client* c = find_client(id); c && c->lingering) close_client(*c);
  }
}

void server::set_events(client& c) {
  // A busy client (a job in flight) is not read: its input waits in the socket.
  epoll_event ev{};
  ev.events = (c.busy || c.paused ? 0u : static_cast<std::uint32_t>(EPOLLIN)) |
              (c.lock_wait != 0 ? static_cast<std::uint32_t>(EPOLLRDHUP) : 0u) |
              (c.epollout || c.tls_want_write ? static_cast<std::uint32_t>(EPOLLOUT) : 0u);
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void server::close_client(client& c) {
  if (c.closed) return;
  c.closed = true;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  if (c.tls) {
    c.tls->shutdown();
    c.tls.reset();
  }
  ::close(c.fd);
  c.fd = -1;
  client_memory_ -= c.mem_accounted;
  c.mem_accounted = 0;
  client_memory_gauge.store(client_memory_, std::memory_order_relaxed);
  unsubscribe_all(c, false, false);
  unsubscribe_all(c, true, false);
  if (c.tracking) {
    c.tracking = false;
    tracking_changed(c);
  }
  unwatch_all(c);
  coord_keeper_.connection_closed(c.id);  // its locks taken without SESSION
  if (c.lock_wait != 0)  // its WARP.LOCK leaves the queue; its answer is still awaited
    if (auto w = lock_waits_.find(c.id); w != lock_waits_.end() && w->second.cancel)
      w->second.cancel();
  auto it = clients_.find(c.id);
  if (it != clients_.end()) {
    // Freed after this loop iteration: epoll events of this round may still point at it.
    graveyard_.push_back(std::move(it->second));
    clients_.erase(it);
    clients_gauge.store(clients_.size(), std::memory_order_relaxed);
  }
}

void server::account(client& c) noexcept {
  const std::size_t now = c.memory();
  client_memory_ = client_memory_ - c.mem_accounted + now;
  c.mem_accounted = now;
  client_memory_gauge.store(client_memory_, std::memory_order_relaxed);
}

void server::enforce_client_memory() {
  // Like Redis's maxmemory-clients: the biggest clients go first, as few as it takes.
  // Everyone's figure is refreshed first (pushes grow buffers outside account()).
  std::vector<client*> by_size;
  by_size.reserve(clients_.size());
  for (auto& [id, c] : clients_) {
    if (c->closed) continue;
    account(*c);
    by_size.push_back(c.get());
  }
  if (client_memory_ <= options_.max_client_memory) return;
  std::sort(by_size.begin(), by_size.end(),
            [](const client* a, const client* b) { return a->mem_accounted > b->mem_accounted; });
  for (client* c : by_size) {
    if (client_memory_ <= options_.max_client_memory) break;
    spdlog::warn(
        "resp: disconnecting client {} (id {}): client buffers total {} bytes > "
        "resp-max-client-memory {}; this client holds {} bytes",
        c->addr, c->id, client_memory_, options_.max_client_memory, c->mem_accounted);
    client_memory_disconnects.fetch_add(1, std::memory_order_relaxed);
    close_client(*c);
  }
}

void server::auth_failed(client& c) {
  const auto n = ++c.auth_failures;
  auth_failures.fetch_add(1, std::memory_order_relaxed);
  if (options_.auth_max_failures > 0 && n >= options_.auth_max_failures) {
    spdlog::warn("resp: closing client {} after {} failed AUTH attempts", c.addr, n);
    auth_disconnects.fetch_add(1, std::memory_order_relaxed);
    c.close_after_write = true;  // the WRONGPASS reply goes out first
    return;
  }
  // AUTH runs on the loop thread only; a job's shadow client is never paused.
  if (options_.auth_failure_delay.count() <= 0 || tl_job_server == this) return;
  // Doubling per failure, capped: a guesser gets a handful of tries a second, a user
  // who mistyped once waits 10 ms.
  std::int64_t delay = options_.auth_failure_delay.count();
  for (std::size_t i = 1; i < n && delay < 2000; ++i) delay *= 2;
  delay = std::min<std::int64_t>(delay, 2000);
  c.paused = true;
  set_events(c);
  paused_.emplace(now_ms() + delay, c.id);
}

void server::resume_paused() {
  const auto now = now_ms();
  while (!paused_.empty() && paused_.top().first <= now) {
    auto id = paused_.top().second;
    paused_.pop();
    client* c = find_client(id);
    if (!c || !c->paused) continue;
    c->paused = false;
    set_events(*c);
    process_input(*c);  // what it pipelined meanwhile
    if (!c->closed && c->tls && !c->busy && !c->paused && c->tls->has_pending())
      tls_pending_.push_back(c->id);
  }
}

void server::check_idle() {
  auto now = now_ms();
  auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(options_.idle_timeout).count();
  std::vector<client*> idle;
  for (auto& [id, c] : clients_) {
    // Like Redis, subscribers wait for messages and are never idle; nor is a client
    // waiting for its own slow command.
    if (c->subscriptions() == 0 && !c->busy && now - c->last_ms > limit &&
        c->out_pos >= c->out.size())
      idle.push_back(c.get());
  }
  for (auto* c : idle) {
    ++idle_disconnects;
    close_client(*c);
  }
}

client* server::find_client(std::uint64_t id) {
  auto it = clients_.find(id);
  return it == clients_.end() || it->second->closed ? nullptr : it->second.get();
}

// -- commands ------------------------------------------------------------------------------

bool server::try_batch(client& c, std::span<const std::string_view> args) {
  static const command_def* const set_cmd = find_command("set");
  static const command_def* const incr_cmd = find_command("incr");
  static const command_def* const decr_cmd = find_command("decr");
  static const command_def* const incrby_cmd = find_command("incrby");
  static const command_def* const decrby_cmd = find_command("decrby");
  const std::string_view name = args[0];
  const command_def* cmd = nullptr;
  std::int64_t delta = 0;
  if (args.size() == 3 && name.size() == 3 && same_name(name, "set")) {
    if (typed::needs_escape(args[2])) return false;  // stored escaped: the ordinary path
    cmd = set_cmd;
  } else if (args.size() == 2 && name.size() == 4 && same_name(name, "incr")) {
    cmd = incr_cmd, delta = 1;
  } else if (args.size() == 2 && name.size() == 4 && same_name(name, "decr")) {
    cmd = decr_cmd, delta = -1;
  } else if (args.size() == 3 && name.size() == 6 &&
             (same_name(name, "incrby") || same_name(name, "decrby"))) {
    // A bad increment takes the ordinary path (and its error reply).
    if (!parse_int64(args[2], delta) || delta == std::numeric_limits<std::int64_t>::min())
      return false;
    const bool up = same_name(name, "incrby");
    cmd = up ? incrby_cmd : decrby_cmd;
    if (!up) delta = -delta;
  } else if (args.size() >= 2 && name.size() >= 4 && name.size() <= 6) {
    static const std::array<const command_def*, 7> typed_cmds = {
        find_command("lpush"),  find_command("rpush"), find_command("lpushx"),
        find_command("rpushx"), find_command("lpop"),  find_command("rpop"),
        find_command("zadd")};
    for (auto* t : typed_cmds)
      if (name.size() == t->name.size() && same_name(name, t->name)) cmd = t;
    if (!cmd) return false;
  } else {
    return false;
  }
  if (!c.authenticated || c.caching_left > 0 || (c.proto == 2 && c.subscriptions() > 0) ||
      c.in_multi)  // queued by execute() instead
    return false;
  // A write that must not block the loop takes the ordinary path, to a worker.
  if (remote_storage_ || key_is_strong(args[1])) return false;
  // A SET on a federated CRDT key is a read-modify-write of its state (crdt_commands.cpp).
  if (cmd == set_cmd && crdt_key_of(node_, args[1]) != crdt_key::none) return false;
  // Interest only changes on this thread (update_interest), between commands.
  if (inbox_->interest.load(std::memory_order_relaxed)) return false;
  const bool is_set = cmd == set_cmd;
  const bool is_incr = cmd == incr_cmd || cmd == decr_cmd || cmd == incrby_cmd || cmd == decrby_cmd;
  std::unique_ptr<typed_write> typed;
  if (!is_set && !is_incr && !(typed = make_typed_write(args)))
    return false;  // arguments its handler refuses: it answers the error
  // One kind per batch: a command of another kind runs the batch first.
  if ((!is_set && !set_batch_.empty()) || (!is_incr && !incr_batch_.empty()) ||
      (!typed && !typed_batch_.empty()) ||
      set_batch_.size() + incr_batch_.size() + typed_batch_.size() >= max_batch)
    run_batch(c);
  mark_pending(c);
  ++total_commands;
  ++c.commands;
  c.last_command = cmd;
  batch_cmds_.push_back(cmd);
  if (is_set)
    set_batch_.push_back({args[1], args[2], 0});
  else if (is_incr)
    incr_batch_.push_back(incr_step{args[1], delta});
  else
    typed_batch_.push_back(std::move(typed));
  return true;
}

void server::run_batch(client& c) {
  resp_writer w{c.out, c.proto};
  current_client_ = c.id;
  const auto start = std::chrono::steady_clock::now();
  const auto from = c.out.size();
  if (!set_batch_.empty()) run_set_batch(node_, w, set_batch_);
  if (!incr_batch_.empty()) run_incr_batch(node_, w, incr_batch_);
  if (!typed_batch_.empty()) run_typed_batch(node_, w, typed_batch_);
  current_client_ = 0;
  // A pipelined batch runs as one storage transaction: each of its commands is recorded
  // with the batch's time divided by its size (errors are counted from the first reply).
  if (!batch_cmds_.empty()) {
    auto each = (std::chrono::steady_clock::now() - start) / batch_cmds_.size();
    static const std::string none;
    for (std::size_t i = 0; i < batch_cmds_.size(); ++i)
      meter(batch_cmds_[i], each, i == 0 ? c.out : none, from);
    batch_cmds_.clear();
  }
  set_batch_.clear();
  incr_batch_.clear();
  typed_batch_.clear();
}

// Meters a command run on the loop when the scope ends, unless it went to a worker (the
// worker's completion meters it then).
struct server::metered_scope {
  server& srv;
  const std::string& out;
  std::size_t from;
  const command_def* cmd = nullptr;
  bool handed_off = false;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  ~metered_scope() {
    if (!handed_off) srv.meter(cmd, std::chrono::steady_clock::now() - start, out, from);
  }
};

void server::execute(client& c, std::span<const std::string_view> args) {
  resp_writer w{c.out, c.proto};
  metered_scope metered{*this, c.out, c.out.size()};
  mark_pending(c);
  ++total_commands;
  ++c.commands;
  // Pipelines repeat one command: check the previous one before hashing the name.
  const command_def* cmd = c.last_command;
  if (!cmd || args[0].size() != cmd->name.size() || !same_name(args[0], cmd->name))
    cmd = find_command(args[0]);
  if (!cmd) {
    c.multi_error = c.multi_error || c.in_multi;  // a rejected command aborts the transaction
    if (!c.authenticated) {
      w.error("NOAUTH Authentication required.");
      return;
    }
    // Redis formats these with printf's %.128s and %.*s: each stops at a NUL byte.
    auto c_string = [](std::string_view s) { return s.substr(0, s.find('\0')); };
    std::string msg = "ERR unknown command '";
    msg.append(c_string(args[0]).substr(0, 128));
    msg += "', with args beginning with: ";
    std::size_t listed = 0;
    for (std::size_t i = 1; i < args.size() && listed < 128; ++i) {
      auto a = c_string(args[i]).substr(0, 128 - listed);
      msg += "'";
      msg.append(a);
      msg += "' ";
      listed += a.size() + 3;
    }
    w.error(msg);
    return;
  }
  c.last_command = cmd;
  metered.cmd = cmd;
  if (!c.authenticated && !cmd->no_auth) {
    c.multi_error = c.multi_error || c.in_multi;
    w.error("NOAUTH Authentication required.");
    return;
  }
  int argc = static_cast<int>(args.size());
  if ((cmd->arity > 0 && argc != cmd->arity) || (cmd->arity < 0 && argc < -cmd->arity)) {
    c.multi_error = c.multi_error || c.in_multi;
    w.error("ERR wrong number of arguments for '" + std::string(cmd->name) + "' command");
    return;
  }
  if (c.proto == 2 && c.subscriptions() > 0 && !cmd->in_pubsub) {
    c.multi_error = c.multi_error || c.in_multi;
    w.error("ERR Can't execute '" + std::string(cmd->name) +
            "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
            "this context");
    return;
  }
  if (c.in_multi && queue_in_multi(c, w, cmd, args)) return;
  if (needs_worker(cmd, args)) {
    metered.handed_off = true;
    return start_job(c, cmd, args);
  }
  const std::size_t out_before = c.out.size();
  const std::uint64_t hits_before = keyspace_hits;
  current_client_ = c.id;
  context ctx{*this, c, w, args, node_};
  cmd->fn(ctx);
  current_client_ = 0;
  if (ctx.waits) {  // WARP.LOCK: answered when the wait ends (finish_locks), metered then
    metered.handed_off = true;
    return;
  }
  if (ctx.defer) {  // an L1 miss: nothing was written or changed yet but the reply
    c.out.resize(out_before);
    keyspace_hits = hits_before;
    metered.handed_off = true;
    return start_job(c, cmd, args);
  }
  // CLIENT CACHING covers exactly the command after it.
  if (c.caching_left > 0 && --c.caching_left == 0) c.caching = -1;
  if (!c.authenticated) return;
  if (c.parser.limits().unauthenticated) c.parser.set_limits(limits_for(options_, true));
}

// -- slow commands on workers ------------------------------------------------------------

bool server::key_is_strong(std::string_view key) const {
  return any_strong_ && node_.policy(key).consistency == mode::strong_distributed;
}

void server::refresh_patterns() {
  // Once a second: a pattern registered since is only noticed then, and until then a
  // write of its keys runs on the loop (slower for the others, still correct).
  auto& reg = node_.patterns();
  bool any = reg.default_policy().consistency == mode::strong_distributed;
  for (const auto& e : reg.entries()) any = any || e.policy.consistency == mode::strong_distributed;
  any_strong_ = any;
  patterns_checked_ms_ = loop_now_ms_;
}

bool server::needs_worker(const command_def* cmd, std::span<const std::string_view> args) {
  // What may wait on the network (a quorum, PostgreSQL, a key range's owner) or on another
  // process (a locked SQLite file) leaves the loop thread. Reads of L1 (GET, MGET, STRLEN,
  // GETEX without options) decide in their handler: a hit stays here, a miss sets
  // ctx.defer. Writes to memory or SQLite storage of strong_local/eventual keys stay here:
  // they touch only this process (and run as batches when pipelined).
  enum class kind : std::uint8_t { inline_only, l1_read, write, storage_read, keyspace };
  // Indexed by the command's position in the table: no hashing on the hit path.
  static const std::vector<kind> kinds = [] {
    const auto& table = commands();
    std::vector<kind> v(table.size(), kind::inline_only);
    auto put = [&](std::initializer_list<std::string_view> names, kind k) {
      for (auto name : names)
        if (auto* d = find_command(name)) v[static_cast<std::size_t>(d - table.data())] = k;
    };
    put({"get", "mget", "strlen", "getex", "type"}, kind::l1_read);
    put({"set", "setex", "psetex", "setnx", "getset", "getdel", "mset", "del", "unlink", "expire",
         "pexpire", "expireat", "pexpireat", "persist", "incr", "decr", "incrby", "decrby",
         "append"},
        kind::write);
    // Typed commands (typed_commands.hpp): reads decide in their handler like GET.
    put({"llen",      "lrange",        "lindex",
         "zscore",    "zcard",         "zrange",
         "zrevrange", "zrangebyscore", "zrevrangebyscore",
         "zcount",    "zrank",         "zrevrank",
         "smembers",  "sismember",     "scard",
         "hget",      "hmget",         "hgetall",
         "hkeys",     "hvals",         "hlen",
         "hexists"},
        kind::l1_read);
    put({"lpush", "rpush", "lpushx", "rpushx",  "lpop",  "rpop",    "lset",
         "lrem",  "ltrim", "zadd",   "zincrby", "zrem",  "zpopmin", "zpopmax",
         "sadd",  "srem",  "spop",   "hset",    "hmset", "hdel",    "hincrby"},
        kind::write);
    put({"exists", "ttl", "pttl"}, kind::storage_read);
    put({"dbsize", "flushdb", "flushall"}, kind::keyspace);
    return v;
  }();
  kind k = kinds[static_cast<std::size_t>(cmd - commands().data())];
  if (k == kind::inline_only) return false;
  if (k == kind::l1_read) {
    if (cmd->name != "getex" || args.size() == 2) return false;  // the handler decides
    k = kind::write;  // GETEX with an option writes the expiry
  }
  if (remote_storage_) return true;
  if (k == kind::keyspace || (k == kind::write && !any_strong_)) return false;
  const auto argc = static_cast<int>(args.size());
  const int last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
  for (int i = cmd->first_key; i > 0 && i <= last && i < argc; i += std::max(cmd->step, 1)) {
    auto key = args[static_cast<std::size_t>(i)];
    if (key_is_strong(key)) return true;
    // EXISTS/TYPE/TTL read storage when L1 misses (TTL always: L1 may hold a shorter copy).
    if (k == kind::storage_read && !node_.l1().contains(key)) return true;
  }
  return false;
}

void server::start_job(client& c, const command_def* cmd, std::span<const std::string_view> args) {
  auto j = std::make_unique<job>();
  j->client_id = c.id;
  j->cmd = cmd;
  j->started = std::chrono::steady_clock::now();
  j->argv.assign(args.begin(), args.end());  // c.in moves on: own the arguments
  j->tx = std::move(c.pending_tx);           // an EXEC over strong keys (tx_commands.cpp)
  auto& s = j->shadow;
  s.id = c.id;
  s.proto = c.proto;
  s.authenticated = c.authenticated;
  s.tracking = c.tracking;
  s.bcast = c.bcast;
  s.optin = c.optin;
  s.optout = c.optout;
  s.noloop = c.noloop;
  s.redirect = c.redirect;
  s.caching = c.caching;
  s.caching_left = c.caching_left;
  // Tracked reads are remembered now, before the value is read: a change from here on is
  // invalidated (after the reply: pushes to a busy client are held, see finish_jobs).
  if (c.tracking && !c.bcast &&
      (cmd->flags.starts_with("readonly") || (cmd->name == "getex" && args.size() == 2))) {
    const auto argc = static_cast<int>(args.size());
    const int last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
    for (int i = cmd->first_key; i > 0 && i <= last && i < argc; i += std::max(cmd->step, 1))
      remember_read(c, args[static_cast<std::size_t>(i)]);
  }
  c.busy = true;
  set_events(c);  // stop reading it until the reply is back
  std::lock_guard<std::mutex> guard{jobs_mtx_};
  jobs_.push_back(std::move(j));
  dispatch_jobs();
}

void server::dispatch_jobs() {
  while (jobs_running_ < max_running_jobs && !jobs_.empty() && !jobs_stopping_) {
    // std::function needs a copyable callable: the job travels as a raw pointer.
    job* j = jobs_.front().release();
    jobs_.pop_front();
    ++jobs_running_;
    if (!node_.post([this, j] { run_job(std::unique_ptr<job>{j}); })) {
      // The node is stopping: the command gets an error instead of running.
      --jobs_running_;
      std::unique_ptr<job> failed{j};
      resp_writer w{failed->out, failed->shadow.proto};
      w.error("ERR node is stopping");
      job_done(std::move(failed));
    }
  }
}

void server::run_job(std::unique_ptr<job> j) {
  std::vector<std::string_view> args(j->argv.begin(), j->argv.end());
  resp_writer w{j->out, j->shadow.proto};
  context ctx{*this, j->shadow, w, args, node_, j.get()};
  tl_job_server = this;
  tl_job = j.get();
  if (j->tx)
    run_strong_tx(*j);
  else
    j->cmd->fn(ctx);
  tl_job = nullptr;
  tl_job_server = nullptr;
  job_done(std::move(j));
  std::lock_guard<std::mutex> guard{jobs_mtx_};
  --jobs_running_;
  dispatch_jobs();
  jobs_cv_.notify_all();
}

void server::job_done(std::unique_ptr<job> j) {
  {
    std::lock_guard<std::mutex> guard{done_mtx_};
    done_.push_back(std::move(j));
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
}

void server::finish_jobs() {
  {
    std::lock_guard<std::mutex> guard{done_mtx_};
    scratch_done_.swap(done_);
  }
  for (auto& j : scratch_done_) {
    if (!j->rerun) meter(j->cmd, std::chrono::steady_clock::now() - j->started, j->out, 0);
    client* c = find_client(j->client_id);
    if (!c) {  // closed while its command ran: the reply is dropped, not its changes
      for (const auto& e : j->events) handle_event(e);
      continue;
    }
    if (j->rerun) {  // the worker only prepared it: the command runs here now
      c->busy = false;
      set_events(*c);
      std::vector<std::string_view> args(j->argv.begin(), j->argv.end());
      execute(*c, args);
      if (!local_events_.empty()) dispatch_events();
      if (!c->closed && !c->busy) process_input(*c);
      continue;
    }
    if (!j->watch_snapshot.empty()) finish_strong_watch(*c, *j);
    c->out += j->out;
    c->out += c->held;  // invalidations and messages that arrived meanwhile
    c->held.clear();
    c->busy = false;
    keyspace_hits += j->hits;
    keyspace_misses += j->misses;
    if (c->caching_left > 0 && --c->caching_left == 0) c->caching = -1;
    // The command's own changes follow its reply, as for a command run on the loop.
    for (const auto& e : j->events) handle_event(e);
    if (!reply_ready(*c)) continue;
    process_input(*c);  // the pipeline it sent meanwhile
    if (!c->closed && c->tls && !c->busy && !c->paused && c->tls->has_pending())
      tls_pending_.push_back(c->id);
  }
  scratch_done_.clear();
}

// -- change events -------------------------------------------------------------------------

void server::drain_remote_events() {
  {
    std::lock_guard<std::mutex> guard{inbox_->mtx};
    scratch_events_.swap(inbox_->events);
  }
  for (auto& e : scratch_events_) handle_event(e);
  scratch_events_.clear();
}

void server::dispatch_events() {
  // handle_event may run commands' side effects? No: it only writes to output buffers, so
  // new local events cannot appear while iterating; swap anyway to be safe.
  if (local_events_.empty()) return;
  std::vector<pending_event> batch;
  batch.swap(local_events_);
  for (auto& e : batch) handle_event(e);
}

void server::update_interest() {
  bool any = !channels_.empty() || !patterns_.empty() || tracking_clients_ > 0 || !watched_.empty();
  inbox_->interest.store(any, std::memory_order_release);
}

void server::watch_expiry(std::string_view key) {
  constexpr std::size_t max_expiries = 1'000'000;
  if (expiries_.size() >= max_expiries) return;
  auto info = node_.l1().info(key);
  if (info && info->expires_at_ms != 0) expiries_.emplace(info->expires_at_ms, std::string(key));
}

void server::fire_expirations() {
  auto now = now_ms();
  while (!expiries_.empty() && expiries_.top().first <= now) {
    std::string key = std::move(const_cast<expiry_entry&>(expiries_.top()).second);
    expiries_.pop();
    if (node_.l1().contains(key)) continue;  // written again since: its own entry follows
    // L1's copy may end before the value does (a pattern's cache TTL): only a value gone
    // from storage too has expired.
    auto left = node_.expiry(key);
    if (left || left.code() != errc::not_found) continue;
    handle_event({change_event{change_event::kind::expired, key, {}, false}, 0});
  }
}

void server::distrust_tracked() {
  // A gap in a peer's stream: any eventual_distributed key may have changed unseen. Keys
  // handed to default-mode trackers are known: invalidate those of that mode. Broadcast
  // trackers were promised every change under their prefixes, which are not enumerable:
  // they drop their whole cache (a null invalidation, as for FLUSHDB).
  if (tracking_clients_ == 0) return;
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (node_.policy(it->first).consistency != mode::eventual_distributed) {
      ++it;
      continue;
    }
    for (auto id : it->second) {
      client* t = find_client(id);
      if (t && t->tracking && !t->bcast) send_invalidation(*t, &it->first);
    }
    it = tracked_.erase(it);
  }
  for (auto id : bcast_clients_) {
    client* t = find_client(id);
    if (t && t->tracking) send_invalidation(*t, nullptr);
  }
}

void server::handle_event(const pending_event& e) {
  const auto& ev = e.ev;
  if (!watched_.empty()) touch_watched(ev);
  if (ev.what == change_event::kind::set &&
      (!bcast_clients_.empty() || !channels_.empty() || !patterns_.empty()))
    watch_expiry(ev.key);
  if (ev.what == change_event::kind::distrusted) {
    distrust_tracked();
    return;
  }
  if (!channels_.empty() || !patterns_.empty()) deliver_keyspace(ev);
  if (tracking_clients_ == 0) return;
  if (ev.what == change_event::kind::cleared) {
    // FLUSHDB: every tracking client drops its whole cache (a null invalidation).
    tracked_.clear();
    for (auto& [id, c] : clients_)
      if (c->tracking && !c->closed) send_invalidation(*c, nullptr);
    return;
  }
  if (auto it = tracked_.find(ev.key); it != tracked_.end()) {
    auto ids = std::move(it->second);
    tracked_.erase(it);
    for (auto id : ids) {
      client* t = find_client(id);
      if (!t || !t->tracking || t->bcast) continue;
      if (t->noloop && id == e.origin) continue;
      send_invalidation(*t, &ev.key);
    }
  }
  for (auto id : bcast_clients_) {
    client* t = find_client(id);
    if (!t || !t->tracking) continue;
    if (t->noloop && id == e.origin) continue;
    bool match = t->prefixes.empty();
    for (const auto& p : t->prefixes) {
      if (std::string_view(ev.key).starts_with(p)) {
        match = true;
        break;
      }
    }
    if (match) send_invalidation(*t, &ev.key);
  }
}

void server::send_invalidation(client& tracker, const std::string* key) {
  client* target = &tracker;
  bool redirected = false;
  if (tracker.redirect != 0) {
    target = find_client(tracker.redirect);
    if (!target) {
      if (tracker.proto >= 3) {
        resp_writer w{tracker.push_buffer(), 3};
        w.push(2);
        w.bulk("tracking-redir-broken");
        w.integer(static_cast<std::int64_t>(tracker.redirect));
        mark_pending(tracker);
      }
      return;
    }
    redirected = true;
  }
  resp_writer w{target->push_buffer(), target->proto};
  if (target->proto >= 3) {
    w.push(2);
    w.bulk("invalidate");
  } else if (redirected && target->subscriptions() > 0) {
    // RESP2 has no push type: the redirect target gets a Pub/Sub message instead.
    w.push(3);
    w.bulk("message");
    w.bulk("__redis__:invalidate");
  } else {
    return;  // a RESP2 connection without redirect cannot receive invalidations
  }
  if (key) {
    w.array(1);
    w.bulk(*key);
  } else {
    w.null();
  }
  mark_pending(*target);
}

void server::remember_read(client& c, std::string_view key) {
  if (!c.tracking || c.bcast) return;
  if (c.optin && c.caching != 1) return;
  if (c.optout && c.caching == 0) return;
  if (tl_job_server == this) return;  // on a worker: start_job remembered it already
  if (tracked_.size() >= max_tracked_keys && !tracked_.contains(key)) {
    // Bounded like Redis's tracking-table-max-keys: evict one key, telling its readers.
    auto victim = tracked_.begin();
    auto ids = std::move(victim->second);
    std::string victim_key = victim->first;
    tracked_.erase(victim);
    for (auto id : ids)
      if (client* t = find_client(id); t && t->tracking) send_invalidation(*t, &victim_key);
  }
  auto it = tracked_.find(key);
  if (it == tracked_.end()) {
    it = tracked_.emplace(std::string(key), std::unordered_set<std::uint64_t>{}).first;
    watch_expiry(key);
  }
  it->second.insert(c.id);
}

void server::tracking_changed(client& c) {
  if (c.tracking && c.bcast)
    bcast_clients_.insert(c.id);
  else
    bcast_clients_.erase(c.id);
  std::size_t count = 0;
  for (auto& [id, cl] : clients_)
    if (cl->tracking && !cl->closed) ++count;
  tracking_clients_ = count;
  update_interest();
}

// -- pub/sub -------------------------------------------------------------------------------

void server::deliver_keyspace(const change_event& ev) {
  // Channels follow Redis keyspace notifications (database 0):
  //   __keyspace@0__:<key>    payload: the event (set, del, expired, invalidated)
  //   __keyevent@0__:<event>  payload: the key
  auto name = event_name(ev.what);
  if (ev.what == change_event::kind::cleared) {
    publish("__keyevent@0__:flushdb", "");
    return;
  }
  std::string channel = "__keyspace@0__:";
  channel += ev.key;
  publish(channel, name);
  channel = "__keyevent@0__:";
  channel += name;
  publish(channel, ev.key);
}

std::size_t server::publish(std::string_view channel, std::string_view message) {
  std::size_t receivers = 0;
  if (auto it = channels_.find(channel); it != channels_.end()) {
    for (client* c : it->second) {
      resp_writer w{c->push_buffer(), c->proto};
      w.push(3);
      w.bulk("message");
      w.bulk(channel);
      w.bulk(message);
      mark_pending(*c);
      ++receivers;
    }
  }
  for (auto& [pattern, subs] : patterns_) {
    if (!glob_match(pattern, channel)) continue;
    for (client* c : subs) {
      resp_writer w{c->push_buffer(), c->proto};
      w.push(4);
      w.bulk("pmessage");
      w.bulk(pattern);
      w.bulk(channel);
      w.bulk(message);
      mark_pending(*c);
      ++receivers;
    }
  }
  return receivers;
}

void server::subscribe(client& c, std::string_view channel, bool pattern) {
  auto& own = pattern ? c.patterns : c.channels;
  auto& registry = pattern ? patterns_ : channels_;
  if (own.emplace(channel).second) {
    auto it = registry.find(channel);
    if (it == registry.end())
      it = registry.emplace(std::string(channel), std::unordered_set<client*>{}).first;
    it->second.insert(&c);
  }
  resp_writer w{c.out, c.proto};
  w.push(3);
  w.bulk(pattern ? "psubscribe" : "subscribe");
  w.bulk(channel);
  w.integer(static_cast<std::int64_t>(c.subscriptions()));
  update_interest();
}

void server::unsubscribe(client& c, std::string_view channel, bool pattern, bool reply) {
  auto& own = pattern ? c.patterns : c.channels;
  auto& registry = pattern ? patterns_ : channels_;
  if (auto it = own.find(std::string(channel)); it != own.end()) {
    own.erase(it);
    if (auto r = registry.find(channel); r != registry.end()) {
      r->second.erase(&c);
      if (r->second.empty()) registry.erase(r);
    }
  }
  if (reply) {
    resp_writer w{c.out, c.proto};
    w.push(3);
    w.bulk(pattern ? "punsubscribe" : "unsubscribe");
    w.bulk(channel);
    w.integer(static_cast<std::int64_t>(c.subscriptions()));
  }
  update_interest();
}

void server::unsubscribe_all(client& c, bool pattern, bool reply) {
  auto& own = pattern ? c.patterns : c.channels;
  if (own.empty()) {
    if (reply) {
      resp_writer w{c.out, c.proto};
      w.push(3);
      w.bulk(pattern ? "punsubscribe" : "unsubscribe");
      w.null();
      w.integer(static_cast<std::int64_t>(c.subscriptions()));
    }
    return;
  }
  std::vector<std::string> names(own.begin(), own.end());
  for (const auto& name : names) unsubscribe(c, name, pattern, reply);
}

// -- SCAN cursors --------------------------------------------------------------------------

std::uint64_t server::save_cursor(std::string after) {
  // node-redis parses cursors as JS numbers: stay below 2^53 and never hand out 0.
  std::uint64_t id = next_cursor_++;
  if (next_cursor_ >= (std::uint64_t{1} << 53)) next_cursor_ = 1;
  cursors_[id] = std::move(after);
  cursor_order_.push_back(id);
  while (cursor_order_.size() > max_cursors) {
    cursors_.erase(cursor_order_.front());
    cursor_order_.pop_front();
  }
  return id;
}

bool server::load_cursor(std::uint64_t cursor, std::string& after) {
  if (cursor == 0) {
    after.clear();
    return true;
  }
  auto it = cursors_.find(cursor);
  if (it == cursors_.end()) return false;
  after = it->second;
  return true;
}

resp_stats server::stats() const {
  resp_stats s;
  s.auth_failures = auth_failures.load(std::memory_order_relaxed);
  s.auth_disconnects = auth_disconnects.load(std::memory_order_relaxed);
  s.client_memory_disconnects = client_memory_disconnects.load(std::memory_order_relaxed);
  s.tls_handshake_failures = tls_handshake_failures.load(std::memory_order_relaxed);
  s.client_memory_bytes = client_memory_gauge.load(std::memory_order_relaxed);
  s.connected_clients = clients_gauge.load(std::memory_order_relaxed);
  s.tracking_keys = tracked_keys_gauge.load(std::memory_order_relaxed);
  const auto& table = commands();
  for (std::size_t i = 0; i <= table.size(); ++i) {
    auto snap = command_latency_[i].snapshot();
    if (snap.count == 0) continue;
    s.commands.push_back({i < table.size() ? table[i].name : std::string_view{"unknown"}, snap});
  }
  const auto& kinds = error_kinds();
  for (std::size_t i = 0; i < kinds.size(); ++i)
    if (auto n = errors_by_kind_[i].load(std::memory_order_relaxed))
      s.errors.emplace_back(kinds[i], n);
  return s;
}

}  // namespace detail

std::string resp_server::prometheus_text(std::string_view node_name) const {
  const auto s = stats();
  const std::string label = "{node=\"" + prometheus_label(node_name) + "\"} ";
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                    std::uint64_t v) {
    append_prometheus_header(out, name, type, help);
    out += name;
    out += label;
    out += std::to_string(v);
    out += '\n';
  };
  family("warp_resp_auth_failures_total", "counter",
         "Failed AUTH/HELLO AUTH attempts on the RESP port", s.auth_failures);
  family("warp_resp_auth_disconnects_total", "counter",
         "RESP connections closed after resp-auth-max-failures failed AUTH attempts",
         s.auth_disconnects);
  family("warp_resp_client_memory_disconnects_total", "counter",
         "RESP clients disconnected because all client buffers exceeded resp-max-client-memory",
         s.client_memory_disconnects);
  family("warp_resp_tls_handshake_failures_total", "counter",
         "Failed TLS handshakes on the RESP port (plaintext, bad certificates, garbage)",
         s.tls_handshake_failures);
  family("warp_resp_client_memory_bytes", "gauge",
         "Bytes held by all RESP clients' query and output buffers", s.client_memory_bytes);
  family("warp_resp_connected_clients", "gauge", "Connected RESP clients", s.connected_clients);
  family("warp_resp_tracking_keys", "gauge",
         "Keys remembered for client-side caching (CLIENT TRACKING)", s.tracking_keys);
  const std::string node_label = "node=\"" + prometheus_label(node_name) + "\"";
  // Written even when empty (HELP/TYPE only), so dashboards and alert rules find the family.
  append_prometheus_header(out, "warp_resp_commands_total", "counter",
                           "RESP commands run, by command name");
  for (const auto& cmd : s.commands)
    out += "warp_resp_commands_total{" + node_label + ",command=\"" + std::string{cmd.name} +
           "\"} " + std::to_string(cmd.latency.count) + "\n";
  append_prometheus_header(out, "warp_resp_errors_total", "counter",
                           "RESP error replies, by kind (leading word, or warp_<code>)");
  for (const auto& [kind, n] : s.errors)
    out += "warp_resp_errors_total{" + node_label + ",kind=\"" + std::string{kind} + "\"} " +
           std::to_string(n) + "\n";
  append_prometheus_header(out, "warp_resp_command_duration_seconds", "histogram",
                           "Latency of RESP commands, by command name (queueing on a worker "
                           "included)");
  for (const auto& cmd : s.commands)
    append_histogram(out, "warp_resp_command_duration_seconds",
                     node_label + ",command=\"" + std::string{cmd.name} + "\"", cmd.latency);
  return out;
}

result<std::unique_ptr<resp_server>> resp_server::start(node& n, resp_options options) {
  auto s = std::make_unique<detail::server>(n, std::move(options));
  auto bound = s->bind();
  if (!bound) return bound.err();
  s->start_thread();
  return std::unique_ptr<resp_server>{std::move(s)};
}

}  // namespace warp::sidecar
