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

/// True for a host only this machine can reach: "localhost", 127.0.0.0/8, "::1" (with or
/// without brackets). What protected mode asks before it lets a port open without TLS
/// or a password.
bool is_loopback_host(std::string_view host);

}  // namespace warp
