// A deterministic cluster of raft_core instances over a simulated network: seeded loss,
// duplication, delay (hence reordering), minority/majority partitions, and crashes with a
// restart from what the node had persisted. Every message goes through the real wire codec.
// The safety properties of the Raft paper are checked as the run goes; a violation is
// recorded (not thrown) so a mutant run can show the checks do fire.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/consensus/raft.hpp"
#include "runtime/consensus/raft_log_store.hpp"
#include "runtime/consensus/raft_wire.hpp"

namespace warp::consensus::sim {

struct options {
  int nodes = 3;
  std::uint64_t seed = 1;
  int chaos_ticks = 600;
  int heal_ticks = 400;  ///< liveness bound: a proposal must commit everywhere within this
  double loss = 0.1;
  double dup = 0.05;
  int max_delay = 4;
  bool partitions = true;
  bool crashes = true;
  bool compaction = true;
  bool membership = false;  ///< add node nodes+1, then remove node 1, during the chaos
  bool reads = true;
  bool mutant = false;  ///< raft_config::unsafe_commit_without_quorum on every node
  /// Each node persists through a real raft_log_store in its own directory (on /dev/shm
  /// when there is one), and a restart reopens it: recovery is part of every run.
  bool real_disk = false;
};

struct report {
  std::vector<std::string> violations;
  std::uint64_t steps = 0;  ///< messages delivered + ticks, each followed by checks
  std::uint64_t committed = 0;
  std::uint64_t reads_served = 0;
  std::uint64_t elections = 0;
  std::uint64_t snapshots_installed = 0;
  bool membership_done = false;
  bool live = false;
};

class cluster {
 public:
  explicit cluster(const options& o) : o_(o), rng_(o.seed) {
    const int total = o.nodes + (o.membership ? 1 : 0);
    for (int i = 1; i <= total; ++i) {
      auto n = std::make_unique<node>();
      n->id = static_cast<node_id>(i);
      nodes_.push_back(std::move(n));
    }
    if (o.real_disk) {
      std::error_code ec;
      std::filesystem::path base = std::filesystem::exists("/dev/shm", ec)
                                       ? std::filesystem::path{"/dev/shm"}
                                       : std::filesystem::temp_directory_path();
      root_ = base / ("warp-raftsim-" + std::to_string(::getpid()) + "-" + std::to_string(o.seed) +
                      "-" + std::to_string(o.nodes));
      std::filesystem::remove_all(root_, ec);
    }
    for (auto& n : nodes_) start(*n);
  }
  ~cluster() {
    for (auto& n : nodes_) n->store.reset();
    std::error_code ec;
    if (!root_.empty()) std::filesystem::remove_all(root_, ec);
  }
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  report run() {
    for (tick_ = 0; tick_ < o_.chaos_ticks; ++tick_) {
      chaos();
      one_tick(true);
    }
    heal();
    int marker_at = -1000;
    std::string marker;
    for (int t = 0; t < o_.heal_ticks; ++t, ++tick_) {
      one_tick(false);
      // A change still in flight at the heal completes now (the removed node retires).
      if (o_.membership) membership();
      if (t - marker_at >= 60) {  // a leader change may lose it: propose afresh
        if (auto* l = unique_leader()) {
          marker = "final-" + std::to_string(tick_);
          if (l->core->propose(marker)) {
            marker_at = t;
            markers_.insert(marker);
            process(*l);
          }
        }
      }
      if (!markers_.empty() && all_applied_a_marker()) {
        rep_.live = true;
        break;
      }
    }
    rep_.committed = committed_.size();
    return rep_;
  }

 private:
  struct disk {
    hard_state hard;
    std::optional<snapshot> snap;
    std::vector<entry> entries;
  };
  struct node {
    node_id id = 0;
    std::unique_ptr<raft_core> core;
    disk d;
    bool up = true;
    bool retired = false;
    int down_until = 0;
    int restarts = 0;
    index_t applied = 0;
    std::uint64_t digest = 0;
    index_t seen_commit = 0;
    std::set<std::string> applied_data;
    std::map<std::uint64_t, index_t> reads;  // context -> lowest index the read may return
    std::unique_ptr<raft_log_store> store;   // real_disk only
  };
  struct flight {
    int at;
    node_id to;
    std::string bytes;
  };

  void violation(std::string what) {
    if (rep_.violations.size() < 20)
      rep_.violations.push_back("tick " + std::to_string(tick_) + ": " + std::move(what));
    else
      rep_.violations.back() = "(more violations)";
  }

  bool chance(double p) { return std::uniform_real_distribution<>(0, 1)(rng_) < p; }
  int between(int lo, int hi) { return std::uniform_int_distribution<>(lo, hi)(rng_); }

  void start(node& n) {
    raft_config cfg;
    cfg.id = n.id;
    for (int i = 1; i <= o_.nodes; ++i) cfg.voters.push_back(static_cast<node_id>(i));
    if (static_cast<int>(n.id) > o_.nodes) cfg.voters.clear();  // joins through a change
    cfg.seed = o_.seed * 7919 + n.id * 31 + static_cast<std::uint64_t>(n.restarts);
    cfg.max_inflight = 4;
    cfg.max_entries_per_msg = 8;
    cfg.unsafe_commit_without_quorum = o_.mutant;
    persisted_state st{n.d.hard, n.d.snap, n.d.entries};
    if (o_.real_disk) {
      n.store.reset();
      log_store_options lo;
      lo.max_segment_bytes = 4096;  // small: rotation and compaction happen in every run
      auto s = raft_log_store::open((root_ / std::to_string(n.id)).string(), lo);
      if (!s) {
        violation("node " + std::to_string(n.id) +
                  " cannot reopen its log: " + s.err().to_string());
      } else {
        n.store = std::move(*s);
        st = n.store->take_recovered();
      }
    }
    n.core = std::make_unique<raft_core>(cfg, std::move(st));
    // Applied state restarts from the snapshot the core recovered (none: from scratch).
    const snapshot& snap = n.core->last_snapshot();
    n.applied = snap.index;
    n.digest = snap.data.empty() ? 0 : std::stoull(snap.data);
    n.seen_commit = n.core->commit_index();
    n.reads.clear();
  }

  static std::uint64_t mix(std::uint64_t h, const entry& e) {
    auto eat = [&](std::uint64_t v) {
      for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ULL;
    };
    eat(e.index);
    eat(e.term);
    for (unsigned char c : e.data) h = (h ^ c) * 1099511628211ULL;
    return h;
  }

  // Persist, send, apply: the order the core's contract asks for.
  void process(node& n) {
    while (n.up && n.core->has_ready()) {
      ready rd = n.core->take_ready();
      if (n.store) {
        if (auto r = n.store->persist(rd); !r)
          violation("node " + std::to_string(n.id) + " cannot persist: " + r.err().to_string());
      } else if (rd.snap) {
        n.d.snap = rd.snap;
        n.d.entries.clear();
      }
      if (!n.store && !rd.entries.empty()) {
        const index_t first = rd.entries.front().index;
        std::erase_if(n.d.entries, [&](const entry& e) { return e.index >= first; });
        if (!n.d.entries.empty() && n.d.entries.back().index + 1 != first)
          violation("node " + std::to_string(n.id) + " persisted a gap before " +
                    std::to_string(first));
        n.d.entries.insert(n.d.entries.end(), rd.entries.begin(), rd.entries.end());
      }
      if (!n.store && rd.hard) n.d.hard = *rd.hard;
      for (auto& m : rd.messages) send(m);
      if (rd.snap) {
        ++rep_.snapshots_installed;
        n.applied = rd.snap->index;
        n.digest = std::stoull(rd.snap->data);
        check_digest(n);
      }
      for (const auto& e : rd.committed) {
        if (e.index != n.applied + 1)
          violation("node " + std::to_string(n.id) + " applies " + std::to_string(e.index) +
                    " after " + std::to_string(n.applied));
        n.applied = e.index;
        n.digest = mix(n.digest, e);
        n.applied_data.insert(e.data);
        check_digest(n);
      }
      for (const auto& r : rd.reads) {
        auto it = n.reads.find(r.context);
        if (it == n.reads.end()) continue;
        // Linearizable: the read must see every write committed before it was asked.
        if (r.index < it->second)
          violation("read " + std::to_string(r.context) + " at index " + std::to_string(r.index) +
                    " misses a write committed at " + std::to_string(it->second));
        ++rep_.reads_served;
        n.reads.erase(it);
      }
      n.core->advance(rd);
    }
    observe(n);
  }

  // State machine safety: every node that applied index i has the same state there.
  void check_digest(node& n) {
    auto [it, fresh] = digests_.emplace(n.applied, n.digest);
    if (!fresh && it->second != n.digest)
      violation("state machine safety: node " + std::to_string(n.id) +
                " has a different state at applied index " + std::to_string(n.applied));
  }

  void observe(node& n) {
    const raft_core& c = *n.core;
    // Election safety: at most one leader per term.
    if (c.current_role() == role::leader) {
      auto [it, fresh] = leaders_.emplace(c.term(), n.id);
      if (fresh) ++rep_.elections;
      if (!fresh && it->second != n.id)
        violation("election safety: nodes " + std::to_string(it->second) + " and " +
                  std::to_string(n.id) + " both lead term " + std::to_string(c.term()));
    }
    // Committed entries never change, whoever reports them.
    for (index_t i = n.seen_commit + 1; i <= c.commit_index(); ++i) {
      const entry* e = c.entry_at(i);
      if (!e) continue;
      auto [it, fresh] = committed_.emplace(i, committed_entry{e->term, e->data, c.term()});
      if (!fresh && (it->second.term != e->term || it->second.data != e->data))
        violation("two different entries committed at index " + std::to_string(i));
      if (!fresh) it->second.seen_term = std::min(it->second.seen_term, c.term());
    }
    n.seen_commit = std::max(n.seen_commit, c.commit_index());
    max_commit_ = std::max(max_commit_, c.commit_index());
  }

  void check_logs() {
    // Log matching: same index and term -> identical logs up to there.
    for (std::size_t a = 0; a < nodes_.size(); ++a) {
      for (std::size_t b = a + 1; b < nodes_.size(); ++b) {
        const raft_core& x = *nodes_[a]->core;
        const raft_core& y = *nodes_[b]->core;
        const index_t lo = std::max(x.first_index(), y.first_index());
        index_t hi = std::min(x.last_index(), y.last_index());
        while (hi >= lo && hi > 0 && x.entry_at(hi)->term != y.entry_at(hi)->term) --hi;
        for (index_t i = lo; i <= hi && i > 0; ++i)
          if (!(*x.entry_at(i) == *y.entry_at(i))) {
            violation("log matching: nodes " + std::to_string(x.id()) + " and " +
                      std::to_string(y.id()) + " differ at " + std::to_string(i));
            break;
          }
      }
    }
    // Leader completeness: a leader of a later term holds every committed entry.
    for (auto& n : nodes_) {
      if (!n->up || n->core->current_role() != role::leader) continue;
      const raft_core& l = *n->core;
      for (const auto& [i, ce] : committed_) {
        if (ce.seen_term >= l.term() || i < l.first_index()) continue;
        const entry* e = l.entry_at(i);
        if (!e || e->term != ce.term || e->data != ce.data) {
          violation("leader completeness: leader " + std::to_string(l.id()) + " of term " +
                    std::to_string(l.term()) + " lacks committed index " + std::to_string(i));
          break;
        }
      }
    }
  }

  void send(const message& m) {
    // Each message crosses the real codec, as it will between nodes.
    auto bytes = encode(m);
    if (!bytes) {
      violation("encode failed: " + bytes.err().to_string());
      return;
    }
    if (chance(o_.loss)) return;
    const int copies = chance(o_.dup) ? 2 : 1;
    for (int i = 0; i < copies; ++i)
      net_.push_back(flight{tick_ + between(1, o_.max_delay), m.to, *bytes});
  }

  bool connected(node_id a, node_id b) const {
    if (side_.empty()) return true;
    auto sa = side_.count(a), sb = side_.count(b);
    return sa == sb;
  }

  node* by_id(node_id id) {
    for (auto& n : nodes_)
      if (n->id == id) return n.get();
    return nullptr;
  }

  void deliver() {
    std::vector<flight> due;
    auto it =
        std::partition(net_.begin(), net_.end(), [&](const flight& f) { return f.at > tick_; });
    due.assign(std::make_move_iterator(it), std::make_move_iterator(net_.end()));
    net_.erase(it, net_.end());
    std::shuffle(due.begin(), due.end(), rng_);
    for (auto& f : due) {
      auto m = decode(f.bytes);
      if (!m) {
        violation("decode failed: " + m.err().to_string());
        continue;
      }
      node* to = by_id(f.to);
      if (!to || !to->up || !connected(m->from, f.to)) continue;
      to->core->step(*m);
      ++rep_.steps;
      process(*to);
    }
  }

  void chaos() {
    if (o_.partitions && chance(0.01)) {
      side_.clear();
      if (chance(0.6)) {
        // Isolate a minority (possibly the leader) from the majority.
        const int k = between(1, (o_.nodes - 1) / 2);
        std::vector<node_id> ids;
        for (auto& n : nodes_) ids.push_back(n->id);
        std::shuffle(ids.begin(), ids.end(), rng_);
        if (auto* l = unique_leader(); l && chance(0.5)) {
          ids.erase(std::find(ids.begin(), ids.end(), l->id));
          ids.insert(ids.begin(), l->id);
        }
        for (int i = 0; i < k; ++i) side_.insert(ids[static_cast<std::size_t>(i)]);
      }
    }
    for (auto& n : nodes_) {
      if (n->retired) continue;
      if (!n->up && tick_ >= n->down_until) {
        n->up = true;
        ++n->restarts;
        start(*n);  // from what it persisted, nothing else
      } else if (n->up && o_.crashes && chance(0.004)) {
        n->up = false;
        n->down_until = tick_ + between(5, 80);
        n->core.reset();
        start(*n);  // volatile state gone; keep a core for the invariant checks
        n->up = false;
      }
    }
    if (tick_ % 3 == 0) {
      for (auto& n : nodes_) {
        if (!n->up || n->core->current_role() != role::leader) continue;
        (void)n->core->propose("v" + std::to_string(n->id) + "-" + std::to_string(tick_));
        if (o_.reads && tick_ % 6 == 0) {
          const std::uint64_t ctx = ++read_ctx_;
          if (n->core->read_index(ctx)) n->reads[ctx] = max_commit_;
        }
        process(*n);
      }
    }
    if (o_.membership) membership();
  }

  void membership() {
    const node_id joiner = static_cast<node_id>(o_.nodes + 1);
    if (phase_ == 0 && tick_ < 100) return;
    if (phase_ == 1 || phase_ == 3) {
      // Proposed: done once committed; lost (overwritten by another leader) -> propose again.
      auto it = committed_.find(conf_index_);
      if (it != committed_.end()) {
        if (it->second.term == conf_term_) {
          if (phase_ == 3) {
            // The removed server is shut down, as an operator would.
            auto* one = by_id(1);
            one->retired = true;
            one->up = false;
            rep_.membership_done = true;
          }
          ++phase_;
          return;
        }
        --phase_;
      } else if (auto* l = unique_leader(); l && l->core->term() != conf_term_) {
        auto t = l->core->term_at(conf_index_);
        if (!t || *t != conf_term_) --phase_;
      }
      return;
    }
    if (phase_ != 0 && phase_ != 2) return;
    auto* l = unique_leader();
    if (!l) return;
    auto r = phase_ == 0 ? l->core->propose_conf_change(conf_change_type::add_voter, joiner)
                         : l->core->propose_conf_change(conf_change_type::remove_voter, 1);
    if (r) {
      conf_index_ = *r;
      conf_term_ = l->core->term();
      ++phase_;
    }
    process(*l);
  }

  void one_tick(bool chaos_phase) {
    (void)chaos_phase;
    for (auto& n : nodes_) {
      if (!n->up) continue;
      n->core->tick();
      ++rep_.steps;
      process(*n);
    }
    deliver();
    if (o_.compaction && tick_ % 40 == 0) {
      for (auto& n : nodes_) {
        if (!n->up || n->applied < n->core->first_index() + 30) continue;
        const index_t at = n->applied - 10;
        // The digest at `at` is known: every applied state is recorded in digests_.
        auto it = digests_.find(at);
        if (it == digests_.end()) continue;
        if (n->core->compact(at, std::to_string(it->second))) {
          if (n->store) {
            if (auto r = n->store->compact(n->core->last_snapshot()); !r)
              violation("compaction on disk failed: " + r.err().to_string());
          }
          n->d.snap = n->core->last_snapshot();
          std::erase_if(n->d.entries, [&](const entry& e) { return e.index <= at; });
        }
      }
    }
    check_logs();
  }

  void heal() {
    side_.clear();
    o_.loss = 0;
    o_.dup = 0;
    o_.max_delay = 1;
    for (auto& n : nodes_) {
      if (n->retired || n->up) continue;
      n->up = true;
      ++n->restarts;
      start(*n);
    }
  }

  node* unique_leader() {
    node* best = nullptr;
    for (auto& n : nodes_)
      if (n->up && n->core->current_role() == role::leader &&
          (!best || n->core->term() > best->core->term()))
        best = n.get();
    return best;
  }

  bool all_applied_a_marker() {
    for (auto& n : nodes_) {
      if (n->retired) continue;
      bool any = false;
      for (const auto& m : markers_) any = any || n->applied_data.count(m);
      if (!any) return false;
    }
    return true;
  }

  struct committed_entry {
    term_t term;
    std::string data;
    term_t seen_term;  // lowest current term of a node seen holding it committed
  };

  options o_;
  std::filesystem::path root_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<node>> nodes_;
  std::vector<flight> net_;
  std::set<node_id> side_;  // non-empty: these nodes are cut off from the rest
  std::map<term_t, node_id> leaders_;
  std::map<index_t, committed_entry> committed_;
  std::map<index_t, std::uint64_t> digests_;
  std::set<std::string> markers_;
  index_t max_commit_ = 0;
  std::uint64_t read_ctx_ = 0;
  int tick_ = 0;
  int phase_ = 0;  // 0 add, 1 adding, 2 remove, 3 removing, 4 done
  index_t conf_index_ = 0;
  term_t conf_term_ = 0;
  report rep_;
};

}  // namespace warp::consensus::sim
