// Frequency estimation for hot-key tracking and L1 admission.
//
//   count_min_sketch   a plain count-min sketch (depth rows of width counters), not
//                      thread-safe: the hot-key tracker uses it under its own mutex.
//   hot_key_tracker    the node's hot keys: a sampled count-min sketch plus a bounded min-heap
//                      of the top k keys by estimate, halved every half-life so yesterday's
//                      hot keys fade. Time is passed in (pure, deterministic tests).
//   frequency_sketch   TinyLFU's sketch for L1 admission: 8-bit saturating counters written
//                      with relaxed atomics from every reader at once (a lost increment
//                      under a race costs accuracy, never correctness), halved every
//                      sample_size additions so frequencies follow the workload.
// Details and figures: docs/hotkeys.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace warp::detail {

/// The 64-bit hash every estimator here uses (std::hash of the bytes, then mixed: the
/// rows derive their indexes from different bits of it).
std::uint64_t sketch_hash(std::string_view key) noexcept;

class count_min_sketch {
 public:
  /// `width` is rounded up to a power of two; depth in 1..8.
  count_min_sketch(std::size_t width, std::size_t depth);

  void add(std::uint64_t hash, std::uint32_t n = 1) noexcept;
  /// Never below the true count (before halving); above it by at most e/width of the
  /// total with probability 1 - e^-depth.
  std::uint32_t estimate(std::uint64_t hash) const noexcept;
  /// Halves every counter (ageing).
  void halve() noexcept;
  void clear() noexcept;
  std::size_t width() const noexcept { return mask_ + 1; }
  std::size_t depth() const noexcept { return depth_; }

 private:
  std::size_t index(std::uint64_t hash, std::size_t row) const noexcept;
  std::size_t mask_;
  std::size_t depth_;
  std::vector<std::uint32_t> counters_;  // depth_ rows of width
};

struct hot_key {
  std::string key;
  /// Estimated reads since the tracker started, decayed (halved every half-life), scaled
  /// back up by the sampling rate.
  std::uint64_t count = 0;
};

struct hot_key_options {
  /// Keys kept in the top-k heap.
  std::size_t capacity = 256;
  /// One read in `sample_every` is recorded (rounded up to a power of two; 1 = all).
  std::uint32_t sample_every = 64;
  /// Every counter is halved once per half-life; 0 = never.
  std::chrono::milliseconds half_life{60'000};
  std::size_t sketch_width = 8192;
  std::size_t sketch_depth = 4;
};

class hot_key_tracker {
 public:
  explicit hot_key_tracker(hot_key_options opts = {});

  /// Whether this read is one of the sampled ones. The read path calls record() only when
  /// it says yes. A per-thread countdown of reads to skip: a constant-initialized
  /// thread_local needs no guard, so an unsampled read costs a decrement (a random draw per
  /// read, with its guarded thread_local, cost ~70 ns, 16-20% of an L1 get: docs/hotkeys.md).
  /// The countdown is shared by the trackers a thread reads through, which changes which
  /// reads are sampled, not how many.
  bool sampled() noexcept {
    if (mask_ == 0) return true;
    thread_local std::uint32_t skip = 0;
    if (skip != 0) {
      --skip;
      return false;
    }
    skip = next_gap();
    return true;
  }
  /// Records one sampled read of `key` at `now` (a monotonic clock).
  void record(std::string_view key, std::chrono::milliseconds now);
  /// Records a read unless the sample skips it (the read path's call).
  void maybe_record(std::string_view key, std::chrono::milliseconds now) {
    if (sampled()) record(key, now);
  }

  /// The hottest keys, hottest first, at most `limit` (0 = all kept).
  std::vector<hot_key> top(std::size_t limit) const;
  /// Halves every count now (what the half-life does).
  void decay();

  struct stats {
    std::uint64_t sampled = 0;  ///< reads recorded
    std::uint64_t decays = 0;
    std::size_t tracked = 0;  ///< keys in the heap
  };
  stats counters() const;
  const hot_key_options& options() const noexcept { return opts_; }

 private:
  static std::uint64_t seed_thread() noexcept;
  /// Reads to skip before the next sample: uniform in [0, 2 x sample_every - 2], so one read
  /// in sample_every is recorded on average, with no period a workload could fall in step with.
  std::uint32_t next_gap() noexcept;
  void decay_locked();
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void swap_entries(std::size_t a, std::size_t b);

  hot_key_options opts_;
  std::uint64_t mask_;
  mutable std::mutex mtx_;
  count_min_sketch sketch_;
  // A min-heap on count (the root is the coldest kept key) and each key's heap position.
  std::vector<hot_key> heap_;
  // Looked up by string_view (transparent): a sampled read allocates nothing unless its
  // key enters the list.
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const noexcept {
      return std::hash<std::string_view>{}(k);
    }
  };
  std::unordered_map<std::string, std::size_t, key_hash, std::equal_to<>> where_;
  std::chrono::milliseconds last_decay_{0};
  bool started_ = false;
  std::uint64_t sampled_ = 0;
  std::uint64_t decays_ = 0;
};

/// TinyLFU's frequency sketch (Einziger, Friedman, Manes 2017), shared by L1's readers.
class frequency_sketch {
 public:
  /// Sized for a cache of `capacity` entries: 4 rows of bit_ceil(2 * capacity) counters
  /// (at least 1024), halved after 10 * capacity additions.
  explicit frequency_sketch(std::size_t capacity);

  void add(std::uint64_t hash) noexcept;
  std::uint8_t estimate(std::uint64_t hash) const noexcept;
  std::uint64_t resets() const noexcept { return resets_.load(std::memory_order_relaxed); }

 private:
  std::size_t index(std::uint64_t hash, std::size_t row) const noexcept;
  void reset() noexcept;

  std::size_t mask_;
  std::uint64_t sample_size_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> counters_;  // 4 rows of mask_ + 1
  // Additions are counted in steps of 64 on a per-thread random draw, so readers share no
  // counter line on every access; the expected count is exact.
  alignas(64) std::atomic<std::uint64_t> additions_{0};
  std::atomic<std::uint64_t> resets_{0};
  std::atomic<bool> resetting_{false};
};

}  // namespace warp::detail
