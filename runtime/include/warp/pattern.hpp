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

/// What the validator does about a key whose cached copy disagrees with storage
/// (docs/validator.md). `inherit` = the node-wide mode (node_config::validator).
enum class validate_mode : std::uint8_t {
  inherit = 0,
  off = 1,    ///< not checked
  noop = 2,   ///< checked and counted
  alert = 3,  ///< counted, and one structured log line per inconsistency
  heal = 4,   ///< counted, logged, and the cached copy invalidated (or refreshed if older)
};
std::string_view to_string(validate_mode m) noexcept;
/// "off", "noop", "alert", "heal"; an error names the choices.
result<validate_mode> parse_validate_mode(std::string_view text);

/// What a key gets from the most specific pattern that matches it.
struct key_policy {
  mode consistency = mode::strong_local;
  /// TTL applied when a write names none. 0 = no expiry.
  std::chrono::milliseconds ttl{0};
  /// eventual_distributed only: broadcast the new value (hydration) instead of an invalidation.
  bool hydrate = false;
  /// Storage protection of this pattern's read-through fetches (docs/storage.md,
  /// "Protection"). A pattern that sets none of them shares the node-wide limiter and
  /// breaker (node_config::default_policy); one that sets any gets its own, with the
  /// fields it leaves at 0 taken from the node-wide policy.
  struct protection {
    /// Storage fetches per second (token bucket, burst = one second's worth); 0 = none.
    double rate = 0;
    /// Consecutive unreachable-storage failures that open the breaker; 0 = never opens.
    std::uint32_t breaker_failures = 0;
    /// Failure ratio (0 < r <= 1) over the breaker's last 10 s of fetches that opens it,
    /// judged once 20 fetches are in the window; 0 = the count alone decides.
    double breaker_ratio = 0;
    /// How long an open breaker fails fast before one probe is let through.
    std::chrono::milliseconds breaker_cooldown{0};
    /// Stale-on-error: how long past its L1 expiry (or its invalidation) a value may still
    /// be served, marked stale, when storage fails or the breaker is open; 0 = never.
    std::chrono::milliseconds max_stale{0};
    /// With a stale value at hand, a miss waits this long for storage, then answers with
    /// the stale value while the fetch goes on and refreshes L1; 0 = wait for storage.
    std::chrono::milliseconds soft_timeout{0};
    /// A hit in the last this-many percent of the value's L1 TTL refreshes it in the
    /// background (one refresh per key at a time); 0 = off, at most 99.
    std::uint32_t refresh_ahead_pct = 0;
    /// Whether the pattern needs a limiter/breaker of its own.
    bool any() const noexcept {
      return rate > 0 || breaker_failures > 0 || breaker_ratio > 0 || breaker_cooldown.count() > 0;
    }
    friend bool operator==(const protection&, const protection&) = default;
  } guard;
  /// Which limiter/breaker serves this policy's fetches: 0 = the node-wide one, else a
  /// number the registry gives each pattern that sets its own protection.
  std::uint32_t guard_slot = 0;
  /// The validator's mode for this pattern's keys (`+validate=`); inherit = node-wide.
  validate_mode validate = validate_mode::inherit;
  /// Federation (`+federated[=POLICY]`, docs/federation.md): the name of the merge policy
  /// that resolves this pattern's changes between regions (`lww`, `counter`, `set`, `map`
  /// or one an embedder registers); empty = the keys stay in this region.
  std::string federated;
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
  /// Removes `removed` and registers (or replaces) `added` in one step: readers see the
  /// table before or after, never in between. Nothing changes when an entry is malformed.
  result<void> replace(const std::vector<std::string>& removed, const std::vector<entry>& added);

  /// Parses `GLOB=MODE[:TTL]` (TTL like `30s`, `500ms`, `10m`, `2h`, or plain ms) as the
  /// `--pattern` flag spells it. `MODE+hydrate` turns on hydration for eventual mode.
  /// Trailing options set the pattern's storage protection: `+rate=N` (fetches/s),
  /// `+breaker=N` (consecutive failures), `+breaker_ratio=R` (failure ratio, 0 < R <= 1),
  /// `+cooldown=DURATION`, `+max_stale=DURATION`,
  /// `+soft_timeout=DURATION`, `+refresh_ahead=PERCENT`, and the validator's mode
  /// `+validate=off|noop|alert|heal` (docs/validator.md), e.g.
  /// `user:*=strong_local:10m+rate=200+breaker=5+cooldown=2s+max_stale=1m`.
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
