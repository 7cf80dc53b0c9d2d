// Many seeded runs of 3- and 5-node clusters over a faulty simulated network
// (test/consensus/raft_sim.hpp). Each run checks, after every delivered message and tick,
// election safety, state machine safety and that committed entries never change, and after
// every tick log matching and leader completeness. Once the network heals, a proposal must
// commit on every node within a bounded number of ticks. A mutant that commits without a
// majority must be caught by the same checks, so they can fail.
#include <catch2/catch.hpp>

#include "test/consensus/raft_sim.hpp"

using namespace warp::consensus;

namespace {

struct totals {
  std::uint64_t runs = 0, steps = 0, committed = 0, reads = 0, elections = 0, snaps = 0;
};

totals run_many(sim::options o, int seeds) {
  totals t;
  for (int s = 1; s <= seeds; ++s) {
    o.seed = static_cast<std::uint64_t>(s) * 1000003ULL + static_cast<std::uint64_t>(o.nodes);
    auto r = sim::cluster{o}.run();
    INFO("seed " << o.seed << " nodes " << o.nodes << ": "
                 << (r.violations.empty() ? std::string{"live=no"} : r.violations.front()));
    REQUIRE(r.violations.empty());
    REQUIRE(r.live);
    if (o.membership) REQUIRE(r.membership_done);
    ++t.runs;
    t.steps += r.steps;
    t.committed += r.committed;
    t.reads += r.reads_served;
    t.elections += r.elections;
    t.snaps += r.snapshots_installed;
  }
  WARN(t.runs << " runs, " << t.steps << " steps, " << t.committed << " committed entries, "
              << t.reads << " linearizable reads, " << t.elections << " elections, " << t.snaps
              << " snapshots installed");
  return t;
}

}  // namespace

TEST_CASE("raft sim: 3 nodes, loss, duplication, reordering, partitions, crashes") {
  sim::options o;
  o.nodes = 3;
  auto t = run_many(o, 300);
  CHECK(t.committed > 0);
  CHECK(t.reads > 0);
  CHECK(t.snaps > 0);  // compaction forced some followers onto a snapshot
}

TEST_CASE("raft sim: 5 nodes, loss, duplication, reordering, partitions, crashes") {
  sim::options o;
  o.nodes = 5;
  auto t = run_many(o, 200);
  CHECK(t.committed > 0);
}

TEST_CASE("raft sim: heavy loss and frequent partitions stay safe and heal") {
  sim::options o;
  o.nodes = 5;
  o.loss = 0.35;
  o.dup = 0.2;
  o.max_delay = 10;
  run_many(o, 100);
}

TEST_CASE("raft sim: single-server membership changes under faults (add, then remove)") {
  for (int n : {3, 5}) {
    sim::options o;
    o.nodes = n;
    o.chaos_ticks = 900;
    o.crashes = true;
    run_many(
        [&] {
          auto x = o;
          x.membership = true;
          return x;
        }(),
        60);
  }
}

TEST_CASE("raft sim: every node on a real raft_log_store, restarts reopen it") {
  for (int n : {3, 5}) {
    sim::options o;
    o.nodes = n;
    o.chaos_ticks = 400;
    o.real_disk = true;
    o.membership = n == 3;
    auto t = run_many(o, n == 3 ? 100 : 60);
    CHECK(t.snaps > 0);
  }
}

TEST_CASE("raft sim: the checks catch a leader that commits without a majority") {
  int caught = 0;
  const int seeds = 50;
  for (int s = 1; s <= seeds; ++s) {
    sim::options o;
    o.nodes = 3;
    o.seed = static_cast<std::uint64_t>(s);
    o.mutant = true;
    auto r = sim::cluster{o}.run();
    if (!r.violations.empty()) ++caught;
  }
  WARN("mutant caught in " << caught << " of " << seeds << " runs");
  CHECK(caught >= seeds / 2);
}
