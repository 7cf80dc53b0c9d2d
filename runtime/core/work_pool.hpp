// The node's one blocking executor: a few threads for blocking work (storage I/O, DNS, a
// read-through that waits on a peer, the async API's calls), so actors on CAF's
// cooperative scheduler never block, and no actor has to run detached: CAF 0.17 can hang
// in actor_system's destructor waiting for detached actors' threads (CAF issue #1196).
// node::start creates it (node_config::executor_threads) and hands a reference to every
// part that needs one; node::stop drains it after the parts that post to it stopped.
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
  ~work_pool();  ///< shutdown()
  work_pool(const work_pool&) = delete;
  work_pool& operator=(const work_pool&) = delete;
  /// Queues `fn`; false (and `fn` dropped) once shutdown() has begun.
  bool post(std::function<void()> fn);
  /// Runs what is queued, then joins the threads. Idempotent; posts from then on fail.
  void shutdown();
  /// True on one of this pool's threads (a job must not wait for the pool's shutdown).
  bool on_pool_thread() const noexcept;
  std::size_t size() const noexcept { return threads_.size(); }

 private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace warp::detail
