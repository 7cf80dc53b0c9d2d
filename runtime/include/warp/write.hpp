// The values of the write and watch API: what a write decides (mutation), what a batch
// carries (kv_write, update_item), what a miss loads (loader) and what watchers are told
// (change_event). Separate from warp/node.hpp so that the layers below the node facade
// (the consistency modes, runtime/modes) speak the same types without seeing the node.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "warp/buffer.hpp"
#include "warp/error.hpp"
#include "warp/version.hpp"

namespace warp {

/// What changed; handed to watchers (the RESP sidecar's SUBSCRIBE and client tracking,
/// the watch bus) after the change is applied to L1.
struct change_event {
  /// `distrusted`: changes of eventual_distributed keys up to `ver` may have been missed
  /// (a gap in a peer's stream); whoever handed such keys out must treat them as changed.
  enum class kind : std::uint8_t { set, removed, expired, invalidated, cleared, distrusted };
  kind what = kind::set;
  std::string key;  ///< empty for `cleared` (every key was removed) and `distrusted`
  version ver;
  bool remote = false;  ///< true when the change came from another node
};
using watch_id = std::uint64_t;

/// The decision of an update() callback.
struct mutation {
  enum class kind : std::uint8_t { keep, put, erase };
  kind what = kind::keep;
  std::string value;               ///< the new value (put)
  std::int64_t expires_at_ms = 0;  ///< its absolute expiry, 0 = never (put)
  static mutation keep() { return {}; }
  static mutation erase() { return {kind::erase, {}, 0}; }
  static mutation put(std::string value, std::int64_t expires_at_ms) {
    return {kind::put, std::move(value), expires_at_ms};
  }
};

/// One pair of node::set_many.
struct kv_write {
  std::string_view key;
  std::string_view value;
  std::int64_t expires_at_ms = 0;  ///< absolute, ms since the Unix epoch; 0 = never
};

/// Fetches a value on a miss: nullopt = absent. Used by get_or_load.
using loader = std::function<result<std::optional<std::string>>(std::string_view key)>;

/// A write's decision on the current value (null = absent) and its absolute expiry.
using update_fn = std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)>;

/// One key of node::update_many: `fn` decides as for node::update().
struct update_item {
  std::string_view key;
  const update_fn* fn;
};

}  // namespace warp
