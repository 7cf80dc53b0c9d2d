// TLS for the RESP sidecar: an OpenSSL server context and non-blocking per-connection I/O
// for the event loop. OpenSSL types stay out of this header (and out of the command code).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "warp/error.hpp"

namespace warp::sidecar::detail {

struct resp_tls_settings {
  std::string cert, key, ca;
  std::string auth_clients = "no";  // no | optional | yes
};

/// What a non-blocking TLS call asks for next.
enum class tls_io : std::uint8_t {
  done,        ///< progress made (n bytes, or the handshake finished)
  want_read,   ///< wait until the socket is readable
  want_write,  ///< wait until the socket is writable
  closed,      ///< clean close_notify or EOF
  failed,      ///< protocol error, bad certificate, plaintext on a TLS port...
};

class tls_session;

/// One SSL_CTX for a listener; loads and checks certificate, key and CA at startup so a
/// bad file fails warpd's start with a clear message, not the first handshake.
class tls_context {
 public:
  static result<std::shared_ptr<tls_context>> make(const resp_tls_settings& s);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;
  /// A server-side session on an accepted, non-blocking socket.
  std::unique_ptr<tls_session> accept(int fd);

 private:
  tls_context() = default;
  void* ctx_ = nullptr;  // SSL_CTX*
};

class tls_session {
 public:
  explicit tls_session(void* ssl) : ssl_(ssl) {}
  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  bool handshake_done() const noexcept { return done_; }
  /// Advances the handshake.
  tls_io handshake();
  /// SSL_read into buf; `n` gets the byte count on done.
  tls_io read(char* buf, std::size_t len, std::size_t& n);
  /// SSL_write (partial writes allowed); `n` gets the byte count on done.
  tls_io write(const char* buf, std::size_t len, std::size_t& n);
  /// Decrypted bytes OpenSSL holds that epoll cannot report (already off the socket).
  bool has_pending() const noexcept;
  /// Best-effort close_notify (never blocks).
  void shutdown() noexcept;
  /// Why the last call failed (OpenSSL's error queue, for the log).
  const std::string& last_error() const noexcept { return error_; }
  /// Subject of the verified client certificate, empty when none.
  std::string peer_subject() const;

 private:
  tls_io result_of(int rc);
  void* ssl_;  // SSL*
  bool done_ = false;
  std::string error_;
};

}  // namespace warp::sidecar::detail
