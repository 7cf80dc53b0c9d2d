// The wire format of a node's hot-key list (what a node taking over key ranges asks the
// previous owner for, docs/hotkeys.md). A plain byte string, so it rides CAF as a
// std::string without type registration:
//   'H' 1 | u32 count | count x (u32 key_len | key bytes | u64 reads)   (big-endian)
// Decoding checks every length against the bounds before allocating and rejects trailing
// bytes; any failure is errc::codec_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"

namespace warp::bus {

struct hot_key_item {
  std::string key;
  std::uint64_t reads = 0;
};

std::string encode_hot_keys(const std::vector<hot_key_item>& items);

/// At most `max_items` entries of keys of at most `max_key_bytes` each.
result<std::vector<hot_key_item>> decode_hot_keys(std::string_view bytes, std::size_t max_items,
                                                  std::size_t max_key_bytes);

}  // namespace warp::bus
