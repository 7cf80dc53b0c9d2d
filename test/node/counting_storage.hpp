// A storage adapter for node tests: the real in-memory adapter underneath, plus counters,
// a gate that can hold fetches, and switches that make calls fail like an outage.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "warp/storage.hpp"

namespace warp::test {

class counting_storage : public warp::storage {
 public:
  std::atomic<int> fetches{0};
  std::atomic<int> stores{0};
  std::atomic<bool> fail_fetch{false};
  std::atomic<bool> fail_store{false};
  /// store() and remove() apply the change and then report a failure: the unknown outcome
  /// of a write whose acknowledgement was lost (a timeout after the commit).
  std::atomic<bool> apply_then_fail{false};
  /// A slow store: every fetch() takes at least this long.
  std::atomic<int> fetch_delay_ms{0};

  /// While closed, fetch() reads its record and then waits until open() (so a test can
  /// make a read-through hold a value that a concurrent write then supersedes).
  void close_gate() {
    std::lock_guard<std::mutex> g{mtx_};
    gate_open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard<std::mutex> g{mtx_};
      gate_open_ = true;
    }
    cv_.notify_all();
  }
  int waiting_at_gate() const { return waiting_.load(); }

  result<std::optional<record>> fetch(std::string_view key) override {
    ++fetches;
    if (fail_fetch) return error{errc::storage_unavailable, "injected outage"};
    if (auto ms = fetch_delay_ms.load(); ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{ms});
    auto r = inner_->fetch(key);
    ++waiting_;
    {
      std::unique_lock<std::mutex> g{mtx_};
      cv_.wait(g, [&] { return gate_open_; });
    }
    --waiting_;
    return r;
  }
  result<void> store(std::string_view key, const record& rec) override {
    ++stores;
    if (fail_store) return error{errc::storage_unavailable, "injected outage"};
    auto st = inner_->store(key, rec);
    if (st.has_value() && apply_then_fail)
      return error{errc::unknown_outcome, "injected lost acknowledgement"};
    return st;
  }
  result<void> remove(std::string_view key) override {
    auto st = inner_->remove(key);
    if (st.has_value() && apply_then_fail)
      return error{errc::unknown_outcome, "injected lost acknowledgement"};
    return st;
  }
  result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    return inner_->scan(after, count);
  }
  result<std::size_t> count() override { return inner_->count(); }
  result<void> clear() override { return inner_->clear(); }
  std::string describe() const override { return "counting(memory)"; }

 private:
  std::unique_ptr<warp::storage> inner_ = make_memory_storage();
  std::mutex mtx_;
  std::condition_variable cv_;
  bool gate_open_ = true;
  std::atomic<int> waiting_{0};
};

}  // namespace warp::test
