// The storage adapter interface (the primary store behind L1) and the adapters Warp ships.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"
#include "warp/histogram.hpp"
#include "warp/version.hpp"

namespace warp {

/// What storage keeps for a key.
struct record {
  std::string value;
  /// Absolute expiry in ms since the Unix epoch; 0 = never. Adapters treat an expired
  /// record as absent on fetch.
  std::int64_t expires_at_ms = 0;
  version ver;
};

/// The calls of the storage interface, for per-operation error counts.
enum class storage_op : std::uint8_t { fetch, store, remove, scan, count, clear, flush, check };
inline constexpr std::size_t storage_op_count = 8;
std::string_view to_string(storage_op op) noexcept;

/// Failed calls per operation (index: storage_op), as the wrapper open_storage() puts around
/// every adapter counts them; the `warp_storage_errors_total{op=...}` metric.
using storage_error_counts = std::array<std::uint64_t, storage_op_count>;

/// A primary store. Implementations must be safe to call from many threads at once.
/// Errors: errc::storage_unavailable when the store cannot be reached (retry may help),
/// errc::storage_error when it answered with a failure.
class storage {
 public:
  virtual ~storage() = default;

  /// The record, or nullopt when the key is absent (or expired).
  virtual result<std::optional<record>> fetch(std::string_view key) = 0;
  /// One result per key, in order. The default calls fetch() per key.
  virtual result<std::vector<std::optional<record>>> fetch_batch(std::span<const std::string> keys);
  /// Inserts or replaces.
  virtual result<void> store(std::string_view key, const record& rec) = 0;
  /// Removes; removing an absent key is not an error.
  virtual result<void> remove(std::string_view key) = 0;
  /// Up to `count` live keys greater than `after` (byte order), ascending: a cursor walk
  /// over the whole key space (start with an empty `after`).
  virtual result<std::vector<std::string>> scan(std::string_view after, std::size_t count) = 0;
  /// Number of live keys (expired records may still be counted until purged).
  virtual result<std::size_t> count() = 0;
  /// Removes every key.
  virtual result<void> clear() = 0;
  /// Makes every acknowledged store durable (called on shutdown).
  virtual result<void> flush() { return {}; }
  /// A cheap round trip proving the store answers and is sound (readiness, /readyz): an
  /// error when it cannot be reached, or when it found itself damaged at open. Default: ok.
  virtual result<void> check() { return {}; }
  /// Failed calls so far, per operation; nullopt when this adapter does not count them
  /// (adapters from open_storage() do).
  virtual std::optional<storage_error_counts> error_counts() const { return std::nullopt; }
  /// A token naming the data this adapter reaches: two adapters with the same token share
  /// their keys (members of a cluster compare them at join). Written on first use into the
  /// store itself where it is durable (SQLite, PostgreSQL: table warp_meta), random per
  /// adapter for memory storage. Empty: unknown (the check is skipped). May do I/O.
  virtual result<std::string> identity() { return std::string{}; }
  /// Latency of fetches (fetch, fetch_batch) and of writes (store, remove); null when this
  /// adapter does not measure them (adapters from open_storage() do).
  virtual const latency_histogram* fetch_latency() const { return nullptr; }
  virtual const latency_histogram* write_latency() const { return nullptr; }
  /// "memory", "sqlite:/path/warp.db", "postgres:host=..." (without passwords).
  virtual std::string describe() const = 0;

  /// What the adapter holds in this process's memory (memory storage; zeros for adapters
  /// whose data lives elsewhere).
  struct memory_usage {
    std::size_t used_bytes = 0;  ///< keys + values + per-key overhead estimate
    std::size_t max_bytes = 0;   ///< 0 = unbounded
    std::string_view policy = "noeviction";
    std::uint64_t evicted_keys = 0;
    std::uint64_t oom_rejections = 0;
  };
  virtual memory_usage memory() const { return {}; }
};

/// Bounds of the memory adapter (Redis's maxmemory / maxmemory-policy).
struct memory_storage_options {
  /// Bytes of keys + values + overhead estimate; 0 = unbounded.
  std::size_t max_bytes = 0;
  enum class policy : std::uint8_t { noeviction, allkeys_lru, volatile_ttl };
  /// noeviction: a write that would go over fails with errc::storage_error "OOM command
  /// not allowed when used memory > 'maxmemory'."; allkeys_lru: evicts the least recently
  /// used of 5 sampled keys until it fits; volatile_ttl: the sampled key with a TTL that
  /// expires first (OOM when no key has a TTL).
  policy eviction = policy::noeviction;
  /// Called (under the adapter's lock: keep it short, never call back into the adapter)
  /// for each evicted key, e.g. to drop the node's L1 copy.
  std::function<void(std::string_view)> on_evict;
};

/// "noeviction", "allkeys-lru", "volatile-ttl" -> the policy; an error names the choices.
result<memory_storage_options::policy> parse_maxmemory_policy(std::string_view text);

/// Opens the adapter a spec names: `memory`, `sqlite` (data_dir/warp.db), `sqlite:PATH`,
/// `postgres:URI` / `postgresql://...`. A clear error if it cannot be opened.
result<std::unique_ptr<storage>> open_storage(std::string_view spec, std::string_view data_dir);

std::unique_ptr<storage> make_memory_storage();
std::unique_ptr<storage> make_memory_storage(memory_storage_options options);
result<std::unique_ptr<storage>> make_sqlite_storage(std::string_view path);
result<std::unique_ptr<storage>> make_postgres_storage(std::string_view conninfo);

}  // namespace warp
