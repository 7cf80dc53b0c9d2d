// The node port's transport: CAF's BASP protocol over connections Warp guards itself.
//
// Why not CAF's own middleman or its OpenSSL module as they are: CAF 0.17's BASP broker
// sizes its read buffer from the header's 32-bit payload length before reading a byte of
// payload, so one 32-byte header from anyone who reaches the port makes the node allocate
// 4 GiB (and the buffer never shrinks); and the OpenSSL module builds a TLS context per
// connection from files and throws inside the I/O loop when one is unreadable. So Warp
// spawns a middleman actor of its own (CAF's `middleman_actor_impl` with its `connect` and
// `open` replaced) whose connections
//   - cap every read the BASP broker asks for: the first message of a connection (its
//     handshake) at `max_handshake_size`, every later one at `max_message_size`; a larger
//     announcement closes the connection instead of allocating, and a read buffer grown
//     for a large message is released after it;
//   - speak TLS (1.2 or later) with one context built and checked at start: each side
//     presents its certificate and refuses a peer whose chain does not lead to the
//     configured CA, before the peer's bytes reach the BASP decoder;
//   - are limited to `max_pending_connections` that have not finished their handshake.
// Every Warp component that connects or publishes on the node port goes through
// node_middleman() / publish_on_node_port() / connect_to_node(), never CAF's middleman
// actor, so no connection escapes the guard. Clients (warpctl, warp-nemesis) install the
// same transport with their own certificate.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

#include "warp/config.hpp"
#include "warp/error.hpp"

namespace warp::bus {

/// What the guard refused, for /metrics.
struct node_transport_counters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused_oversize{0};   ///< announced more than a cap
  std::atomic<std::uint64_t> refused_pending{0};    ///< too many unfinished handshakes
  std::atomic<std::uint64_t> refused_tls{0};        ///< TLS handshake failed (no/bad cert)
  std::atomic<std::uint64_t> refused_malformed{0};  ///< a BASP message out of place
  std::atomic<std::uint64_t> pending{0};            ///< handshakes in progress now
};

/// Installs the guarded transport in `sys` (whose config must have loaded the middleman).
/// Checks the options (TLS files readable and matching, sizes sane) and fails with a clear
/// error. Idempotent per actor system: a second call returns the installed counters when
/// the options are the same and an error when they differ.
result<std::shared_ptr<node_transport_counters>> install_node_transport(
    caf::actor_system& sys, const transport_options& opts);

/// Stops the guarded middleman actor of `sys` (connections already handed to the BASP
/// broker stay up until CAF's middleman stops). A no-op when none is installed.
void uninstall_node_transport(caf::actor_system& sys);

/// The middleman actor for connect/publish on `sys`: the guarded one when installed,
/// otherwise CAF's own (an embedder's system without Warp's transport).
caf::io::middleman_actor node_middleman(caf::actor_system& sys);

/// Publishes `whom` on ADDRESS:PORT (port 0 = any free port) through the guard; returns
/// the port bound. Blocks the caller (not for use on a scheduler thread).
result<std::uint16_t> publish_on_node_port(caf::actor_system& sys, const caf::actor& whom,
                                           std::uint16_t port, const std::string& address,
                                           std::chrono::milliseconds timeout);

/// Withdraws what publish_on_node_port put on `port`.
void unpublish_from_node_port(caf::actor_system& sys, const caf::actor& whom, std::uint16_t port);

/// Connects to the node at HOST:PORT through the guard and returns the actor it
/// published (null when it published none), within `timeout`. Blocks the caller.
result<caf::strong_actor_ptr> connect_to_node(caf::actor_system& sys, const std::string& host,
                                              std::uint16_t port,
                                              std::chrono::milliseconds timeout);

}  // namespace warp::bus
