// OpenSSL pieces every TLS-speaking port shares (node port, RESP, admin HTTP): owning
// pointers and the error queue as text, so each port reports OpenSSL's reasons alike.
#pragma once

#include <memory>
#include <string>

#include <openssl/ssl.h>

namespace warp::detail {

struct ssl_ctx_deleter {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
struct ssl_deleter {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_deleter>;
using ssl_ptr = std::unique_ptr<SSL, ssl_deleter>;

/// Drains this thread's OpenSSL error queue into one line ("; "-separated);
/// "unknown OpenSSL error" when it is empty.
std::string openssl_errors();

}  // namespace warp::detail
