// Reading warpd's /metrics text in tests.
#pragma once

#include <cstdint>
#include <map>
#include <sstream>
#include <string>

namespace warp::test {

/// The value of a Prometheus sample `name{...,group="G"}` per group, from /metrics text.
inline std::map<std::uint32_t, std::uint64_t> prometheus_per_group(const std::string& metrics,
                                                                   const std::string& name) {
  std::map<std::uint32_t, std::uint64_t> out;
  std::istringstream in{metrics};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) != 0) continue;
    auto g = line.find("group=\"");
    if (g == std::string::npos) continue;
    auto group = static_cast<std::uint32_t>(std::stoul(line.substr(g + 7)));
    out[group] = std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

}  // namespace warp::test
