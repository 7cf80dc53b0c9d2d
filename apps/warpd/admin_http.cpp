#include "warpd/admin_http.hpp"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <httplib.h>

#include "warp/cluster.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"
#include "warpd/options.hpp"

namespace warpd {

struct admin_http::impl {
  httplib::Server server;
  std::thread thread;
  std::uint16_t port = 0;
  std::atomic<bool> done{false};  ///< the server thread has left listen_after_bind
};

admin_http::admin_http(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

admin_http::~admin_http() {
  stop();
}

std::uint16_t admin_http::port() const noexcept {
  return impl_->port;
}

void admin_http::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

warp::result<std::unique_ptr<admin_http>> admin_http::start(
    warp::node& n, const std::string& listen, std::string config_json, bool seeded,
    std::function<std::string()> extra_metrics) {
  auto endpoint = parse_endpoint(listen);
  if (!endpoint) return endpoint.err();
  auto p = std::make_unique<impl>();
  auto& srv = p->server;
  // httplib's default pool is max(8, cores) threads; admin traffic is a scrape every few
  // seconds, so two is plenty. httplib takes ownership of the raw pointer it is handed.
  srv.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // httplib's default sets SO_REUSEPORT, which lets a second warpd bind the same port and
  // silently split the traffic. SO_REUSEADDR alone still allows a quick restart.
  srv.set_socket_options([](auto sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  auto* node = &n;
  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });
  // A clustered node's members and bus numbers belong in the same scrape. A lone node
  // with a listener (a seed nobody contacted yet) has nothing to say about a cluster;
  // once a peer joined it, it is part of one.
  const bool listens = n.listen_port() != 0;
  srv.Get("/metrics", [node, seeded, listens, extra = std::move(extra_metrics)](
                          const httplib::Request&, httplib::Response& res) {
    auto text = warp::prometheus_text(*node);
    if (listens && (seeded || warp::view_of(*node).members.size() > 1))
      text += warp::cluster_prometheus_text(*node);
    if (extra) text += extra();
    res.set_content(std::move(text), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv.Get("/admin/cluster", [node](const httplib::Request&, httplib::Response& res) {
    res.set_content(warp::cluster_json(*node) + "\n", "application/json");
  });
  srv.Get("/admin/stats", [node](const httplib::Request&, httplib::Response& res) {
    res.set_content(warp::stats_json(*node) + "\n", "application/json");
  });
  srv.Get("/admin/config",
          [json = std::move(config_json)](const httplib::Request&, httplib::Response& res) {
            res.set_content(json + "\n", "application/json");
          });
  auto& [host, port] = *endpoint;
  int bound = -1;
  if (port == 0) {
    bound = srv.bind_to_any_port(host);
  } else if (srv.bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0)
    return warp::error{warp::errc::unreachable,
                       "cannot listen on " + listen + " (address in use or not local?)"};
  p->port = static_cast<std::uint16_t>(bound);
  auto* done = &p->done;
  p->thread = std::thread{[&srv, done] {
    srv.listen_after_bind();
    *done = true;
  }};
  // stop() only interrupts a server that is already running: wait until it is, so a stop
  // right after start cannot leave the thread blocked in accept() forever.
  while (!srv.is_running() && !p->done) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  return std::unique_ptr<admin_http>{new admin_http(std::move(p))};
}

}  // namespace warpd
