// warpd's admin HTTP endpoint: /healthz, /metrics (Prometheus text; with the cluster's
// families when the node is clustered), /admin/stats, /admin/config and /admin/cluster (JSON).
// Served by cpp-httplib on threads of its own, so a slow scrape never touches the actor
// system.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "warp/error.hpp"

namespace warp {
class node;
}

namespace warpd {

class admin_http {
 public:
  /// Binds `listen` (HOST:PORT, port 0 = any free port) and starts serving. `config_json`
  /// is what /admin/config returns. `seeded`: the node was given peers (or DNS discovery),
  /// so /metrics always carries the cluster families; otherwise they appear once another
  /// member joined it. `extra_metrics` (optional) appends families of other front doors
  /// (the RESP sidecar's) to /metrics. Clear error if the address cannot be bound.
  static warp::result<std::unique_ptr<admin_http>> start(
      warp::node& n, const std::string& listen, std::string config_json, bool seeded,
      std::function<std::string()> extra_metrics = {});
  ~admin_http();
  admin_http(const admin_http&) = delete;
  admin_http& operator=(const admin_http&) = delete;

  /// Stops accepting and joins the server thread. Idempotent.
  void stop();
  std::uint16_t port() const noexcept;

  struct impl;

 private:
  explicit admin_http(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace warpd
