// The coordination state machine (runtime/coordination/coord_machine.hpp): leases with
// epochs and checkpoints, fenced FIFO locks, fenced registers, exactly-once retries, its
// snapshot, its decoder's bounds, and a seeded random history checked for the fencing and
// FIFO properties and for replica determinism.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "runtime/coordination/coord_machine.hpp"

using namespace warp;
using namespace warp::coordination;

namespace {

struct fixture {
  coord_machine sm;
  index_t next = 1;

  result<std::string> run(coord_command c) { return sm.apply(next++, encode(c)); }

  std::uint64_t grant(std::uint64_t ttl = 5000) {
    coord_command c;
    c.op = coord_op::grant;
    c.number = ttl;
    auto r = run(c);
    REQUIRE(r);
    return std::stoull(*r);
  }
  result<lock_answer> lock(std::string name, std::uint64_t lease, std::string owner = "o",
                           coord_op op = coord_op::lock, bool reentrant = false) {
    coord_command c;
    c.op = op;
    c.name = std::move(name);
    c.lease = lease;
    c.owner = std::move(owner);
    c.reentrant = reentrant;
    auto r = run(c);
    if (!r) return r.err();
    return decode_lock_answer(*r);
  }
  result<lock_answer> unlock(std::string name, std::uint64_t lease, std::uint64_t token,
                             std::string owner = "o") {
    coord_command c;
    c.op = coord_op::unlock;
    c.name = std::move(name);
    c.lease = lease;
    c.owner = std::move(owner);
    c.number = token;
    auto r = run(c);
    if (!r) return r.err();
    return decode_lock_answer(*r);
  }
  result<std::string> simple(coord_op op, std::uint64_t lease, std::uint64_t number = 0,
                             std::string name = {}) {
    coord_command c;
    c.op = op;
    c.lease = lease;
    c.number = number;
    c.name = std::move(name);
    return run(c);
  }
  result<std::string> fenced_put(std::string key, std::string value, std::string lock_name,
                                 std::uint64_t token) {
    coord_command c;
    c.op = coord_op::fenced_put;
    c.name = std::move(key);
    c.value = std::move(value);
    c.owner = std::move(lock_name);
    c.number = token;
    return run(c);
  }
  lease_info lease(std::uint64_t id) {
    auto r = sm.read(encode(coord_query{coord_query_kind::lease, id, {}}));
    REQUIRE(r);
    auto info = decode_lease_info(*r);
    REQUIRE(info);
    return *info;
  }
  lock_info lock_state(std::string name) {
    auto r = sm.read(encode(coord_query{coord_query_kind::lock, 0, std::move(name)}));
    REQUIRE(r);
    auto info = decode_lock_info(*r);
    REQUIRE(info);
    return *info;
  }
};

}  // namespace

TEST_CASE("coordination: a command round-trips and malformed bytes are refused") {
  coord_command c;
  c.client = 3;
  c.seq = 4;
  c.op = coord_op::checkpoint;
  c.lease = 5;
  c.number = 6;
  c.reentrant = true;
  c.name = "lock/a";
  c.owner = "worker-1";
  c.value = "v";
  c.checkpoints = {{1, 2, 3}, {4, 5, 6}};
  auto bytes = encode(c);
  auto back = decode_coord_command(bytes);
  REQUIRE(back);
  CHECK(*back == c);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut)
    CHECK(decode_coord_command(bytes.substr(0, cut)).code() == errc::codec_error);
  CHECK_FALSE(decode_coord_command(bytes + "x"));
  auto bad_op = bytes;
  bad_op[1 + 16] = static_cast<char>(coord_op_count);
  CHECK_FALSE(decode_coord_command(bad_op));
  coord_limits tight;
  tight.max_checkpoints = 1;
  CHECK(decode_coord_command(bytes, tight).code() == errc::codec_error);
  // A length far beyond the input is refused before anything is allocated.
  std::string huge = bytes.substr(0, 1 + 8 + 8 + 1 + 8 + 8 + 1);
  huge += std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
  CHECK(decode_coord_command(huge).code() == errc::codec_error);
}

TEST_CASE("coordination: random bytes never crash the decoders or the machine") {
  std::mt19937_64 rng(42);
  coord_machine sm;
  coord_command seed;
  seed.op = coord_op::lock;
  seed.name = "n";
  seed.owner = "o";
  auto base = encode(seed);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = base;
    auto flips = 1 + rng() % 4;
    for (std::uint64_t f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) bytes.resize(rng() % (bytes.size() + 1));
    (void)sm.apply(static_cast<index_t>(i + 1), bytes);
    (void)sm.read(bytes);
    (void)decode_lock_answer(bytes);
    (void)decode_lease_info(bytes);
    (void)decode_lock_info(bytes);
    (void)decode_ids(bytes);
    auto restored = coord_machine{};
    (void)restored.restore(bytes);
  }
  SUCCEED("no crash");
}

TEST_CASE("coordination: a lease is granted, kept alive, checkpointed and revoked") {
  fixture f;
  auto id = f.grant(3000);
  CHECK(id == 1);
  CHECK(f.lease(id).ttl_ms == 3000);
  CHECK(f.simple(coord_op::attach, id, 0, "session:alice"));
  CHECK(f.simple(coord_op::attach, id, 0, "cart:alice"));
  // A checkpoint of the current epoch lowers the remaining TTL.
  coord_command cp;
  cp.op = coord_op::checkpoint;
  cp.checkpoints = {{id, 0, 1200}};
  CHECK(f.run(cp));
  CHECK(f.lease(id).remaining_ms == 1200);
  CHECK(f.simple(coord_op::keepalive, id));
  CHECK(f.lease(id).remaining_ms == 3000);
  CHECK(f.lease(id).epoch == 1);
  // A checkpoint read before the keep-alive (epoch 0) does not undo it.
  CHECK(f.run(cp));
  CHECK(f.lease(id).remaining_ms == 3000);
  f.sm.take_events();
  CHECK(f.simple(coord_op::revoke, id));
  auto events = f.sm.take_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].what == coord_event::kind::lease_ended);
  CHECK_FALSE(events[0].expired);
  CHECK(events[0].keys == std::vector<std::string>{"cart:alice", "session:alice"});
  CHECK(f.simple(coord_op::keepalive, id).code() == errc::not_found);
  CHECK(f.simple(coord_op::attach, id, 0, "x").code() == errc::not_found);
  CHECK(f.simple(coord_op::revoke, id).code() == errc::not_found);
}

TEST_CASE("coordination: TTLs outside the documented bounds are refused") {
  fixture f;
  coord_command c;
  c.op = coord_op::grant;
  c.number = 999;
  CHECK(f.run(c).code() == errc::invalid_argument);
  c.number = coord_limits{}.max_ttl_ms + 1;
  CHECK(f.run(c).code() == errc::invalid_argument);
  CHECK(f.sm.lease_count() == 0);
}

TEST_CASE("coordination: an expiry decided before a keep-alive committed is refused") {
  fixture f;
  auto id = f.grant();
  CHECK(f.simple(coord_op::keepalive, id));  // epoch 1
  CHECK(f.simple(coord_op::expire, id, 0).code() == errc::conflict);
  CHECK(f.sm.lease_count() == 1);
  CHECK(f.simple(coord_op::expire, id, 1));
  CHECK(f.sm.lease_count() == 0);
}

TEST_CASE("coordination: FIFO waiters are granted in order with increasing tokens") {
  fixture f;
  auto a = f.grant(), b = f.grant(), c = f.grant();
  auto first = f.lock("L", a);
  REQUIRE(first);
  CHECK(first->held);
  auto qb = f.lock("L", b);
  auto qc = f.lock("L", c);
  REQUIRE(qb);
  REQUIRE(qc);
  CHECK_FALSE(qb->held);
  CHECK(qb->position == 1);
  CHECK(qc->position == 2);
  // Asking again while queued keeps the place.
  CHECK(f.lock("L", c)->position == 2);
  CHECK(f.lock("L", b, "o", coord_op::try_lock)->position == 1);
  CHECK(f.lock("L", f.grant(), "o", coord_op::try_lock).code() == errc::conflict);
  f.sm.take_events();
  REQUIRE(f.unlock("L", a, first->token));
  auto events = f.sm.take_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].what == coord_event::kind::lock_granted);
  CHECK(events[0].lease == b);
  CHECK(events[0].token > first->token);
  auto state = f.lock_state("L");
  CHECK(state.holder_lease == b);
  CHECK(state.waiters == 1);
  // The old holder's token opens nothing any more.
  CHECK(f.unlock("L", a, first->token).code() == errc::conflict);
  REQUIRE(f.unlock("L", b, events[0].token));
  events = f.sm.take_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].lease == c);
  REQUIRE(f.unlock("L", c, events[0].token));
  CHECK(f.sm.lock_count() == 0);
  CHECK_FALSE(f.lock_state("L").held);
}

TEST_CASE("coordination: a lease's end releases its locks and its places in queues") {
  fixture f;
  auto a = f.grant(), b = f.grant(), c = f.grant();
  auto held = f.lock("L", a);
  REQUIRE(held);
  REQUIRE(f.lock("M", b));
  REQUIRE(f.lock("M", a));  // a waits for M
  REQUIRE(f.lock("L", b));  // b waits for L
  REQUIRE(f.lock("L", c));  // c waits for L after b
  f.sm.take_events();
  REQUIRE(f.simple(coord_op::expire, a, 0));
  auto events = f.sm.take_events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].what == coord_event::kind::lock_granted);
  CHECK(events[0].name == "L");
  CHECK(events[0].lease == b);
  CHECK(events[0].token > held->token);
  CHECK(events[1].what == coord_event::kind::lease_ended);
  CHECK(events[1].expired);
  CHECK(f.lock_state("M").waiters == 0);  // a's place in M's queue is gone
  CHECK(f.lock_state("L").waiters == 1);
  CHECK(f.lock("L", a).code() == errc::not_found);  // no session, no lock
}

TEST_CASE("coordination: reentrant holds are counted and bounded") {
  coord_limits lim;
  lim.max_reentry = 3;
  fixture f{coord_machine{lim}};
  auto a = f.grant();
  auto first = f.lock("R", a, "t1", coord_op::lock, true);
  REQUIRE(first);
  CHECK(f.lock("R", a, "t1", coord_op::lock, true)->holds == 2);
  CHECK(f.lock("R", a, "t1", coord_op::lock, true)->holds == 3);
  CHECK(f.lock("R", a, "t1", coord_op::lock, true).code() == errc::conflict);
  // Another owner of the same session waits like anyone else.
  CHECK(f.lock("R", a, "t2")->position == 1);
  CHECK(f.unlock("R", a, first->token, "t1")->holds == 2);
  CHECK(f.unlock("R", a, first->token, "t1")->holds == 1);
  f.sm.take_events();
  CHECK_FALSE(f.unlock("R", a, first->token, "t1")->held);
  auto events = f.sm.take_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].owner == "t2");
  // Without reentrancy a second lock by the holder is an error, not a deadlock.
  auto b = f.grant();
  REQUIRE(f.lock("N", b));
  CHECK(f.lock("N", b).code() == errc::conflict);
}

TEST_CASE("coordination: cancelling a wait leaves the queue, or says the lock is held") {
  fixture f;
  auto a = f.grant(), b = f.grant();
  auto held = f.lock("L", a);
  REQUIRE(f.lock("L", b));
  coord_command cancel;
  cancel.op = coord_op::cancel_wait;
  cancel.name = "L";
  cancel.lease = b;
  cancel.owner = "o";
  auto r = f.run(cancel);
  REQUIRE(r);
  CHECK_FALSE(decode_lock_answer(*r)->held);
  CHECK(f.lock_state("L").waiters == 0);
  CHECK(f.run(cancel).code() == errc::not_found);
  // The holder's cancel (a timeout that raced the grant) reports the hold to release.
  cancel.lease = a;
  r = f.run(cancel);
  REQUIRE(r);
  CHECK(decode_lock_answer(*r)->held);
  CHECK(decode_lock_answer(*r)->token == held->token);
}

TEST_CASE("coordination: a fenced register refuses the paused old holder") {
  fixture f;
  auto old_holder = f.grant(), next = f.grant();
  auto t1 = f.lock("job", old_holder);
  REQUIRE(t1);
  CHECK(f.fenced_put("result", "from-1", "job", t1->token));
  // The old holder pauses past its session TTL: the leader expires it.
  REQUIRE(f.simple(coord_op::expire, old_holder, 0));
  auto t2 = f.lock("job", next);
  REQUIRE(t2);
  CHECK(t2->token > t1->token);
  CHECK(f.fenced_put("result", "from-2", "job", t2->token));
  // It resumes and writes with its old token: refused, the newer value stays.
  CHECK(f.fenced_put("result", "late", "job", t1->token).code() == errc::conflict);
  auto v = f.sm.read(encode(coord_query{coord_query_kind::fenced, 0, "result"}));
  REQUIRE(v);
  CHECK(*v == "from-2");
  // A released lock fences every token.
  REQUIRE(f.unlock("job", next, t2->token));
  CHECK(f.fenced_put("result", "after", "job", t2->token).code() == errc::conflict);
}

TEST_CASE("coordination: a retried grant or lock is answered once, from the session") {
  fixture f;
  coord_command g;
  g.client = 9;
  g.seq = 1;
  g.op = coord_op::grant;
  g.number = 2000;
  auto first = f.run(g);
  REQUIRE(first);
  auto again = f.run(g);
  REQUIRE(again);
  CHECK(*again == *first);
  CHECK(f.sm.lease_count() == 1);
  coord_command l;
  l.client = 9;
  l.seq = 2;
  l.op = coord_op::lock;
  l.lease = std::stoull(*first);
  l.name = "L";
  l.owner = "o";
  auto held = f.run(l);
  REQUIRE(held);
  auto retry = f.run(l);
  REQUIRE(retry);
  CHECK(*retry == *held);
  CHECK(f.sm.deduplicated() == 2);
  g.seq = 0;
  CHECK(f.run(g).code() == errc::invalid_argument);
}

TEST_CASE("coordination: a restored snapshot behaves as the original") {
  fixture f;
  auto a = f.grant(), b = f.grant();
  REQUIRE(f.simple(coord_op::attach, a, 0, "k1"));
  auto held = f.lock("L", a);
  REQUIRE(held);
  REQUIRE(f.lock("L", b, "w"));
  REQUIRE(f.fenced_put("reg", "v", "L", held->token));
  auto snap = f.sm.snapshot();
  coord_machine copy;
  REQUIRE(copy.restore(snap));
  CHECK(copy.snapshot() == snap);
  CHECK(copy.applied() == f.sm.applied());
  // The derived lease -> locks index was rebuilt: ending a's lease promotes b.
  coord_command exp;
  exp.op = coord_op::expire;
  exp.lease = a;
  REQUIRE(copy.apply(f.next, encode(exp)));
  REQUIRE(f.run(exp));
  CHECK(copy.snapshot() == f.sm.snapshot());
  auto events = copy.take_events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].lease == b);
  CHECK_FALSE(copy.restore(snap.substr(0, snap.size() - 1)));
  CHECK_FALSE(copy.restore(snap + "x"));
}

TEST_CASE(
    "coordination: an ended lease's key deletes stay pending, survive a snapshot, "
    "and keys_deleted clears them once") {
  fixture f;
  auto a = f.grant(), b = f.grant(), bare = f.grant();
  REQUIRE(f.simple(coord_op::attach, a, 0, "k1"));
  REQUIRE(f.simple(coord_op::attach, a, 0, "k2"));
  REQUIRE(f.simple(coord_op::attach, b, 0, "k3"));
  CHECK(f.sm.pending_deletes().empty());
  REQUIRE(f.simple(coord_op::revoke, a));
  REQUIRE(f.simple(coord_op::expire, b, 0));
  REQUIRE(f.simple(coord_op::revoke, bare));  // no keys: nothing pending
  REQUIRE(f.sm.pending_deletes().size() == 2);
  CHECK(f.sm.pending_deletes().at(a) == coord_machine::pending_delete{{"k1", "k2"}, false});
  CHECK(f.sm.pending_deletes().at(b) == coord_machine::pending_delete{{"k3"}, true});
  // A new leader restored from a snapshot finds them (a version-1 snapshot has none).
  auto snap = f.sm.snapshot();
  coord_machine copy;
  REQUIRE(copy.restore(snap));
  CHECK(copy.pending_deletes() == f.sm.pending_deletes());
  CHECK(copy.snapshot() == snap);
  CHECK_FALSE(copy.restore(snap.substr(0, snap.size() - 1)));
  f.sm.take_events();
  REQUIRE(f.simple(coord_op::keys_deleted, a));
  auto events = f.sm.take_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].what == coord_event::kind::keys_deleted);
  CHECK(events[0].lease == a);
  CHECK(f.sm.pending_deletes().size() == 1);
  // A repeat (a retried proposal) or one for a lease without pending deletes: a no-op.
  REQUIRE(f.simple(coord_op::keys_deleted, a));
  REQUIRE(f.simple(coord_op::keys_deleted, 999));
  CHECK(f.sm.take_events().empty());
  CHECK(f.sm.pending_deletes().size() == 1);
  // The restored copy, given the same entries, ends in the same state.
  REQUIRE(copy.apply(f.next - 3, encode([&] {
                       coord_command c;
                       c.op = coord_op::keys_deleted;
                       c.lease = a;
                       return c;
                     }())));
  CHECK(copy.pending_deletes() == f.sm.pending_deletes());
}

TEST_CASE("coordination: pending deletes count against the lease bound") {
  coord_limits lim;
  lim.max_leases = 2;
  fixture f{coord_machine{lim}};
  auto a = f.grant();
  REQUIRE(f.simple(coord_op::attach, a, 0, "k"));
  REQUIRE(f.simple(coord_op::revoke, a));
  f.grant();
  coord_command c;
  c.op = coord_op::grant;
  c.number = 5000;
  CHECK(f.run(c).code() == errc::invalid_argument);
  REQUIRE(f.simple(coord_op::keys_deleted, a));
  CHECK(f.run(c));
}

TEST_CASE("coordination: a queued lock answer carries its entry's index, below the grant") {
  fixture f;
  auto a = f.grant(), b = f.grant();
  auto held = f.lock("L", a);
  REQUIRE(held);
  auto queued = f.lock("L", b, "w");
  REQUIRE(queued);
  REQUIRE_FALSE(queued->held);
  CHECK(queued->token == f.next - 1);
  f.sm.take_events();
  REQUIRE(f.unlock("L", a, held->token));
  auto events = f.sm.take_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].what == coord_event::kind::lock_granted);
  CHECK(events[0].token > queued->token);
}

TEST_CASE("coordination: release_owner gives up one owner's holds and queue places only") {
  fixture f;
  auto s = f.grant(), other = f.grant();
  auto l1 = f.lock("L1", s, "conn:1");
  REQUIRE(l1);
  REQUIRE(l1->held);
  REQUIRE(f.lock("L1", other, "x"));   // waits behind conn:1
  auto l2 = f.lock("L2", other, "x");  // held by the other lease
  REQUIRE(l2);
  REQUIRE(f.lock("L2", s, "conn:1"));   // conn:1 waits for L2
  auto l3 = f.lock("L3", s, "conn:2");  // another connection of the same session
  REQUIRE(l3);
  f.sm.take_events();
  coord_command c;
  c.op = coord_op::release_owner;
  c.lease = s;
  c.owner = "conn:1";
  auto r = f.run(c);
  REQUIRE(r);
  CHECK(*r == "2");
  auto events = f.sm.take_events();
  REQUIRE(events.size() == 1);  // L1 went to the next waiter, with a higher token
  CHECK(events[0].what == coord_event::kind::lock_granted);
  CHECK(events[0].name == "L1");
  CHECK(events[0].lease == other);
  CHECK(events[0].token > l1->token);
  // conn:1 left L2's queue; conn:2 still holds L3; nothing of conn:1 is left to release.
  REQUIRE(f.unlock("L2", other, l2->token, "x"));
  CHECK(f.sm.take_events().empty());
  CHECK(*f.run(c) == "0");
  c.owner = "conn:2";
  CHECK(*f.run(c) == "1");
  // The lease -> locks index followed: ending the session touches nothing else.
  REQUIRE(f.simple(coord_op::revoke, s));
  CHECK(f.sm.take_events().size() == 1);  // lease_ended only
  c.lease = 999;
  CHECK(f.run(c).code() == errc::not_found);
}

TEST_CASE("coordination: a seeded random history keeps the lock invariants on every replica") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    coord_machine primary, replica;
    std::map<std::string, std::uint64_t> last_token;  // per lock: tokens strictly increase
    std::vector<std::uint64_t> leases;
    index_t index = 0;
    auto apply_both = [&](const coord_command& c) {
      ++index;
      auto bytes = encode(c);
      auto a = primary.apply(index, bytes);
      auto b = replica.apply(index, bytes);
      REQUIRE(a.code() == b.code());
      if (a) REQUIRE(*a == *b);
      return a;
    };
    auto check_grant = [&](const std::string& name, std::uint64_t token) {
      auto& last = last_token[name];
      REQUIRE(token > last);
      last = token;
    };
    const char* names[] = {"a", "b", "c"};
    for (int step = 0; step < 2000; ++step) {
      coord_command c;
      auto pick = rng() % 10;
      auto some_lease = leases.empty() ? 0 : leases[rng() % leases.size()];
      std::string owner = "o" + std::to_string(rng() % 2);
      std::string name = names[rng() % 3];
      if (pick == 0 || leases.size() < 2) {
        c.op = coord_op::grant;
        c.number = 1000 + rng() % 1000;
        auto r = apply_both(c);
        REQUIRE(r);
        leases.push_back(std::stoull(*r));
      } else if (pick == 1) {
        c.op = rng() % 2 ? coord_op::revoke : coord_op::expire;
        c.lease = some_lease;
        auto info = primary.read(encode(coord_query{coord_query_kind::lease, some_lease, {}}));
        if (info) c.number = decode_lease_info(*info)->epoch;
        (void)apply_both(c);
      } else if (pick <= 5) {
        c.op = rng() % 3 ? coord_op::lock : coord_op::try_lock;
        c.lease = some_lease;
        c.name = name;
        c.owner = owner;
        auto r = apply_both(c);
        if (r) {
          auto ans = decode_lock_answer(*r);
          REQUIRE(ans);
          if (ans->held && ans->token == index) check_grant(name, ans->token);
        }
      } else if (pick <= 7) {
        auto st = primary.read(encode(coord_query{coord_query_kind::lock, 0, name}));
        auto info = decode_lock_info(*st);
        if (!info->held) continue;
        c.op = coord_op::unlock;
        c.name = name;
        c.lease = info->holder_lease;
        c.owner = info->holder_owner;
        c.number = info->token;
        REQUIRE(apply_both(c));
      } else if (pick == 8) {
        c.op = coord_op::keepalive;
        c.lease = some_lease;
        (void)apply_both(c);
      } else {
        c.op = coord_op::cancel_wait;
        c.lease = some_lease;
        c.name = name;
        c.owner = owner;
        (void)apply_both(c);
      }
      for (auto& e : primary.take_events())
        if (e.what == coord_event::kind::lock_granted) check_grant(e.name, e.token);
      replica.take_events();
      // Every holder and waiter belongs to a live lease.
      for (auto* n : names) {
        auto info = decode_lock_info(*primary.read(encode(coord_query{coord_query_kind::lock, 0, n})));
        REQUIRE(info);
        if (info->held)
          REQUIRE(primary.read(encode(coord_query{coord_query_kind::lease, info->holder_lease, {}})));
        else
          REQUIRE(info->waiters == 0);  // a free lock has no queue: it was handed on
      }
    }
    REQUIRE(primary.snapshot() == replica.snapshot());
  }
}
