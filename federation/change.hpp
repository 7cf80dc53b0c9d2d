// What regions send each other: one committed change of a federated key, with its
// provenance (origin region and the regions it passed through, so no region receives its
// own change back and each region applies a change once), and a batch of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "warp/version.hpp"

namespace warp::federation {

struct change {
  enum class op : std::uint8_t { put = 1, erase = 2 };
  op what = op::put;
  std::string key;
  std::string value;  ///< put only
  version ver;        ///< HLC version given by the writing node (LWW order)
  std::int64_t expires_at_ms = 0;
  std::string origin;             ///< region the write was committed in
  std::vector<std::string> path;  ///< regions that applied it, origin first
  std::string policy = "lww";     ///< merge policy of the key's pattern at the origin
  friend bool operator==(const change&, const change&) = default;
};

struct batch {
  std::string sender;  ///< region of the node that sent the frame
  std::uint64_t seq = 0;
  std::vector<change> changes;
  friend bool operator==(const batch&, const batch&) = default;
};

}  // namespace warp::federation
