#include "bus/node_transport.hpp"

#include "bus/node_fault.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/middleman_actor_impl.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/doorman_impl.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/policy/tcp.hpp>

#include "runtime/core/log.hpp"
#include "runtime/core/openssl_util.hpp"

namespace warp::bus {

namespace {

namespace net = caf::io::network;
using net::native_socket;
using net::rw_state;

/// Name under which the guarded middleman actor sits in its system's registry.
caf::atom_value registry_key() {
  return caf::atom("WarpLink");
}

/// A read buffer larger than this is released after the message that needed it.
constexpr std::size_t keep_read_buffer = 1024 * 1024;
/// What a TLS side may hold back while its handshake runs (BASP's own handshake, ~1 KiB).
constexpr std::size_t max_held_output = 256 * 1024;

using detail::openssl_errors;
using detail::ssl_ctx_ptr;
using detail::ssl_ptr;

/// Accepted connections that have not finished their handshake. A peer that connects and
/// goes quiet holds a slot until `handshake_timeout`; the next accept then shuts its socket
/// (its scribe sees EOF and closes the normal way). Touched on accept and when a
/// handshake ends, never per message.
class pending_connections {
 public:
  using handle = std::list<std::pair<native_socket, std::chrono::steady_clock::time_point>>::iterator;

  /// Makes room by shutting expired connections; false when there is still none.
  bool admit(native_socket fd, std::size_t cap, std::chrono::milliseconds timeout, handle& out) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [other, since] : list_)
      if (now - since > timeout && other != net::invalid_native_socket) {
        ::shutdown(other, SHUT_RDWR);
        other = net::invalid_native_socket;  // shut once; the slot goes when its scribe does
      }
    std::size_t live = 0;
    for (auto& entry : list_) live += entry.first != net::invalid_native_socket;
    if (live >= cap) return false;
    out = list_.emplace(list_.end(), fd, now);
    return true;
  }

  void leave(handle h) {
    std::lock_guard<std::mutex> guard{mtx_};
    list_.erase(h);
  }

 private:
  std::mutex mtx_;
  std::list<std::pair<native_socket, std::chrono::steady_clock::time_point>> list_;
};

/// How long an accepted connection may take to finish its (TLS and BASP) handshake
/// before a newcomer may take its place.
constexpr std::chrono::milliseconds handshake_timeout{5000};

/// Test-only partitions (set_partition): the peers cut off and the live connections this
/// system dialed, by the HOST:PORT it dialed. Touched when a connection is dialed or
/// closed and when the partition changes, never per message.
struct fault_injection {
  std::mutex mtx;
  std::set<std::string> blocked;
  std::multimap<std::string, native_socket> dialed;
};

/// Shared by the middleman actor, its doormen and every connection's scribe.
struct transport_state {
  mutable fault_injection faults;
  transport_options opts;
  ssl_ctx_ptr tls;  ///< null = plain TCP
  std::shared_ptr<node_transport_counters> counters = std::make_shared<node_transport_counters>();
  mutable pending_connections pending;
  /// This system's node id as BASP serializes it after the kind: process id, host id.
  std::array<unsigned char, 24> own_node_id{};
};

/// One TLS context for the process's lifetime of this transport: both sides present their
/// certificate and require the peer's, chained to the configured CA.
result<ssl_ctx_ptr> make_tls_context(const transport_options& o) {
  if (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty())
    return error{errc::invalid_argument,
                 "TLS needs all three of --tls-cert, --tls-key and --tls-ca"};
  for (const auto* path : {&o.tls_cert, &o.tls_key, &o.tls_ca})
    if (!std::ifstream{*path}.good())
      return error{errc::invalid_argument, "cannot read TLS file '" + *path + "'"};
  ERR_clear_error();
  ssl_ctx_ptr ctx{SSL_CTX_new(TLS_method())};
  if (!ctx) return error{errc::internal, "cannot create a TLS context: " + openssl_errors()};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.tls_cert.c_str()) != 1)
    return error{errc::invalid_argument,
                 "cannot load certificate '" + o.tls_cert + "': " + openssl_errors()};
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1)
    return error{errc::invalid_argument,
                 "cannot load private key '" + o.tls_key + "': " + openssl_errors()};
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return error{errc::invalid_argument, "private key '" + o.tls_key +
                                             "' does not match certificate '" + o.tls_cert +
                                             "'"};
  if (SSL_CTX_load_verify_locations(ctx.get(), o.tls_ca.c_str(), nullptr) != 1)
    return error{errc::invalid_argument,
                 "cannot load CA certificates '" + o.tls_ca + "': " + openssl_errors()};
  // Mutual: a peer without a certificate, or with one the CA did not sign, fails the
  // handshake on either side.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // CAF's stream retries a write from wherever its buffer is now and with whatever is left.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

/// OpenSSL writes with write(2), which raises SIGPIPE on a connection the peer closed.
/// The I/O threads that run TLS connections block it once (the write then fails with
/// EPIPE, which is handled); the rest of the process is left alone.
void block_sigpipe_in_this_thread() {
  thread_local bool blocked = false;
  if (blocked) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  blocked = true;
}

std::string peer_of(native_socket fd) {
  auto addr = net::remote_addr_of_fd(fd);
  auto port = net::remote_port_of_fd(fd);
  if (!addr) return "?";
  return *addr + ":" + (port ? std::to_string(*port) : std::string{"?"});
}

/// CAF stream policy for a TLS connection. BASP may write (its server handshake) before
/// the TLS handshake is through; those bytes are held and sent once it is, so a peer
/// that never completes its handshake costs a blocked read, not a spinning write.
class tls_policy {
 public:
  tls_policy(std::shared_ptr<const transport_state> st, ssl_ptr ssl)
      : st_(std::move(st)), ssl_(std::move(ssl)) {}

  rw_state read_some(size_t& result, native_socket fd, void* buf, size_t len) {
    result = 0;
    if (auto hs = advance_handshake(fd); hs != handshake::done)
      return hs == handshake::failed ? rw_state::failure : rw_state::success;
    if (len == 0) return rw_state::indeterminate;
    ERR_clear_error();
    auto n = SSL_read(ssl_.get(), buf, static_cast<int>(std::min<size_t>(len, INT32_MAX)));
    if (n > 0) {
      result = static_cast<size_t>(n);
      return rw_state::success;
    }
    return retry_later(n) ? rw_state::success : rw_state::failure;
  }

  rw_state write_some(size_t& result, native_socket fd, const void* buf, size_t len) {
    result = 0;
    auto hs = advance_handshake(fd);
    if (hs == handshake::failed) return rw_state::failure;
    if (len == 0) return rw_state::indeterminate;  // the launch's empty write: nothing to send
    if (hs == handshake::in_progress) {
      if (held_.size() + len > max_held_output) return rw_state::failure;
      auto* bytes = static_cast<const char*>(buf);
      held_.insert(held_.end(), bytes, bytes + len);
      result = len;
      return rw_state::success;
    }
    ERR_clear_error();
    auto n = SSL_write(ssl_.get(), buf, static_cast<int>(std::min<size_t>(len, INT32_MAX)));
    if (n > 0) {
      result = static_cast<size_t>(n);
      return rw_state::success;
    }
    return retry_later(n) ? rw_state::success : rw_state::failure;
  }

  bool try_accept(native_socket& result, native_socket fd) {
    return caf::policy::tcp::try_accept(result, fd);
  }

  bool must_read_more(native_socket, size_t threshold) {
    return threshold > 0 && static_cast<size_t>(SSL_pending(ssl_.get())) >= threshold;
  }

 private:
  enum class handshake { in_progress, done, failed };

  handshake advance_handshake(native_socket fd) {
    if (state_ != handshake::in_progress) return state_;
    block_sigpipe_in_this_thread();
    ERR_clear_error();
    auto r = SSL_do_handshake(ssl_.get());
    if (r != 1) {
      if (retry_later(r)) return state_;
      st_->counters->refused_tls.fetch_add(1, std::memory_order_relaxed);
      auto verify = SSL_get_verify_result(ssl_.get());
      detail::log()->warn("node port: TLS handshake with {} failed: {}{}", peer_of(fd),
                          openssl_errors(),
                          verify != X509_V_OK
                              ? std::string{" (certificate: "} +
                                    X509_verify_cert_error_string(verify) + ")"
                              : std::string{});
      return state_ = handshake::failed;
    }
    state_ = handshake::done;
    // What BASP wrote meanwhile goes out first. Right after a handshake round trip the
    // socket buffer is empty and this is about a KiB, so it goes at once; if it does not,
    // the connection is dropped rather than left silently stalled.
    std::size_t sent = 0;
    while (sent < held_.size()) {
      auto n = SSL_write(ssl_.get(), held_.data() + sent, static_cast<int>(held_.size() - sent));
      if (n <= 0) {
        detail::log()->warn("node port: could not send the handshake to {}", peer_of(fd));
        return state_ = handshake::failed;
      }
      sent += static_cast<std::size_t>(n);
    }
    std::vector<char>{}.swap(held_);
    return state_;
  }

  bool retry_later(int ret) {
    auto e = SSL_get_error(ssl_.get(), ret);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
  }

  std::shared_ptr<const transport_state> st_;
  ssl_ptr ssl_;
  handshake state_ = handshake::in_progress;
  std::vector<char> held_;
};

/// A BASP connection whose reads are capped (see the header). `Policy` is plain TCP or
/// tls_policy.
template <class Policy>
class guarded_scribe final : public caf::io::scribe {
 public:
  /// `slot`: an accepted connection's place among the pending ones (none when we dialed).
  /// `dialed_to`: the HOST:PORT we dialed (empty when accepted), for set_partition.
  template <class... Ts>
  guarded_scribe(net::default_multiplexer& mx, native_socket fd,
                 std::shared_ptr<const transport_state> st,
                 std::optional<pending_connections::handle> slot, std::string dialed_to,
                 Ts&&... policy_args)
      : scribe(net::conn_hdl_from_socket(fd)),
        st_(std::move(st)),
        slot_(slot),
        accepted_(slot.has_value()),
        dialed_to_(std::move(dialed_to)),
        stream_(mx, fd, std::forward<Ts>(policy_args)...) {
    if (slot_) st_->counters->pending.fetch_add(1, std::memory_order_relaxed);
    if (!dialed_to_.empty()) {
      std::lock_guard<std::mutex> guard{st_->faults.mtx};
      st_->faults.dialed.emplace(dialed_to_, fd);
    }
  }

  ~guarded_scribe() override {
    leave_pending();
    if (!dialed_to_.empty()) {
      // Before the stream closes the socket: set_partition never shuts a reused fd.
      std::lock_guard<std::mutex> guard{st_->faults.mtx};
      auto [first, last] = st_->faults.dialed.equal_range(dialed_to_);
      for (auto it = first; it != last; ++it)
        if (it->second == stream_.fd()) {
          st_->faults.dialed.erase(it);
          break;
        }
    }
  }

  void configure_read(caf::io::receive_policy::config config) override {
    // BASP reads a 32-byte header, then exactly the payload it announces. The first
    // message of a connection is the handshake, before which the peer is nobody.
    auto limit = reads_ < 2 ? st_->opts.max_handshake_size : st_->opts.max_message_size;
    if (refused_) return;
    if (config.second > limit) {
      refuse(config.second, limit);
      return;
    }
    if (++reads_ > 2) leave_pending();
    stream_.configure_read(config);
    if (!launched_) launch();
  }

  bool consume(caf::execution_unit* ctx, const void* buf, size_t num_bytes) override {
    if (refused_) return true;  // draining what arrived before the shut socket's EOF
    if (expect_header_) {
      if (auto why = check_header(static_cast<const unsigned char*>(buf), num_bytes)) {
        // Not handed to BASP: CAF 0.17's broker crashes on some misplaced messages (a
        // server handshake arriving at a server, found by the socket fuzzer). The shut
        // socket ends in EOF and the connection closes the normal way.
        detail::log()->warn("node port: closing the connection {} {}: {}",
                            accepted_ ? "from" : "to", peer_of(stream_.fd()), *why);
        st_->counters->refused_malformed.fetch_add(1, std::memory_order_relaxed);
        shut();
        return true;
      }
    } else {
      expect_header_ = true;  // that was the payload
      if (check_node_) {
        if (auto why = check_handshake(static_cast<const unsigned char*>(buf), num_bytes)) {
          detail::log()->warn("node port: closing the connection from {}: {}",
                              peer_of(stream_.fd()), *why);
          st_->counters->refused_malformed.fetch_add(1, std::memory_order_relaxed);
          shut();
          return true;
        }
      }
    }
    auto more = scribe::consume(ctx, buf, num_bytes);
    auto& rd = stream_.rd_buf();
    if (rd.capacity() > keep_read_buffer) std::vector<char>{}.swap(rd);
    return more;
  }

  void ack_writes(bool enable) override { stream_.ack_writes(enable); }
  std::vector<char>& wr_buf() override { return stream_.wr_buf(); }
  std::vector<char>& rd_buf() override { return stream_.rd_buf(); }

  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }

  void flush() override { stream_.flush(this); }

  std::string addr() const override {
    auto x = net::remote_addr_of_fd(stream_.fd());
    return x ? *x : std::string{};
  }

  uint16_t port() const override {
    auto x = net::remote_port_of_fd(stream_.fd());
    return x ? *x : 0;
  }

  void add_to_loop() override { stream_.activate(this); }
  void remove_from_loop() override { stream_.passivate(); }

 private:
  void launch() {
    launched_ = true;
    stream_.start(this);
    // A TLS client must send its hello before anything is asked of it.
    stream_.force_empty_write(this);
  }

  /// BASP header (CAF 0.17, 32 bytes, big-endian): operation, 2 padding bytes, flags,
  /// payload length, operation data, source and destination actor. A connection's first
  /// message must be the handshake of the other side (a client handshake arrives at the
  /// node that accepted, a server handshake at the one that dialed); after it only the
  /// other operations, and a server handshake never again.
  std::optional<std::string> check_header(const unsigned char* h, std::size_t n) {
    if (n != caf::io::basp::header_size) return "a short header";
    auto op = h[0];
    std::uint32_t payload = (std::uint32_t{h[4]} << 24) | (std::uint32_t{h[5]} << 16) |
                            (std::uint32_t{h[6]} << 8) | std::uint32_t{h[7]};
    constexpr std::uint8_t server_handshake = 0, client_handshake = 1, heartbeat = 6;
    bool first = messages_ == 0;
    bool ok = first ? op == (accepted_ ? client_handshake : server_handshake)
                    : op != server_handshake && op <= heartbeat &&
                          (accepted_ || op != client_handshake);
    if (!ok)
      return "BASP operation " + std::to_string(op) + " is out of place" +
             (first ? std::string{" as the first message"} : std::string{});
    // CAF dereferences the payload of every operation but the heartbeat unchecked.
    if (payload == 0 && op != heartbeat)
      return "BASP operation " + std::to_string(op) + " without a payload";
    check_node_ = first && accepted_;
    ++messages_;
    expect_header_ = payload == 0;
    return std::nullopt;
  }

  /// The payload of a client handshake starts with the peer's node id: CAF's default
  /// kind (an atom, then process id and a 20-byte host id). An invalid id, or ours (a
  /// stranger replaying our own server handshake), would corrupt BASP's routing table.
  std::optional<std::string> check_handshake(const unsigned char* p, std::size_t n) {
    check_node_ = false;
    constexpr std::size_t node_id_size = 8 + 4 + 20;
    if (n < node_id_size) return "a client handshake too short for a node id";
    auto kind = static_cast<std::uint64_t>(caf::atom("default"));
    for (int i = 0; i < 8; ++i)
      if (p[i] != ((kind >> (8 * (7 - i))) & 0xff)) return "a client handshake of another kind";
    bool zero_host = std::all_of(p + 12, p + node_id_size, [](unsigned char c) { return c == 0; });
    if (zero_host) return "a client handshake with an invalid node id";
    if (std::equal(p + 8, p + node_id_size, st_->own_node_id.begin()))
      return "a client handshake that claims to be this node";
    return std::nullopt;
  }

  void refuse(std::size_t announced, std::size_t limit) {
    st_->counters->refused_oversize.fetch_add(1, std::memory_order_relaxed);
    detail::log()->warn(
        "node port: closing the connection {} {}: it announced a message of {} bytes, the "
        "limit {} is {} bytes",
        accepted_ ? "from" : "to", peer_of(stream_.fd()), announced,
        reads_ < 2 ? "before its handshake" : "(--max-message-size)", limit);
    shut();
  }

  /// Ends the connection the normal way: the socket's EOF reaches the stream, which
  /// tells BASP. Bytes already received are read in small chunks and dropped.
  void shut() {
    refused_ = true;
    ::shutdown(stream_.fd(), SHUT_RDWR);
    stream_.configure_read(caf::io::receive_policy::at_most(4096));
  }

  void leave_pending() {
    if (!slot_) return;
    st_->pending.leave(*slot_);
    slot_.reset();
    st_->counters->pending.fetch_sub(1, std::memory_order_relaxed);
  }

  std::shared_ptr<const transport_state> st_;
  std::optional<pending_connections::handle> slot_;
  bool accepted_;
  std::string dialed_to_;
  bool launched_ = false;
  std::size_t reads_ = 0;
  bool expect_header_ = true;
  bool check_node_ = false;
  bool refused_ = false;
  std::uint64_t messages_ = 0;
  net::stream_impl<Policy> stream_;
};

/// Client or server end of a new connection, as the transport's options say.
caf::io::scribe_ptr make_scribe(net::default_multiplexer& mx, native_socket fd,
                                const std::shared_ptr<const transport_state>& st,
                                std::optional<pending_connections::handle> slot,
                                std::string dialed_to = {}) {
  if (!st->tls)
    return caf::make_counted<guarded_scribe<caf::policy::tcp>>(mx, fd, st, slot,
                                                               std::move(dialed_to));
  ssl_ptr ssl{SSL_new(st->tls.get())};
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return nullptr;
  if (slot)
    SSL_set_accept_state(ssl.get());
  else
    SSL_set_connect_state(ssl.get());
  return caf::make_counted<guarded_scribe<tls_policy>>(mx, fd, st, slot, std::move(dialed_to), st,
                                                       std::move(ssl));
}

class guarded_doorman final : public net::doorman_impl {
 public:
  guarded_doorman(net::default_multiplexer& mx, native_socket fd,
                  std::shared_ptr<const transport_state> st)
      : doorman_impl(mx, fd), st_(std::move(st)) {}

  bool new_connection() override {
    if (detached()) return false;
    auto& mx = acceptor_.backend();
    auto fd = acceptor_.accepted_socket();
    net::nonblocking(fd, true);
    net::child_process_inherit(fd, false);
    auto& c = *st_->counters;
    pending_connections::handle slot;
    if (!st_->pending.admit(fd, st_->opts.max_pending_connections, handshake_timeout, slot)) {
      c.refused_pending.fetch_add(1, std::memory_order_relaxed);
      detail::log()->warn("node port: refusing {}: {} connections are still in their handshake",
                          peer_of(fd), st_->opts.max_pending_connections);
      net::close_socket(fd);
      return false;
    }
    auto scribe = make_scribe(mx, fd, st_, slot);
    if (!scribe) {
      st_->pending.leave(slot);
      net::close_socket(fd);
      return false;
    }
    c.accepted.fetch_add(1, std::memory_order_relaxed);
    auto hdl = scribe->hdl();
    parent()->add_scribe(std::move(scribe));
    return doorman::new_connection(&mx, hdl);
  }

 private:
  std::shared_ptr<const transport_state> st_;
};

class guarded_middleman final : public caf::io::middleman_actor_impl {
 public:
  guarded_middleman(caf::actor_config& cfg, caf::actor basp,
                    std::shared_ptr<const transport_state> st)
      : middleman_actor_impl(cfg, std::move(basp)), st_(std::move(st)) {}

  const char* name() const override { return "warp.node_transport"; }

 protected:
  caf::expected<caf::io::scribe_ptr> connect(const std::string& host, uint16_t port) override {
    auto peer = host + ":" + std::to_string(port);
    {
      std::lock_guard<std::mutex> guard{st_->faults.mtx};
      if (st_->faults.blocked.count(peer)) return caf::sec::cannot_connect_to_node;
    }
    auto fd = net::new_tcp_connection(host, port);
    if (!fd) return std::move(fd.error());
    net::nonblocking(*fd, true);
    auto scribe = make_scribe(mpx(), *fd, st_, std::nullopt, std::move(peer));
    if (!scribe) {
      net::close_socket(*fd);
      return caf::sec::cannot_connect_to_node;
    }
    return scribe;
  }

  caf::expected<caf::io::doorman_ptr> open(uint16_t port, const char* addr, bool reuse) override {
    auto fd = net::new_tcp_acceptor_impl(port, addr, reuse);
    if (!fd) return std::move(fd.error());
    return caf::make_counted<guarded_doorman>(mpx(), *fd, st_);
  }

 private:
  net::default_multiplexer& mpx() {
    return static_cast<net::default_multiplexer&>(system().middleman().backend());
  }

  std::shared_ptr<const transport_state> st_;
};

/// The transport's state for an installed system, kept beside its actor so a second
/// install can compare options.
struct installed {
  caf::io::middleman_actor actor;
  std::shared_ptr<const transport_state> state;
};

bool same_options(const transport_options& a, const transport_options& b) {
  return a.tls_cert == b.tls_cert && a.tls_key == b.tls_key && a.tls_ca == b.tls_ca &&
         a.max_message_size == b.max_message_size &&
         a.max_handshake_size == b.max_handshake_size &&
         a.max_pending_connections == b.max_pending_connections && a.insecure == b.insecure;
}

// Per-system bookkeeping for install/uninstall (the actor itself is found through the
// system's registry on every hot path). Touched only at start and stop.
std::mutex installed_mtx;
std::map<caf::actor_system*, installed> installed_by_system;

}  // namespace

result<std::shared_ptr<node_transport_counters>> install_node_transport(
    caf::actor_system& sys, const transport_options& opts) {
  if (!sys.has_middleman())
    return error{errc::invalid_argument,
                 "the actor system has no middleman: load caf::io::middleman first"};
  if (opts.max_handshake_size < 1024 || opts.max_handshake_size > 16 * 1024 * 1024)
    return error{errc::invalid_argument,
                 "max-handshake-size: must be between 1 KiB and 16 MiB, got " +
                     std::to_string(opts.max_handshake_size)};
  if (opts.max_message_size < opts.max_handshake_size ||
      opts.max_message_size > std::size_t{1} << 31)
    return error{errc::invalid_argument,
                 "max-message-size: must be between max-handshake-size and 2 GiB, got " +
                     std::to_string(opts.max_message_size)};
  if (opts.max_pending_connections == 0)
    return error{errc::invalid_argument, "max-pending-connections: must be at least 1"};
  std::lock_guard<std::mutex> guard{installed_mtx};
  if (auto it = installed_by_system.find(&sys); it != installed_by_system.end()) {
    if (!same_options(it->second.state->opts, opts))
      return error{errc::invalid_argument,
                   "this actor system already runs a node transport with other options"};
    return it->second.state->counters;
  }
  auto st = std::make_shared<transport_state>();
  st->opts = opts;
  const auto& self_id = sys.node();
  if (auto* d = dynamic_cast<const caf::node_id::default_data*>(self_id.operator->())) {
    auto pid = d->process_id();
    for (int i = 0; i < 4; ++i) st->own_node_id[i] = (pid >> (8 * (3 - i))) & 0xff;
    auto host = d->host_id();
    std::copy(host.begin(), host.end(), st->own_node_id.begin() + 4);
  }
  if (opts.tls()) {
    auto ctx = make_tls_context(opts);
    if (!ctx) return ctx.err();
    st->tls = std::move(*ctx);
  }
  auto basp = sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  // Detached like CAF's own middleman actor: connect() blocks in connect(2).
  auto actor = sys.spawn<guarded_middleman, caf::detached + caf::hidden>(
      std::move(basp), std::shared_ptr<const transport_state>{st});
  sys.registry().put(registry_key(), caf::actor_cast<caf::strong_actor_ptr>(actor));
  installed_by_system[&sys] = installed{actor, st};
  return st->counters;
}

void uninstall_node_transport(caf::actor_system& sys) {
  caf::io::middleman_actor actor;
  {
    std::lock_guard<std::mutex> guard{installed_mtx};
    auto it = installed_by_system.find(&sys);
    if (it == installed_by_system.end()) return;
    actor = std::move(it->second.actor);
    installed_by_system.erase(it);
  }
  sys.registry().erase(registry_key());
  caf::scoped_actor self{sys};
  // CAF's middleman actor ignores exit messages (it is linked to name servers); only
  // `kill` ends it.
  self->send_exit(actor, caf::exit_reason::kill);
  self->wait_for(actor);
}

result<std::size_t> set_partition(caf::actor_system& sys, const std::vector<std::string>& peers) {
  std::shared_ptr<const transport_state> st;
  {
    std::lock_guard<std::mutex> guard{installed_mtx};
    auto it = installed_by_system.find(&sys);
    if (it == installed_by_system.end())
      return error{errc::unsupported, "no node transport installed: the node does not listen"};
    st = it->second.state;
  }
  std::size_t closed = 0;
  std::lock_guard<std::mutex> guard{st->faults.mtx};
  st->faults.blocked = std::set<std::string>(peers.begin(), peers.end());
  for (const auto& peer : st->faults.blocked) {
    auto [first, last] = st->faults.dialed.equal_range(peer);
    for (auto it = first; it != last; ++it) {
      // The scribe reads EOF and closes the normal way (BASP learns the route is gone); its
      // destructor takes it out of `dialed` under this mutex, so the fd is still ours.
      ::shutdown(it->second, SHUT_RDWR);
      ++closed;
    }
  }
  detail::log()->warn(
      "fault injection: node-port links to [{}] cut ({} closed)",
      [&] {
        std::string all;
        for (const auto& p : st->faults.blocked) all += (all.empty() ? "" : ",") + p;
        return all;
      }(),
      closed);
  return closed;
}

caf::io::middleman_actor node_middleman(caf::actor_system& sys) {
  if (auto ptr = sys.registry().get(registry_key()))
    return caf::actor_cast<caf::io::middleman_actor>(ptr);
  return sys.middleman().actor_handle();
}

result<std::uint16_t> publish_on_node_port(caf::actor_system& sys, const caf::actor& whom,
                                           std::uint16_t port, const std::string& address,
                                           std::chrono::milliseconds timeout) {
  caf::scoped_actor self{sys};
  result<std::uint16_t> out{errc::timeout, "no answer from the node transport"};
  auto sigs = std::set<std::string>{};
  self->request(node_middleman(sys), timeout, caf::publish_atom::value, port,
                caf::actor_cast<caf::strong_actor_ptr>(whom), std::move(sigs), address, true)
      .receive([&](std::uint16_t bound) { out = bound; },
               [&](caf::error& err) { out = error{errc::unreachable, sys.render(err)}; });
  return out;
}

void unpublish_from_node_port(caf::actor_system& sys, const caf::actor& whom, std::uint16_t port) {
  caf::anon_send(node_middleman(sys), caf::unpublish_atom::value, whom.address(), port);
}

result<caf::strong_actor_ptr> connect_to_node(caf::actor_system& sys, const std::string& host,
                                              std::uint16_t port,
                                              std::chrono::milliseconds timeout) {
  caf::scoped_actor self{sys};
  result<caf::strong_actor_ptr> out{errc::timeout,
                                    "no connection to " + host + ":" + std::to_string(port) +
                                        " within " + std::to_string(timeout.count()) + " ms"};
  self->request(node_middleman(sys), timeout, caf::connect_atom::value, host, port)
      .receive(
          [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            out = std::move(ptr);
          },
          [&](caf::error& err) {
            out = error{errc::unreachable, "cannot connect to " + host + ":" +
                                               std::to_string(port) + ": " + sys.render(err)};
          });
  return out;
}


}  // namespace warp::bus
