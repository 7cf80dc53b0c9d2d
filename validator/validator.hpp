// The validator's core (docs/validator.md): compares what this node's L1 serves with what
// storage holds, by version, for the keys that changed (the node's change stream) and a
// bounded random sample of cached keys. Blocking: storage reads. The validator actor
// (validator/validator_actor.hpp) paces it and runs its checks on the node's executor;
// `warpctl validate` runs a pass through run_pass() on the executor too. No CAF here, so
// the comparison, the windows and the heal are testable without an actor system.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "warp/pattern.hpp"
#include "warp/version.hpp"
#include "warp/write.hpp"

namespace warp::detail {
struct node_state;
}

namespace warp::validation {

/// What one look at a key found.
enum class finding : std::uint8_t {
  consistent,          ///< L1 holds storage's version and bytes
  uncached,            ///< L1 does not hold the key: nothing to compare
  deleted_in_storage,  ///< L1 holds a value storage no longer has
  older_than_storage,  ///< L1 holds an older version than storage
  value_differs,       ///< same version, different bytes (storage changed behind Warp)
  newer_than_storage,  ///< L1 holds a newer version than storage has
  storage_error,       ///< storage could not be read: nothing was decided
};
std::string_view to_string(finding f) noexcept;
constexpr bool is_inconsistent(finding f) noexcept {
  return f == finding::deleted_in_storage || f == finding::older_than_storage ||
         f == finding::value_differs || f == finding::newer_than_storage;
}
inline constexpr std::size_t finding_count = 7;

struct observation {
  std::string key;
  finding what = finding::uncached;
  version cached;  ///< L1's version (empty when not cached)
  version stored;  ///< storage's version (empty when absent)
};

/// What a pass (or a tick) concluded.
struct pass_report {
  std::uint64_t checked = 0;       ///< keys compared (a cached copy existed)
  std::uint64_t inconsistent = 0;  ///< of those, still wrong after the grace window
  std::uint64_t healed = 0;        ///< of those, fixed (heal mode)
  std::uint64_t uncached = 0;      ///< keys looked at that no cache held
  std::uint64_t errors = 0;        ///< keys storage could not be read for
  std::vector<observation> found;  ///< the inconsistent ones (at most 100)
};

/// Consistency over a window, Polaris-style: nines = -log10(inconsistent / checked).
struct window_stats {
  std::uint64_t checked = 0;
  std::uint64_t inconsistent = 0;
  /// nullopt when nothing was checked; with no inconsistency, log10(checked): a floor
  /// (the true ratio is below 1 / checked).
  std::optional<double> nines() const;
};

class core {
 public:
  explicit core(detail::node_state& st);
  core(const core&) = delete;
  core& operator=(const core&) = delete;

  /// The mode a key is validated in: its pattern's `+validate=`, else the node-wide one.
  validate_mode mode_of(std::string_view key) const;
  /// Whether anything is validated at all (some pattern or the node-wide mode is not off).
  bool enabled() const noexcept { return enabled_; }

  // -- inputs ----------------------------------------------------------------------------

  /// A change applied on this node (a watcher: any thread, must not block). The key is
  /// checked once the grace window has passed; beyond max_pending keys, dropped (counted).
  void on_change(const change_event& ev);
  /// Changed keys whose grace window has passed, at most `max` (oldest first).
  std::vector<std::string> take_due_changes(std::int64_t now_ms, std::size_t max);
  /// Up to `n` keys drawn at random from L1, of patterns whose mode is not off.
  std::vector<std::string> sample(std::size_t n);

  // -- the check ----------------------------------------------------------------------------

  /// Reads L1 (without counting a hit) and storage (blocking), and compares by version.
  observation observe(std::string_view key);
  /// A disagreement seen twice, a grace window apart: counts it, and per `m` logs it
  /// (alert, heal) and heals it (heal). True when the heal changed something.
  bool declare(const observation& o, validate_mode m);
  /// Keys found consistent (or resolved within the grace window).
  void count_consistent(std::uint64_t n);
  /// A pass on demand over the cached keys matching `glob` (empty = all), at most
  /// max_batch of them: keys whose mode is off are checked as noop. Blocking: it waits out
  /// one grace window before declaring what it found. Off the CAF scheduler only.
  pass_report run_pass(std::string_view glob);

  // -- what it reports ---------------------------------------------------------------------

  struct totals {
    std::uint64_t checked = 0;
    std::uint64_t inconsistent = 0;
    std::uint64_t healed = 0;
    std::uint64_t errors = 0;
    std::uint64_t changes_dropped = 0;
    std::uint64_t passes = 0;  ///< ticks and on-demand passes run
    std::array<std::uint64_t, finding_count> by_finding{};
  };
  totals snapshot() const;
  /// Over the last `seconds` (at most 600).
  window_stats window(std::int64_t seconds) const;
  /// `/admin/validator`: mode, settings, totals, the 1/5/10-minute windows, the last
  /// inconsistencies found.
  std::string json() const;

  /// Test hook (compiled in, unset in production): runs after a heal was decided and
  /// before it takes the key's write stripe, so a test can race a newer write in.
  std::function<void(std::string_view key)> before_heal;

 private:
  bool heal(const observation& o);
  void record(std::uint64_t checked, std::uint64_t inconsistent);

  detail::node_state& st_;
  bool enabled_ = false;

  mutable std::mutex mtx_;  // everything below
  struct pending_change {
    std::string key;
    std::int64_t due_ms;
  };
  std::deque<pending_change> pending_;
  std::unordered_set<std::string> pending_keys_;  // one entry per key in pending_
  totals totals_;
  struct bucket {
    std::int64_t second = -1;
    std::uint64_t checked = 0;
    std::uint64_t inconsistent = 0;
  };
  std::array<bucket, 600> buckets_{};
  std::deque<observation> recent_;  // the last inconsistencies, at most 20
  // The inconsistencies declared, by key (L1's and storage's versions then): a copy seen
  // wrong again is not a new inconsistency. Bounded; an arbitrary entry goes when full.
  std::unordered_map<std::string, std::pair<version, version>> declared_;
  std::uint64_t rng_state_;
};

}  // namespace warp::validation
