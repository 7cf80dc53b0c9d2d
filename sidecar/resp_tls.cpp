#include "sidecar/resp_tls.hpp"

#include "runtime/core/openssl_util.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace warp::sidecar::detail {

namespace {

using warp::detail::openssl_errors;

SSL* as_ssl(void* p) {
  return static_cast<SSL*>(p);
}

}  // namespace

result<std::shared_ptr<tls_context>> tls_context::make(const resp_tls_settings& s) {
  if (s.cert.empty() || s.key.empty())
    return error{errc::invalid_argument, "tls: both a certificate and a key are needed"};
  if (s.auth_clients != "no" && s.auth_clients != "optional" && s.auth_clients != "yes")
    return error{errc::invalid_argument,
                 "tls-auth-clients: expected yes, no or optional, got '" + s.auth_clients + "'"};
  if (s.auth_clients != "no" && s.ca.empty())
    return error{errc::invalid_argument,
                 "tls-auth-clients " + s.auth_clients + " needs a CA file (--resp-tls-ca)"};
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return error{errc::internal, "tls: " + openssl_errors()};
  auto out = std::shared_ptr<tls_context>(new tls_context());
  out->ctx_ = ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // The output buffer may move (std::string grows) between a WANT_WRITE and the retry.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, s.cert.c_str()) != 1)
    return error{errc::invalid_argument,
                 "tls: cannot load certificate " + s.cert + ": " + openssl_errors()};
  if (SSL_CTX_use_PrivateKey_file(ctx, s.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return error{errc::invalid_argument,
                 "tls: cannot load private key " + s.key + ": " + openssl_errors()};
  if (SSL_CTX_check_private_key(ctx) != 1)
    return error{errc::invalid_argument, "tls: key " + s.key + " does not match certificate " +
                                             s.cert + ": " + openssl_errors()};
  if (!s.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, s.ca.c_str(), nullptr) != 1)
      return error{errc::invalid_argument,
                   "tls: cannot load CA file " + s.ca + ": " + openssl_errors()};
    // Tell clients which CAs we accept (some pick their certificate by it).
    if (auto* names = SSL_load_client_CA_file(s.ca.c_str())) SSL_CTX_set_client_CA_list(ctx, names);
  }
  int mode = SSL_VERIFY_NONE;
  if (s.auth_clients == "optional") mode = SSL_VERIFY_PEER;
  if (s.auth_clients == "yes") mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, mode, nullptr);
  SSL_CTX_set_verify_depth(ctx, 8);
  // No session cache: every connection is a full handshake, no shared state to bound.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  return out;
}

tls_context::~tls_context() {
  if (ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

std::unique_ptr<tls_session> tls_context::accept(int fd) {
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::make_unique<tls_session>(ssl);
}

tls_session::~tls_session() {
  SSL_free(as_ssl(ssl_));
}

tls_io tls_session::result_of(int rc) {
  int e = SSL_get_error(as_ssl(ssl_), rc);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      return tls_io::want_read;
    case SSL_ERROR_WANT_WRITE:
      return tls_io::want_write;
    case SSL_ERROR_ZERO_RETURN:
      return tls_io::closed;
    case SSL_ERROR_SYSCALL:
      // EOF without close_notify (the peer just went away) or a socket error.
      error_ = ERR_peek_error() ? openssl_errors() : "connection closed during TLS";
      ERR_clear_error();
      return tls_io::failed;
    default:
      error_ = openssl_errors();
      return tls_io::failed;
  }
}

tls_io tls_session::handshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(as_ssl(ssl_));
  if (rc == 1) {
    done_ = true;
    return tls_io::done;
  }
  return result_of(rc);
}

tls_io tls_session::read(char* buf, std::size_t len, std::size_t& n) {
  ERR_clear_error();
  n = 0;
  if (SSL_read_ex(as_ssl(ssl_), buf, len, &n) == 1) return tls_io::done;
  return result_of(0);
}

tls_io tls_session::write(const char* buf, std::size_t len, std::size_t& n) {
  ERR_clear_error();
  n = 0;
  if (SSL_write_ex(as_ssl(ssl_), buf, len, &n) == 1) return tls_io::done;
  return result_of(0);
}

bool tls_session::has_pending() const noexcept {
  return SSL_pending(as_ssl(ssl_)) > 0;
}

void tls_session::shutdown() noexcept {
  if (!done_) return;
  ERR_clear_error();
  SSL_shutdown(as_ssl(ssl_));  // one attempt: sends close_notify if the socket takes it
  ERR_clear_error();
}

std::string tls_session::peer_subject() const {
  X509* cert = SSL_get1_peer_certificate(as_ssl(ssl_));
  if (!cert) return {};
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  X509_free(cert);
  return buf;
}

}  // namespace warp::sidecar::detail
