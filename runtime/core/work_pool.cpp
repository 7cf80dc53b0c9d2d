#include "runtime/core/work_pool.hpp"

#include <algorithm>

namespace warp::detail {

work_pool::work_pool(std::size_t threads) {
  threads = std::max<std::size_t>(threads, 1);
  for (std::size_t i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> g{mtx_};
          cv_.wait(g, [&] { return stopping_ || !tasks_.empty(); });
          if (tasks_.empty()) return;
          task = std::move(tasks_.front());
          tasks_.pop_front();
        }
        task();
      }
    });
}

work_pool::~work_pool() {
  shutdown();
}

void work_pool::shutdown() {
  {
    std::lock_guard<std::mutex> g{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  const auto self = std::this_thread::get_id();
  for (auto& t : threads_) {
    if (!t.joinable()) continue;
    // A job that stops the node: its own thread finishes once the job returns.
    if (t.get_id() == self)
      t.detach();
    else
      t.join();
  }
}

bool work_pool::on_pool_thread() const noexcept {
  const auto self = std::this_thread::get_id();
  return std::any_of(threads_.begin(), threads_.end(),
                     [&](const std::thread& t) { return t.get_id() == self; });
}

bool work_pool::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (stopping_) return false;
    tasks_.push_back(std::move(fn));
  }
  cv_.notify_one();
  return true;
}

}  // namespace warp::detail
