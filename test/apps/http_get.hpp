// One GET against a warpd's admin port, with timeouts so a hung node fails the test
// instead of hanging it.
#pragma once

#include <cstdint>
#include <string>

#include <httplib.h>

namespace warp::test {

inline httplib::Result http_get(std::uint16_t port, const std::string& path) {
  httplib::Client client{"127.0.0.1", port};
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  return client.Get(path.c_str());
}

}  // namespace warp::test
