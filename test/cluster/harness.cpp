#include "harness.hpp"

#include <signal.h>

#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/cluster_actor.hpp"
#include "actors/control_actor.hpp"
#include "test/support/view.hpp"

namespace warp::test {

warpd_cluster::warpd_cluster(std::size_t n, std::vector<std::string> extra_flags)
    : extra_(std::move(extra_flags)) {
  cfg_ = std::make_unique<caf::actor_system_config>();
  cfg_->load<caf::io::middleman>();
  actors::register_control_protocol(*cfg_);
  cfg_->set("scheduler.max-threads", 2);
  cfg_->set("logger.verbosity", caf::atom("quiet"));
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
  for (std::size_t i = 0; i < n; ++i) ports_.push_back(free_port());
  for (std::size_t i = 0; i < n; ++i) http_ports_.push_back(free_port());
  for (std::size_t i = 0; i < n; ++i) resp_ports_.push_back(free_port());
  procs_.resize(n);
  paused_.assign(n, false);
  for (std::size_t i = 0; i < n; ++i) start(i);
}

warpd_cluster::~warpd_cluster() {
  for (std::size_t i = 0; i < procs_.size(); ++i) {
    if (!procs_[i]) continue;
    if (paused_[i]) procs_[i]->signal(SIGCONT);
    procs_[i]->stop(SIGTERM, std::chrono::seconds(10));
  }
  sys_.reset();
}

std::vector<std::string> warpd_cluster::argv(std::size_t i) const {
  std::vector<std::string> a{binary("apps/warpd/warpd"),
                             "--name",
                             "n" + std::to_string(i),
                             "--listen",
                             "127.0.0.1:" + std::to_string(ports_[i]),
                             "--storage",
                             "sqlite:" + dir_.str() + "/shared.db",
                             "--data-dir",
                             dir_.str() + "/n" + std::to_string(i),
                             "--default-mode",
                             "eventual_distributed",
                             "--http",
                             "127.0.0.1:" + std::to_string(http_ports_[i]),
                             "--resp",
                             "127.0.0.1:" + std::to_string(resp_ports_[i]),
                             "--log-level",
                             "warn"};
  std::string peers;
  for (std::size_t j = 0; j < ports_.size(); ++j) {
    if (j == i) continue;
    if (!peers.empty()) peers += ',';
    peers += "127.0.0.1:" + std::to_string(ports_[j]);
  }
  if (!peers.empty()) {
    a.push_back("--peers");
    a.push_back(peers);
  }
  a.insert(a.end(), extra_.begin(), extra_.end());
  return a;
}

void warpd_cluster::start(std::size_t i) {
  procs_[i] =
      std::make_unique<child_process>(argv(i), dir_.str() + "/n" + std::to_string(i) + ".log");
  paused_[i] = false;
  wait_for_port(ports_[i], std::chrono::seconds(20));
}

void warpd_cluster::kill9(std::size_t i) {
  procs_[i]->signal(SIGKILL);
  procs_[i]->wait(std::chrono::seconds(10));
  procs_[i].reset();
}

void warpd_cluster::pause(std::size_t i) {
  procs_[i]->signal(SIGSTOP);
  paused_[i] = true;
}

void warpd_cluster::resume(std::size_t i) {
  procs_[i]->signal(SIGCONT);
  paused_[i] = false;
}

result<std::string> warpd_cluster::members(std::size_t i) {
  return actors::fetch_members_json(*sys_, "127.0.0.1", ports_[i], std::chrono::seconds(2));
}

bool warpd_cluster::wait_converged(std::size_t up, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (std::size_t i = 0; i < size() && all; ++i) {
      if (!procs_[i] || paused_[i]) continue;
      auto js = members(i);
      if (!js) {
        all = false;
        break;
      }
      all = members_in_state(parse_view(*js), "up") == up;
    }
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

namespace {

result<caf::actor> control(caf::actor_system& sys, std::uint16_t port) {
  auto a = sys.middleman().remote_actor("127.0.0.1", port);
  if (!a) return error{errc::unreachable, sys.render(a.error())};
  return *a;
}

}  // namespace

result<std::string> warpd_cluster::get(std::size_t i, const std::string& key) {
  auto c = control(*sys_, ports_[i]);
  if (!c) return c.err();
  caf::scoped_actor self{*sys_};
  result<std::string> out{errc::timeout, "no answer"};
  self->request(*c, std::chrono::seconds(5), caf::get_atom::value, key)
      .receive([&](std::string& v) { out = std::move(v); },
               [&](caf::error& e) { out = actors::from_caf_error(e); });
  return out;
}

result<void> warpd_cluster::set(std::size_t i, const std::string& key, const std::string& value) {
  auto c = control(*sys_, ports_[i]);
  if (!c) return c.err();
  caf::scoped_actor self{*sys_};
  result<void> out{errc::timeout, "no answer"};
  self->request(*c, std::chrono::seconds(5), caf::put_atom::value, key, value, std::int64_t{0})
      .receive([&](caf::ok_atom) { out = {}; },
               [&](caf::error& e) { out = actors::from_caf_error(e); });
  return out;
}

std::string warpd_cluster::read(std::size_t i, const std::string& key) {
  auto v = get(i, key);
  return v ? *v : "<" + std::string{to_string(v.code())} + ">";
}

}  // namespace warp::test
