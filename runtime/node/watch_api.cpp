// Watch and history of strong keys through a node (warp/strong_watch.hpp, docs/
// coordination.md "Watch", "History"): requests to the node's watch hub
// (actors/watch_hub_actor.hpp, owned by the node's strong Raft engine), answered through
// a future. Blocking: application threads, the executor or admin workers, never a CAF
// scheduler thread.
#include <charconv>
#include <future>
#include <optional>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include "actors/watch_hub_actor.hpp"
#include "runtime/modes/strong_raft.hpp"
#include "warp/node.hpp"
#include "warp/strong_watch.hpp"

namespace warp {

namespace {

caf::actor hub_of(node& n) {
  auto* engine = detail::strong_raft_of(n);
  return engine ? engine->watch_hub() : caf::actor{};
}

error no_engine() {
  return error{errc::unsupported,
               "watch and history need the strong Raft engine (a cluster with strong members, "
               "--strong-engine raft)"};
}

// The hub answers at once (it never waits on anything); the bound only guards a stopped
// actor system.
template <class T, class Cmd>
result<T> ask(const caf::actor& hub, Cmd cmd) {
  auto p = std::make_shared<std::promise<result<T>>>();
  auto f = p->get_future();
  cmd.done = actors::completion<T>{[p](result<T> r) { p->set_value(std::move(r)); }};
  caf::anon_send(hub, std::move(cmd));
  if (f.wait_for(std::chrono::seconds{10}) != std::future_status::ready)
    return error{errc::timeout, "watch hub: no answer"};
  return f.get();
}

nlohmann::json version_json(const key_version& v) {
  nlohmann::json j{{"revision", v.revision}, {"group", v.group}, {"deleted", v.deleted}};
  if (!v.deleted) j["value"] = v.value;
  if (v.expires_at_ms) j["expires_at_ms"] = v.expires_at_ms;
  return j;
}

}  // namespace

result<std::shared_ptr<watch_stream>> open_watch(node& n, std::string_view filter,
                                                 std::string_view from, bool prev) {
  auto hub = hub_of(n);
  if (!hub) return no_engine();
  if (filter.size() > n.config().limits.max_key_size)
    return error{errc::key_too_large, "watch: the filter is longer than a key may be"};
  auto start = parse_watch_from(from);
  if (!start) return start.err();
  actors::watch_add_cmd cmd;
  cmd.filter = std::string{filter};
  cmd.from = std::move(*start);
  cmd.prev = prev;
  return ask<std::shared_ptr<watch_stream>>(hub, std::move(cmd));
}

result<watch_handle> watch(node& n, std::string_view filter, std::string_view from,
                           std::function<void(const watch_event&)> fn, bool prev) {
  if (!fn) return error{errc::invalid_argument, "watch: a callback is required"};
  auto s = open_watch(n, filter, from, prev);
  if (!s) return s.err();
  return watch_handle{std::move(*s), std::move(fn)};
}

result<std::vector<key_version>> history(node& n, std::string_view key) {
  auto hub = hub_of(n);
  if (!hub) return no_engine();
  if (auto c = n.config().limits.check_key(key); !c) return c.err();
  actors::watch_history_cmd cmd;
  cmd.key = std::string{key};
  return ask<std::vector<key_version>>(hub, std::move(cmd));
}

result<key_version> get_at(node& n, std::string_view key, std::uint64_t revision) {
  auto hub = hub_of(n);
  if (!hub) return no_engine();
  if (auto c = n.config().limits.check_key(key); !c) return c.err();
  actors::watch_get_at_cmd cmd;
  cmd.key = std::string{key};
  cmd.revision = revision;
  auto r = ask<std::optional<key_version>>(hub, std::move(cmd));
  if (!r) return r.err();
  if (*r) return std::move(**r);
  // No change of the key in the whole window: what it holds now it held then.
  key_version v;
  auto cur = n.get(key);
  if (!cur) {
    if (cur.code() != errc::not_found) return cur.err();
    v.deleted = true;
    return v;
  }
  v.value = std::string{view(*cur)};
  return v;
}

namespace detail {

result<std::string> history_request(node& n, std::string_view verb,
                                    const std::vector<std::string>& args) {
  if (args.empty()) return error{errc::invalid_argument, std::string{verb} + ": a key is required"};
  const auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  if (verb == "history") {
    auto h = history(n, args[0]);
    if (!h) return h.err();
    auto out = nlohmann::json::array();
    for (auto& v : *h) out.push_back(version_json(v));
    return dump(out);
  }
  std::uint64_t rev = 0;
  std::string_view a = args.size() > 1 ? std::string_view{args[1]} : std::string_view{};
  auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), rev);
  if (a.empty() || ec != std::errc{} || p != a.data() + a.size())
    return error{errc::invalid_argument, "get_at: the revision is not a number"};
  auto v = get_at(n, args[0], rev);
  if (!v) return v.err();
  return dump(version_json(*v));
}

}  // namespace detail

}  // namespace warp
