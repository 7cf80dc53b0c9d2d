// The durable Raft log under one directory:
//   seg-<seq, 16 hex>.log  append-only segments: a 16-byte header (magic, seq), then records
//                          [u32 length][u32 CRC-32C of the payload][payload: u64 term,
//                          u64 index, u8 type, data], little-endian, length bounded
//   hardstate              term, vote, commit with a CRC; replaced atomically
//   snapshot               index, term, voters, first live segment, data, with a CRC;
//                          replaced atomically
// An entry at an index at or below the last one replaces it and everything after it (the
// Raft truncation), so the files stay append-only. Group commit: append() many entries,
// then one sync(). Recovery truncates a torn or corrupt tail of the last segment and refuses
// corruption anywhere else: it never replays garbage, and never silently drops a record
// that valid records follow. After any write or sync error the store refuses all further
// work: what reached the disk is unknown until it is reopened (and re-read). One store per
// directory at a time: open() takes <dir>/lock and refuses a directory another store holds.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/consensus/file_ops.hpp"
#include "runtime/consensus/raft.hpp"
#include "warp/error.hpp"

namespace warp::consensus {

struct log_store_options {
  std::size_t max_segment_bytes = 64u << 20;
  std::size_t max_entry_bytes = 1u << 20;
  std::size_t max_snapshot_bytes = 1u << 30;
  std::size_t max_voters = 64;
};

struct recovery_report {
  std::size_t segments = 0;
  std::size_t records = 0;
  std::uint64_t truncated_bytes = 0;  ///< torn/corrupt tail cut off the last segment
  std::string truncated_why;
};

class raft_log_store {
 public:
  static result<std::unique_ptr<raft_log_store>> open(std::string dir, log_store_options opts = {},
                                                      file_ops& ops = posix_file_ops());
  ~raft_log_store();
  raft_log_store(const raft_log_store&) = delete;
  raft_log_store& operator=(const raft_log_store&) = delete;

  /// What open() found, for raft_core's constructor (moved out: call once).
  persisted_state take_recovered() { return std::move(recovered_); }
  const recovery_report& recovery() const noexcept { return report_; }

  /// Writes entries (no sync). An index at or below the last replaces from there on.
  result<void> append(std::span<const entry> entries);
  /// One fdatasync for everything appended since the last one.
  result<void> sync();
  result<void> save_hard_state(const hard_state& hs);
  /// A ready's durable part, in order: snapshot, entries, one sync, then the hard state
  /// if its term or vote changed (a commit-only change is not written: commit is volatile).
  result<void> persist(const ready& rd);
  /// The application snapshotted at s.index (<= the last entry): save it, drop the
  /// segments that hold nothing above it.
  result<void> compact(const snapshot& s);
  /// A snapshot from the leader replaces the whole log.
  result<void> install_snapshot(const snapshot& s);

  bool failed() const noexcept { return failed_; }
  index_t last_index() const noexcept { return last_index_; }
  std::size_t segment_count() const noexcept { return segments_.size(); }

 private:
  struct segment {
    std::uint64_t seq;
    index_t first_index;  // of its first record; 0 while empty
  };
  raft_log_store(std::string dir, log_store_options opts, file_ops& ops)
      : dir_(std::move(dir)), opts_(opts), ops_(ops) {}
  result<void> recover();
  result<void> start_segment(std::uint64_t seq);
  result<void> save_snapshot(const snapshot& s, std::uint64_t first_seq);
  result<void> fail(error e);
  std::string seg_path(std::uint64_t seq) const;

  std::string dir_;
  log_store_options opts_;
  file_ops& ops_;
  int fd_ = -1;
  int lock_fd_ = -1;  // <dir>/lock, held while this store is open
  std::uint64_t cur_size_ = 0;
  std::vector<segment> segments_;
  bool dirty_ = false;
  bool failed_ = false;
  index_t last_index_ = 0;
  index_t snap_index_ = 0;
  hard_state saved_hard_;
  persisted_state recovered_;
  recovery_report report_;
};

}  // namespace warp::consensus
