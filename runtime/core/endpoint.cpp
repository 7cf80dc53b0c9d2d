#include "warp/endpoint.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace warp {

result<std::pair<std::string, std::uint16_t>> parse_endpoint(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size())
    return error{errc::invalid_argument, "'" + std::string{text} + "' is not HOST:PORT"};
  auto host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
    return error{errc::invalid_argument,
                 "'" + std::string{text} + "': port must be a number 0-65535"};
  return std::pair<std::string, std::uint16_t>{std::string{host}, static_cast<std::uint16_t>(port)};
}

bool is_loopback_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  std::string text{host};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return false;
}

}  // namespace warp
