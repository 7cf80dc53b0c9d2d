// Latency histograms for /metrics (Prometheus histogram type: _bucket, _sum, _count).
// Fixed log-spaced buckets (1-2.5-5 per decade, 1 us .. 10 s) so every node and every
// series is comparable and aggregatable. Observations go to a per-thread stripe: the first
// threads each own one (a relaxed load and store, no locked instruction), later threads
// share the last one with atomic adds. No lock, and no cache line two threads write.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace warp {

/// Upper bounds of the buckets, in nanoseconds (the +Inf bucket follows the last one).
inline constexpr std::array<std::uint64_t, 22> latency_bounds_ns = {
    1'000,         2'500,         5'000,         10'000,        25'000,      50'000,
    100'000,       250'000,       500'000,       1'000'000,     2'500'000,   5'000'000,
    10'000'000,    25'000'000,    50'000'000,    100'000'000,   250'000'000, 500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr std::size_t latency_buckets = latency_bounds_ns.size() + 1;  ///< with +Inf

/// What a histogram holds at one instant: per-bucket counts (not cumulative; the last is
/// +Inf), their total and the sum of the observations.
struct histogram_snapshot {
  std::array<std::uint64_t, latency_buckets> buckets{};
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;
};

class latency_histogram {
 public:
  /// Records one observation. Wait-free; a thread that owns its stripe is its only writer.
  void observe_ns(std::uint64_t ns) noexcept {
    const auto i = stripe_index();
    auto& s = stripes_[i];
    auto& bucket = s.buckets[bucket_of(ns)];
    if (i < owned_stripes) [[likely]] {
      // Only this thread writes here: no read-modify-write needed (readers load whole
      // 64-bit values, never a torn one).
      bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      s.sum_ns.store(s.sum_ns.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
    } else {
      bucket.fetch_add(1, std::memory_order_relaxed);
      s.sum_ns.fetch_add(ns, std::memory_order_relaxed);
    }
  }
  void observe(std::chrono::nanoseconds d) noexcept {
    observe_ns(d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count()));
  }
  /// Sums the stripes (a scrape: not on any hot path).
  histogram_snapshot snapshot() const noexcept;

  static std::size_t bucket_of(std::uint64_t ns) noexcept {
    std::size_t i = 0;
    while (i < latency_bounds_ns.size() && ns > latency_bounds_ns[i]) ++i;
    return i;
  }

 private:
  // Threads 0..owned_stripes-1 (in order of their first observation in the process) own a
  // stripe each; every later thread shares the last one.
  static constexpr std::size_t stripe_count = 16;
  static constexpr std::size_t owned_stripes = stripe_count - 1;
  static std::size_t stripe_index() noexcept;
  struct alignas(64) stripe {
    std::array<std::atomic<std::uint64_t>, latency_buckets> buckets{};
    std::atomic<std::uint64_t> sum_ns{0};
  };
  std::array<stripe, stripe_count> stripes_{};
};

/// Times a scope into a histogram (steady clock, a vDSO read on each end).
class latency_timer {
 public:
  explicit latency_timer(latency_histogram& h) noexcept
      : h_(h), start_(std::chrono::steady_clock::now()) {}
  ~latency_timer() { h_.observe(std::chrono::steady_clock::now() - start_); }
  latency_timer(const latency_timer&) = delete;
  latency_timer& operator=(const latency_timer&) = delete;

 private:
  latency_histogram& h_;
  std::chrono::steady_clock::time_point start_;
};

/// Appends one series of histogram family `name` in the Prometheus text format:
/// `name_bucket{labels,le="..."}` (cumulative), `name_sum{labels}` (seconds) and
/// `name_count{labels}`. `labels` is the inside of the braces (`node="a",op="get"`); the
/// caller writes the family's HELP/TYPE once (append_prometheus_header, type "histogram").
void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const histogram_snapshot& h);

/// The node's own latencies (node::latencies()).
struct node_latencies {
  latency_histogram get;  ///< node::get, L1 hits included
  latency_histogram set;  ///< node::set, storage write-through and replication included
  /// Eventual mode: from a change's version (the writer's HLC) to its application here.
  /// Millisecond resolution (the HLC's physical part) and subject to clock skew.
  latency_histogram propagation;
};

}  // namespace warp
