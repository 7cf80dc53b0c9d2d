// Every message the quorum actor (actors/quorum_actor.cpp) understands, in one place: the
// atoms and the typed commands (in the style of Zeek Broker's internal_command.hh).
//
// Between nodes only two atoms carry data, each with one std::string of the versioned,
// size-bounded msgpack format of bus/strong_wire.hpp (a built-in CAF type: nothing
// to register, and the same bytes as before this actor was restructured):
//   (warpqreq, string)  request batch, one-way; answered by one or more reply batches
//   (warpqrep, string)  reply batch, one-way, to the sender of the requests
//   (warpqstat) -> string   the node's strong-mode status as JSON
// The commands below never leave the process (they carry the caller's completion, which
// cannot be serialized): they are allowed as local message types, not given `inspect`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

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

}  // namespace warp::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_read_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_write_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_fanout_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::strong_count_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::quorum_link_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warp::actors::quorum_stop_cmd)
