// warpd's admin HTTP endpoint: /healthz (liveness), /readyz (storage answers), /metrics
// (Prometheus text; with the cluster's families when the node is clustered), /admin/stats,
// /admin/config and /admin/cluster (JSON).
//
// Its own small server on one epoll thread, so no client can hold the probes hostage: a
// slow or silent connection costs a buffer, not a thread; every request must arrive whole
// within a total deadline (not a per-read one a client resets with each byte); the body
// size is checked against the limit before any of it is read; connections are capped, the
// oldest unfinished one making room for a new one. /healthz is answered on the I/O thread
// itself; everything that touches the node (metrics, stats, storage) runs on two worker
// threads, so a slow scrape never delays a probe and never touches the actor system's
// scheduler. Optional TLS (OpenSSL) and a bearer token for the /admin/* endpoints; see
// docs/security.md, "Admin HTTP".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "warp/error.hpp"

namespace warp {
class node;
}

namespace warpd {

struct admin_options {
  std::string tls_cert;  ///< PEM certificate (chain); with tls_key the endpoint is HTTPS only
  std::string tls_key;   ///< PEM private key
  /// Bearer token every endpoint beyond the probes (/healthz, /readyz, /metrics) requires.
  /// Empty: those endpoints are served on a loopback bind only (403 elsewhere).
  std::string token;
  std::size_t max_connections = 256;
  /// A request's head and body must arrive within this, however slowly they trickle in; a
  /// response must be taken by the client within it; an idle kept-alive connection is
  /// closed after it.
  std::chrono::milliseconds request_timeout{5000};
  std::size_t max_body = 64 * 1024;
  /// Concurrent GET /v1/watch streams (Server-Sent Events); 503 beyond.
  std::size_t max_watch_streams = 64;
  /// Test only (--fault-injection): POST /admin/fault/partition, body = the peers'
  /// HOST:PORT separated by commas (empty = heal), calls it; 404 when unset.
  std::function<warp::result<std::string>(const std::string& peers)> partition;
};

class admin_http {
 public:
  /// Binds `listen` (HOST:PORT, port 0 = any free port) and starts serving. `config_json`
  /// is what /admin/config returns. `seeded`: the node was given peers (or DNS discovery),
  /// so /metrics always carries the cluster families; otherwise they appear once another
  /// member joined it. `extra_metrics` (optional) appends families of other front doors
  /// (the RESP sidecar's) to /metrics. Clear error if the address cannot be bound or TLS
  /// files not loaded.
  static warp::result<std::unique_ptr<admin_http>> start(
      warp::node& n, const std::string& listen, std::string config_json, bool seeded,
      const admin_options& opts = {}, std::function<std::string()> extra_metrics = {});
  ~admin_http();
  admin_http(const admin_http&) = delete;
  admin_http& operator=(const admin_http&) = delete;

  /// Stops accepting, closes every connection and joins the threads. Idempotent.
  void stop();
  std::uint16_t port() const noexcept;
  bool tls() const noexcept;

  struct impl;

 private:
  explicit admin_http(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace warpd
