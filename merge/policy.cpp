#include "merge/policy.hpp"

#include <algorithm>
#include <mutex>

#include "merge/rules.hpp"
#include "warp/pattern.hpp"

namespace warp::merge {

bool builtin_policy(std::string_view name) noexcept {
  return name == policy_lww || name == policy_counter || name == policy_set || name == policy_map;
}

result<merged> merge_lww(const std::optional<merge_input>& local, const merge_input& incoming) {
  if (local && !replaces(local->ver, incoming.ver))
    return merged{std::string{local->value}, local->ver};
  return merged{std::string{incoming.value}, incoming.ver};
}

namespace {

/// The join of two encoded states of CRDT `T`, at the larger version.
template <class T>
result<merged> join(const std::optional<merge_input>& local, const merge_input& incoming,
                    const crdt_limits& lim) {
  auto in = T::decode(incoming.value, lim);
  if (!in) return error{in.err().code(), "incoming " + in.err().message()};
  if (!local) return merged{in->encode(), incoming.ver};
  auto here = T::decode(local->value, lim);
  if (!here) return error{here.err().code(), "local " + here.err().message()};
  here->merge(*in);
  return merged{here->encode(), std::max(local->ver, incoming.ver)};
}

bool is_glob(std::string_view s) {
  return s.find_first_of("*?[") != std::string_view::npos;
}

std::size_t literal_count(std::string_view glob) {
  return static_cast<std::size_t>(
      std::count_if(glob.begin(), glob.end(), [](char c) { return c != '*' && c != '?'; }));
}

error unknown(std::string_view name) {
  return error{errc::invalid_argument,
               "unknown merge policy '" + std::string{name} +
                   "': not lww, counter, set or map, and no function registered by that "
                   "name (node::register_merge)"};
}

}  // namespace

result<merged> merge_counter(const std::optional<merge_input>& local, const merge_input& incoming,
                             const crdt_limits& lim) {
  return join<pn_counter>(local, incoming, lim);
}

result<merged> merge_set(const std::optional<merge_input>& local, const merge_input& incoming,
                         const crdt_limits& lim) {
  return join<or_set>(local, incoming, lim);
}

result<merged> merge_map(const std::optional<merge_input>& local, const merge_input& incoming,
                         const crdt_limits& lim) {
  return join<lww_map>(local, incoming, lim);
}

result<void> registry::register_merge(std::string_view name, merge_fn fn) {
  if (name.empty()) return error{errc::invalid_argument, "merge policy name is empty"};
  if (builtin_policy(name))
    return error{errc::invalid_argument,
                 "merge policy '" + std::string{name} + "' is built in and cannot be replaced"};
  if (!fn) return error{errc::invalid_argument, "merge function is empty"};
  if (is_glob(name)) {
    // A malformed glob must not be bound: glob_match of it would match nothing, silently.
    if (auto b = bind(name, name); !b) return b;
  }
  std::unique_lock lock{mtx_};
  custom_[std::string{name}] = std::make_shared<const merge_fn>(std::move(fn));
  return {};
}

result<void> registry::bind(std::string_view glob, std::string_view name) {
  if (glob.empty()) return error{errc::invalid_argument, "merge binding glob is empty"};
  if (name.empty()) return error{errc::invalid_argument, "merge policy name is empty"};
  std::unique_lock lock{mtx_};
  auto it = std::find_if(bindings_.begin(), bindings_.end(),
                         [&](const binding& b) { return b.glob == glob; });
  if (it == bindings_.end())
    bindings_.push_back({std::string{glob}, std::string{name}, literal_count(glob), next_seq_++});
  else {
    it->name = std::string{name};
    it->seq = next_seq_++;
  }
  return {};
}

bool registry::known(std::string_view name) const {
  if (builtin_policy(name)) return true;
  std::shared_lock lock{mtx_};
  return custom_.contains(name);
}

result<void> registry::check(std::string_view name) const {
  if (known(name)) return {};
  return unknown(name);
}

std::string registry::policy_for(std::string_view key, std::string_view named) const {
  if (!named.empty()) return std::string{named};
  std::shared_lock lock{mtx_};
  const binding* best = nullptr;
  for (auto& b : bindings_) {
    if (!glob_match(b.glob, key)) continue;
    if (!best || b.literals > best->literals || (b.literals == best->literals && b.seq > best->seq))
      best = &b;
  }
  return best ? best->name : std::string{policy_lww};
}

result<merged> registry::merge(std::string_view name, const std::optional<merge_input>& local,
                               const merge_input& incoming) const {
  if (name == policy_lww) return merge_lww(local, incoming);
  std::shared_ptr<const merge_fn> fn;
  crdt_limits lim;
  {
    std::shared_lock lock{mtx_};
    lim = limits_;
    if (auto it = custom_.find(name); it != custom_.end()) fn = it->second;
  }
  if (name == policy_counter) return merge_counter(local, incoming, lim);
  if (name == policy_set) return merge_set(local, incoming, lim);
  if (name == policy_map) return merge_map(local, incoming, lim);
  if (!fn) return unknown(name);
  if (!local) return merged{std::string{incoming.value}, incoming.ver};
  // Called outside the lock: a slow function must not hold up registrations.
  auto out = (*fn)(*local, incoming);
  if (!out) return out.err();
  return merged{std::move(*out), std::max(local->ver, incoming.ver)};
}

void registry::set_limits(const crdt_limits& lim) {
  std::unique_lock lock{mtx_};
  limits_ = lim;
}

}  // namespace warp::merge
