// warpctl watch (docs/coordination.md, "Watch"): a Server-Sent Events client of warpd's
// GET /v1/watch on the admin HTTP port. Plain HTTP only (a TLS admin port: use curl).
#pragma once

#include <cstddef>
#include <string>

namespace warpctl {

struct watch_options {
  std::string admin = "127.0.0.1:4780";  ///< warpd's --http
  std::string token;                     ///< bearer token (--admin-token-file), if any
  std::string prefix;
  std::string from;  ///< "", "N" or a cursor
  bool prev = false;
  bool json = false;
  bool progress = false;  ///< print progress events in table mode too
  std::size_t count = 0;  ///< exit after this many put/delete events (0: never)
};

/// Streams until the watch ends; one line per event on stdout. Exit code: 0 after
/// `count` events, 1 compacted, 3 the node unreachable or gone, 4 other ends (slow, ...).
/// The last cursor goes to stderr on any end but `count`, to resume with --rev.
int run_watch(const watch_options& o);

}  // namespace warpctl
