#include "actors/cluster_actor.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/basp_broker.hpp>

#include "actors/peer_links.hpp"
#include "actors/range_actor.hpp"
#include "bus/batch_policy.hpp"
#include "bus/envelope.hpp"
#include "bus/node_transport.hpp"
#include "runtime/core/log.hpp"
#include "runtime/membership/discovery.hpp"
#include "runtime/membership/membership.hpp"
#include "warp/endpoint.hpp"
#include "warp/l1.hpp"

namespace warp::actors {

namespace {

using dns_atom = caf::atom_constant<caf::atom("warpdns")>;
using steady = std::chrono::steady_clock;

/// State of the cluster actor: everything here is touched on the actor's thread only
/// (what other threads read is published into the context: view, ownership, counters).
struct cluster_state {
  cluster_context* ctx = nullptr;
  /// Where arriving batches and gap verdicts go (the bus's subscriber, the node).
  bus_delivery delivery;
  /// Who is in the cluster, in which state (pure logic, fed by the handlers below).
  std::optional<detail::membership> members;
  /// Per-sender sequence checks of incoming batches and heartbeats.
  bus::inbound_tracker tracker;
  /// Members whose different storage identity was already reported (once each).
  std::set<std::uint32_t> storage_warned;
  /// Cluster actors of identified peers (and which peer a down message is about).
  peer_links peers;
  /// The middleman's BASP broker (registry lookups on other nodes go through it).
  caf::actor basp;
  /// Numbers of the change batches sent (the stream every peer sees).
  std::optional<bus::outbound_sequence> numbering;
  /// Range ownership over the owners in `members`, and the range actors living here.
  detail::range_map ranges;
  std::vector<caf::actor> range_actors;
  bool flush_scheduled = false;
  /// When to send what is queued (pure: the time is passed in, see bus/batch_policy.hpp).
  std::optional<bus::batch_policy> batching;
  /// clock_ms() = wall_base_ms + (actor clock - steady_base).
  std::int64_t wall_base_ms = 0;
  steady::time_point steady_base{};
  std::int64_t last_dns_ms = 0;
  /// A discovery lookup is on the work pool (a slow DNS server never stacks up lookups).
  bool dns_in_flight = false;
  /// Fetches held unanswered while ctx->serve_fetches is off (a test's paused owner).
  std::vector<caf::response_promise> held_fetches;
  /// The node's key-pattern table (its summary and its encoding), as the node last sent it.
  bus::pattern_version patterns_ver;
  std::string patterns_bytes;
  bool patterns_refusal_logged = false;  // a peer's table this build cannot read (logged once)
  static inline const char* name = "warp.cluster";
};

using cluster_actor = caf::stateful_actor<cluster_state>;

/// HOST:PORT of a peer to dial (parse_endpoint; port 0 cannot be dialed).
std::optional<std::pair<std::string, std::uint16_t>> split(const std::string& addr) {
  auto ep = parse_endpoint(addr);
  if (!ep || ep->second == 0) return std::nullopt;
  return std::move(*ep);
}

class cluster_logic {
 public:
  explicit cluster_logic(cluster_actor* self) : self_(self), st_(self->state), ctx_(*st_.ctx) {}

  // -- membership ------------------------------------------------------------------

  void tick() {
    auto now = clock_ms();
    handle(st_.members->tick(now));
    for (auto& addr : st_.members->to_contact(now)) contact(addr);
    if (!ctx_.opts.discovery_dns.empty() &&
        now - st_.last_dns_ms >= ctx_.opts.discovery_interval.count()) {
      st_.last_dns_ms = now;
      discover();
    }
    send_heartbeats(false);
    publish_view();
  }

  void contact(const std::string& addr) {
    if (!ctx_.network) return;
    auto hp = split(addr);
    if (!hp) return;
    auto mm = bus::node_middleman(self_->system());
    auto* self = self_;
    self_->request(mm, std::chrono::seconds(2), caf::connect_atom::value, hp->first, hp->second)
        .then(
            [self, addr](const caf::node_id& nid, caf::strong_actor_ptr&,
                         const std::set<std::string>&) {
              if (nid == self->system().node()) {
                self->state.members->mark_self_address(addr);
                return;
              }
              self->send(self->state.basp, caf::forward_atom::value, nid, caf::atom("ConfigServ"),
                         caf::make_message(caf::get_atom::value, cluster_registry_name()));
            },
            [](caf::error&) { /* unreachable for now: retried after retry_ms */ });
  }

  /// A registry lookup answered: a peer's cluster actor. Say hello; it answers with
  /// heartbeats of its own, which identify it.
  void found(caf::strong_actor_ptr& ptr) {
    if (!ptr || ptr->node() == self_->system().node()) return;
    hello(caf::actor_cast<caf::actor>(ptr));
  }

  void hello(const caf::actor& hdl) {
    if (!hdl || hdl.address() == self_->address()) return;
    if (auto bytes = heartbeat_bytes(false))
      self_->send(hdl, heartbeat_atom::value, std::move(*bytes));
  }

  /// DNS discovery (runtime/membership/discovery.*): blocking, so on the work pool. Errors are
  /// logged there and add no peers; nobody is ever removed, so the view stays as it was.
  void discover() {
    if (st_.dns_in_flight) return;
    st_.dns_in_flight = true;
    auto own = split(ctx_.address);
    std::uint16_t port = own ? own->second : 0;
    auto me = caf::actor_cast<caf::actor>(self_);
    ctx_.pool->post(
        [me, spec = ctx_.opts.discovery_dns, server = ctx_.opts.discovery_dns_server, port] {
          caf::anon_send(me, dns_atom::value, detail::discover_peers(spec, server, port));
        });
  }

  void learned(const std::vector<std::string>& addrs) {
    st_.dns_in_flight = false;
    for (auto& a : addrs) st_.members->learn(a);
  }

  void on_heartbeat(const std::string& bytes) {
    auto hb = bus::decode_heartbeat(bytes, ctx_.limits);
    if (!hb) {
      ctx_.counters.decode_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto& h = hb->header;
    if (h.sender == ctx_.self_id || h.sender == 0) return;
    ctx_.counters.heartbeats_received.fetch_add(1, std::memory_order_relaxed);
    observe(h.hlc_now);
    auto hdl = caf::actor_cast<caf::actor>(self_->current_sender());
    auto now = clock_ms();
    if (hdl && st_.peers.identify(h.sender, hdl)) self_->monitor(hdl);
    auto events =
        st_.members->heard(h.sender, h.incarnation, hb->name, hb->address, hb->leaving, now);
    check_storage(*hb);
    for (auto& m : hb->members)
      if (m.id != ctx_.self_id && m.state != member_state::down) st_.members->learn(m.address);
    if (st_.tracker.on_heartbeat(h.sender, h.incarnation, h.seq) ==
        bus::inbound_tracker::verdict::gap)
      gap(h.sender, h.hlc_now);
    // A different key-pattern table (the summaries differ): send it ours. It does the
    // same, each side merges glob by glob, and both end with the same table.
    if (hdl && hb->patterns != st_.patterns_ver && !st_.patterns_bytes.empty())
      self_->send(hdl, pattern_table_atom::value, st_.patterns_bytes);
    bool fresh = false;
    for (auto& ev : events) fresh |= ev.to == member_state::up;
    handle(std::move(events));
    // Answer a newcomer at once so it does not wait a heartbeat interval to see us.
    if (fresh && hdl)
      if (auto out = heartbeat_bytes(false)) self_->send(hdl, heartbeat_atom::value, *out);
  }

  void on_down(const caf::down_msg& dm) {
    if (auto id = st_.peers.lost(dm.source)) handle(st_.members->lost(*id, clock_ms()));
  }

  // Members running eventual_distributed keys must read and write one storage: a member on
  // another store (its own memory, a SQLite file nobody else opens) would serve only what
  // it wrote itself. Heartbeats carry the storage identity; on a mismatch the newer member
  // (later incarnation; the larger id on a tie) records the conflict, which warpd turns into
  // a refusal to run, and both log it once per peer.
  void check_storage(const bus::heartbeat& hb) {
    if (!ctx_.shares_storage || ctx_.storage_id.empty() || hb.storage_id.empty() ||
        hb.storage_id == ctx_.storage_id)
      return;
    auto& h = hb.header;
    if (!st_.storage_warned.insert(h.sender).second) return;
    bool newer = ctx_.incarnation > h.incarnation ||
                 (ctx_.incarnation == h.incarnation && ctx_.self_id > h.sender);
    char peer[16];
    std::snprintf(peer, sizeof peer, "%08x", h.sender);
    auto text = std::string{"member "} + peer + " (" + hb.name + " at " + hb.address +
                ") uses different storage (storage id " + hb.storage_id + ", ours " +
                ctx_.storage_id +
                ") while eventual_distributed keys need one storage shared by every member: "
                "each node would see only its own writes";
    if (ctx_.opts.allow_unshared_storage) {
      detail::log()->warn("cluster: UNSHARED STORAGE: {} (allowed by --allow-unshared-storage)",
                          text);
      return;
    }
    detail::log()->error("cluster: UNSHARED STORAGE: {}; {}", text,
                         newer ? "this node joined last and must not serve"
                               : "that node joined last and must not serve");
    if (!newer) return;
    std::lock_guard<std::mutex> g{ctx_.snap_mtx};
    if (ctx_.storage_conflict.empty()) ctx_.storage_conflict = text;
  }

  // One line per membership change, so an operator reading the logs of any node sees who
  // joined, left or failed and where it lives, without polling /admin/cluster.
  void log_event(const detail::member_event& ev) {
    std::string name = "?", address = "?";
    if (const auto* m = st_.members->find(ev.id)) {
      name = m->name;
      address = m->address;
    }
    auto lg = detail::log();
    switch (ev.to) {
      case member_state::up:
        if (ev.from == member_state::suspect)
          lg->info("cluster: member {:08x} ({} at {}) is reachable again", ev.id, name, address);
        else
          lg->info("cluster: member {:08x} ({} at {}) joined", ev.id, name, address);
        break;
      case member_state::suspect:
        lg->info("cluster: member {:08x} ({} at {}) is suspect: no heartbeat lately", ev.id, name,
                 address);
        break;
      case member_state::leaving:
        lg->info("cluster: member {:08x} ({} at {}) is leaving", ev.id, name, address);
        break;
      case member_state::down:
        if (ev.from == member_state::leaving)
          lg->info("cluster: member {:08x} ({} at {}) left", ev.id, name, address);
        else
          lg->warn("cluster: member {:08x} ({} at {}) failed (was {})", ev.id, name, address,
                   to_string(ev.from));
        break;
      default:
        lg->info("cluster: member {:08x} ({} at {}) is {}", ev.id, name, address,
                 to_string(ev.to));
    }
  }

  void handle(std::vector<detail::member_event> events) {
    if (events.empty()) return;
    for (auto& ev : events) {
      log_event(ev);
      if (ev.to == member_state::down) {
        // It may have written things whose changes never reached us.
        if (ev.was_trusted) gap(ev.id, ctx_.host->clock_now());
        st_.tracker.forget(ev.id);
        if (auto hdl = st_.peers.drop(ev.id)) self_->demonitor(hdl);
      }
    }
    reassign();
    publish_view();
  }

  void gap(std::uint32_t sender, std::uint64_t hlc_bound) {
    ctx_.counters.gaps.fetch_add(1, std::memory_order_relaxed);
    if (st_.delivery.on_gap) st_.delivery.on_gap(sender, hlc_bound);
  }

  // -- key patterns ----------------------------------------------------------------
  // Tables merge glob by glob on the node (newest wins per glob, docs/keyspaces.md). A peer's
  // table that differs from ours goes to the node; whenever the node's table changes (its
  // own change, or a merge that took something from a peer) it comes back here and is passed
  // on to every reachable peer at once, so a change floods the cluster in one round; a peer
  // that missed it gets it at its next heartbeat (on_heartbeat).

  void on_patterns(const std::string& bytes, bool from_node) {
    auto t = bus::decode_pattern_table(bytes, ctx_.limits);
    if (!t) {
      // A peer of a build that writes a format this one does not know, or a damaged table.
      ctx_.counters.decode_errors.fetch_add(1, std::memory_order_relaxed);
      if (!st_.patterns_refusal_logged) {
        st_.patterns_refusal_logged = true;
        detail::log()->warn("cluster: a key-pattern table refused (counted in decode errors): {}",
                            t.err().to_string());
      }
      return;
    }
    if (from_node) {
      st_.patterns_ver = t->ver;
      st_.patterns_bytes = bytes;
      auto msg = caf::make_message(pattern_table_atom::value, bytes);
      for (auto id : st_.members->reachable())
        if (auto* p = st_.peers.find(id)) self_->send(*p, msg);
      return;
    }
    if (t->ver == st_.patterns_ver) return;  // the table we have
    if (st_.delivery.on_patterns) st_.delivery.on_patterns(std::move(*t));
  }

  // -- ranges ------------------------------------------------------------------------

  void reassign() {
    auto owners = st_.members->owners();
    if (owners == st_.ranges.nodes() && !st_.range_actors.empty()) {
      publish_ownership();
      return;
    }
    const detail::range_map before = st_.ranges;
    st_.ranges.assign(owners);
    auto taken = takeovers(before, owners);
    st_.range_actors.resize(st_.ranges.ranges());
    // Range actors on the owner and on the standbys (read_replicas): a standby coalesces
    // the misses the owner does not answer.
    auto replicas = std::max<std::size_t>(ctx_.opts.read_replicas, 1);
    for (std::uint32_t r = 0; r < st_.ranges.ranges(); ++r) {
      bool mine = st_.ranges.owner(r) == ctx_.self_id;
      if (!mine && replicas > 1) {
        auto set = st_.ranges.replicas(r, replicas);
        mine = std::find(set.begin(), set.end(), ctx_.self_id) != set.end();
      }
      auto& a = st_.range_actors[r];
      if (mine && !a) {
        a = spawn_range_actor(self_->system(), ctx_, r);
      } else if (!mine && a) {
        self_->send_exit(a, caf::exit_reason::user_shutdown);
        a = nullptr;
      }
    }
    publish_ownership();
    // After publishing: the node's warm-up reads the new ownership (and the handles of the
    // previous owners) from the snapshot.
    if (!taken.empty()) ctx_.host->ranges_taken(std::move(taken));
  }

  /// The ranges this node now owns that it did not serve before, and whom to ask for their
  /// hot keys. The first assignment (this node alone) is no takeover: the node's
  /// start warm-up covers it. A node that was alone until now (it just joined) takes its
  /// ranges over from whoever owned them in the cluster without it.
  std::vector<range_takeover> takeovers(const detail::range_map& before,
                                        const std::vector<std::uint32_t>& owners) {
    const auto& prev_nodes = before.nodes();
    if (prev_nodes.empty()) return {};
    const auto self = ctx_.self_id;
    const bool was_alone =
        std::all_of(prev_nodes.begin(), prev_nodes.end(), [&](auto id) { return id == self; });
    std::optional<detail::range_map> without_me;
    if (was_alone) {
      std::vector<std::uint32_t> others;
      for (auto id : owners)
        if (id != self) others.push_back(id);
      if (others.empty()) return {};
      without_me.emplace(st_.ranges.ranges());
      without_me->assign(std::move(others));
    }
    std::vector<range_takeover> taken;
    for (std::uint32_t r = 0; r < st_.ranges.ranges(); ++r) {
      if (st_.ranges.owner(r) != self) continue;
      auto prev = r < before.ranges() ? before.owner(r) : 0;
      if (prev == self) {
        if (!without_me) continue;  // ours before and now
        prev = without_me->owner(r);
      }
      taken.push_back({r, prev});
    }
    return taken;
  }

  void publish_ownership() {
    auto own = std::make_shared<ownership>();
    own->map = st_.ranges;
    for (auto id : st_.ranges.nodes())
      if (auto* p = st_.peers.find(id)) own->handles[id] = *p;
    std::lock_guard<std::mutex> g{ctx_.snap_mtx};
    ctx_.owners = std::move(own);
  }

  void publish_view() {
    auto view = st_.members->view();
    for (auto& m : view) m.owned_ranges = st_.ranges.owned_by(m.id).size();
    auto reachable = st_.members->reachable().size();
    std::lock_guard<std::mutex> g{ctx_.snap_mtx};
    ctx_.view = std::move(view);
    ctx_.reachable_peers = reachable;
  }

  caf::result<caf::message> fetch(std::string& key) {
    if (key.empty() || key.size() > ctx_.limits.max_key_bytes)
      return caf::make_error(caf::sec::invalid_argument, "bad key");
    if (!ctx_.serve_fetches.load(std::memory_order_relaxed)) {
      st_.held_fetches.push_back(self_->make_response_promise());
      return st_.held_fetches.back();
    }
    for (auto& rp : st_.held_fetches)
      rp.deliver(caf::make_error(caf::sec::request_timeout, "fetch held while paused"));
    st_.held_fetches.clear();
    auto r = st_.ranges.range_of(key);
    if (st_.range_actors.size() <= r) st_.range_actors.resize(st_.ranges.ranges());
    auto& a = st_.range_actors[r];
    // Asked for a range we do not own (the asker's view is behind): serve it anyway; the
    // actor goes away at the next reassignment.
    if (!a) a = spawn_range_actor(self_->system(), ctx_, r);
    return self_->delegate(a, fetch_atom::value, std::move(key));
  }

  // -- bus: out ----------------------------------------------------------------------

  // Adaptive batching: the decision is bus::batch_policy's (idle -> at once, busy -> wait
  // to coalesce, never past batch_max_delay); this only carries it out.
  void wake() {
    if (st_.flush_scheduled) return;
    auto& c = ctx_.counters;
    auto& p = *st_.batching;
    auto d = p.on_wake(steady_now(), ctx_.queue.pushed(), ctx_.queue.size());
    c.arrival_rate_per_s.store(static_cast<std::uint64_t>(p.rate()), std::memory_order_relaxed);
    c.batch_delay_current_us.store(static_cast<std::uint64_t>(p.current_delay().count()),
                                   std::memory_order_relaxed);
    if (!d.send_now) {
      st_.flush_scheduled = true;
      c.batches_delayed.fetch_add(1, std::memory_order_relaxed);
      self_->delayed_send(self_, d.wait, caf::flush_atom::value);
      return;
    }
    c.batches_immediate.fetch_add(1, std::memory_order_relaxed);
    flush(64);
  }

  /// The actor's clock: the real one, or the test coordinator's in deterministic tests.
  steady::time_point steady_now() const { return self_->clock().now(); }
  /// Membership time: the system clock (peers' last_heard_ms is shown to users) advanced
  /// by the actor's clock, so a test coordinator drives failure detection too.
  std::int64_t clock_ms() const {
    return st_.wall_base_ms +
           std::chrono::duration_cast<std::chrono::milliseconds>(steady_now() - st_.steady_base)
               .count();
  }

  /// Sends up to `max_batches` batches of what is queued; wakes itself if more remain.
  void flush(int max_batches) {
    st_.flush_scheduled = false;
    auto& p = *st_.batching;
    p.flushed(steady_now());
    ctx_.queue.rearm();
    for (int i = 0; i < max_batches; ++i) {
      auto d = ctx_.queue.drain(p.drain_records(), p.drain_bytes(), p.coalesce());
      if (d.records.empty()) return;
      send_batch(std::move(d));
    }
    if (!ctx_.queue.empty()) self_->send(self_, wake_atom::value);
  }

  void send_batch(bus::outbound_queue::drained d) {
    auto& c = ctx_.counters;
    c.records_coalesced.fetch_add(d.coalesced, std::memory_order_relaxed);
    bus::change_batch b;
    b.header = st_.numbering->next_batch(ctx_.host->clock_now());
    b.records = std::move(d.records);
    auto n = b.records.size();
    auto lim = ctx_.limits;
    lim.compress_above = ctx_.opts.compress_above;
    auto bytes = bus::encode(b, lim);
    if (!bytes) return;  // cannot happen for records the node accepted; receivers see a gap
    auto msg = caf::make_message(batch_atom::value, std::move(*bytes));
    auto size = msg.get_as<std::string>(1).size();
    std::uint64_t sent = 0;
    for (auto id : st_.members->reachable())
      if (auto* p = st_.peers.find(id)) {
        self_->send(*p, msg);
        ++sent;
      }
    c.batches_sent.fetch_add(sent, std::memory_order_relaxed);
    c.records_sent.fetch_add(sent * n, std::memory_order_relaxed);
    c.bytes_sent.fetch_add(sent * size, std::memory_order_relaxed);
    if (lim.compress_above && size < n * 8) c.batches_compressed.fetch_add(sent);
    cluster_counters::raise_max(c.max_batch_records, n);
    auto wait = static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.oldest_wait_us));
    c.batch_delay_us_total.fetch_add(wait, std::memory_order_relaxed);
    cluster_counters::raise_max(c.max_batch_delay_us, wait);
  }

  std::optional<std::string> heartbeat_bytes(bool leaving) {
    bus::heartbeat hb;
    hb.header = st_.numbering->heartbeat(ctx_.host->clock_now());
    hb.name = ctx_.name;
    hb.address = ctx_.address;
    hb.leaving = leaving;
    hb.patterns = st_.patterns_ver;
    hb.storage_id = ctx_.storage_id;
    for (auto& m : st_.members->view()) {
      if (m.self || m.address.empty()) continue;
      if (hb.members.size() >= ctx_.limits.max_members) break;
      hb.members.push_back({m.id, m.incarnation, m.name, m.address, m.state});
    }
    auto bytes = bus::encode(hb, ctx_.limits);
    if (!bytes) return std::nullopt;
    return std::move(*bytes);
  }

  void send_heartbeats(bool leaving) {
    auto bytes = heartbeat_bytes(leaving);
    if (!bytes) return;
    auto msg = caf::make_message(heartbeat_atom::value, std::move(*bytes));
    for (auto id : st_.members->reachable())
      if (auto* p = st_.peers.find(id)) {
        self_->send(*p, msg);
        ctx_.counters.heartbeats_sent.fetch_add(1, std::memory_order_relaxed);
      }
  }

  // -- bus: in -----------------------------------------------------------------------

  void on_batch(const std::string& bytes) {
    auto& c = ctx_.counters;
    auto b = bus::decode_batch(bytes, ctx_.limits);
    if (!b) {
      c.decode_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto& h = b->header;
    if (h.sender == ctx_.self_id || h.sender == 0) return;
    auto v = st_.tracker.on_batch(h.sender, h.incarnation, h.seq);
    if (v == bus::inbound_tracker::verdict::duplicate) return;
    if (v == bus::inbound_tracker::verdict::gap) gap(h.sender, h.hlc_now);
    c.batches_received.fetch_add(1, std::memory_order_relaxed);
    c.records_received.fetch_add(b->records.size(), std::memory_order_relaxed);
    observe(h.hlc_now);
    if (st_.delivery.on_batch) st_.delivery.on_batch(*b);
  }

  /// Moves our clock past a peer's (the clock ignores readings too far in the future).
  void observe(std::uint64_t hlc) { ctx_.host->clock_observe(hlc); }

  // -- shutdown ------------------------------------------------------------------------

  void goodbye() {
    while (!ctx_.queue.empty()) flush(1 << 20);
    send_heartbeats(true);
  }

 private:
  cluster_actor* self_;
  cluster_state& st_;
  cluster_context& ctx_;
};

caf::behavior cluster_impl(cluster_actor* self, cluster_context* ctx, bus_delivery delivery) {
  auto& st = self->state;
  st.ctx = ctx;
  st.delivery = std::move(delivery);
  member_info me;
  me.id = ctx->self_id;
  me.incarnation = ctx->incarnation;
  me.name = ctx->name;
  me.address = ctx->address;
  detail::membership_options mo;
  mo.down_after_ms = std::max<std::int64_t>(1, ctx->opts.failure_timeout.count());
  mo.suspect_after_ms = std::max<std::int64_t>(1, mo.down_after_ms / 2);
  mo.retry_ms = std::max<std::int64_t>(100, ctx->opts.heartbeat_interval.count() * 2);
  st.members.emplace(me, mo);
  for (auto& s : ctx->seeds) st.members->learn(s);
  st.ranges = detail::range_map{ctx->opts.ranges};
  st.batching.emplace(bus::batch_policy_options::from(ctx->opts));
  st.numbering.emplace(ctx->self_id, ctx->incarnation);
  st.patterns_ver = ctx->patterns_ver;
  st.patterns_bytes = ctx->patterns_bytes;
  st.wall_base_ms = now_ms();
  st.steady_base = self->clock().now();
  if (ctx->network)
    st.basp = self->system().middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  cluster_logic{self}.reassign();
  cluster_logic{self}.publish_view();
  self->set_down_handler([=](caf::down_msg& dm) { cluster_logic{self}.on_down(dm); });
  self->send(self, tick_atom::value);
  auto interval = std::max(std::chrono::milliseconds{10}, ctx->opts.heartbeat_interval);
  return {
      [=](tick_atom) {
        cluster_logic{self}.tick();
        self->delayed_send(self, interval, tick_atom::value);
      },
      [=](heartbeat_atom, const std::string& bytes) { cluster_logic{self}.on_heartbeat(bytes); },
      [=](batch_atom, const std::string& bytes) { cluster_logic{self}.on_batch(bytes); },
      [=](pattern_table_atom, const std::string& bytes) {
        cluster_logic{self}.on_patterns(bytes, false);
      },
      [=](local_pattern_table_atom, const std::string& bytes) {
        cluster_logic{self}.on_patterns(bytes, true);
      },
      [=](fetch_atom, std::string& key) -> caf::result<caf::message> {
        return cluster_logic{self}.fetch(key);
      },
      [=](members_atom) -> std::string {
        auto* ctx = self->state.ctx;
        cluster_view v;
        v.self_id = ctx->self_id;
        v.ranges = ctx->opts.ranges;
        {
          std::lock_guard<std::mutex> g{ctx->snap_mtx};
          v.members = ctx->view;
        }
        return to_json(v, ctx->counters.snapshot());
      },
      [=](hotkeys_atom, std::uint32_t limit) -> std::string {
        return ctx->host->hot_keys_bytes(std::min(limit, max_hot_keys_request));
      },
      [=](wake_atom) { cluster_logic{self}.wake(); },
      [=](caf::flush_atom) { cluster_logic{self}.flush(64); },
      [=](caf::strong_actor_ptr& ptr) { cluster_logic{self}.found(ptr); },
      [=](cluster_link_cmd& cmd) { cluster_logic{self}.hello(cmd.peer); },
      [=](dns_atom, const std::vector<std::string>& addrs) { cluster_logic{self}.learned(addrs); },
      [=](goodbye_atom) -> std::vector<caf::actor> {
        cluster_logic{self}.goodbye();
        std::vector<caf::actor> ranges;
        for (auto& a : self->state.range_actors)
          if (a) ranges.push_back(std::move(a));
        self->state.range_actors.clear();
        return ranges;
      },
  };
}

}  // namespace

caf::actor spawn_cluster_actor(caf::actor_system& sys, cluster_context& ctx,
                               bus_delivery delivery) {
  auto a = sys.spawn(cluster_impl, &ctx, std::move(delivery));
  sys.registry().put(cluster_registry_name(), a);
  return a;
}

void stop_cluster_actor(caf::actor_system& sys, const caf::actor& cluster) {
  if (!cluster) return;
  std::vector<caf::actor> ranges;
  {
    // Its own actor: the request's timeout stays armed after the answer and must not land
    // in the wait_for() below (a skipped message there leaks the actor; see
    // fetch_strong_status in actors/quorum_actor.cpp).
    caf::scoped_actor asker{sys};
    asker->request(cluster, std::chrono::seconds(5), goodbye_atom::value)
        .receive([&](std::vector<caf::actor>& rs) { ranges = std::move(rs); }, [](caf::error&) {});
  }
  caf::scoped_actor self{sys};
  sys.registry().erase(cluster_registry_name());
  self->send_exit(cluster, caf::exit_reason::user_shutdown);
  self->wait_for(cluster);
  for (auto& r : ranges) self->send_exit(r, caf::exit_reason::user_shutdown);
  for (auto& r : ranges) self->wait_for(r);
}

warp::result<std::string> fetch_members_json(caf::actor_system& sys, const std::string& host,
                                             std::uint16_t port,
                                             std::chrono::milliseconds timeout) {
  auto published = bus::connect_to_node(sys, host, port, timeout);
  if (!published) return published.err();
  if (!*published)
    return error{errc::unsupported, "the node at " + host + " published no actor"};
  auto ptr = sys.middleman().remote_lookup(cluster_registry_name(), (*published)->node());
  if (!ptr) return error{errc::unsupported, "the node at " + host + " runs no cluster actor"};
  caf::scoped_actor self{sys};
  warp::result<std::string> out{errc::timeout, "no answer"};
  self->request(caf::actor_cast<caf::actor>(ptr), timeout, members_atom::value)
      .receive([&](std::string& json) { out = std::move(json); },
               [&](caf::error& err) {
                 out = error{errc::unreachable, sys.render(err)};
               });
  return out;
}

}  // namespace warp::actors
