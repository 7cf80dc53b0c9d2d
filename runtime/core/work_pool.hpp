// A few threads for blocking work (storage I/O on behalf of actors), so actors on CAF's
// cooperative scheduler never block, and no actor has to run detached: CAF 0.17 can hang
// in actor_system's destructor waiting for detached actors' threads (CAF issue #1196).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace warp::detail {

class work_pool {
 public:
  explicit work_pool(std::size_t threads);
  ~work_pool();  ///< finishes queued work, joins
  work_pool(const work_pool&) = delete;
  work_pool& operator=(const work_pool&) = delete;
  void post(std::function<void()> fn);

 private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace warp::detail
