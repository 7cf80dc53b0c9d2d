// Exactly-once application of retried commands (Raft thesis, section 6.3; Hazelcast CP's
// sessions): every command carries its client's id and a per-client sequence number, and the
// state machine remembers, per client, the last sequence it applied and the answer it gave.
// A retry of that sequence (its first attempt committed, the answer was lost) gets the same
// answer and changes nothing; an older sequence is refused. The table is part of the
// replicated state and of its snapshots, so every replica deduplicates the same way, also
// after a restart. Eviction, when the table is full, is by the log index of last use:
// deterministic, so replicas agree on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "runtime/consensus/byte_codec.hpp"
#include "runtime/consensus/raft.hpp"
#include "warp/error.hpp"

namespace warp::consensus {

class client_sessions {
 public:
  /// Answers longer than `max_answer_bytes` are not replayed: a retry of such a command gets
  /// unknown_outcome (state machines keep their answers short: ids, tokens, empty).
  explicit client_sessions(std::size_t max_sessions = 1u << 16,
                           std::size_t max_answer_bytes = 256)
      : max_sessions_(max_sessions), max_answer_bytes_(max_answer_bytes) {}

  /// Before applying (client, seq) at `index`: nothing when it must be applied, else the
  /// answer to give instead (the remembered one for a retry, invalid_argument for a
  /// sequence below the client's last). Client 0 has no session: always applied.
  std::optional<result<std::string>> replay(std::uint64_t client, std::uint64_t seq,
                                            index_t index);
  /// After applying (client, seq) at `index` with `answer`.
  void record(std::uint64_t client, std::uint64_t seq, index_t index,
              const result<std::string>& answer);

  std::size_t size() const noexcept { return sessions_.size(); }
  /// How many commands were answered from a session instead of applied again.
  std::uint64_t deduplicated() const noexcept { return deduplicated_; }

  void snapshot(std::string& out) const;
  /// Reads what snapshot() wrote; false (and nothing changed) when malformed.
  bool restore(byte_reader& in);

 private:
  struct session {
    std::uint64_t seq = 0;
    errc code = errc::ok;  ///< the answer given to `seq`
    std::string answer;    ///< its value, or its error message
    bool replayable = true;
    index_t last_used = 0;
  };

  std::size_t max_sessions_;
  std::size_t max_answer_bytes_;
  std::map<std::uint64_t, session> sessions_;
  std::uint64_t deduplicated_ = 0;
};

}  // namespace warp::consensus
