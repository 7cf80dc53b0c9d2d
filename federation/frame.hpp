// The federation frame: one batch of changes from a node of one region to a node of
// another. Little-endian, built from consensus/byte_codec.hpp:
//   "WFED" | u8 version | str sender | u64 seq | u64 count |
//   count x (u8 op | str key | str value | u64 hlc | u64 node | u64 expires |
//            str origin | u64 path_len | path_len x str | str policy)
// Every count and length is checked against `frame_limits` and the bytes left before
// anything is allocated for it; trailing bytes, an unknown version or op are refused.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "federation/change.hpp"
#include "warp/error.hpp"

namespace warp::federation {

inline constexpr std::uint8_t frame_version = 1;

struct frame_limits {
  std::size_t max_frame_bytes = 64u << 20;
  std::size_t max_changes = 65536;
  std::size_t max_key = 64 * 1024;
  std::size_t max_value = 16u << 20;
  std::size_t max_path = 32;  ///< regions one change may pass through
  std::size_t max_name = 64;  ///< region and policy names
};

/// Refuses (invalid_argument) what the receiver's decoder would refuse.
result<std::string> encode(const batch& b, const frame_limits& lim = {});
/// codec_error on anything malformed or beyond `lim`.
result<batch> decode(std::string_view bytes, const frame_limits& lim = {});

}  // namespace warp::federation
