// Request coalescing ("single flight") for read-through: concurrent misses of one key share
// one storage fetch. Also closes the read-populate race: a write or invalidation that lands
// while a fetch is in flight marks it superseded, and a superseded result never enters L1.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "warp/error.hpp"
#include "warp/storage.hpp"

namespace warp::detail {

class fetch_coalescer {
 public:
  using fetch_result = result<std::optional<record>>;
  using fetch_fn = std::function<fetch_result()>;
  /// Called with the stripe lock held, so no supersede() can interleave.
  using fill_fn = std::function<void(const record&)>;

  /// Runs `fetch` once per key among concurrent callers; every caller gets its outcome.
  /// The caller that fetched calls `fill` on a found record unless a write superseded it.
  fetch_result run(std::string_view key, const fetch_fn& fetch, const fill_fn& fill);

  /// A write or invalidation of `key` happened: an in-flight fetch must not fill L1.
  void supersede(std::string_view key);
  /// Every key changed at once (a clear): no fetch in flight may fill L1.
  void supersede_all();

  /// Calls that joined another caller's fetch instead of fetching.
  std::uint64_t coalesced() const noexcept { return coalesced_.load(std::memory_order_relaxed); }

 private:
  struct flight {
    std::mutex mtx;
    std::condition_variable cv;
    bool done = false;
    bool superseded = false;  // guarded by the stripe mutex
    std::optional<fetch_result> outcome;
  };
  struct alignas(64) stripe {
    std::mutex mtx;
    std::unordered_map<std::string, std::shared_ptr<flight>> flights;
  };
  stripe& stripe_for(std::string_view key);

  std::array<stripe, 32> stripes_;
  /// Flights registered and not yet finished, over all stripes. supersede() skips the
  /// stripe lock (and the key copy) when it reads 0: see the ordering argument in
  /// coalescer.cpp. seq_cst on both sides.
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::uint64_t> coalesced_{0};
};

}  // namespace warp::detail
