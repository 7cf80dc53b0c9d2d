// The frame one node's Raft host sends another (actors/raft_host_actor.hpp): every raft
// message of every group bound for that node since the last flush, so heartbeats of many
// groups to one peer leave as one CAF message. Little-endian:
//   u8 version | u64 sender (raft node id) | u32 count | count x (u32 group | u32 len | bytes)
// `bytes` is one raft_wire-encoded message (decoded by the group, which bounds it again).
// Every count and length is checked against the bytes that remain and against
// batch_limits before anything is allocated for it: a hostile or corrupt frame costs a
// codec_error, never a crash or an allocation beyond its own size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"

namespace warp::consensus {

inline constexpr std::uint8_t raft_batch_version = 1;

struct batch_limits {
  std::size_t max_frame_bytes = 64u << 20;
  std::size_t max_items = 65536;
  std::size_t max_item_bytes = 64u << 20;  ///< one raft_wire message (wire_limits' bound)
};

struct batch_item {
  std::uint32_t group = 0;
  std::string bytes;
  friend bool operator==(const batch_item&, const batch_item&) = default;
};

struct raft_batch {
  std::uint64_t sender = 0;
  std::vector<batch_item> items;
  friend bool operator==(const raft_batch&, const raft_batch&) = default;
};

/// Bytes one item adds to a frame (for splitting batches below max_frame_bytes).
inline std::size_t batch_item_overhead() noexcept {
  return 8;
}
inline std::size_t batch_header_bytes() noexcept {
  return 13;
}

/// Refuses (invalid_argument) a batch the receiver's decoder would refuse.
result<std::string> encode(const raft_batch& b, const batch_limits& lim = {});
result<raft_batch> decode_batch(std::string_view bytes, const batch_limits& lim = {});

}  // namespace warp::consensus
