#include "actors/peer_dialer.hpp"

#include <set>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/basp_broker.hpp>

#include "bus/node_transport.hpp"
#include "warp/endpoint.hpp"

namespace warp::actors {

peer_dialer::peer_dialer(caf::event_based_actor* self, caf::atom_value registry_name,
                         const std::vector<std::string>& members, std::size_t self_index,
                         std::chrono::milliseconds retry)
    : self_actor_(self), name_(registry_name), self_(self_index), retry_(retry) {
  peers_.resize(members.size());
  for (std::size_t m = 0; m < members.size(); ++m) {
    // HOST:PORT (parse_endpoint); {addr, 0} when it is not of that form: never connects.
    if (auto ep = parse_endpoint(members[m])) {
      peers_[m].host = std::move(ep->first);
      peers_[m].port = ep->second;
    } else {
      peers_[m].host = members[m];
    }
  }
}

std::size_t peer_dialer::add(const std::string& member) {
  peer p;
  if (auto ep = parse_endpoint(member)) {
    p.host = std::move(ep->first);
    p.port = ep->second;
  } else {
    p.host = member;
  }
  for (std::size_t m = 0; m < peers_.size(); ++m)
    if (peers_[m].host == p.host && peers_[m].port == p.port) return m;
  peers_.push_back(std::move(p));
  return peers_.size() - 1;
}

void peer_dialer::enable() {
  basp_ = self_actor_->system().middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
}

void peer_dialer::tick() {
  if (!basp_) return;
  auto now = std::chrono::steady_clock::now();
  for (std::size_t m = 0; m < peers_.size(); ++m) {
    auto& p = peers_[m];
    if (m == self_ || p.handle || p.port == 0) continue;
    if (p.connecting_since && now - *p.connecting_since < retry_) continue;
    p.connecting_since = now;
    auto mm = bus::node_middleman(self_actor_->system());
    self_actor_->request(mm, std::chrono::seconds(2), caf::connect_atom::value, p.host, p.port)
        .then(
            [this, m](const caf::node_id& nid, caf::strong_actor_ptr&,
                      const std::set<std::string>&) {
              if (nid == self_actor_->system().node()) return;
              by_node_[nid] = m;
              // The registry's answer comes back to this actor as a strong_actor_ptr.
              self_actor_->send(basp_, caf::forward_atom::value, nid, caf::atom("ConfigServ"),
                                caf::make_message(caf::get_atom::value, name_));
            },
            [](caf::error&) { /* retried after `retry` */ });
  }
}

std::optional<std::size_t> peer_dialer::found(const caf::strong_actor_ptr& ptr) {
  if (!ptr || ptr->node() == self_actor_->system().node()) return std::nullopt;
  auto it = by_node_.find(ptr->node());
  if (it == by_node_.end()) return std::nullopt;
  link(it->second, caf::actor_cast<caf::actor>(ptr));
  return it->second;
}

bool peer_dialer::link(std::size_t m, caf::actor hdl) {
  if (m >= peers_.size() || m == self_ || !hdl) return false;
  auto& p = peers_[m];
  if (p.handle == hdl) return false;
  p.handle = std::move(hdl);
  p.connecting_since.reset();
  self_actor_->monitor(p.handle);
  return true;
}

std::optional<std::size_t> peer_dialer::down(const caf::actor_addr& source) {
  std::optional<std::size_t> out;
  for (std::size_t m = 0; m < peers_.size(); ++m) {
    auto& p = peers_[m];
    if (p.handle && p.handle.address() == source) {
      p.handle = nullptr;
      p.connecting_since.reset();
      out = m;
    }
  }
  return out;
}

std::size_t peer_dialer::connected() const noexcept {
  std::size_t n = 0;
  for (const auto& p : peers_) n += static_cast<bool>(p.handle);
  return n;
}

}  // namespace warp::actors
