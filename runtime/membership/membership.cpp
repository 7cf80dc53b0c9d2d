#include "runtime/membership/membership.hpp"

#include <algorithm>

namespace warp {

std::string_view to_string(member_state s) noexcept {
  switch (s) {
    case member_state::joining:
      return "joining";
    case member_state::up:
      return "up";
    case member_state::suspect:
      return "suspect";
    case member_state::down:
      return "down";
    case member_state::leaving:
      return "leaving";
  }
  return "unknown";
}

}  // namespace warp

namespace warp::detail {

namespace {

bool trusted(member_state s) {
  return s == member_state::up || s == member_state::suspect;
}

}  // namespace

membership::membership(member_info self, membership_options opts)
    : self_(std::move(self)), opts_(opts) {
  self_.self = true;
  self_.state = member_state::up;
  if (!self_.address.empty()) contacts_[self_.address].self = true;
}

member_event membership::set_state(member_info& m, member_state to, std::int64_t now) {
  member_event ev{m.id, m.state, to, trusted(m.state) || m.state == member_state::leaving};
  m.state = to;
  state_since_[m.id] = now;
  return ev;
}

std::vector<member_event> membership::heard(std::uint32_t id, std::uint64_t incarnation,
                                            const std::string& name, const std::string& address,
                                            bool leaving, std::int64_t now) {
  std::vector<member_event> events;
  if (id == self_.id || id == 0) return events;
  // Another id at the same address: that process restarted (or was replaced).
  if (!address.empty()) {
    for (auto& [oid, m] : members_)
      if (oid != id && m.address == address && m.state != member_state::down)
        events.push_back(set_state(m, member_state::down, now));
    learn(address);
  }
  auto [it, fresh] = members_.try_emplace(id);
  auto& m = it->second;
  if (fresh) {
    m.id = id;
    m.state = member_state::joining;
    state_since_[id] = now;
  }
  m.incarnation = incarnation;
  m.name = name;
  if (!address.empty()) m.address = address;
  m.last_heard_ms = now;
  auto target = leaving ? member_state::leaving : member_state::up;
  if (m.state != target) events.push_back(set_state(m, target, now));
  return events;
}

void membership::learn(const std::string& address) {
  if (address.empty()) return;
  contacts_.try_emplace(address);
}

void membership::mark_self_address(const std::string& address) {
  contacts_[address].self = true;
}

std::vector<member_event> membership::lost(std::uint32_t id, std::int64_t now) {
  std::vector<member_event> events;
  auto it = members_.find(id);
  if (it == members_.end()) return events;
  auto& m = it->second;
  if (m.state == member_state::up) events.push_back(set_state(m, member_state::suspect, now));
  if (m.state == member_state::leaving) events.push_back(set_state(m, member_state::down, now));
  return events;
}

std::vector<member_event> membership::tick(std::int64_t now) {
  std::vector<member_event> events;
  for (auto it = members_.begin(); it != members_.end();) {
    auto& m = it->second;
    auto silent = now - m.last_heard_ms;
    switch (m.state) {
      case member_state::up:
        if (silent >= opts_.down_after_ms)
          events.push_back(set_state(m, member_state::down, now));
        else if (silent >= opts_.suspect_after_ms)
          events.push_back(set_state(m, member_state::suspect, now));
        break;
      case member_state::suspect:
      case member_state::leaving:
      case member_state::joining:
        if (silent >= opts_.down_after_ms) events.push_back(set_state(m, member_state::down, now));
        break;
      case member_state::down:
        if (now - state_since_[m.id] >= opts_.forget_after_ms) {
          state_since_.erase(m.id);
          it = members_.erase(it);
          continue;
        }
        break;
    }
    ++it;
  }
  return events;
}

std::vector<std::string> membership::to_contact(std::int64_t now) {
  std::vector<std::string> out;
  for (auto& [addr, c] : contacts_) {
    if (c.self || now - c.last_attempt_ms < opts_.retry_ms) continue;
    bool live = false;
    for (auto& [id, m] : members_)
      if (m.address == addr && (m.state == member_state::up || m.state == member_state::leaving))
        live = true;
    if (live) continue;
    c.last_attempt_ms = now;
    out.push_back(addr);
  }
  return out;
}

std::vector<std::uint32_t> membership::owners() const {
  std::vector<std::uint32_t> out{self_.id};
  for (auto& [id, m] : members_)
    if (trusted(m.state)) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::uint32_t> membership::reachable() const {
  std::vector<std::uint32_t> out;
  for (auto& [id, m] : members_)
    if (trusted(m.state) || m.state == member_state::leaving) out.push_back(id);
  return out;
}

std::vector<member_info> membership::view() const {
  std::vector<member_info> out{self_};
  for (auto& [id, m] : members_) out.push_back(m);
  std::sort(out.begin() + 1, out.end(),
            [](auto& a, auto& b) { return a.name != b.name ? a.name < b.name : a.id < b.id; });
  return out;
}

const member_info* membership::find(std::uint32_t id) const {
  if (id == self_.id) return &self_;
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

std::vector<std::string> membership::addresses() const {
  std::vector<std::string> out;
  for (auto& [addr, c] : contacts_)
    if (!c.self) out.push_back(addr);
  if (!self_.address.empty()) out.push_back(self_.address);
  return out;
}

}  // namespace warp::detail
