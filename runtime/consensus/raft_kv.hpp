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
#include <set>
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
  /// A read that also tells the key's revision (an encoded kv_versioned, below): what
  /// WATCH and EXEC on strong keys compare. Maps without revisions refuse it.
  virtual result<std::string> read_versioned(std::string_view key) const {
    (void)key;
    return error{errc::unsupported, "this state machine keeps no revisions"};
  }
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
  /// Decoded from an entry of format 1, written before revisions existed: what it writes
  /// gets revision 0 and leaves no tombstone, on every replica alike (a replica that
  /// restored an older snapshot knows no revisions for what that snapshot holds, one that
  /// replays the log must agree with it). Encoded back as format 1.
  bool legacy = false;
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
  /// Tombstones (the revision of a deleted key's delete, so a WATCH of an absent key sees
  /// a create and delete in between): the oldest are forgotten beyond these bounds, and
  /// an absent key without one reads as the newest forgotten revision (the floor).
  std::size_t max_tombstones = 1u << 16;
  std::size_t max_tombstone_bytes = 8u << 20;
};

/// A key's revision: the log index of the entry that last wrote it (0: written before
/// revisions existed), or for an absent key the index of the delete that removed it (the
/// tombstone floor when that one was forgotten, 0 when the key never existed since).
/// `present` tells the two apart, so an absent key and one with revision 0 never compare
/// equal. The read_versioned answer: `u8 present | u64 revision | value` (the value only
/// when present; the stored bytes, expiry header included).
struct kv_versioned {
  bool present = false;
  index_t revision = 0;
  std::string value;
  friend bool operator==(const kv_versioned&, const kv_versioned&) = default;
};
std::string encode(const kv_versioned& v);
result<kv_versioned> decode_kv_versioned(std::string_view bytes, const kv_limits& lim = {});

/// A transaction over keys of one group (the sidecar's EXEC on strong keys): every
/// condition is checked first, against the state the entry applies to; if all hold, every
/// write applies in order, else none does and the answer is `conflict` naming the key.
/// A condition is the key's revision as the proposer read it (kv_versioned: present or
/// absent, and the revision): "nothing was committed to this key since I read it", a
/// write of identical bytes included. Format 1 batches (in logs written before
/// revisions) compared the exact stored bytes instead; they still apply that way.
struct kv_batch {
  struct condition {
    std::string key;
    bool absent = false;   ///< true: the key must have no value
    index_t revision = 0;  ///< by_revision: the key's revision (of its absence if absent)
    std::string expected;  ///< format 1: its exact stored bytes (when not absent)
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
  bool by_revision = true;  ///< false: a format 1 batch (conditions on bytes)
  friend bool operator==(const kv_batch&, const kv_batch&) = default;
};

/// Format 2: `u8 2 | u32 n | n x (u8 absent | str key | u64 revision) | u32 m | m x (u8 erase
/// | str key | str value)`; format 1 (by_revision false) has `str expected` in place of the
/// revision. str = u64 length + bytes. Decoding checks every count and length against the
/// limits and the bytes left before it allocates.
std::string encode(const kv_batch& b);
result<kv_batch> decode_kv_batch(std::string_view bytes, const kv_limits& lim = {});

/// The write-through's mark: "every change up to `index` is in storage" (client 0: no session).
kv_command stored_mark(index_t index);

/// Little-endian, lengths bounded before anything is allocated for them.
std::string encode(const kv_command& c);
result<kv_command> decode_kv_command(std::string_view bytes, const kv_limits& lim = {});

/// The map. Answers: put/del/cas -> "" on success; cas that does not match -> conflict;
/// read(key) -> the value or not_found; read_versioned(key) -> an encoded kv_versioned; a sequence
/// below the client's last -> invalid_argument (a reordered retry of something already superseded).
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
  result<std::string> read_versioned(std::string_view key) const override;
  std::string snapshot() const override;
  result<void> restore(std::string_view data) override;
  index_t applied() const noexcept override { return applied_; }

  std::size_t size() const noexcept { return data_.size(); }
  /// The key's revision and value (kv_versioned).
  kv_versioned versioned(std::string_view key) const;
  std::size_t tombstones() const noexcept { return tombs_.size(); }
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
  struct record {
    std::string value;
    index_t revision = 0;
  };
  result<std::string> execute(const kv_command& c);

  void changed(const std::string& key);
  /// Every write of a value and every delete goes through these (revisions, tombstones).
  void put_key(std::string key, std::string value, bool legacy);
  void erase_key(const std::string& key, bool legacy);
  void drop_tombstone(std::string_view key);
  index_t absent_revision(std::string_view key) const;

  kv_limits lim_;
  bool track_ = false;
  index_t applying_ = 0;  ///< the index of the entry being applied
  std::map<std::string, record, std::less<>> data_;
  std::map<std::string, index_t, std::less<>> unstored_;
  std::map<std::string, index_t, std::less<>> tombs_;     ///< absent key -> its delete's index
  std::set<std::pair<index_t, std::string>> tomb_order_;  ///< the same, oldest first
  std::size_t tomb_bytes_ = 0;
  index_t tomb_floor_ = 0;  ///< the newest forgotten tombstone
  index_t stored_through_ = 0;
  std::map<std::uint64_t, session> sessions_;
  index_t applied_ = 0;
  std::uint64_t deduplicated_ = 0;
};

}  // namespace warp::consensus
