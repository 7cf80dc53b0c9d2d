// Raft messages on the wire: msgpack with a version byte first, every count and size
// bounded before anything is allocated for it, so a corrupt or hostile peer costs at most
// one bounded message's worth of memory and a codec_error, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/consensus/raft.hpp"
#include "warp/error.hpp"

namespace warp::consensus {

inline constexpr std::uint8_t raft_wire_version = 1;

struct wire_limits {
  std::size_t max_message_bytes = 64u << 20;
  std::size_t max_entries = 1024;
  std::size_t max_entry_bytes = 1u << 20;
  std::size_t max_snapshot_bytes = 48u << 20;
  std::size_t max_voters = 64;
};

/// Refuses (invalid_argument) a message the peer's decoder would refuse.
result<std::string> encode(const message& m, const wire_limits& lim = {});
result<message> decode(std::string_view bytes, const wire_limits& lim = {});

}  // namespace warp::consensus
