// One Raft group as a CAF actor (later one per key range's replica set). Its state OWNS the
// group's pure core (runtime/consensus/raft.hpp), its durable log (raft_log_store) and the
// state machine the committed entries are applied to; nothing else touches them.
//
// Per Ready, in Raft's order (docs/strong.md, "The Raft group actor"):
//   1. entries, snapshot and a changed term/vote go to the log on the node's blocking
//      executor as ONE group commit (one fsync); the actor takes no other input for the
//      core meanwhile (it queues it: the core forbids tick/step/propose between ready()
//      and advance()), but stays responsive;
//   2. only when the executor reports back: the ready's messages are sent, its committed
//      entries applied, proposals answered, ReadIndex reads served, then advance();
//   3. a log failure stops the group on this node for good (until a restart reopens the
//      log): it sends nothing more, so it steps down by silence, and acknowledges nothing.
// A ready with nothing to persist skips the executor.
// Messages: actors/raft_commands.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/raft_commands.hpp"
#include "runtime/consensus/file_ops.hpp"
#include "runtime/consensus/raft.hpp"
#include "runtime/consensus/raft_kv.hpp"
#include "runtime/consensus/raft_log_store.hpp"
#include "runtime/consensus/raft_wire.hpp"

namespace warp::actors {

/// Runs a blocking job elsewhere; false when it refuses (shutting down). Production passes
/// the node's work_pool (runtime/core/work_pool.hpp); tests may queue jobs and run them
/// when they choose.
using raft_executor = std::function<bool(std::function<void()>)>;

/// Optional behaviour of a group beyond its state machine, run on the group actor (a
/// coordination group's lease countdown: actors/coord_group.hpp). Must not block.
class raft_group_hooks {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using propose_fn = std::function<void(std::string)>;
  virtual ~raft_group_hooks() = default;
  /// After committed entries (or a snapshot, `restored`) were applied to `sm`.
  virtual void applied(consensus::raft_state_machine& sm, bool leader, bool restored,
                       time_point now) = 0;
  /// Every tick; `propose` hands raw command bytes to this replica (answers are dropped).
  virtual void tick(bool leader, time_point now, const propose_fn& propose) = 0;

  /// Where this replica stands, given before every tick() (default: ignored).
  /// `term_applied`: it leads and has applied an entry of its own term, so its state holds
  /// every entry any earlier leader applied (a new leader's state may lag its log).
  struct standing {
    bool term_applied = false;
    consensus::term_t term = 0;
    consensus::index_t applied = 0;
  };
  virtual void before_tick(const consensus::raft_state_machine& sm, const standing& s) {
    (void)sm;
    (void)s;
  }
  /// Adds the hooks' counters to the group's status (default: none).
  virtual void add_status(raft_status& s) const { (void)s; }
};

/// What a group actor is given at spawn; fixed for its lifetime.
struct raft_group_setup {
  consensus::raft_config raft;  ///< id, initial voters, election/heartbeat ticks, seed
  std::string dir;              ///< the group's log directory
  consensus::log_store_options log;
  consensus::file_ops* ops = nullptr;  ///< nullptr: POSIX (tests inject failures)
  consensus::wire_limits wire;
  std::chrono::milliseconds tick_interval{100};
  /// Ticks a proposal or read waits for its outcome before unknown_outcome/timeout.
  int request_timeout_ticks = 50;
  raft_executor executor;  ///< required
  /// Multi-Raft (actors/raft_host_actor.hpp): when set, the group sends its raft messages
  /// to this node's host (raft_outbound), which batches them per destination node, and
  /// takes its ticks from the host instead of a timer of its own (answering each with
  /// raft_tick_done). Unset: a timer of its own and raft_link_cmd peers (tests).
  caf::actor host;
  std::uint32_t group = 0;  ///< the group's id on the host
  /// Applied entries beyond the last snapshot after which the group snapshots its state
  /// machine and drops the log below it (0 = never): bounds the log on disk and a
  /// restart's replay. A follower that fell behind the snapshot gets it whole.
  std::uint64_t snapshot_entries = 10'000;
  /// The state machine the group replicates; the key -> value map when empty.
  std::function<std::unique_ptr<consensus::raft_state_machine>()> make_state_machine;
  /// Optional hooks (none when empty).
  std::function<std::unique_ptr<raft_group_hooks>()> make_hooks;
};

struct raft_group_state {
  explicit raft_group_state(caf::event_based_actor* ptr) : self(ptr) {}

  struct opened {
    std::shared_ptr<consensus::raft_log_store> store;
    raft_group_setup setup;
  };
  caf::behavior make_behavior(std::shared_ptr<opened> init);

  // -- handlers, one per command --------------------------------------------------------

  void on_tick();
  void on_raft_message(const std::string& bytes);
  void on_propose(raft_propose_cmd& cmd);
  void on_read(raft_read_cmd& cmd);
  void on_conf(raft_conf_cmd& cmd);
  void on_persisted(std::uint64_t gen, const error& err);
  void on_compacted(std::uint64_t gen, const error& err);
  void on_stop();
  raft_status status() const;

  // -- the Ready cycle -------------------------------------------------------------------

  /// Takes readies until one needs the log (then waits for on_persisted) or none is left.
  void drive();
  /// The part of a ready that may only happen once it is durable: send, apply, answer, advance.
  void complete(const consensus::ready& rd);
  void apply(const consensus::entry& e);
  void serve_reads();
  /// Reads the core refused (its leader has not committed in its term yet) are retried here.
  void retry_deferred_reads();
  void expire(std::uint64_t now);
  void fail_log(const error& err);
  /// When snapshot_entries entries were applied since the last snapshot: snapshot the state
  /// machine and compact the log on the executor (busy meanwhile, like a persist).
  void maybe_snapshot();
  void fail_all(errc code, const std::string& why);
  /// While a ready is being persisted the core takes no input: it waits here, in order.
  bool busy() const noexcept { return persisting || log_failed; }
  void propose_now(raft_propose_cmd& cmd);
  void read_now(raft_read_cmd& cmd);
  void conf_now(raft_conf_cmd& cmd);
  void retry_conf_waiting();
  error not_leader() const;

  struct pending_proposal {
    consensus::term_t term = 0;
    std::uint64_t deadline = 0;
    completion<std::string> done;
  };
  struct pending_read {
    std::string key;
    bool versioned = false;
    std::uint64_t deadline = 0;
    completion<std::string> done;
    consensus::index_t index = 0;  ///< serve once applied reaches it
    bool started = false;          ///< read_index() accepted it
    bool confirmed = false;        ///< the core confirmed the round: `index` is set
  };

  caf::event_based_actor* self;
  raft_group_setup setup;
  std::shared_ptr<consensus::raft_log_store> store;
  std::unique_ptr<consensus::raft_state_machine> sm;
  std::unique_ptr<raft_group_hooks> hooks;
  std::optional<consensus::raft_core> core;
  std::map<consensus::node_id, caf::actor> peers;

  bool persisting = false;
  bool log_failed = false;
  bool stopping = false;
  std::uint64_t persist_gen = 0;
  /// The ready whose durable part is on the executor (shared with the job, read-only).
  std::shared_ptr<const consensus::ready> in_flight;
  consensus::hard_state saved;  ///< term and vote as last persisted (commit is volatile)
  std::deque<std::function<void()>> queued;  ///< input that arrived while persisting
  std::uint64_t ticks = 0;
  consensus::index_t applied = 0;  ///< last entry applied to `sm` (or its snapshot's)

  std::map<consensus::index_t, pending_proposal> proposals;  ///< by log index
  std::map<std::uint64_t, pending_read> reads;               ///< by ReadIndex context
  struct waiting_conf {
    std::uint64_t deadline = 0;
    raft_conf_cmd cmd;
  };
  std::vector<waiting_conf> conf_waiting;  ///< behind an uncommitted change
  std::uint64_t next_read_context = 1;
  bool was_leader = false;

  std::uint64_t persists = 0;
  std::uint64_t snapshots = 0;  ///< log compactions done by this actor
  /// The snapshot being saved by the executor (read-only there), while `persisting`.
  std::shared_ptr<const consensus::snapshot> compacting;
  std::uint64_t malformed = 0;
  std::uint64_t undeliverable = 0;

  static inline const char* name = "warp.raft_group";
};

using raft_group_actor = caf::stateful_actor<raft_group_state>;

/// Opens the group's log (blocking file I/O: call it where blocking is allowed, e.g. node
/// start or the executor, not on an actor) and spawns the actor on the recovered state.
result<caf::actor> spawn_raft_group_actor(caf::actor_system& sys, raft_group_setup setup);

}  // namespace warp::actors
