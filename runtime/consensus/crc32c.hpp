// CRC-32C (Castagnoli), the checksum of every record the consensus log writes to disk.
#pragma once

#include <cstdint>
#include <string_view>

namespace warp::consensus {

/// Continues `crc` (0 to start) over `bytes`.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0) noexcept;

}  // namespace warp::consensus
