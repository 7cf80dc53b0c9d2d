// The ABD quorum protocol of the strong_distributed mode as pure state machines: no I/O, no
// threads, no clock. The caller (the quorum actor in production, a simulated lossy network
// in test/strong/quorum_phase_test.cpp) sends the requests they return, feeds every reply
// it receives to on_reply() and calls on_timeout() when the operation's deadline passes
// (etcd raft style: the protocol decides, the caller does the I/O). See docs/strong.md for
// the algorithm and why it is linearizable.
//
// Request ids: `(op id << 8) | (phase << 4) | slot`. A reply is taken only when its id names
// this operation, its current phase and a slot that has not answered that phase yet, so
// duplicated, late (an earlier phase) and foreign replies are ignored, in any order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "merge/strong_replica.hpp"
#include "bus/strong_wire.hpp"
#include "warp/error.hpp"

namespace warp::detail {

/// Slots are positions in a range's replica list (at most 15: 4 bits of the request id).
inline constexpr std::size_t max_quorum_slots = 15;

/// A request for the replica in `slot` of the operation's range.
struct quorum_send {
  std::size_t slot = 0;
  wire::request req;
};

/// One fan-out of one request to some slots of a range: collects the replies by slot until
/// `need` of them are ok or every slot answered (unreachable and not_ready replies count
/// as answered, never as ok).
class quorum_call {
 public:
  /// `id_base`: the request id with the slot bits zero; `replicas`: slots of the range.
  quorum_call(std::uint64_t id_base, std::size_t replicas, std::vector<std::size_t> slots,
              std::size_t need);

  /// `proto` once per slot, with the slot's request id.
  std::vector<quorum_send> requests(const wire::request& proto) const;
  /// Takes `rep` if it answers a slot of this call that has not answered yet. False for a
  /// duplicate or foreign reply (ignored).
  bool on_reply(wire::reply rep);
  /// Enough ok replies, or every slot answered.
  bool complete() const noexcept { return ok_ >= need_ || answered_ >= slots_.size(); }
  std::size_t ok() const noexcept { return ok_; }
  std::size_t need() const noexcept { return need_; }
  const std::vector<std::size_t>& slots() const noexcept { return slots_; }
  /// By slot (size: replicas); empty where no reply came.
  const std::vector<std::optional<wire::reply>>& replies() const noexcept { return replies_; }
  std::vector<std::optional<wire::reply>>& replies() noexcept { return replies_; }
  /// A replica answered `mismatch` (a different member list; worth a warning).
  bool saw_mismatch() const noexcept { return mismatch_; }

  static constexpr std::uint64_t slot_mask = 0xF;

 private:
  std::uint64_t id_base_;
  std::vector<std::size_t> slots_;
  std::size_t need_;
  std::vector<std::optional<wire::reply>> replies_;
  std::size_t ok_ = 0;
  std::size_t answered_ = 0;
  bool mismatch_ = false;
};

/// One linearizable get, set or delete of one key: the ABD phases.
///   read : (1) read from all replicas, wait for a majority; take the newest record;
///          (2) if fewer than a majority of the answers hold it, store it at the replicas
///              that lack it until a majority holds it (write-back); return it.
///   write: (1) read the versions, wait for a majority; (2) pick a version above all of
///          them (the caller's picker: HLC and node id) and store at a majority.
class quorum_op {
 public:
  /// Picks the version of a write from the highest version a majority holds; must return a
  /// version strictly above it (unique per writer: the node id breaks HLC ties).
  using version_picker = std::function<version(const version& highest)>;

  struct shape {
    std::uint32_t range = 0;
    std::size_t replicas = 1;  ///< slots of the range (the replication factor)
    std::size_t majority = 1;
  };

  enum class kind : std::uint8_t { read, write };

  /// `op_id`: unique among the caller's live operations, below 2^56.
  static quorum_op read(std::uint64_t op_id, shape s, std::string_view key);
  /// `rec`: the value or tombstone to write (its version is picked in phase 2).
  static quorum_op write(std::uint64_t op_id, shape s, std::string_view key, strong_record rec,
                         version_picker pick);

  /// Phase 1's requests (call once, first).
  std::vector<quorum_send> start();
  /// Feeds one reply; returns the requests of the next phase when this reply completed the
  /// current one (else nothing). Replies after the outcome is known are ignored.
  std::vector<quorum_send> on_reply(wire::reply rep);
  /// The deadline passed: the outcome becomes timeout (nothing stored by a write) or, once a
  /// write's store phase began, unknown_outcome.
  void on_timeout();
  /// The node is stopping: shutting_down, or unknown_outcome once a write's store began.
  void on_shutdown();

  bool done() const noexcept { return outcome_.has_value(); }
  /// The record read (read; an empty version: never written) or written (write, with the
  /// version picked). Only when done().
  const result<strong_record>& outcome() const { return *outcome_; }
  result<strong_record>& outcome() { return *outcome_; }

  std::uint64_t id() const noexcept { return id_; }
  kind what() const noexcept { return kind_; }
  std::uint32_t range() const noexcept { return shape_.range; }
  /// 1 or 2 (0 before start()).
  int phase() const noexcept { return phase_; }
  /// The read needed a write-back (replicas disagreed).
  bool repaired() const noexcept { return repaired_; }
  bool saw_mismatch() const noexcept { return mismatch_; }
  /// The op an id of one of its requests or replies belongs to.
  static std::uint64_t op_of(std::uint64_t request_id) noexcept { return request_id >> 8; }

 private:
  quorum_op(std::uint64_t op_id, kind k, shape s, std::string_view key);
  std::uint64_t id_base(int phase) const noexcept {
    return (id_ << 8) | (static_cast<std::uint64_t>(phase) << 4);
  }
  std::vector<quorum_send> begin(int phase, std::vector<std::size_t> slots, std::size_t need,
                                 const wire::request& proto);
  std::vector<quorum_send> phase_done();
  void fail(errc code, std::string text);

  std::uint64_t id_;
  kind kind_;
  shape shape_;
  std::string key_;
  strong_record rec_;  ///< write: what to store; read: the newest found
  version_picker pick_;
  int phase_ = 0;
  std::optional<quorum_call> call_;
  std::size_t have_ = 0;  ///< read write-back: replies that already held the newest
  bool repaired_ = false;
  bool mismatch_ = false;
  std::optional<result<strong_record>> outcome_;
};

}  // namespace warp::detail
