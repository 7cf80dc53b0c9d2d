#include "actors/lock_wait_actor.hpp"

#include <algorithm>
#include <random>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/raft_commands.hpp"
#include "runtime/coordination/coord_command.hpp"

namespace warp::actors {

namespace co = coordination;

namespace {

// Local only.
using lw_answer_atom = caf::atom_constant<caf::atom("warplwans")>;
using lw_tick_atom = caf::atom_constant<caf::atom("warplwtk")>;
using lw_cancel_atom = caf::atom_constant<caf::atom("warplwcn")>;

using clock = std::chrono::steady_clock;

enum class step : std::uint8_t { lock, poll, leave };

struct lock_wait_state {
  caf::actor host;
  lock_wait_spec spec;
  completion<std::uint64_t> done;
  std::unique_ptr<co::grant_board::ticket> ticket;
  enum class phase : std::uint8_t { proposing, waiting, leaving, done } now = phase::proposing;
  bool gone = false;  ///< the caller gave up
  std::uint64_t floor = 0;
  clock::time_point deadline;
  std::chrono::milliseconds pause{10};
  clock::time_point next_read;  ///< of the safety-net read
  bool polling = false;         ///< a read of the lock in flight
  std::uint64_t tick = 0;       ///< the pending tick's number: an older one is stale
  static inline const char* name = "warp.lock_wait";
};

using lock_wait_actor = caf::stateful_actor<lock_wait_state>;

std::string command_bytes(co::coord_op op, const lock_wait_spec& s, std::uint64_t number = 0) {
  co::coord_command c;
  c.client = fresh_coord_client();
  c.seq = 1;
  c.op = op;
  c.name = s.name;
  c.lease = s.session;
  c.owner = s.owner;
  c.number = number;
  return co::encode(c);
}

/// A request to the host; its answer comes back to `me` as (answer, step, errc, bytes or
/// message), built-in types only. A request the host drops is answered shutting_down.
void ask(const caf::actor& host, raft_request_kind kind, std::string bytes, const caf::actor& me,
         step s) {
  consensus::kv_command c;
  c.value = std::move(bytes);
  caf::anon_send(
      host, raft_request_cmd{
                kind, std::move(c), completion<std::string>{[me, s](result<std::string> r) {
                  if (!me) return;
                  const auto st = static_cast<std::uint8_t>(s);
                  if (r)
                    caf::anon_send(me, lw_answer_atom::value, st, std::uint8_t{0}, std::move(*r));
                  else
                    caf::anon_send(me, lw_answer_atom::value, st,
                                   static_cast<std::uint8_t>(r.code()), r.err().message());
                }}});
}

void finish(lock_wait_actor* self, result<std::uint64_t> r) {
  auto& st = self->state;
  if (st.now == lock_wait_state::phase::done) return;
  st.now = lock_wait_state::phase::done;
  st.done(std::move(r));
  self->quit();
}

void leave(lock_wait_actor* self) {
  auto& st = self->state;
  st.now = lock_wait_state::phase::leaving;
  ask(st.host, raft_request_kind::coord_propose, command_bytes(co::coord_op::cancel_wait, st.spec),
      caf::actor_cast<caf::actor>(self), step::leave);
}

/// How often a waiter looks at the grant board (in-process: a mutex, no network). The
/// board cannot call back yet (a change of runtime/coordination/grant_board.hpp, which
/// ~30 translation units include): this tick stands in for the push.
constexpr auto board_check = std::chrono::milliseconds{2};

/// The next tick: the board check (with a local replica), the next read, the deadline.
void schedule_tick(lock_wait_actor* self) {
  auto& st = self->state;
  const auto now = clock::now();
  auto at = st.deadline;
  if (!st.polling) at = std::min(at, st.next_read);
  if (st.spec.pushed) at = std::min(at, now + board_check);
  auto delay = std::max(std::chrono::duration_cast<std::chrono::microseconds>(at - now),
                        std::chrono::microseconds{0});
  self->delayed_send(self, delay, lw_tick_atom::value, ++st.tick);
}

error gone_error() {
  return error{errc::timeout, "lock wait canceled: the caller went away"};
}

caf::behavior lock_wait_impl(lock_wait_actor* self, caf::actor host,
                             std::shared_ptr<co::grant_board> board, lock_wait_spec spec,
                             completion<std::uint64_t> done) {
  auto& st = self->state;
  st.host = std::move(host);
  st.spec = std::move(spec);
  st.done = std::move(done);
  st.deadline = clock::now() + st.spec.timeout;
  const bool waits = st.spec.timeout.count() > 0;
  const auto max_pause = std::chrono::milliseconds{st.spec.pushed ? 1000 : 50};
  // On the board before the proposal: a grant the local replica applies before the
  // proposal's answer is back is kept for this call.
  if (waits) st.ticket = board->enter(st.spec.name, st.spec.session, st.spec.owner);
  ask(st.host, raft_request_kind::coord_propose,
      command_bytes(waits ? co::coord_op::lock : co::coord_op::try_lock, st.spec),
      caf::actor_cast<caf::actor>(self), step::lock);
  return {
      [self, waits, max_pause](lw_answer_atom, std::uint8_t s, std::uint8_t code,
                               std::string& text) {
        auto& st = self->state;
        const error err = code == 0 ? error{} : error{static_cast<errc>(code), text};
        switch (static_cast<step>(s)) {
          case step::lock: {
            if (err) return finish(self, err);
            auto a = co::decode_lock_answer(text);
            if (!a) return finish(self, a.err());
            if (a->held) {
              if (!st.gone) return finish(self, a->token);
              release_lock(st.host, st.spec.name, st.spec.session, st.spec.owner, a->token);
              return finish(self, gone_error());
            }
            if (!waits) return finish(self, error{errc::conflict, "lock is held by another owner"});
            // Queued: the machine grants in FIFO order; the grant carries a token above the
            // index of the entry that queued this call.
            st.floor = a->token;
            st.now = lock_wait_state::phase::waiting;
            if (st.gone) return leave(self);
            st.ticket->set_floor(a->token);
            st.next_read = clock::now() + st.pause;
            return schedule_tick(self);
          }
          case step::poll: {
            st.polling = false;
            if (st.now != lock_wait_state::phase::waiting) return;
            if (!err) {
              auto l = co::decode_lock_info(text);
              if (l && l->held && l->holder_lease == st.spec.session &&
                  l->holder_owner == st.spec.owner && l->token > st.floor)
                return finish(self, l->token);
            } else if (err.code() == errc::unsupported || err.code() == errc::shutting_down) {
              return finish(self, err);  // the node is stopping: no grant can reach us
            }
            st.pause = std::min(st.pause * 2, max_pause);
            st.next_read = clock::now() + st.pause;
            return schedule_tick(self);
          }
          case step::leave: {
            // A grant that raced the timeout is returned, never lost.
            if (!err)
              if (auto a = co::decode_lock_answer(text); a && a->held) {
                if (!st.gone) return finish(self, a->token);
                release_lock(st.host, st.spec.name, st.spec.session, st.spec.owner, a->token);
              }
            return finish(self,
                          st.gone ? gone_error() : error{errc::timeout, "lock wait timed out"});
          }
        }
      },
      [self](lw_tick_atom, std::uint64_t tick) {
        auto& st = self->state;
        if (st.now != lock_wait_state::phase::waiting || tick != st.tick) return;
        const auto now = clock::now();
        // The local replica applied the grant (posted to the board by the group's hook).
        if (auto token = st.ticket->wait_until(now)) return finish(self, *token);
        if (now >= st.deadline) return leave(self);
        if (!st.polling && now >= st.next_read) {
          // The safety net: a linearizable read of the lock at the leader.
          st.polling = true;
          ask(st.host, raft_request_kind::coord_read,
              co::encode(co::coord_query{co::coord_query_kind::lock, 0, st.spec.name}),
              caf::actor_cast<caf::actor>(self), step::poll);
        }
        schedule_tick(self);
      },
      [self](lw_cancel_atom) {
        auto& st = self->state;
        st.gone = true;
        if (st.now == lock_wait_state::phase::waiting) leave(self);
      },
  };
}

}  // namespace

caf::actor start_lock_wait(caf::actor_system& sys, caf::actor host,
                           std::shared_ptr<coordination::grant_board> board, lock_wait_spec spec,
                           completion<std::uint64_t> done) {
  return sys.spawn(lock_wait_impl, std::move(host), std::move(board), std::move(spec),
                   std::move(done));
}

void cancel_lock_wait(const caf::actor& waiter) {
  if (waiter) caf::anon_send(waiter, lw_cancel_atom::value);
}

void release_lock(const caf::actor& host, std::string name, std::uint64_t session,
                  std::string owner, std::uint64_t token) {
  lock_wait_spec s;
  s.name = std::move(name);
  s.session = session;
  s.owner = std::move(owner);
  consensus::kv_command c;
  c.value = command_bytes(co::coord_op::unlock, s, token);
  // Nobody waits for it: a failure leaves the lock to the session's end.
  caf::anon_send(host, raft_request_cmd{raft_request_kind::coord_propose, std::move(c),
                                        completion<std::string>{[](result<std::string>) {}}});
}

std::uint64_t fresh_coord_client() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  return rng() | 1;
}

}  // namespace warp::actors
