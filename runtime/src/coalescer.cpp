#include "runtime/src/coalescer.hpp"

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
  }
  {
    std::lock_guard<std::mutex> guard{f->mtx};
    f->outcome = outcome;
    f->done = true;
  }
  f->cv.notify_all();
  return outcome;
}

void fetch_coalescer::supersede(std::string_view key) {
  auto& s = stripe_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  if (auto it = s.flights.find(std::string{key}); it != s.flights.end())
    it->second->superseded = true;
}

}  // namespace warp::detail
