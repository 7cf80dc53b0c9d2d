// The ABD phases (actors/quorum_phase.hpp) without actors, threads or sockets: step
// by step, then many seeded runs over a simulated network that drops, duplicates, delays
// (hence reorders) and partitions messages, in the style of Zeek Broker's channel tests.
// Each run's history is checked for linearizability (test/support/linearizability.hpp)
// and, on versions, for "no read older than a completed write"; with a majority reachable
// and no loss every operation must complete. A mutant with quorums of one replica must be
// caught by the same checks, so they can fail.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <set>

#include "actors/quorum_phase.hpp"
#include "actors/strong_context.hpp"
#include "merge/strong_replica.hpp"
#include "test/support/linearizability.hpp"

using namespace warp;
using namespace warp::detail;

namespace {

strong_record value(std::uint64_t hlc, std::uint32_t node, std::string v) {
  strong_record r;
  r.ver = version{hlc, node};
  r.value = std::move(v);
  return r;
}

wire::reply answer(const quorum_send& s, strong_replica& replica) {
  return serve(replica, s.req);
}

wire::reply bare(const quorum_send& s, wire::status code) {
  wire::reply rep;
  rep.id = s.req.id;
  rep.code = code;
  return rep;
}

quorum_op::version_picker picker(std::uint32_t node) {
  return [node](const version& highest) { return version{highest.hlc + 1, node}; };
}

}  // namespace

TEST_CASE("quorum read: the newest of a majority, written back when replicas disagree") {
  std::vector<strong_replica> reps;
  for (int i = 0; i < 3; ++i) reps.emplace_back(true);
  reps[0].apply("k", value(5 << 16, 1, "new"));
  reps[1].apply("k", value(3 << 16, 1, "old"));
  reps[2].apply("k", value(3 << 16, 1, "old"));
  auto op = quorum_op::read(7, {0, 3, 2}, "k");
  auto sends = op.start();
  REQUIRE(sends.size() == 3);
  for (auto& s : sends) CHECK(quorum_op::op_of(s.req.id) == 7);
  // Slots 0 and 1 answer: they disagree, so the read writes "new" back to the others.
  CHECK(op.on_reply(answer(sends[0], reps[0])).empty());
  auto wb = op.on_reply(answer(sends[1], reps[1]));
  CHECK(op.phase() == 2);
  CHECK(op.repaired());
  REQUIRE(wb.size() == 2);  // slots 1 (stale) and 2 (no answer yet)
  CHECK(wb[0].slot == 1);
  CHECK(wb[1].slot == 2);
  CHECK(wb[0].req.what == wire::op::store);
  REQUIRE(wb[0].req.rec);
  CHECK(wb[0].req.rec->value == "new");
  // Slot 2's phase-1 reply arrives late: ignored. One write-back ack is enough (1 + 1).
  CHECK(op.on_reply(answer(sends[2], reps[2])).empty());
  CHECK_FALSE(op.done());
  CHECK(op.on_reply(answer(wb[1], reps[2])).empty());
  REQUIRE(op.done());
  REQUIRE(op.outcome());
  CHECK(op.outcome()->value == "new");
  CHECK(reps[2].get("k").value == "new");
}

TEST_CASE("quorum read: agreeing majority returns without a write-back") {
  std::vector<strong_replica> reps;
  for (int i = 0; i < 3; ++i) reps.emplace_back(true);
  reps[0].apply("k", value(5 << 16, 1, "v"));
  reps[1].apply("k", value(5 << 16, 1, "v"));
  auto op = quorum_op::read(1, {0, 3, 2}, "k");
  auto sends = op.start();
  op.on_reply(answer(sends[0], reps[0]));
  op.on_reply(answer(sends[1], reps[1]));
  REQUIRE(op.done());
  CHECK_FALSE(op.repaired());
  CHECK(op.outcome()->value == "v");
}

TEST_CASE("quorum op: duplicate, foreign and late replies are ignored") {
  strong_replica r0{true}, r1{true};
  auto op = quorum_op::write(3, {0, 3, 2}, "k", value(0, 0, "x"), picker(9));
  auto sends = op.start();
  REQUIRE(sends.size() == 3);
  auto first = answer(sends[0], r0);
  CHECK(op.on_reply(first).empty());
  CHECK(op.on_reply(first).empty());  // the same slot twice counts once
  CHECK(op.phase() == 1);
  auto foreign = answer(sends[1], r1);
  foreign.id = (4ull << 8) | (1 << 4) | 1;  // another op's id
  CHECK(op.on_reply(foreign).empty());
  CHECK(op.phase() == 1);
  auto stores = op.on_reply(answer(sends[1], r1));
  REQUIRE(stores.size() == 3);
  CHECK(op.phase() == 2);
  // A duplicate of phase 1 arriving during phase 2 is not a store acknowledgement.
  CHECK(op.on_reply(first).empty());
  CHECK(op.on_reply(answer(sends[2], r1)).empty());
  CHECK_FALSE(op.done());
  op.on_reply(answer(stores[0], r0));
  CHECK_FALSE(op.done());
  op.on_reply(answer(stores[0], r0));  // duplicate ack
  CHECK_FALSE(op.done());
  op.on_reply(answer(stores[1], r1));
  REQUIRE(op.done());
  REQUIRE(op.outcome());
  CHECK(op.outcome()->ver.node == 9);
  CHECK(r0.get("k").value == "x");
  // After the outcome, nothing changes it.
  op.on_timeout();
  CHECK(op.outcome());
}

TEST_CASE("quorum write: a version above every version a majority holds") {
  strong_replica r0{true}, r1{true};
  r1.apply("k", value(100 << 16, 2, "old"));
  // A picker that lags behind (a slow clock) is corrected to stay above what it saw.
  auto op = quorum_op::write(1, {0, 3, 2}, "k", value(0, 0, "x"), [](const version&) {
    return version{1, 3};
  });
  auto sends = op.start();
  op.on_reply(answer(sends[0], r0));
  auto stores = op.on_reply(answer(sends[1], r1));
  REQUIRE(stores.size() == 3);
  REQUIRE(stores[0].req.rec);
  CHECK(version{100 << 16, 2} < stores[0].req.rec->ver);
}

TEST_CASE("quorum op: timeouts say whether anything may have been written") {
  strong_replica r0{true};
  SECTION("a write without a majority in phase 1 wrote nothing") {
    auto op = quorum_op::write(1, {0, 3, 2}, "k", value(0, 0, "x"), picker(1));
    auto sends = op.start();
    op.on_reply(answer(sends[0], r0));
    op.on_timeout();
    REQUIRE(op.done());
    CHECK(op.outcome().code() == errc::timeout);
    CHECK(r0.get("k").ver.empty());
  }
  SECTION("a write whose store phase began has an unknown outcome") {
    auto op = quorum_op::write(1, {0, 3, 2}, "k", value(0, 0, "x"), picker(1));
    auto sends = op.start();
    op.on_reply(answer(sends[0], r0));
    auto stores = op.on_reply(answer(sends[1], r0));
    op.on_reply(answer(stores[0], r0));
    op.on_timeout();
    CHECK(op.outcome().code() == errc::unknown_outcome);
  }
  SECTION("shutting down: nothing written before the store phase, unknown after") {
    auto a = quorum_op::write(1, {0, 3, 2}, "k", value(0, 0, "x"), picker(1));
    a.start();
    a.on_shutdown();
    CHECK(a.outcome().code() == errc::shutting_down);
    auto b = quorum_op::write(2, {0, 3, 2}, "k", value(0, 0, "x"), picker(1));
    auto sends = b.start();
    b.on_reply(answer(sends[0], r0));
    b.on_reply(answer(sends[1], r0));
    b.on_shutdown();
    CHECK(b.outcome().code() == errc::unknown_outcome);
  }
  SECTION("a read without a majority times out") {
    auto op = quorum_op::read(1, {0, 5, 3}, "k");
    auto sends = op.start();
    op.on_reply(answer(sends[0], r0));
    op.on_reply(answer(sends[1], r0));
    op.on_timeout();
    CHECK(op.outcome().code() == errc::timeout);
  }
}

TEST_CASE("quorum op: unreachable, not_ready and mismatch answer without counting") {
  strong_replica r0{true};
  auto op = quorum_op::read(1, {0, 3, 2}, "k");
  auto sends = op.start();
  op.on_reply(answer(sends[0], r0));
  op.on_reply(bare(sends[1], wire::status::not_ready));
  CHECK_FALSE(op.done());
  // Every slot answered, only one ok: the outcome is known at once, no need to wait.
  op.on_reply(bare(sends[2], wire::status::mismatch));
  REQUIRE(op.done());
  CHECK(op.outcome().code() == errc::timeout);
  CHECK(op.saw_mismatch());

  auto w = quorum_op::write(2, {0, 3, 2}, "k", value(0, 0, "x"), picker(1));
  auto ws = w.start();
  w.on_reply(bare(ws[0], wire::status::unreachable));
  w.on_reply(bare(ws[1], wire::status::unreachable));
  w.on_reply(answer(ws[2], r0));
  REQUIRE(w.done());
  CHECK(w.outcome().code() == errc::timeout);
  CHECK(r0.get("k").ver.empty());
}

// -- a simulated lossy network ------------------------------------------------------------

namespace {

struct net_options {
  std::size_t replicas = 3;
  std::size_t majority = 2;  ///< a mutant uses 1
  std::size_t clients = 4;
  std::size_t keys = 3;
  std::int64_t duration = 400'000;  ///< simulated microseconds of new operations
  std::int64_t timeout = 10'000;
  std::int64_t min_delay = 50;
  std::int64_t max_delay = 4'000;
  double drop = 0.0;
  double duplicate = 0.0;
  /// Share of messages delayed up to `late_delay` instead (past the deadline, usually).
  double late = 0.0;
  std::int64_t late_delay = 25'000;
  /// Partitions: every `partition_every` us on average, a random set of replicas is cut
  /// off from everyone for up to `partition_for` us. `max_cut` bounds the set's size.
  std::int64_t partition_every = 0;
  std::int64_t partition_for = 30'000;
  std::size_t max_cut = 1;
  /// Replicas cut off for the whole run.
  std::set<std::size_t> down;
};

struct run_report {
  std::vector<test::register_op> history;
  std::size_t ok = 0, failed = 0, unknown = 0, started = 0;
  std::size_t stale_reads = 0;  ///< reads older than a write/read completed before them
  std::size_t dropped = 0, duplicated = 0;
};

/// One run: clients run random get/set/delete operations through quorum_op; every message
/// between a client and a replica goes through the network's queue. Deterministic for a
/// seed.
class sim {
 public:
  sim(net_options o, std::uint64_t seed) : o_(std::move(o)), rng_(seed) {
    for (std::size_t i = 0; i < o_.replicas; ++i) replicas_.emplace_back(true);
    clients_.resize(o_.clients);
    for (auto& c : clients_) c.next_start = uniform(0, 2'000);
    if (o_.partition_every > 0) next_partition_ = uniform(0, 2 * o_.partition_every);
  }

  run_report run() {
    for (;;) {
      auto t = next_event();
      if (!t) break;
      now_ = *t;
      step();
    }
    // Every operation must have an outcome by now (deadlines fire even with no message).
    for (auto& c : clients_) REQUIRE_FALSE(c.op);
    check_versions();
    return std::move(rep_);
  }

 private:
  struct packet {
    std::int64_t at = 0;
    std::uint64_t seq = 0;
    bool to_replica = true;
    std::size_t replica = 0;
    std::size_t client = 0;
    wire::request req;
    wire::reply rep;
    bool operator>(const packet& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct client {
    std::optional<quorum_op> op;
    std::int64_t deadline = 0;
    std::int64_t next_start = 0;
    std::uint64_t hlc = 0;
    std::size_t history_index = 0;
  };
  struct done_op {
    bool write = false;
    std::string key;
    version ver;
    std::int64_t invoke = 0, ret = 0;
  };

  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>{lo, hi}(rng_);
  }
  bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>{0, 1}(rng_) < p; }
  bool cut(std::size_t replica) const {
    return o_.down.count(replica) || (now_ < partition_until_ && partitioned_.count(replica));
  }

  std::optional<std::int64_t> next_event() const {
    std::optional<std::int64_t> t;
    auto consider = [&](std::int64_t x) {
      if (!t || x < *t) t = x;
    };
    if (!net_.empty()) consider(net_.top().at);
    for (auto& c : clients_) {
      if (c.op)
        consider(c.deadline);
      else if (c.next_start <= o_.duration)
        consider(c.next_start);
    }
    // Partitions change only what is in flight: they happen while something else does.
    if (t && o_.partition_every > 0) consider(next_partition_);
    return t;
  }

  void send(std::size_t client, std::vector<quorum_send> sends) {
    for (auto& s : sends) {
      packet p;
      p.to_replica = true;
      p.replica = s.slot;
      p.client = client;
      p.req = std::move(s.req);
      post(std::move(p));
    }
  }

  void post(packet p) {
    if (chance(o_.drop)) {
      ++rep_.dropped;
      return;
    }
    int copies = chance(o_.duplicate) ? 2 : 1;
    rep_.duplicated += copies - 1;
    for (int i = 0; i < copies; ++i) {
      p.at = now_ + (chance(o_.late) ? uniform(o_.max_delay, o_.late_delay)
                                     : uniform(o_.min_delay, o_.max_delay));
      p.seq = seq_++;
      net_.push(p);
    }
  }

  void step() {
    if (o_.partition_every > 0 && now_ >= next_partition_) {
      partitioned_.clear();
      auto n = static_cast<std::size_t>(uniform(1, static_cast<std::int64_t>(o_.max_cut)));
      while (partitioned_.size() < n)
        partitioned_.insert(static_cast<std::size_t>(uniform(0, o_.replicas - 1)));
      partition_until_ = now_ + uniform(1'000, o_.partition_for);
      next_partition_ = now_ + uniform(o_.partition_every / 2, o_.partition_every * 3 / 2);
    }
    while (!net_.empty() && net_.top().at <= now_) {
      auto p = net_.top();
      net_.pop();
      if (cut(p.replica)) continue;  // a partition loses what crosses it, both ways
      if (p.to_replica) {
        packet r;
        r.to_replica = false;
        r.replica = p.replica;
        r.client = p.client;
        r.rep = serve(replicas_[p.replica], p.req);
        post(std::move(r));
      } else {
        auto& c = clients_[p.client];
        if (!c.op || quorum_op::op_of(p.rep.id) != c.op->id()) continue;  // late
        send(p.client, c.op->on_reply(std::move(p.rep)));
        finish_if_done(p.client);
      }
    }
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      auto& c = clients_[i];
      if (c.op && now_ >= c.deadline) {
        c.op->on_timeout();
        finish_if_done(i);
      }
      if (!c.op && c.next_start <= now_ && now_ <= o_.duration) start(i);
    }
  }

  void start(std::size_t i) {
    auto& c = clients_[i];
    auto key = "k" + std::to_string(uniform(0, static_cast<std::int64_t>(o_.keys) - 1));
    quorum_op::shape shape{0, o_.replicas, o_.majority};
    test::register_op h;
    h.key = key;
    h.client = static_cast<int>(i);
    h.invoke_ns = now_;
    auto roll = uniform(0, 99);
    auto id = next_op_++;
    auto node = static_cast<std::uint32_t>(i + 1);
    auto pick = [&c, node, this](const version& highest) {
      c.hlc = std::max<std::uint64_t>(c.hlc + 1, static_cast<std::uint64_t>(now_) << 4);
      return version{std::max(c.hlc, highest.hlc + 1), node};
    };
    if (roll < 50) {
      h.what = test::register_op::kind::get;
      c.op.emplace(quorum_op::read(id, shape, key));
    } else {
      strong_record rec;
      if (roll < 90) {
        h.what = test::register_op::kind::set;
        h.input = "v" + std::to_string(id);
        rec.value = h.input;
      } else {
        h.what = test::register_op::kind::del;
        rec.tombstone = true;
      }
      c.op.emplace(quorum_op::write(id, shape, key, std::move(rec), pick));
    }
    ++rep_.started;
    c.deadline = now_ + o_.timeout;
    c.history_index = pending_.size();
    pending_.push_back(std::move(h));
    send(i, c.op->start());
    finish_if_done(i);
  }

  void finish_if_done(std::size_t i) {
    auto& c = clients_[i];
    if (!c.op || !c.op->done()) return;
    auto h = pending_[c.history_index];
    auto& out = c.op->outcome();
    bool write = c.op->what() == quorum_op::kind::write;
    if (out) {
      ++rep_.ok;
      h.return_ns = now_;
      if (!write)
        h.output = out->ver.empty() || out->tombstone ? std::nullopt : std::optional{out->value};
      rep_.history.push_back(h);
      done_.push_back({write, h.key, out->ver, h.invoke_ns, h.return_ns});
    } else if (write && out.code() == errc::unknown_outcome) {
      ++rep_.unknown;
      h.return_ns = test::register_op::unknown_return;  // may apply at any later time
      rep_.history.push_back(h);
    } else {
      // A failed read, or a write refused before its store phase: no effect.
      REQUIRE(out.code() == errc::timeout);
      ++rep_.failed;
    }
    c.op.reset();
    c.next_start = now_ + uniform(0, 3'000);
  }

  /// A read returns a version at least as new as every write and read on its key that
  /// completed before the read began.
  void check_versions() {
    for (auto& r : done_) {
      if (r.write) continue;
      for (auto& x : done_)
        if (&x != &r && x.key == r.key && x.ret < r.invoke && r.ver < x.ver) ++rep_.stale_reads;
    }
  }

  net_options o_;
  std::mt19937_64 rng_;
  std::vector<strong_replica> replicas_;
  std::vector<client> clients_;
  std::priority_queue<packet, std::vector<packet>, std::greater<>> net_;
  std::vector<test::register_op> pending_;
  std::vector<done_op> done_;
  run_report rep_;
  std::int64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t next_op_ = 1;
  std::int64_t next_partition_ = 0;
  std::int64_t partition_until_ = 0;
  std::set<std::size_t> partitioned_;
};

}  // namespace

TEST_CASE("simulated lossy network: every history is linearizable") {
  std::size_t runs = 0, unknown = 0, dropped = 0, duplicated = 0, ok = 0;
  for (std::size_t replicas : {3, 5}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      net_options o;
      o.replicas = replicas;
      o.majority = replicas / 2 + 1;
      o.drop = 0.05;
      o.duplicate = 0.1;
      o.max_delay = 2'000;
      o.late = 0.03;  // some messages arrive after the 10 ms deadline
      o.partition_every = 60'000;
      o.max_cut = replicas / 2 + 1;  // sometimes a majority is cut off
      auto rep = sim{o, seed * 7919 + replicas}.run();
      INFO("replicas " << replicas << ", seed " << seed << ": " << rep.history.size() << " ops");
      CHECK(rep.stale_reads == 0);
      auto verdict = test::check_linearizable(rep.history);
      INFO(verdict.key << ": " << verdict.explanation);
      CHECK(verdict.ok());
      ++runs;
      unknown += rep.unknown;
      dropped += rep.dropped;
      duplicated += rep.duplicated;
      ok += rep.ok;
    }
  }
  INFO(runs << " runs, " << ok << " ops ok, " << unknown << " unknown outcomes, " << dropped
            << " messages dropped, " << duplicated << " duplicated");
  // The faults happened (else the runs would prove little).
  CHECK(unknown > 0);
  CHECK(dropped > 0);
  CHECK(duplicated > 0);
  CHECK(ok > runs * 20);
}

TEST_CASE("simulated network: with a majority up and no loss, every operation completes") {
  for (std::size_t replicas : {3, 5}) {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
      net_options o;
      o.replicas = replicas;
      o.majority = replicas / 2 + 1;
      o.duplicate = 0.2;
      o.max_delay = o.timeout / 5;  // reordered, duplicated, but two round trips in time
      for (std::size_t d = 0; d < replicas - o.majority; ++d) o.down.insert(d);
      auto rep = sim{o, seed}.run();
      INFO("replicas " << replicas << ", seed " << seed);
      CHECK(rep.started > 50);
      CHECK(rep.ok == rep.started);
      CHECK(rep.stale_reads == 0);
      CHECK(test::check_linearizable(rep.history).ok());
    }
  }
}

TEST_CASE("simulated network: with a majority down, nothing succeeds and nothing is stored") {
  net_options o;
  o.down = {0, 1};
  auto rep = sim{o, 3}.run();
  CHECK(rep.started > 50);
  CHECK(rep.ok == 0);
  CHECK(rep.unknown == 0);  // no write got past phase 1
  CHECK(rep.failed == rep.started);
}

TEST_CASE("simulated network: quorums of one replica (a mutant) are caught") {
  std::size_t caught = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    net_options o;
    o.majority = 1;
    o.max_delay = 3'000;
    o.partition_every = 20'000;
    o.partition_for = 60'000;
    o.max_cut = 2;
    auto rep = sim{o, seed}.run();
    caught += rep.stale_reads > 0 || !test::check_linearizable(rep.history).ok();
  }
  INFO(caught << " of 10 mutant runs caught");
  CHECK(caught >= 3);
}
