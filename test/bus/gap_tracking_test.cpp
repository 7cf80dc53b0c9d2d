// Gap detection of the sync bus over a simulated lossy transport, in the manner of Zeek
// Broker's channel tests (libbroker/broker/internal/channel.test.cc): a sender numbers its
// batches and heartbeats (bus::outbound_sequence), a transport drops, duplicates and
// reorders them, the sender restarts with new incarnations, and a bus::inbound_tracker on
// the receiving side judges each message. Seeded, so every run is the same.
//
// What must hold, as the cluster uses the verdicts: a gap verdict on a message distrusts
// everything not newer than that message's clock reading (runtime/modes/cluster.cpp,
// distrust). So by the time the receiver accepts any message sent after a batch it never
// applied (lost, or overtaken and then ignored as a duplicate), a gap verdict with a bound
// at least that batch's clock reading must have been given: no loss is ever skipped over
// silently. And a stream delivered in order, even with duplicates, never yields a gap.
#include <catch2/catch.hpp>

#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "bus/batcher.hpp"

using namespace warp::bus;
using verdict = inbound_tracker::verdict;

namespace {

constexpr std::uint32_t sender_id = 7;

struct message {
  bool heartbeat = false;
  envelope_header h;
};

struct transport_options {
  double drop = 0;
  double duplicate = 0;
  double reorder = 0;  ///< a message is held back and overtaken by the next one
  double restart = 0;  ///< per message: the sender restarts (new incarnation, seq from 1)
  double heartbeat = 0.2;
  /// The receiver starts listening after this many messages were sent (a late joiner).
  std::size_t late_join = 0;
};

struct outcome {
  std::size_t batches_sent = 0;
  std::size_t not_applied = 0;
  std::size_t gaps = 0;
  std::size_t restarts = 0;
  /// Messages accepted past a batch never applied that no gap verdict covered, plus such
  /// batches left uncovered at the end (must be 0).
  std::size_t undetected = 0;
  /// Gap verdicts with nothing missing and no restart behind them.
  std::size_t unjustified = 0;
};

outcome simulate(std::uint32_t seed, std::size_t messages, const transport_options& o) {
  std::mt19937 rng{seed};
  std::bernoulli_distribution drop{o.drop}, dup{o.duplicate}, reorder{o.reorder},
      restart{o.restart}, beat{o.heartbeat};
  std::uint64_t hlc = 1000;
  std::uint64_t incarnation = 1;
  outbound_sequence seq{sender_id, incarnation};
  inbound_tracker tracker;
  outcome out;

  // Every batch sent: (incarnation, seq) -> hlc; the clock readings of those not applied
  // (yet); the gap bound so far.
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> sent;
  std::set<std::uint64_t> unapplied;
  std::uint64_t covered = 0;  // highest clock reading of a message judged a gap
  std::uint64_t seen_incarnation = 0;

  auto receive = [&](const message& m) {
    auto v = m.heartbeat ? tracker.on_heartbeat(m.h.sender, m.h.incarnation, m.h.seq)
                         : tracker.on_batch(m.h.sender, m.h.incarnation, m.h.seq);
    // The newest batch sent before this message that the receiver does not have.
    auto before = unapplied.lower_bound(m.h.hlc_now);
    std::optional<std::uint64_t> missing;
    if (before != unapplied.begin()) missing = *std::prev(before);
    if (v == verdict::gap) {
      ++out.gaps;
      covered = std::max(covered, m.h.hlc_now);
      bool restarted = seen_incarnation != 0 && seen_incarnation != m.h.incarnation;
      if (!missing && !restarted) ++out.unjustified;
    }
    if (v == verdict::duplicate) return;
    if (missing && *missing > covered) ++out.undetected;  // accepted past a silent loss
    seen_incarnation = m.h.incarnation;
    if (!m.heartbeat) unapplied.erase(sent.at({m.h.incarnation, m.h.seq}));
  };

  std::optional<message> held;  // reordering: delivered after the next message
  auto deliver = [&](const message& m) {
    receive(m);
    if (dup(rng)) receive(m);
  };
  for (std::size_t i = 0; i < messages; ++i) {
    if (restart(rng)) {
      ++out.restarts;
      seq = outbound_sequence{sender_id, ++incarnation};
    }
    message m;
    m.heartbeat = beat(rng);
    m.h = m.heartbeat ? seq.heartbeat(++hlc) : seq.next_batch(++hlc);
    if (!m.heartbeat) {
      ++out.batches_sent;
      sent[{m.h.incarnation, m.h.seq}] = m.h.hlc_now;
      unapplied.insert(m.h.hlc_now);
    }
    if (i < o.late_join || drop(rng)) continue;  // lost on the way (or nobody listening)
    if (!held && reorder(rng)) {
      held = m;
      continue;
    }
    deliver(m);
    if (held) {
      deliver(*held);
      held.reset();
    }
  }
  if (held) deliver(*held);
  // A live sender's heartbeat gets through eventually: the only witness of a lost tail.
  receive(message{true, seq.heartbeat(++hlc)});

  out.not_applied = unapplied.size();
  for (auto at : unapplied)
    if (covered < at) ++out.undetected;
  return out;
}

}  // namespace

TEST_CASE("gap tracking: an in-order stream never reports a gap, duplicates included") {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    auto r = simulate(seed, 2000, {});
    CHECK(r.gaps == 0);
    CHECK(r.not_applied == 0);
    transport_options dups;
    dups.duplicate = 0.2;
    r = simulate(seed, 2000, dups);
    CHECK(r.gaps == 0);
    CHECK(r.not_applied == 0);
  }
}

TEST_CASE("gap tracking: every batch lost to a lossy transport is detected") {
  struct scenario {
    const char* name;
    transport_options o;
  };
  std::vector<scenario> scenarios{
      {"drops", {.drop = 0.1}},
      {"heavy drops", {.drop = 0.5}},
      {"drops and duplicates", {.drop = 0.1, .duplicate = 0.2}},
      {"reordering", {.reorder = 0.1}},
      {"drops, duplicates, reordering", {.drop = 0.05, .duplicate = 0.1, .reorder = 0.05}},
      {"restarts", {.restart = 0.01}},
      {"restarts and drops", {.drop = 0.1, .restart = 0.02}},
      {"rare heartbeats and drops", {.drop = 0.05, .heartbeat = 0.01}},
      {"a late joiner", {.late_join = 50}},
      {"everything", {.drop = 0.1, .duplicate = 0.1, .reorder = 0.05, .restart = 0.01}},
  };
  for (auto& sc : scenarios) {
    for (std::uint32_t seed = 1; seed <= 30; ++seed) {
      INFO(sc.name << ", seed " << seed);
      auto r = simulate(seed, 2000, sc.o);
      CHECK(r.undetected == 0);
      CHECK(r.unjustified == 0);
      if (sc.o.drop > 0 || sc.o.reorder > 0 || sc.o.late_join > 0) {
        CHECK(r.not_applied > 0);  // the scenario did lose something
        CHECK(r.gaps > 0);
      }
      if (sc.o.restart > 0) CHECK(r.restarts > 0);
    }
  }
}

TEST_CASE("gap tracking: a heartbeat announcing a lost batch is a gap") {
  outbound_sequence out{sender_id, 1};
  inbound_tracker in;
  auto b1 = out.next_batch(10);
  CHECK(in.on_batch(b1.sender, b1.incarnation, b1.seq) == verdict::first);
  auto hb = out.heartbeat(11);
  CHECK(hb.seq == 1);
  CHECK(in.on_heartbeat(hb.sender, hb.incarnation, hb.seq) == verdict::in_order);
  out.next_batch(12);  // lost: the tail of the stream
  CHECK(out.last_sent() == 2);
  hb = out.heartbeat(13);
  CHECK(in.on_heartbeat(hb.sender, hb.incarnation, hb.seq) == verdict::gap);
  // Judged once: the next batch continues the stream.
  auto b3 = out.next_batch(14);
  CHECK(in.on_batch(b3.sender, b3.incarnation, b3.seq) == verdict::in_order);
}

TEST_CASE("gap tracking: a restarted sender is a gap, a forgotten one starts afresh") {
  inbound_tracker in;
  outbound_sequence first{sender_id, 1};
  auto b = first.next_batch(10);
  CHECK(in.on_batch(b.sender, b.incarnation, b.seq) == verdict::first);
  // Same id, new incarnation, its stream from 1: the old stream's tail is unconfirmed.
  outbound_sequence second{sender_id, 2};
  b = second.next_batch(20);
  CHECK(in.on_batch(b.sender, b.incarnation, b.seq) == verdict::gap);
  b = second.next_batch(21);
  CHECK(in.on_batch(b.sender, b.incarnation, b.seq) == verdict::in_order);
  // Membership declared it down (which distrusts it): the next contact is first contact.
  in.forget(sender_id);
  outbound_sequence third{sender_id, 3};
  auto hb = third.heartbeat(30);
  CHECK(in.on_heartbeat(hb.sender, hb.incarnation, hb.seq) == verdict::first);
}
