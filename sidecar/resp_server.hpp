// The RESP sidecar: a RESP2/RESP3 server over a node, so any Redis client reaches Warp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "warp/error.hpp"
#include "warp/histogram.hpp"

namespace warp {
class node;
}

namespace warp::sidecar {

struct resp_options {
  /// HOST:PORT to listen on (port 0 = any free port).
  std::string listen = "127.0.0.1:6380";
  /// When set, AUTH is mandatory (user "default").
  std::string password;
  std::size_t max_bulk_length = 512 * 1024 * 1024;
  std::size_t max_multibulk_length = 1024 * 1024;
  std::size_t max_inline_length = 64 * 1024;
  /// Per-client output buffer bound; a client over it is disconnected.
  std::size_t max_output_buffer = 64 * 1024 * 1024;
  std::size_t max_clients = 10000;
  /// Disconnect clients idle this long; 0 = never.
  std::chrono::seconds idle_timeout{0};
  /// Bound on the sum of every client's buffers (query buffer + pending output), like
  /// Redis's maxmemory-clients. Over it, the biggest clients are disconnected. 0 = none.
  std::size_t max_client_memory = 1024ull * 1024 * 1024;
  /// A connection is closed after this many failed AUTH/HELLO AUTH attempts (0 = never).
  std::size_t auth_max_failures = 10;
  /// Pause before a client's next command after its n-th failed AUTH:
  /// auth_failure_delay * 2^(n-1), at most 2 s. The loop never sleeps: the client is paused.
  std::chrono::milliseconds auth_failure_delay{10};
  /// FLUSHDB/FLUSHALL wipe storage for every client of every node: an operator may turn
  /// them off so a stray script or a shared credential cannot empty the cache's storage.
  bool allow_flush = true;

  /// TLS (OpenSSL). With `tls_cert` set: TLS on `tls_listen` when given (a second listener
  /// beside the plain one), else TLS on `listen` itself.
  std::string tls_cert;    ///< PEM certificate (chain) of the server
  std::string tls_key;     ///< PEM private key
  std::string tls_ca;      ///< PEM CA bundle to verify client certificates
  std::string tls_listen;  ///< HOST:PORT of a separate TLS listener; empty = none
  /// Client certificates: "no" (not asked), "optional" (verified when sent), "yes"
  /// (required; needs tls_ca). Redis's tls-auth-clients.
  std::string tls_auth_clients = "no";
};

/// Counters of a running sidecar, readable from any thread.
struct resp_stats {
  std::uint64_t auth_failures = 0;
  std::uint64_t auth_disconnects = 0;
  std::uint64_t client_memory_disconnects = 0;
  std::uint64_t tls_handshake_failures = 0;
  std::uint64_t client_memory_bytes = 0;  ///< current sum of client buffers
  std::uint64_t connected_clients = 0;
  /// Keys remembered for client-side caching (CLIENT TRACKING, default mode).
  std::uint64_t tracking_keys = 0;
  /// Commands run so far with their latency, one entry per command name that ran at least
  /// once ("unknown" for names not in the command table: the label set stays bounded).
  struct command_entry {
    std::string_view name;
    histogram_snapshot latency;  ///< latency.count = calls
  };
  std::vector<command_entry> commands;
  /// Error replies per kind: the reply's leading word (ERR, WRONGTYPE, NOAUTH, ...), or
  /// warp_<errc> for Warp's own `ERR warp <code>: ...`; "other" for anything else.
  std::vector<std::pair<std::string_view, std::uint64_t>> errors;
};

class resp_server {
 public:
  /// Binds and starts serving on a thread of its own. Clear error if it cannot bind.
  static result<std::unique_ptr<resp_server>> start(node& n, resp_options options);
  virtual ~resp_server() = default;
  /// Stops accepting, closes every client. Idempotent.
  virtual void stop() = 0;
  /// The bound port.
  virtual std::uint16_t port() const = 0;
  /// The TLS listener's port (0 = none; equal to port() when TLS is on the main one).
  virtual std::uint16_t tls_port() const = 0;
  virtual resp_stats stats() const = 0;
  /// The counters above in Prometheus text format (warp_resp_* families).
  std::string prometheus_text(std::string_view node_name) const;
};

}  // namespace warp::sidecar
