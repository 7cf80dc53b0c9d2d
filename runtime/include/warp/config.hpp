// Everything a node is configured with. warpd fills it from CAF's config system (a config
// file and the command line); an embedding service fills it in code.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "warp/l1.hpp"
#include "warp/pattern.hpp"
#include "warp/storage.hpp"

namespace warp {

/// Bounds on what a client may send; violating one is errc::key_too_large/value_too_large.
struct limits {
  std::size_t max_key_size = 8 * 1024;
  std::size_t max_value_size = 16 * 1024 * 1024;
};

struct node_config {
  /// Node name: shown in views and logs. Empty = "warp-<pid>".
  std::string name;
  /// Node-to-node and warpctl endpoint (CAF's network layer), HOST:PORT. Empty = no listener.
  std::string listen = "127.0.0.1:4700";
  /// Seed peers, HOST:PORT each.
  std::vector<std::string> peers;
  /// `memory`, `sqlite`, `sqlite:PATH` or `postgres:URI`.
  std::string storage = "memory";
  /// A storage adapter of the embedding service's own; when set, `storage` is ignored.
  std::shared_ptr<warp::storage> storage_adapter;
  /// Where durable state (SQLite database, ...) lives.
  std::string data_dir = "warp-data";
  /// Admin HTTP endpoint (/healthz, /metrics, admin JSON), HOST:PORT. Empty = off.
  std::string http;
  /// RESP sidecar endpoint, HOST:PORT. Empty = off.
  std::string resp;
  /// `GLOB=MODE[:TTL]` specs (see pattern_registry::parse_spec).
  std::vector<std::string> patterns;
  /// Policy of keys no pattern matches.
  key_policy default_policy;
  /// trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
  l1_options l1;
  warp::limits limits;
  /// Worker threads of the actor system the node starts itself (ignored for a host system).
  std::size_t scheduler_threads = 2;
};

}  // namespace warp
