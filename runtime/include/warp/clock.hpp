// The clock expiries and versions use.
#pragma once

#include <cstdint>

namespace warp {

/// Milliseconds since the Unix epoch on the system clock.
std::int64_t now_ms() noexcept;

}  // namespace warp
