// Consistency modes and the registry that maps a key to its policy by glob pattern.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"

namespace warp {

enum class mode : std::uint8_t {
  strong_local = 0,          ///< this node only: storage write-through, then L1
  eventual_distributed = 1,  ///< write locally, propagate invalidations/values to every node
  strong_distributed = 2,    ///< writes acknowledged by a quorum; linearizable
};

std::string_view to_string(mode m) noexcept;
result<mode> parse_mode(std::string_view text);

/// What a key gets from the most specific pattern that matches it.
struct key_policy {
  mode consistency = mode::strong_local;
  /// TTL applied when a write names none. 0 = no expiry.
  std::chrono::milliseconds ttl{0};
  /// eventual_distributed only: broadcast the new value (hydration) instead of an invalidation.
  bool hydrate = false;
};

/// Glob match with Redis's syntax: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`, `\` escapes.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

/// Maps keys to policies. The most specific matching pattern wins: more literal characters
/// first, then fewer wildcards, then the later registration. Lookups take a shared lock only
/// on a per-thread cache miss... see pattern.cpp for how lookups stay cheap.
class pattern_registry {
 public:
  pattern_registry();
  ~pattern_registry();

  /// Registers (or replaces) `glob`. Errors on an empty or malformed pattern.
  result<void> add(std::string_view glob, key_policy policy);
  /// Removes a pattern; false if it was not registered.
  bool remove(std::string_view glob);
  void set_default(key_policy policy);
  key_policy default_policy() const;

  /// The policy of `key`: from the most specific match, or the default.
  key_policy lookup(std::string_view key) const;

  struct entry {
    std::string glob;
    key_policy policy;
  };
  std::vector<entry> entries() const;

  /// Parses `GLOB=MODE[:TTL]` (TTL like `30s`, `500ms`, `10m`, `2h`, or plain ms) as the
  /// `--pattern` flag spells it. `MODE+hydrate` turns on hydration for eventual mode.
  static result<entry> parse_spec(std::string_view spec);
  /// parse_spec over a whole configuration. The same glob given twice with different
  /// policies is an error naming both (registration order would otherwise pick the winner
  /// silently); given twice with the same policy it counts once.
  static result<std::vector<entry>> parse_specs(const std::vector<std::string>& specs);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Parses a duration: `250ms`, `30s`, `10m`, `2h`, `1d`, or a plain number of milliseconds.
result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace warp
