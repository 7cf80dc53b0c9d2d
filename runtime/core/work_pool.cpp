#include "runtime/core/work_pool.hpp"

namespace warp::detail {

work_pool::work_pool(std::size_t threads) {
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
  {
    std::lock_guard<std::mutex> g{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void work_pool::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    tasks_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

}  // namespace warp::detail
