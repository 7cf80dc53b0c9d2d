#include "runtime/core/hot_keys.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <thread>

namespace warp::detail {

namespace {

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Row seeds: each row indexes by a differently mixed hash, so two keys colliding in one
// row rarely collide in another.
constexpr std::uint64_t row_seed[8] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full,
                                       0x165667b19e3779f9ull, 0xd6e8feb86659fd93ull,
                                       0xa0761d6478bd642full, 0xe7037ed1a0b428dbull,
                                       0x8ebc6af09c88c6e3ull, 0x589965cc75374cc3ull};

}  // namespace

std::uint64_t sketch_hash(std::string_view key) noexcept {
  return mix(std::hash<std::string_view>{}(key));
}

// -- count_min_sketch -------------------------------------------------------------------

count_min_sketch::count_min_sketch(std::size_t width, std::size_t depth)
    : mask_(std::bit_ceil(std::max<std::size_t>(width, 16)) - 1),
      depth_(std::clamp<std::size_t>(depth, 1, 8)),
      counters_(depth_ * (mask_ + 1), 0) {}

std::size_t count_min_sketch::index(std::uint64_t hash, std::size_t row) const noexcept {
  return row * (mask_ + 1) + (mix(hash + row_seed[row]) & mask_);
}

void count_min_sketch::add(std::uint64_t hash, std::uint32_t n) noexcept {
  for (std::size_t r = 0; r < depth_; ++r) {
    auto& c = counters_[index(hash, r)];
    c = c > UINT32_MAX - n ? UINT32_MAX : c + n;  // saturate, never wrap to cold
  }
}

std::uint32_t count_min_sketch::estimate(std::uint64_t hash) const noexcept {
  std::uint32_t out = UINT32_MAX;
  for (std::size_t r = 0; r < depth_; ++r) out = std::min(out, counters_[index(hash, r)]);
  return out;
}

void count_min_sketch::halve() noexcept {
  for (auto& c : counters_) c >>= 1;
}

void count_min_sketch::clear() noexcept {
  std::fill(counters_.begin(), counters_.end(), 0);
}

// -- hot_key_tracker --------------------------------------------------------------------

hot_key_tracker::hot_key_tracker(hot_key_options opts)
    : opts_(opts),
      mask_(std::bit_ceil(std::max<std::uint32_t>(opts.sample_every, 1)) - 1),
      sketch_(opts.sketch_width, opts.sketch_depth) {
  opts_.capacity = std::max<std::size_t>(opts_.capacity, 1);
  opts_.sample_every = static_cast<std::uint32_t>(mask_ + 1);
  heap_.reserve(opts_.capacity);
}

std::uint64_t hot_key_tracker::seed_thread() noexcept {
  const auto id = std::hash<std::thread::id>{}(std::this_thread::get_id());
  return mix(id ^ reinterpret_cast<std::uintptr_t>(&id)) | 1;  // xorshift: never 0
}

std::uint32_t hot_key_tracker::next_gap() noexcept {
  thread_local std::uint64_t state = seed_thread();
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::uint32_t>(state % (2 * (mask_ + 1) - 1));
}

void hot_key_tracker::swap_entries(std::size_t a, std::size_t b) {
  std::swap(heap_[a], heap_[b]);
  where_[heap_[a].key] = a;
  where_[heap_[b].key] = b;
}

void hot_key_tracker::sift_up(std::size_t i) {
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (heap_[parent].count <= heap_[i].count) return;
    swap_entries(i, parent);
    i = parent;
  }
}

void hot_key_tracker::sift_down(std::size_t i) {
  for (;;) {
    const std::size_t l = 2 * i + 1, r = l + 1;
    std::size_t smallest = i;
    if (l < heap_.size() && heap_[l].count < heap_[smallest].count) smallest = l;
    if (r < heap_.size() && heap_[r].count < heap_[smallest].count) smallest = r;
    if (smallest == i) return;
    swap_entries(i, smallest);
    i = smallest;
  }
}

void hot_key_tracker::record(std::string_view key, std::chrono::milliseconds now) {
  const std::uint64_t h = sketch_hash(key);
  std::lock_guard<std::mutex> lock{mtx_};
  if (!started_) {
    started_ = true;
    last_decay_ = now;
  } else if (opts_.half_life.count() > 0) {
    // A long idle stretch halves as often as half-lives passed (capped: after 32 halvings
    // every counter is 0 anyway).
    for (int n = 0; now - last_decay_ >= opts_.half_life && n < 32; ++n) {
      decay_locked();
      last_decay_ += opts_.half_life;
    }
    if (now - last_decay_ >= opts_.half_life) last_decay_ = now;
  }
  ++sampled_;
  sketch_.add(h);
  const std::uint64_t est = sketch_.estimate(h);
  // The common case of a cold key, without touching the map: a listed key's count is its
  // estimate at its last record and estimates only grow between halvings (which halve
  // both), so a key estimated at or below the coldest listed count is either not listed
  // or listed at exactly that count, which stays as it is.
  if (heap_.size() >= opts_.capacity && est <= heap_[0].count) return;
  if (auto it = where_.find(key); it != where_.end()) {
    // Estimates only grow between halvings: the key moves towards the leaves.
    heap_[it->second].count = est;
    sift_down(it->second);
    return;
  }
  if (heap_.size() < opts_.capacity) {
    heap_.push_back({std::string{key}, est});
    where_.emplace(heap_.back().key, heap_.size() - 1);
    sift_up(heap_.size() - 1);
    return;
  }
  if (est <= heap_[0].count) return;
  where_.erase(heap_[0].key);
  heap_[0] = {std::string{key}, est};
  where_.emplace(heap_[0].key, 0);
  sift_down(0);
}

void hot_key_tracker::decay_locked() {
  sketch_.halve();
  // floor(x / 2) keeps every parent <= child: the heap stays a heap.
  for (auto& e : heap_) e.count >>= 1;
  ++decays_;
}

void hot_key_tracker::decay() {
  std::lock_guard<std::mutex> lock{mtx_};
  decay_locked();
}

std::vector<hot_key> hot_key_tracker::top(std::size_t limit) const {
  std::vector<hot_key> out;
  {
    std::lock_guard<std::mutex> lock{mtx_};
    out = heap_;
  }
  std::sort(out.begin(), out.end(), [](const hot_key& a, const hot_key& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  // A key halved to 0 is no longer hot.
  while (!out.empty() && out.back().count == 0) out.pop_back();
  if (limit != 0 && out.size() > limit) out.resize(limit);
  for (auto& e : out) e.count *= opts_.sample_every;
  return out;
}

hot_key_tracker::stats hot_key_tracker::counters() const {
  std::lock_guard<std::mutex> lock{mtx_};
  return {sampled_, decays_, heap_.size()};
}

// -- frequency_sketch -------------------------------------------------------------------

namespace {
constexpr std::uint8_t max_frequency = 15;  // TinyLFU's 4-bit counters
constexpr std::uint64_t addition_step = 64;

std::uint64_t thread_draw() noexcept {
  thread_local std::uint64_t state = [] {
    const auto id = std::hash<std::thread::id>{}(std::this_thread::get_id());
    return mix(id + 0x2545f4914f6cdd1dull) | 1;
  }();
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}
}  // namespace

frequency_sketch::frequency_sketch(std::size_t capacity)
    : mask_(std::bit_ceil(std::max<std::size_t>(2 * capacity, 1024)) - 1),
      sample_size_(10 * std::max<std::uint64_t>(capacity, 64)),
      counters_(std::make_unique<std::atomic<std::uint8_t>[]>(4 * (mask_ + 1))) {}

std::size_t frequency_sketch::index(std::uint64_t hash, std::size_t row) const noexcept {
  return row * (mask_ + 1) + (mix(hash + row_seed[row]) & mask_);
}

void frequency_sketch::add(std::uint64_t hash) noexcept {
  // Conservative update: only the rows at the minimum grow, which keeps the estimate of
  // a cold key that shares counters with hot ones closer to its own count.
  std::uint8_t least = max_frequency;
  std::size_t at[4];
  for (std::size_t r = 0; r < 4; ++r) {
    at[r] = index(hash, r);
    least = std::min(least, counters_[at[r]].load(std::memory_order_relaxed));
  }
  if (least < max_frequency)
    for (std::size_t r = 0; r < 4; ++r)
      if (counters_[at[r]].load(std::memory_order_relaxed) == least)
        counters_[at[r]].store(static_cast<std::uint8_t>(least + 1), std::memory_order_relaxed);
  if ((thread_draw() & (addition_step - 1)) == 0 &&
      additions_.fetch_add(addition_step, std::memory_order_relaxed) + addition_step >=
          sample_size_)
    reset();
}

std::uint8_t frequency_sketch::estimate(std::uint64_t hash) const noexcept {
  std::uint8_t out = max_frequency;
  for (std::size_t r = 0; r < 4; ++r)
    out = std::min(out, counters_[index(hash, r)].load(std::memory_order_relaxed));
  return out;
}

void frequency_sketch::reset() noexcept {
  // One thread halves; the others keep adding meanwhile (relaxed: a racing increment may
  // be lost or survive the halving, either is within the sketch's error).
  if (resetting_.exchange(true, std::memory_order_acquire)) return;
  for (std::size_t i = 0; i < 4 * (mask_ + 1); ++i)
    counters_[i].store(counters_[i].load(std::memory_order_relaxed) >> 1,
                       std::memory_order_relaxed);
  additions_.store(0, std::memory_order_relaxed);
  resets_.fetch_add(1, std::memory_order_relaxed);
  resetting_.store(false, std::memory_order_release);
}

}  // namespace warp::detail
