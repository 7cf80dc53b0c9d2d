// HOST:PORT endpoints as every flag and config field spells them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "warp/error.hpp"

namespace warp {

/// Splits "HOST:PORT" ("[::1]:PORT" for IPv6; port 0 = any free port). A clear
/// errc::invalid_argument when the text is not of that form.
result<std::pair<std::string, std::uint16_t>> parse_endpoint(std::string_view text);

}  // namespace warp
