// Where a node's waiting lock() calls learn of their grants (docs/coordination.md, "Waiting
// for a lock"). Every replica of the coordination group applies every entry, so the replica
// on the waiter's own node sees the `lock_granted` event of the entry that promoted it:
// the group's hooks post each grant here and the waiter wakes at once, with no network
// push and no polling of the leader. A node without a local replica never gets a post; its
// waiters keep reading the lock (the fallback stays in every waiter, as a safety net).
//
// Only grants somebody waits for are kept (a ticket registers before its lock() is
// proposed), so the board holds at most one slot per waiting call. Thread-safe: the group
// actor posts (a short critical section, never a wait), application threads wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

namespace warp::coordination {

class grant_board : public std::enable_shared_from_this<grant_board> {
 public:
  using clock = std::chrono::steady_clock;

  /// One waiting call's slot; leaves the board when destroyed.
  class ticket {
   public:
    ticket(std::shared_ptr<grant_board> b, std::uint64_t id) : board_(std::move(b)), id_(id) {}
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { board_->leave(id_); }
    /// Only grants with a token above `floor` count: the index of the entry that queued
    /// this call (a grant applied late for an earlier lock() of the same owner is older).
    void set_floor(std::uint64_t floor) { board_->set_floor(id_, floor); }
    /// The token once a grant above the floor was posted, else nullopt at `until`.
    std::optional<std::uint64_t> wait_until(clock::time_point until) {
      return board_->wait_until(id_, until);
    }

   private:
    std::shared_ptr<grant_board> board_;
    std::uint64_t id_;
  };

  std::unique_ptr<ticket> enter(std::string_view name, std::uint64_t lease,
                                std::string_view owner) {
    std::lock_guard lk{mtx_};
    auto id = ++next_id_;
    slots_.emplace(id, slot{std::string{name}, lease, std::string{owner}, 0, std::nullopt});
    return std::make_unique<ticket>(shared_from_this(), id);
  }

  /// A lock_granted event applied by the local replica.
  void post(std::string_view name, std::uint64_t lease, std::string_view owner,
            std::uint64_t token) {
    bool any = false;
    {
      std::lock_guard lk{mtx_};
      for (auto& [id, s] : slots_)
        if (s.lease == lease && s.name == name && s.owner == owner && token > s.floor &&
            (!s.token || *s.token < token)) {
          s.token = token;
          any = true;
        }
    }
    if (any) cv_.notify_all();
  }

  std::size_t waiting() const {
    std::lock_guard lk{mtx_};
    return slots_.size();
  }

 private:
  struct slot {
    std::string name;
    std::uint64_t lease = 0;
    std::string owner;
    std::uint64_t floor = 0;
    std::optional<std::uint64_t> token;
  };

  void leave(std::uint64_t id) {
    std::lock_guard lk{mtx_};
    slots_.erase(id);
  }
  void set_floor(std::uint64_t id, std::uint64_t floor) {
    std::lock_guard lk{mtx_};
    if (auto it = slots_.find(id); it != slots_.end()) {
      it->second.floor = floor;
      if (it->second.token && *it->second.token <= floor) it->second.token.reset();
    }
  }
  std::optional<std::uint64_t> wait_until(std::uint64_t id, clock::time_point until) {
    std::unique_lock lk{mtx_};
    auto it = slots_.find(id);
    if (it == slots_.end()) return std::nullopt;
    cv_.wait_until(lk, until, [&] { return it->second.token.has_value(); });
    return it->second.token;
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::uint64_t next_id_ = 0;
  std::map<std::uint64_t, slot> slots_;
};

}  // namespace warp::coordination
