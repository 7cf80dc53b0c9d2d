// The outgoing side of adaptive batching: local writes (any thread) push change records;
// the bus actor drains them into batches bounded by records and bytes, keeping only the
// newest record per key (an older change of a key is pointless once a newer one is queued).
// Whether to send at once or wait up to the maximum delay for more is bus::batch_policy's
// call (bus/batch_policy.hpp): idle -> at once, busy -> coalesce.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "bus/envelope.hpp"

namespace warp::bus {

class outbound_queue {
 public:
  /// Queues a record. Returns true when the consumer must be woken (it was not yet told
  /// about pending records); the caller then sends it one wake-up message.
  bool push(change_record rec);

  struct drained {
    std::vector<change_record> records;
    std::uint64_t coalesced = 0;      ///< records dropped for a newer one of the same key
    std::int64_t oldest_wait_us = 0;  ///< how long the oldest drained record waited
  };
  /// Takes up to `max_records` / `max_bytes` (at least one record) in arrival order, the
  /// newest version per key. `coalesce` off keeps every record.
  drained drain(std::size_t max_records, std::size_t max_bytes, bool coalesce);

  /// The consumer is about to drain: later pushes must wake it again.
  void rearm() noexcept { wake_pending_.store(false, std::memory_order_release); }
  std::size_t size() const;
  bool empty() const { return size() == 0; }
  /// Records pushed since start (the consumer derives the arrival rate from it).
  std::uint64_t pushed() const noexcept { return pushed_.load(std::memory_order_relaxed); }

 private:
  using clock = std::chrono::steady_clock;
  mutable std::mutex mtx_;
  std::vector<change_record> pending_;
  std::vector<clock::time_point> since_;
  std::size_t head_ = 0;
  std::atomic<bool> wake_pending_{false};
  std::atomic<std::uint64_t> pushed_{0};
};

/// The sending side of the numbering inbound_tracker checks: batches 1, 2, 3, ... per
/// incarnation, and heartbeats carrying the last number sent (so a receiver sees a lost
/// tail). Pure; the cluster actor owns one.
class outbound_sequence {
 public:
  outbound_sequence(std::uint32_t sender, std::uint64_t incarnation) noexcept
      : sender_(sender), incarnation_(incarnation) {}
  /// The header of the next change batch (numbers it).
  envelope_header next_batch(std::uint64_t hlc_now) noexcept {
    return {message_kind::changes, sender_, incarnation_, ++last_, hlc_now};
  }
  /// The header of a heartbeat: announces the last batch numbered.
  envelope_header heartbeat(std::uint64_t hlc_now) const noexcept {
    return {message_kind::heartbeat, sender_, incarnation_, last_, hlc_now};
  }
  std::uint64_t last_sent() const noexcept { return last_; }

 private:
  std::uint32_t sender_;
  std::uint64_t incarnation_;
  std::uint64_t last_ = 0;
};

/// The incoming side: per-sender sequence tracking. Each sender numbers its batches 1, 2,
/// 3, ... per incarnation; a receiver that sees a hole (or a heartbeat announcing a batch
/// it never got, or a stream that began before it was listening) can no longer trust
/// what it cached and must drop it.
class inbound_tracker {
 public:
  enum class verdict : std::uint8_t {
    in_order,   ///< the next batch, or a heartbeat matching what arrived
    first,      ///< first contact with this sender, stream starts at 1: nothing missed
    gap,        ///< something was lost: distrust this sender's changes
    duplicate,  ///< an old batch again (should not happen over one connection): ignore
  };
  verdict on_batch(std::uint32_t sender, std::uint64_t incarnation, std::uint64_t seq);
  /// `last_sent` = the last batch number the sender says it sent.
  /// A new incarnation of a sender already tracked is always a gap: nothing confirms that
  /// the old incarnation's last batches arrived (test/bus/gap_tracking_test.cpp).
  verdict on_heartbeat(std::uint32_t sender, std::uint64_t incarnation, std::uint64_t last_sent);
  /// The sender went down: its next message starts a fresh baseline (as a gap).
  void forget(std::uint32_t sender);

 private:
  struct stream {
    std::uint64_t incarnation = 0;
    std::uint64_t last = 0;
  };
  std::vector<std::pair<std::uint32_t, stream>> streams_;
  stream* find(std::uint32_t sender);
};

}  // namespace warp::bus
