#include "runtime/readthrough/coalescer.hpp"

namespace warp::detail {

fetch_coalescer::stripe& fetch_coalescer::stripe_for(std::string_view key) {
  return stripes_[std::hash<std::string_view>{}(key) % stripes_.size()];
}

fetch_coalescer::fetch_result fetch_coalescer::run(std::string_view key, const fetch_fn& fetch,
                                                   const fill_fn& fill) {
  auto& s = stripe_for(key);
  std::shared_ptr<flight> f;
  {
    std::unique_lock<std::mutex> guard{s.mtx};
    auto it = s.flights.find(std::string{key});
    if (it != s.flights.end()) {
      f = it->second;
      guard.unlock();
      coalesced_.fetch_add(1, std::memory_order_relaxed);
      std::unique_lock<std::mutex> wait_guard{f->mtx};
      f->cv.wait(wait_guard, [&] { return f->done; });
      return *f->outcome;
    }
    f = std::make_shared<flight>();
    // Counted before the fetch below starts (and before the flight is visible): a writer
    // whose supersede() reads 0 is then guaranteed to have stored its value where this
    // fetch will see it (argument at supersede()).
    in_flight_.fetch_add(1, std::memory_order_seq_cst);
    s.flights.emplace(std::string{key}, f);
  }
  fetch_result outcome = [&]() -> fetch_result {
    try {
      return fetch();
    } catch (const std::exception& e) {
      return error{errc::internal, std::string{"fetch threw: "} + e.what()};
    }
  }();
  {
    std::lock_guard<std::mutex> guard{s.mtx};
    if (outcome && *outcome && !f->superseded) fill(**outcome);
    s.flights.erase(std::string{key});
    in_flight_.fetch_sub(1, std::memory_order_seq_cst);
  }
  {
    std::lock_guard<std::mutex> guard{f->mtx};
    f->outcome = outcome;
    f->done = true;
  }
  f->cv.notify_all();
  return outcome;
}

// Every write and every remote invalidation calls this, almost always with no fetch in
// flight: it then costs one atomic load instead of a stripe lock and a key copy.
//
// Why skipping on 0 is safe. The race to close: a fetch reads the OLD value from storage,
// then fills L1 after the write that replaced it. The writer stores to storage, then calls
// supersede(); the fetcher counts its flight (fetch_add), then reads storage. Storage
// serialises a store and a fetch of the same key (a mutex, or the server for an external
// store), so one of them comes first:
//  - the fetch reads after the store: it sees the new value (or a newer one), nothing
//    stale can be cached, and skipping is harmless;
//  - the fetch reads before the store: the fetcher's fetch_add happens before its read,
//    which happens before the writer's store completes (the storage's synchronisation),
//    which happens before this load; coherence then forces the load to see the increment
//    (the flight is still counted: it is only uncounted after its fill decision, which
//    takes the stripe lock below if we get there). So we read > 0 and take the lock.
// A remote invalidation is the same with the store done by another node before it sent
// the change: the fetch that read the old value began before the change arrived here.
// seq_cst on both sides keeps this a single total order even across the two threads'
// other atomics (a Dekker-style store/load pair would need nothing weaker).
void fetch_coalescer::supersede(std::string_view key) {
  if (in_flight_.load(std::memory_order_seq_cst) == 0) return;
  auto& s = stripe_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  if (auto it = s.flights.find(std::string{key}); it != s.flights.end())
    it->second->superseded = true;
}

void fetch_coalescer::supersede_all() {
  if (in_flight_.load(std::memory_order_seq_cst) == 0) return;
  for (auto& s : stripes_) {
    std::lock_guard<std::mutex> guard{s.mtx};
    for (auto& [key, f] : s.flights) f->superseded = true;
  }
}

}  // namespace warp::detail
