// The JSON form of a cluster view and its counters (warp/cluster.hpp): what warpctl
// `cluster`, the admin endpoint and the cluster actor's status request print. Next to the
// cluster actor that keeps both (its counters are WARP_CLUSTER_COUNTERS), below the node.
#include <string>

#include <nlohmann/json.hpp>

#include "actors/cluster_context.hpp"
#include "warp/cluster.hpp"

namespace warp {

std::string to_json(const cluster_view& view, const cluster_stats& s) {
  nlohmann::json j;
  j["self"] = view.self_id;
  j["ranges"] = view.ranges;
  auto& ms = j["members"] = nlohmann::json::array();
  for (auto& m : view.members)
    ms.push_back({{"id", m.id},
                  {"name", m.name},
                  {"address", m.address},
                  {"state", std::string{to_string(m.state)}},
                  {"incarnation", m.incarnation},
                  {"last_heard_ms", m.last_heard_ms},
                  {"self", m.self},
                  {"owned_ranges", m.owned_ranges}});
  auto& st = j["stats"];
#define WARP_JSON(name) st[#name] = s.name;
  WARP_CLUSTER_COUNTERS(WARP_JSON)
#undef WARP_JSON
  return j.dump();
}

}  // namespace warp
