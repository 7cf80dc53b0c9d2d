// Reading cluster views in tests: the JSON of cluster_json, `warpctl --json members` and
// /admin/cluster (`{"members": [{"state": "up", ...}], "stats": {...}}`).
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace warp::test {

/// Members of `view` whose state is `state` ("up", "suspect", "down", ...); 0 for a
/// document that is not a view.
inline std::size_t members_in_state(const nlohmann::json& view, std::string_view state) {
  if (!view.is_object() || !view.contains("members")) return 0;
  std::size_t n = 0;
  for (auto& m : view["members"]) n += m.is_object() && m.value("state", std::string{}) == state;
  return n;
}

/// The JSON of a view's text; a discarded value (no members) when it does not parse.
inline nlohmann::json parse_view(std::string_view text) {
  return nlohmann::json::parse(text, nullptr, false);
}

}  // namespace warp::test
