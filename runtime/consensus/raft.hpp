// The Raft consensus core: a pure state machine with no I/O, no clock and no threads of its
// own, after etcd's `raft` package. The owner drives it with tick() (its logical clock) and
// step(message), proposes with propose()/propose_conf_change()/read_index(), and collects
// the outcome with ready(): what to persist (hard state, snapshot, entries), what to send
// (only after persisting), what to apply and which linearizable reads may be served. After
// persisting, it hands the same ready back with advance(). No tick/step/propose may come
// between ready() and advance(): the core assumes the ready it gave out is still current.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"

namespace warp::consensus {

using node_id = std::uint64_t;  ///< 0 means "none"
using term_t = std::uint64_t;
using index_t = std::uint64_t;

enum class role : std::uint8_t { follower, pre_candidate, candidate, leader };
std::string_view to_string(role r) noexcept;

enum class entry_type : std::uint8_t {
  normal = 0,
  config = 1,  ///< data is the full voter set after the change (encode_voters)
};

struct entry {
  term_t term = 0;
  index_t index = 0;
  entry_type type = entry_type::normal;
  std::string data;
  friend bool operator==(const entry&, const entry&) = default;
};

/// What survives a crash besides the log: persisted atomically, before any message that
/// depends on it leaves the node.
struct hard_state {
  term_t term = 0;
  node_id vote = 0;
  index_t commit = 0;
  friend bool operator==(const hard_state&, const hard_state&) = default;
};

struct snapshot {
  index_t index = 0;            ///< last entry the snapshot covers
  term_t term = 0;              ///< that entry's term
  std::vector<node_id> voters;  ///< the configuration as of `index`
  std::string data;             ///< the application's state, opaque to the core
  friend bool operator==(const snapshot&, const snapshot&) = default;
};

enum class msg_type : std::uint8_t {
  pre_vote = 0,
  pre_vote_resp = 1,
  vote = 2,
  vote_resp = 3,
  append = 4,
  append_resp = 5,
  heartbeat = 6,
  heartbeat_resp = 7,
  install_snapshot = 8,
};
inline constexpr std::uint8_t msg_type_count = 9;

/// One message between cores. Fields a type does not use stay zero/empty.
struct message {
  msg_type type = msg_type::append;
  node_id from = 0;
  node_id to = 0;
  term_t term = 0;
  term_t log_term = 0;  ///< append: term of `index`; votes: term of the candidate's last entry
  index_t index = 0;    ///< append: previous index; votes: last index; responses: the answer
  index_t commit = 0;
  bool reject = false;
  index_t reject_hint = 0;    ///< append_resp: the follower's last index
  std::uint64_t context = 0;  ///< heartbeat(_resp): the ReadIndex round being confirmed
  std::vector<entry> entries;
  std::optional<snapshot> snap;  ///< install_snapshot only
  friend bool operator==(const message&, const message&) = default;
};

struct read_state {
  std::uint64_t context = 0;  ///< as given to read_index()
  index_t index = 0;          ///< serve the read once applied >= index
};

struct ready {
  std::optional<hard_state> hard;  ///< persist when set
  std::optional<snapshot> snap;    ///< persist (and restore the state machine) when set
  std::vector<entry> entries;      ///< persist: replaces any stored entry at index >= front
  std::vector<message> messages;   ///< send only after the above is durable
  std::vector<entry> committed;    ///< apply, in order
  std::vector<read_state> reads;   ///< linearizable reads now allowed
  bool empty() const noexcept {
    return !hard && !snap && entries.empty() && messages.empty() && committed.empty() &&
           reads.empty();
  }
};

struct raft_config {
  node_id id = 0;
  std::vector<node_id> voters;  ///< initial configuration (ignored if the log/snapshot has one)
  int election_tick = 10;       ///< election timeout is random in [election_tick, 2*election_tick)
  int heartbeat_tick = 1;
  std::uint64_t seed = 1;  ///< for the randomized election timeout: simulations inject it
  bool pre_vote = true;
  bool check_quorum = true;
  std::size_t max_inflight = 8;  ///< AppendEntries in flight per follower
  std::size_t max_entries_per_msg = 64;
  std::size_t max_bytes_per_msg = 1 << 20;
  std::size_t max_entry_bytes = 1 << 20;
  std::size_t max_uncommitted = 4096;  ///< proposals refused beyond this many uncommitted
  std::size_t max_voters = 64;
  /// TEST ONLY: the leader commits whatever it has persisted, without a majority. Exists so
  /// the simulation can show that its safety checks catch an unsafe commit rule.
  bool unsafe_commit_without_quorum = false;
};

/// What the core recovers from on restart (empty for a new node).
struct persisted_state {
  hard_state hard;
  std::optional<snapshot> snap;
  std::vector<entry> entries;  ///< contiguous, starting right after the snapshot (or at 1)
};

enum class conf_change_type : std::uint8_t { add_voter, remove_voter };

/// Voter sets as entry data: count-free little-endian u64s, sorted, bounded by max_voters.
std::string encode_voters(const std::vector<node_id>& voters);
result<std::vector<node_id>> decode_voters(std::string_view data, std::size_t max_voters);

class raft_core {
 public:
  raft_core(raft_config cfg, persisted_state st);

  void tick();
  /// A message from a peer. Messages from older terms or stale rounds are dropped.
  void step(const message& m);

  /// Leader only: appends a normal entry; returns its index (not yet committed).
  result<index_t> propose(std::string data);
  /// Leader only: one change at a time, only once the previous one is committed and the
  /// leader has committed an entry of its own term (the single-server change rule).
  result<index_t> propose_conf_change(conf_change_type type, node_id node);
  /// Leader only: a linearizable read. When it shows up in ready().reads, apply up to its
  /// index and serve. Refused until the leader has committed an entry of its term.
  result<void> read_index(std::uint64_t context);

  bool has_ready() const;
  ready take_ready();
  /// The ready returned by take_ready(), now durable (and its committed entries applied).
  void advance(const ready& rd);

  /// The application saved a snapshot of its state at `index` (<= applied): drop the log
  /// up to it. The core keeps the snapshot to bring up followers that fell behind.
  result<void> compact(index_t index, std::string data);

  // Observers (for the owner, metrics and the simulation's invariant checks).
  node_id id() const noexcept { return cfg_.id; }
  role current_role() const noexcept { return role_; }
  term_t term() const noexcept { return term_; }
  node_id leader() const noexcept { return leader_; }
  index_t commit_index() const noexcept { return commit_; }
  /// Elections this member started (real ones, after a won pre-vote) and won since it was
  /// created: an operator's signal of an unstable group (a flapping link, a slow disk).
  std::uint64_t elections_started() const noexcept { return elections_started_; }
  std::uint64_t elections_won() const noexcept { return elections_won_; }
  index_t applied_index() const noexcept { return applied_; }
  index_t first_index() const noexcept { return snap_.index + 1; }
  index_t last_index() const noexcept { return snap_.index + log_.size(); }
  /// The term of entry `i`, or nothing if it is compacted away or beyond the log.
  std::optional<term_t> term_at(index_t i) const;
  const entry* entry_at(index_t i) const;
  const std::vector<node_id>& voters() const noexcept { return voters_; }
  const snapshot& last_snapshot() const noexcept { return snap_; }

 private:
  enum class progress_state : std::uint8_t { probe, replicate, snapshot };
  struct progress {
    index_t match = 0;
    index_t next = 1;
    progress_state state = progress_state::probe;
    bool paused = false;         // probe/snapshot: one message until an answer
    bool recent_active = false;  // heard from it during this election timeout
    index_t pending_snapshot = 0;
    std::deque<index_t> inflight;  // last index of each AppendEntries in flight
  };
  struct pending_read {
    std::uint64_t context;
    index_t index;
    std::vector<node_id> acks;
  };

  void become_follower(term_t term, node_id leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void campaign(bool pre);
  void reset(term_t term);
  void reset_randomized_timeout();
  bool promotable() const;
  std::size_t quorum() const noexcept { return voters_.size() / 2 + 1; }
  bool is_voter(node_id n) const;

  void handle_vote_request(const message& m);
  void handle_vote_response(const message& m);
  void handle_append(const message& m);
  void handle_heartbeat(const message& m);
  void handle_snapshot(const message& m);
  void handle_append_response(const message& m);
  void handle_heartbeat_response(const message& m);

  void send(message m);
  void send_append(node_id to, bool allow_empty);
  void broadcast_append();
  void broadcast_heartbeat(std::uint64_t context);
  bool maybe_commit();
  void commit_to(index_t index);
  void append_local(entry e);
  void truncate_from(index_t index);
  void recompute_voters();
  void sync_progress();
  void tick_election();
  void tick_heartbeat();
  void check_reads();

  raft_config cfg_;
  std::mt19937_64 rng_;
  role role_ = role::follower;
  term_t term_ = 0;
  node_id vote_ = 0;
  node_id leader_ = 0;
  index_t commit_ = 0;
  index_t applied_ = 0;
  snapshot snap_;           // the log's base: index/term/voters (+ data to send followers)
  std::vector<entry> log_;  // entries snap_.index+1 .. last_index()
  index_t stable_ = 0;      // entries up to here are durable
  bool snap_unstable_ = false;
  hard_state persisted_hard_;
  std::vector<node_id> voters_;
  int election_elapsed_ = 0;
  std::uint64_t elections_started_ = 0;
  std::uint64_t elections_won_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_timeout_ = 0;
  std::map<node_id, bool> votes_;
  std::map<node_id, progress> progress_;
  index_t term_start_ = 0;          // leader: index of the empty entry that opened its term
  bool pending_broadcast_ = false;  // proposals since the last ready: send them batched
  std::vector<message> msgs_;
  std::deque<pending_read> reads_pending_;
  std::vector<read_state> reads_ready_;
};

}  // namespace warp::consensus
