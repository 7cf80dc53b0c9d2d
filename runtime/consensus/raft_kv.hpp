// What a Raft group replicates: the state machine interface the group actor applies
// committed entries to (actors/raft_group_actor.hpp), and the first one, a small
// key -> value map with put, delete and compare-and-set. Pure: no I/O, no clock, no
// threads; every replica that applies the same entries in the same order ends in the same
// state, which is what makes it a replicated state machine.
//
// Exactly once: every command carries the client's id and a per-client sequence number
// (Raft thesis, section 6.3). The map keeps, per client, the last sequence applied and its
// answer; a command with that sequence again (a retry whose first attempt committed) is
// answered from there and changes nothing. The sessions are part of the replicated state
// (and of its snapshot): every replica dedups the same way, also after a restart, because
// the log replays them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/consensus/raft.hpp"
#include "warp/error.hpp"

namespace warp::consensus {

/// What a group applies its committed entries to. Implementations must be deterministic:
/// the answer and the new state depend only on the state and the entry.
class raft_state_machine {
 public:
  virtual ~raft_state_machine() = default;
  /// Applies the committed command `data` at `index`. The result is the proposer's answer;
  /// an error is an answer too (a refused compare-and-set), not a failure of the group.
  virtual result<std::string> apply(index_t index, std::string_view data) = 0;
  /// A read of the applied state (the group serves it after a ReadIndex round).
  virtual result<std::string> read(std::string_view query) const = 0;
  virtual std::string snapshot() const = 0;
  virtual result<void> restore(std::string_view data) = 0;
  virtual index_t applied() const noexcept = 0;
};

/// stored: the storage write-through's mark (docs/strong.md, "Storage write-through"):
/// `value` holds the u64 index through which every change of the group is in storage.
enum class kv_op : std::uint8_t { put = 0, del = 1, cas = 2, cas_del = 3, batch = 4, stored = 5 };

/// One command of the key -> value map. cas: replaces `expected` with `value`; with
/// `expect_absent` it succeeds only when the key has no value (SET NX). cas_del: deletes
/// the key only while it holds `expected` (a read-modify-write that ends in a delete).
/// batch: `value` holds an encoded kv_batch (below), `key` one of its keys (it routes the
/// command to the keys' group); all of it applies, or nothing.
struct kv_command {
  std::uint64_t client = 0;  ///< 0: no session (never deduplicated)
  std::uint64_t seq = 0;
  kv_op op = kv_op::put;
  std::string key;
  std::string value;
  std::string expected;
  bool expect_absent = false;
  friend bool operator==(const kv_command&, const kv_command&) = default;
};

struct kv_limits {
  std::size_t max_key_bytes = 64u << 10;
  std::size_t max_value_bytes = 1u << 20;
  std::size_t max_sessions = 1u << 16;  ///< beyond it the least recently used is forgotten
  /// A batch's encoded size and its conditions + writes: bounded so one transaction cannot
  /// make an entry larger than the log takes or a decode loop longer than this.
  std::size_t max_batch_bytes = 2u << 20;
  std::size_t max_batch_items = 4096;
};

/// A transaction over keys of one group (the sidecar's EXEC on strong keys): every
/// condition is checked first, against the state the entry applies to; if all hold, every
/// write applies in order, else none does and the answer is `conflict` naming the key.
/// A condition is the exact stored bytes of a key as the proposer read them, or its
/// absence: "nothing was committed to this key since I read it" (up to a write of the
/// identical bytes).
struct kv_batch {
  struct condition {
    std::string key;
    bool absent = false;   ///< true: the key must have no value
    std::string expected;  ///< else: its exact stored bytes
    friend bool operator==(const condition&, const condition&) = default;
  };
  struct write {
    std::string key;
    bool erase = false;  ///< true: delete the key, else put `value`
    std::string value;
    friend bool operator==(const write&, const write&) = default;
  };
  std::vector<condition> conditions;
  std::vector<write> writes;
  friend bool operator==(const kv_batch&, const kv_batch&) = default;
};

/// `u8 version | u32 n | n x (u8 absent | str key | str expected) | u32 m | m x (u8 erase |
/// str key | str value)`, str = u64 length + bytes. Decoding checks every count and length
/// against the limits and the bytes left before it allocates.
std::string encode(const kv_batch& b);
result<kv_batch> decode_kv_batch(std::string_view bytes, const kv_limits& lim = {});

/// The write-through's mark: "every change up to `index` is in storage" (client 0: no session).
kv_command stored_mark(index_t index);

/// Little-endian, lengths bounded before anything is allocated for them.
std::string encode(const kv_command& c);
result<kv_command> decode_kv_command(std::string_view bytes, const kv_limits& lim = {});

/// The map. Answers: put/del/cas -> "" on success; cas that does not match -> conflict;
/// read(key) -> the value or not_found; a sequence below the client's last -> invalid_argument
/// (a reordered retry of something already superseded).
///
/// With `track_unstored` (the storage write-through is on) the map also keeps, as
/// replicated state, which keys changed (put or delete) since the last `stored` mark and at
/// which index: what the leader still has to write to storage. A `stored` mark at N drops
/// the keys whose last change is at or below N. Both are in the snapshot, so compaction
/// never loses a change that storage does not have yet (a deleted key stays listed until
/// its delete is stored). Every replica must be built alike (it is part of the snapshot).
class kv_state_machine final : public raft_state_machine {
 public:
  explicit kv_state_machine(kv_limits lim = {}, bool track_unstored = false)
      : lim_(lim), track_(track_unstored) {}

  result<std::string> apply(index_t index, std::string_view data) override;
  result<std::string> read(std::string_view key) const override;
  std::string snapshot() const override;
  result<void> restore(std::string_view data) override;
  index_t applied() const noexcept override { return applied_; }

  std::size_t size() const noexcept { return data_.size(); }
  /// How many commands were answered from a session instead of applied again.
  std::uint64_t deduplicated() const noexcept { return deduplicated_; }

  /// Keys changed since the last `stored` mark -> the index of their last change (empty
  /// unless track_unstored).
  const std::map<std::string, index_t, std::less<>>& unstored() const noexcept { return unstored_; }
  /// The highest `stored` mark applied (or restored).
  index_t stored_through() const noexcept { return stored_through_; }

 private:
  struct session {
    std::uint64_t seq = 0;
    errc code = errc::ok;  // the answer given to `seq`
    index_t last_used = 0;
  };
  result<std::string> execute(const kv_command& c);

  void changed(const std::string& key);

  kv_limits lim_;
  bool track_ = false;
  index_t applying_ = 0;  ///< the index of the entry being applied
  std::map<std::string, std::string, std::less<>> data_;
  std::map<std::string, index_t, std::less<>> unstored_;
  index_t stored_through_ = 0;
  std::map<std::uint64_t, session> sessions_;
  index_t applied_ = 0;
  std::uint64_t deduplicated_ = 0;
};

}  // namespace warp::consensus
