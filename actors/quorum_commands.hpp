// Every message the quorum actor (actors/quorum_actor.cpp) and the strong range actors
// (actors/strong_range_actor.cpp) understand, in one place: the atoms and the typed
// commands (in the style of Zeek Broker's internal_command.hh).
//
// Between nodes only two atoms carry data, each with one std::string of the versioned,
// size-bounded msgpack format of bus/strong_wire.hpp (a built-in CAF type: nothing
// to register, and the same bytes as before this actor was restructured):
//   (warpqreq, string)  request batch, one-way; answered by one or more reply batches
//   (warpqrep, string)  reply batch, one-way, to the sender of the requests
//   (warpqstat) -> string   the node's strong-mode status as JSON
// The commands below never leave the process. Those that carry a caller's completion or
// wire structs (requests, replies: their bytes are the wire format, not CAF's) are
// allowed as local message types; the plain ones have an `inspect`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include "merge/strong_replica.hpp"
#include "bus/strong_wire.hpp"
#include "warp/error.hpp"

namespace warp::actors {

// -- atoms --------------------------------------------------------------------------------

// Between nodes (names fixed: they are the wire protocol).
using quorum_request_atom = caf::atom_constant<caf::atom("warpqreq")>;
using quorum_reply_atom = caf::atom_constant<caf::atom("warpqrep")>;
using quorum_status_atom = caf::atom_constant<caf::atom("warpqstat")>;
// Local timers of the actor.
using quorum_tick_atom = caf::atom_constant<caf::atom("warpqtick")>;
using quorum_sweep_atom = caf::atom_constant<caf::atom("warpqswp")>;
using quorum_deadline_atom = caf::atom_constant<caf::atom("warpqdl")>;
/// Pacing of crash recovery (every 100 ms while a range is not ready) and anti-entropy.
using quorum_catchup_atom = caf::atom_constant<caf::atom("warpqcu")>;
using quorum_sync_atom = caf::atom_constant<caf::atom("warpqae")>;
// Quorum actor -> range actor.
/// Run one catch-up pass for every range of the group that is not ready (a range ready,
/// or still in its last pass, is skipped).
using range_recover_atom = caf::atom_constant<caf::atom("warprrec")>;
/// Run one anti-entropy round for every ready range of the group (a range not ready, or
/// still in its last round, is skipped).
using range_sync_atom = caf::atom_constant<caf::atom("warprae")>;
/// -> range_info
using range_info_atom = caf::atom_constant<caf::atom("warprinf")>;

constexpr caf::atom_value quorum_registry_name() noexcept {
  return caf::atom("warpquor");
}

// -- completions --------------------------------------------------------------------------

/// The caller's continuation of one command, called exactly once on the actor's thread (it
/// must not block: set a promise, send a message). If the command is dropped unanswered
/// (the actor is gone, the message was never delivered) the last copy's destructor calls it
/// with errc::shutting_down, so a caller waiting on it can never hang.
template <class T>
class completion {
 public:
  using function = std::function<void(result<T>)>;

  completion() = default;
  explicit completion(function f) : st_(std::make_shared<state>(std::move(f))) {}

  void operator()(result<T> r) const {
    if (!st_ || st_->done) return;
    st_->done = true;
    st_->f(std::move(r));
  }

 private:
  struct state {
    explicit state(function fn) : f(std::move(fn)) {}
    ~state() {
      if (!done && f) f(result<T>{errc::shutting_down, "node is stopping"});
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    function f;
    bool done = false;
  };
  std::shared_ptr<state> st_;
};

// -- commands (local only) ----------------------------------------------------------------

/// A linearizable read of `key` (the ABD read). Answers the record: an empty version when
/// the key was never written; tombstones and expiry are the caller's to interpret.
struct strong_read_cmd {
  std::string key;
  completion<detail::strong_record> done;
};

/// A linearizable write of `rec` (a value or a tombstone) to `key`. Answers the record as
/// stored, with the version picked.
struct strong_write_cmd {
  std::string key;
  detail::strong_record rec;
  completion<detail::strong_record> done;
};

/// What a raw fan-out got: replies by slot of the range's replica list.
struct fanout_result {
  std::vector<std::optional<detail::wire::reply>> replies;
  std::size_t ok = 0;
};

/// One request to some replicas of a range (recovery and anti-entropy: digests, dumps);
/// done when `need` replies are ok, every slot answered, or `timeout` passed.
struct strong_fanout_cmd {
  std::uint32_t range = 0;
  std::vector<std::size_t> slots;
  detail::wire::request req;
  std::size_t need = 1;
  std::chrono::milliseconds timeout{1000};
  completion<fanout_result> done;
};

/// Counters of work done outside the actor (recovery and anti-entropy), added to its own.
struct strong_count_cmd {
  std::uint64_t ranges_recovered = 0;
  std::uint64_t ranges_bootstrapped = 0;
  std::uint64_t anti_entropy_rounds = 0;
  std::uint64_t anti_entropy_pulls = 0;
  std::uint64_t records_merged = 0;
};

/// Use `peer` as the quorum actor of member `member` (what a successful registry lookup
/// does; tests link actors of one system directly).
struct quorum_link_cmd {
  std::size_t member = 0;
  caf::actor peer;
};

/// Fail every operation in flight (shutting_down, or unknown_outcome for writes whose
/// store phase began) and quit.
struct quorum_stop_cmd {};

/// The range-group actor of each range of this node, by range (null where it is not a
/// replica; ranges of one group name the same actor). For tests and introspection: the
/// actors own their state, this only names them.
struct quorum_ranges_cmd {
  completion<std::vector<caf::actor>> done;
};

// -- between the quorum actor and the range actors (local only) -----------------------------

/// Requests for replicas of a range-group actor's ranges (each request names its range);
/// answered with range_served to the quorum actor. `batch` 0: this node's own part in
/// quorums, everything queued for the group since the last flush (the replies go to the
/// operations); else the id of a peer's request batch being gathered.
struct range_serve_cmd {
  std::uint64_t batch = 0;
  std::vector<detail::wire::request> reqs;
};

struct range_served {
  std::uint64_t batch = 0;
  std::vector<detail::wire::reply> replies;
};

/// A range actor's fan-out to other replicas of its range (catch-up probes and dumps,
/// anti-entropy digests): the request form of strong_fanout_cmd, answered with a
/// fanout_result when `need` replies are ok, every slot answered, or `timeout` passed.
struct range_fanout_cmd {
  std::uint32_t range = 0;
  std::vector<std::size_t> slots;
  detail::wire::request req;
  std::size_t need = 1;
  std::chrono::milliseconds timeout{1000};
};

/// A range actor's readiness after a catch-up pass: `waiting_on` are the member indexes it
/// could not use (silent, or whose copy failed); empty once ready.
struct range_progress {
  std::uint32_t range = 0;
  bool ready = false;
  std::vector<std::size_t> waiting_on;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, range_progress& x) {
  return f(caf::meta::type_name("warp.range_progress"), x.range, x.ready, x.waiting_on);
}

/// Answer to range_info_atom: one range-group actor's totals.
struct range_info {
  std::uint32_t group = 0;
  std::uint32_t ranges = 0;  ///< ranges the group owns
  std::uint32_t ready = 0;   ///< of which ready
  std::uint64_t keys = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, range_info& x) {
  return f(caf::meta::type_name("warp.range_info"), x.group, x.ranges, x.ready, x.keys);
}

}  // namespace warp::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_read_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_write_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_fanout_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_count_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::quorum_link_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::quorum_stop_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::quorum_ranges_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::fanout_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::range_serve_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::range_served)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::range_fanout_cmd)
