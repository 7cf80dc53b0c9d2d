// The RESP sidecar: a RESP2/RESP3 server over a node, so any Redis client reaches Warp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "warp/error.hpp"

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
};

}  // namespace warp::sidecar
