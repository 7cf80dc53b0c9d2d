#include "federation/federation_actor.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/peer_dialer.hpp"
#include "bus/kafka_bridge.hpp"
#include "bus/kafka_envelope.hpp"
#include "bus/node_transport.hpp"
#include "federation/digest.hpp"
#include "federation/frame.hpp"
#include "federation/kafka_link.hpp"
#include "federation/link_state.hpp"
#include "runtime/core/log.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/federated_merge.hpp"
#include "warp/cluster.hpp"
#include "warp/endpoint.hpp"

namespace warp::federation {

namespace {

using fed_tick_atom = caf::atom_constant<caf::atom("wftick")>;
// Network messages: the frame is a std::string (a CAF built-in type, so nothing to
// register on either side) holding Warp's own bounded encoding.
using fed_batch_atom = caf::atom_constant<caf::atom("warpfbat")>;
using fed_digest_atom = caf::atom_constant<caf::atom("warpfdig")>;
// Local messages from the executor's jobs back to the actor.
using fed_applied_atom = caf::atom_constant<caf::atom("wfapplied")>;
using fed_repair_atom = caf::atom_constant<caf::atom("wfrepair")>;
using fed_now_atom = caf::atom_constant<caf::atom("wfnow")>;
using fed_digest_done_atom = caf::atom_constant<caf::atom("wfdigdone")>;
// warpctl regions: -> std::string (the /admin/federation JSON).
using fed_status_atom = caf::atom_constant<caf::atom("warpfstat")>;
// From a Kafka producer's thread: one record of a Kafka link was delivered or failed.
using fed_kafka_ack_atom = caf::atom_constant<caf::atom("wfkack")>;
// From the executor: the changes of departed members, re-derived for the gateway to ship.
using fed_rederived_atom = caf::atom_constant<caf::atom("wfrederiv")>;
// From the executor: the current changes of keys a Kafka link's full queue dropped.
using fed_kafka_repair_atom = caf::atom_constant<caf::atom("wfkrepair")>;

constexpr const char* kafka_address = "kafka";

bool over_kafka(const std::string& link_spec) {
  return link_spec.substr(link_spec.find('=') + 1) == kafka_address;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Where a Kafka producer's delivery reports go: the federation actor, once it runs (the
// producers open before it is spawned, so the handle is set afterwards).
struct kafka_ack_route {
  std::mutex mu;
  caf::weak_actor_ptr dest;
  void send(std::uint64_t link, bool ok) {
    caf::strong_actor_ptr to;
    {
      std::lock_guard<std::mutex> g{mu};
      to = dest.lock();
    }
    if (to) caf::anon_send(caf::actor_cast<caf::actor>(to), fed_kafka_ack_atom::value, link, ok);
  }
};

constexpr caf::atom_value registry_name() noexcept {
  return caf::atom("warpfed");
}

// Frames between the actor and its own executor jobs: made here from checked changes, so
// only the network-facing limits are lifted.
frame_limits unbounded() {
  frame_limits l;
  l.max_frame_bytes = std::size_t(-1);
  l.max_changes = std::size_t(-1);
  l.max_key = std::size_t(-1);
  l.max_value = std::size_t(-1);
  l.max_path = std::size_t(-1);
  return l;
}

// The merge policy of a federated key: its pattern's name, except that a pattern's lww
// (also what a bare +federated means) yields to a glob bound with node::register_merge or
// bind_merge, so `register_merge("cart:*", fn)` takes effect under `cart:*=...+federated`.
std::string merge_policy_of(const detail::node_state& st, std::string_view key,
                            const key_policy& policy) {
  return st.merges.policy_for(
      key, policy.federated == merge::policy_lww ? std::string_view{} : policy.federated);
}

// What the writer threads, the apply jobs and the admin readers share with the actor.
struct shared_state {
  detail::node_state* st = nullptr;
  federation_options opts;
  frame_limits limits;
  std::vector<std::string> regions;  // linked regions, in the order of the flags

  // The inbox of committed local changes (writer threads push, the actor drains).
  mutable std::mutex inbox_mtx;
  std::vector<change> inbox;
  std::uint64_t inbox_dropped = 0;
  std::set<std::string> inbox_repair;

  tombstones tombs;

  // Counters and the actor's last published view, for json()/metrics().
  mutable std::mutex stats_mtx;
  struct region_in {
    std::uint64_t applied = 0, stale = 0, refused = 0, errors = 0, received = 0;
  };
  std::map<std::string, region_in> in;  // by sender region
  std::uint64_t conflicts_lww = 0;      // changes LWW resolved against the incoming one
  // Conflicts resolved per policy: lww, an incoming change older than the local value;
  // the CRDTs and custom functions, a merge that joined two states (concurrent writes).
  std::map<std::string, std::uint64_t> conflicts;
  std::uint64_t unknown_policy = 0;  // changes refused: policy unknown or state unreadable
  std::uint64_t malformed = 0;
  struct link_view {
    std::string region;
    std::vector<std::string> addresses;
    std::string gateway;  // address in use, empty when down
    link_counters n;
    std::size_t depth = 0;
    double lag = 0;
    std::uint64_t repaired = 0, ae_passes = 0;
  };
  std::vector<link_view> links;
  std::uint64_t overflow_dropped = 0;  // inbox overflow
  std::string gateway;                 // this region's gateway (lowest live member name)
  std::uint64_t rederived = 0;         // changes of departed members re-shipped here
  std::uint64_t handovers = 0;         // departed members whose changes were re-shipped

  // The Kafka transport: a producer per region linked `=kafka` (topic PREFIX<self>.<it>),
  // in the order of the links; opened before the actor and only read afterwards.
  std::vector<std::pair<std::string, std::unique_ptr<bus::kafka_producer>>> producers;
  std::shared_ptr<kafka_ack_route> acks = std::make_shared<kafka_ack_route>();
  bus::kafka_format kafka_format = bus::kafka_format::msgpack;
  bus::kafka_limits kafka_limits;
  std::string kafka_group;
  std::vector<std::string> kafka_topics_in;
  // The consumer of the topics for this region (set once, before the status is read).
  std::atomic<const bus::kafka_counters*> consumer{nullptr};
};

std::string status_json(const shared_state& shr) {
  using nlohmann::json;
  std::lock_guard<std::mutex> g{shr.stats_mtx};
  json links = json::array();
  for (const auto& l : shr.links) {
    links.push_back({{"region", l.region},
                     {"addresses", l.addresses},
                     {"gateway", l.gateway},
                     {"state", l.gateway.empty() ? "down" : "up"},
                     {"queue_depth", l.depth},
                     {"lag_seconds", l.lag},
                     {"queued", l.n.queued},
                     {"shipped", l.n.shipped},
                     {"dropped", l.n.dropped},
                     {"resent_batches", l.n.resent},
                     {"batches", l.n.batches},
                     {"repaired", l.repaired},
                     {"anti_entropy_passes", l.ae_passes}});
  }
  json in = json::object();
  for (const auto& [r, n] : shr.in)
    in[r] = {{"received", n.received},
             {"applied", n.applied},
             {"stale", n.stale},
             {"refused", n.refused},
             {"errors", n.errors}};
  json out{{"enabled", true},
           {"region", shr.opts.region},
           {"links", links},
           {"received_from", in},
           {"conflicts_lww", shr.conflicts_lww},
           {"conflicts", shr.conflicts},
           {"unknown_policy", shr.unknown_policy},
           {"malformed", shr.malformed},
           {"batch_size", shr.opts.batch_size},
           {"max_delay_ms", shr.opts.max_delay.count()},
           {"queue_limit", shr.opts.queue_limit},
           {"queue_full", shr.opts.queue_full},
           {"gateway", shr.gateway},
           {"rederived", shr.rederived},
           {"handovers", shr.handovers}};
  if (!shr.opts.kafka_brokers.empty()) {
    auto ld = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    json producers = json::object();
    for (const auto& [region, p] : shr.producers) {
      const auto& c = p->counters();
      producers[region] = {{"topic", p->topic()},
                           {"produced", ld(c.produced)},
                           {"delivered", ld(c.delivered)},
                           {"failed", ld(c.failed)},
                           {"rejected", ld(c.rejected)},
                           {"in_flight", c.in_flight.load(std::memory_order_relaxed)},
                           {"broker_errors", ld(c.broker_errors)}};
    }
    json kafka{{"brokers", shr.opts.kafka_brokers},
               {"format", std::string{bus::to_string(shr.kafka_format)}},
               {"group", shr.kafka_group},
               {"topics_in", shr.kafka_topics_in},
               {"producers", producers}};
    if (const auto* c = shr.consumer.load(std::memory_order_acquire))
      kafka["consumer"] = {
          {"consumed", ld(c->consumed)},         {"applied", ld(c->applied)},
          {"apply_errors", ld(c->apply_errors)}, {"commits", ld(c->committed)},
          {"commit_lag", ld(c->commit_lag)},     {"broker_errors", ld(c->broker_errors)}};
    out["kafka"] = std::move(kafka);
  }
  {
    std::lock_guard<std::mutex> i{shr.inbox_mtx};
    out["inbox_dropped"] = shr.inbox_dropped;
  }
  return out.dump();
}

// Every federated key this node knows, with its version (anti-entropy, hand-over); the
// change that re-sends a key's current value (nullopt when it is gone meanwhile). Both
// run on the executor.
struct known_entry {
  version ver;
  bool erased = false;
};
std::map<std::string, known_entry> known_keys(shared_state& sh,
                                              const std::vector<std::size_t>* only);
std::optional<change> current_change(shared_state& sh, const std::string& key, version ver);

struct fed_state {
  explicit fed_state(caf::event_based_actor* ptr) : self(ptr) {}
  caf::event_based_actor* self;
  std::shared_ptr<shared_state> sh;
  std::optional<actors::peer_dialer> dialer;
  std::vector<std::string> address_region;  // by dialer index
  // A gateway that failed a batch (timeout: stopped, overloaded) is passed over until
  // then while another gateway of its region is up: failover without waiting for the
  // connection to drop.
  std::vector<clock_point> suspect_until;  // by dialer index
  std::vector<bool> ae_running;            // by dialer index: one pass per gateway at a time
  struct link {
    std::string region;
    std::vector<std::size_t> addresses;  // dialer indexes, in preference order
    std::unique_ptr<link_queue> queue;
    bool was_up = false;
    std::uint64_t repaired = 0, ae_passes = 0;
    std::chrono::steady_clock::time_point last_ae{};
    bool repair_wanted = true;  // a pass is due as soon as one can start
    // Over Kafka: the producer, and the batch in flight: its records' delivery reports
    // counted until all came back (every produced record gets exactly one).
    bus::kafka_producer* producer = nullptr;
    std::uint64_t kafka_seq = 0;
    std::size_t kafka_expected = 0, kafka_done = 0;
    bool kafka_ok = true;
    clock_point kafka_retry_at{};
    // Over Kafka, where no digest exchange runs: the keys a full queue (or the inbox)
    // dropped, re-read and queued again once the queue has room (all known keys when too
    // many to list).
    std::set<std::string> kafka_repair;
    bool kafka_repair_all = false, kafka_repair_running = false;
  };
  std::vector<link> links;
  std::vector<std::string> caf_links;  // the REGION=HOST:PORT flags, by dialer index
  std::vector<link*> kafka_links;      // by producer index (shared_state::producers)
  region_gateway gw;
  clock_point last_members{};
  seen_set seen;
  std::uint64_t next_job = 1;
  std::unordered_map<std::uint64_t, caf::response_promise> pending;
  std::chrono::milliseconds tick_every{50};
  static inline const char* name = "warp.federation";

  caf::behavior make_behavior(std::shared_ptr<shared_state> init);
  void on_tick();
  void drain_inbox(clock_point now);
  void ship(link& l, clock_point now);
  void ship_kafka(link& l, clock_point now);
  void kafka_settle(link& l);
  bool kafka_up(const link& l, clock_point now) const;
  bool link_up(const link& l, clock_point now) const {
    return l.producer ? kafka_up(l, now) : static_cast<bool>(gateway(l));
  }
  /// Follows the region's membership: the gateway re-ships departed members' changes.
  void watch_members(clock_point now);
  void on_rederived(const std::string& frame);
  void kafka_repair(std::size_t k);
  void on_kafka_repaired(std::uint64_t k, const std::string& frame);
  caf::result<std::string> on_batch(const std::string& frame);
  void on_applied(std::uint64_t job, const std::string& forwards, bool ok);
  caf::result<std::string> on_digest(const std::string& req);
  /// Anti-entropy with gateway `m` of `l` (the link's current gateway when npos).
  bool start_repair(link& l, std::size_t m = static_cast<std::size_t>(-1));
  void on_repair(std::uint64_t m, const std::string& frame);
  void enqueue(const std::string& region, change c, clock_point now);
  link* link_of(const std::string& region);
  caf::actor gateway(const link& l, std::string* address = nullptr,
                     std::size_t* index = nullptr) const;
  void publish();
};

fed_state::link* fed_state::link_of(const std::string& region) {
  for (auto& l : links)
    if (l.region == region) return &l;
  return nullptr;
}

caf::actor fed_state::gateway(const link& l, std::string* address, std::size_t* index) const {
  // The first gateway of the region's list that is up and not suspect; else the first
  // that is up: the others take over in order.
  auto now = std::chrono::steady_clock::now();
  for (int pass = 0; pass < 2; ++pass) {
    for (auto m : l.addresses) {
      const auto& h = dialer->handle(m);
      if (!h || (pass == 0 && suspect_until[m] > now)) continue;
      if (address) *address = caf_links[m].substr(caf_links[m].find('=') + 1);
      if (index) *index = m;
      return h;
    }
  }
  return {};
}

caf::behavior fed_state::make_behavior(std::shared_ptr<shared_state> init) {
  sh = std::move(init);
  std::vector<std::string> addresses;
  for (const auto& spec : sh->opts.links) {
    auto eq = spec.find('=');
    auto region = spec.substr(0, eq);
    auto* l = link_of(region);
    if (!l) {
      link fresh;
      fresh.region = region;
      fresh.queue = std::make_unique<link_queue>(sh->opts.queue_limit, sh->opts.batch_size,
                                                 sh->opts.max_delay);
      links.push_back(std::move(fresh));
      l = &links.back();
    }
    if (over_kafka(spec)) continue;  // producers below, once `links` stops moving
    caf_links.push_back(spec);
    addresses.push_back(spec.substr(eq + 1));
    address_region.push_back(region);
    l->addresses.push_back(addresses.size() - 1);
  }
  for (auto& [region, producer] : sh->producers) {
    auto* l = link_of(region);
    l->producer = producer.get();
    kafka_links.push_back(l);
  }
  {
    std::lock_guard<std::mutex> g{sh->acks->mu};
    sh->acks->dest = caf::actor_cast<caf::weak_actor_ptr>(self);
  }
  suspect_until.assign(addresses.size(), clock_point{});
  ae_running.assign(addresses.size(), false);
  dialer.emplace(self, registry_name(), addresses, static_cast<std::size_t>(-1),
                 std::chrono::milliseconds{500});
  dialer->enable();
  self->set_down_handler([this](caf::down_msg& dm) { dialer->down(dm.source); });
  tick_every = std::clamp(sh->opts.max_delay / 4, std::chrono::milliseconds{5},
                          std::chrono::milliseconds{100});
  self->send(self, fed_tick_atom::value);
  return {
      [this](fed_tick_atom) { on_tick(); },
      [this](fed_batch_atom, const std::string& frame) { return on_batch(frame); },
      [this](fed_digest_atom, const std::string& req) { return on_digest(req); },
      [this](fed_applied_atom, std::uint64_t job, const std::string& fwd, const std::string& failed,
             bool ok) {
        if (auto f = decode(failed, unbounded()))
          for (auto& c : f->changes) seen.forget(c);
        on_applied(job, fwd, ok);
      },
      [this](fed_repair_atom, std::uint64_t m, const std::string& frame) { on_repair(m, frame); },
      [this](fed_kafka_ack_atom, std::uint64_t k, bool ok) {
        if (k >= kafka_links.size()) return;
        auto& l = *kafka_links[k];
        if (!l.queue->in_flight()) return;
        ++l.kafka_done;
        if (!ok) l.kafka_ok = false;
        kafka_settle(l);
      },
      [this](fed_rederived_atom, const std::string& frame) { on_rederived(frame); },
      [this](fed_kafka_repair_atom, std::uint64_t k, const std::string& frame) {
        on_kafka_repaired(k, frame);
      },
      [this](fed_status_atom) { return status_json(*sh); },
      [this](fed_digest_done_atom, std::uint64_t job, std::string& bytes) {
        if (auto it = pending.find(job); it != pending.end()) {
          it->second.deliver(std::move(bytes));
          pending.erase(it);
        }
      },
      [this](fed_now_atom) {
        for (auto& l : links) start_repair(l);
      },
      [this](caf::strong_actor_ptr& ptr) {
        // A gateway (re)connected: whatever it missed while away (or, restarted, never
        // had) is found by comparing digests with it.
        if (auto m = dialer->found(ptr))
          if (auto* l = link_of(address_region[*m])) start_repair(*l, *m);
      },
  };
}

void fed_state::enqueue(const std::string& region, change c, clock_point now) {
  auto* l = link_of(region);
  if (!l) return;
  l->queue->push(std::move(c), now);
}

void fed_state::drain_inbox(clock_point now) {
  std::vector<change> got;
  std::set<std::string> repair;
  {
    std::lock_guard<std::mutex> g{sh->inbox_mtx};
    got.swap(sh->inbox);
    repair.swap(sh->inbox_repair);
  }
  for (auto& c : got) {
    seen.first_time(c);  // our own change must not be applied again if it comes back
    for (std::size_t i = 0; i < links.size(); ++i) {
      if (i + 1 == links.size())
        links[i].queue->push(std::move(c), now);
      else
        links[i].queue->push(c, now);
    }
  }
  // The inbox overflowed: every link needs a repair pass.
  if (!repair.empty())
    for (auto& l : links) {
      l.repair_wanted = true;
      if (l.producer) l.kafka_repair.insert(repair.begin(), repair.end());
    }
}

void fed_state::ship(link& l, clock_point now) {
  if (l.producer) return ship_kafka(l, now);
  // A batch in flight waits for its acknowledgement; the request's own timeout fails it
  // (below), which puts it back in the queue for the next gateway.
  if (!l.queue->due(now)) return;
  std::size_t m = 0;
  auto hdl = gateway(l, nullptr, &m);
  if (!hdl) return;  // the changes wait in the queue (bounded) for a gateway
  auto b = l.queue->take(sh->opts.region, now);
  auto frame = encode(b, sh->limits);
  auto seq = b.seq;
  auto* lp = &l;
  if (!frame) {
    // A change this node committed cannot exceed the limits it shares with its peers;
    // should it anyway, it is dropped loudly rather than blocking the link.
    detail::log()->error("federation: batch to {} not encodable: {}", l.region,
                         frame.err().message());
    l.queue->acked(seq);
    return;
  }
  self->request(hdl, sh->opts.ack_timeout, fed_batch_atom::value, std::move(*frame))
      .then([lp, seq](const std::string&) { lp->queue->acked(seq); },
            [this, lp, seq, m](caf::error& err) {
              detail::log()->warn("federation: batch {} to region {} failed ({}): resent", seq,
                                  lp->region, to_string(err));
              suspect_until[m] = std::chrono::steady_clock::now() + 3 * sh->opts.ack_timeout;
              lp->queue->failed(seq);
            });
}

void fed_state::ship_kafka(link& l, clock_point now) {
  // One batch in flight per link, as over CAF: it is done when the brokers acknowledged
  // every record of it (acks=all, idempotent producer); a failed record puts the whole
  // batch back (receivers drop the duplicates). librdkafka retries by itself meanwhile, so
  // a stopped broker holds the batch and the queue fills behind it (bounded).
  if (now < l.kafka_retry_at || !l.queue->due(now)) return;
  auto b = l.queue->take(sh->opts.region, now);
  l.kafka_seq = b.seq;
  l.kafka_expected = b.changes.size();
  l.kafka_done = 0;
  l.kafka_ok = true;
  auto stamp = wall_ms();
  for (const auto& c : b.changes) {
    auto bytes = bus::encode(to_kafka(c, stamp), sh->kafka_format, sh->kafka_limits);
    if (!bytes) {
      // Committed here within the node's own limits, so this cannot happen between nodes
      // that share them; should it anyway, the change is dropped loudly, not retried.
      detail::log()->error("federation: change of {} to {} not encodable: {}", c.key, l.region,
                           bytes.err().message());
      ++l.kafka_done;
      continue;
    }
    if (auto put = l.producer->publish(c.key, *bytes); !put) {
      ++l.kafka_done;  // no delivery report will come for it
      l.kafka_ok = false;
    }
  }
  kafka_settle(l);
}

void fed_state::kafka_settle(link& l) {
  if (!l.queue->in_flight() || l.kafka_done < l.kafka_expected) return;
  if (l.kafka_ok) {
    l.queue->acked(l.kafka_seq);
    return;
  }
  detail::log()->warn("federation: batch {} to region {} not delivered to Kafka: resent",
                      l.kafka_seq, l.region);
  l.queue->failed(l.kafka_seq);
  l.kafka_retry_at = std::chrono::steady_clock::now() + std::chrono::milliseconds{200};
}

bool fed_state::kafka_up(const link& l, clock_point now) const {
  // Down while the brokers leave a batch unacknowledged past the ack timeout.
  auto since = l.queue->flight_since();
  return !since || now - *since < sh->opts.ack_timeout;
}

void fed_state::watch_members(clock_point now) {
  auto* cl = sh->st->cluster.get();
  if (!cl || now - last_members < std::chrono::milliseconds{200}) return;
  last_members = now;
  std::vector<member_seen> seen_members;
  for (const auto& m : cl->view().members)
    seen_members.push_back(
        {m.id, m.name, m.self || m.state == member_state::up || m.state == member_state::suspect,
         m.self});
  auto gone = gw.observe(seen_members, now);
  {
    std::lock_guard<std::mutex> g{sh->stats_mtx};
    sh->gateway = gw.gateway();
  }
  if (gone.empty()) return;
  std::sort(gone.begin(), gone.end());
  detail::log()->info(
      "federation: {} member(s) of region {} went away; gateway {} re-ships "
      "their changes",
      gone.size(), sh->opts.region, gw.gateway());
  auto shp = sh;
  auto me = caf::actor_cast<caf::actor>(self);
  (void)sh->st->executor->post([shp, me, gone] {
    batch out;
    out.sender = shp->opts.region;
    for (auto& [k, e] : known_keys(*shp, nullptr)) {
      if (e.erased || !std::binary_search(gone.begin(), gone.end(), e.ver.node)) continue;
      if (auto c = current_change(*shp, k, e.ver)) out.changes.push_back(std::move(*c));
    }
    {
      std::lock_guard<std::mutex> g{shp->stats_mtx};
      shp->handovers += gone.size();
    }
    auto bytes = encode(out, unbounded());
    caf::anon_send(me, fed_rederived_atom::value, bytes ? std::move(*bytes) : std::string{});
  });
}

void fed_state::on_rederived(const std::string& frame) {
  auto b = decode(frame, unbounded());
  if (!b || b->changes.empty()) return;
  {
    std::lock_guard<std::mutex> g{sh->stats_mtx};
    sh->rederived += b->changes.size();
  }
  auto now = std::chrono::steady_clock::now();
  for (auto& c : b->changes) {
    seen.first_time(c);  // as for our own changes: not applied again if they come back
    for (auto& l : links) l.queue->push(c, now);
  }
}

void fed_state::kafka_repair(std::size_t k) {
  auto& l = *kafka_links[k];
  if (l.kafka_repair_running || (l.kafka_repair.empty() && !l.kafka_repair_all) ||
      l.queue->depth() > sh->opts.queue_limit / 2)
    return;
  l.kafka_repair_running = true;
  auto keys = std::exchange(l.kafka_repair, {});
  bool all = std::exchange(l.kafka_repair_all, false);
  auto shp = sh;
  auto me = caf::actor_cast<caf::actor>(self);
  bool posted = sh->st->executor->post([shp, me, k, all, keys = std::move(keys)] {
    batch out;
    out.sender = shp->opts.region;
    if (all) {
      for (auto& [key, e] : known_keys(*shp, nullptr))
        if (auto c = current_change(*shp, key, e.ver)) out.changes.push_back(std::move(*c));
    } else {
      for (const auto& key : keys) {
        auto rec = shp->st->store->fetch(key);
        if (rec && *rec) {
          if (auto c = current_change(*shp, key, (*rec)->ver)) out.changes.push_back(std::move(*c));
        } else if (auto del = shp->tombs.floor(key); version{} < del) {
          change c;
          c.what = change::op::erase;
          c.key = key;
          c.ver = del;
          c.origin = shp->opts.region;
          c.path = {shp->opts.region};
          c.policy = merge_policy_of(*shp->st, key, shp->st->patterns.lookup(key));
          out.changes.push_back(std::move(c));
        }
      }
    }
    auto bytes = encode(out, unbounded());
    caf::anon_send(me, fed_kafka_repair_atom::value, std::uint64_t{k},
                   bytes ? std::move(*bytes) : std::string{});
  });
  if (!posted) l.kafka_repair_running = false;
}

void fed_state::on_kafka_repaired(std::uint64_t k, const std::string& frame) {
  if (k >= kafka_links.size()) return;
  auto& l = *kafka_links[k];
  l.kafka_repair_running = false;
  auto b = decode(frame, unbounded());
  if (!b) return;
  auto now = std::chrono::steady_clock::now();
  l.repaired += b->changes.size();
  ++l.ae_passes;
  // A queue full again drops (and marks) what does not fit: the next pass takes it.
  for (auto& c : b->changes) l.queue->push(std::move(c), now);
}

void fed_state::on_tick() {
  self->delayed_send(self, tick_every, fed_tick_atom::value);
  dialer->tick();
  auto now = std::chrono::steady_clock::now();
  drain_inbox(now);
  watch_members(now);
  for (std::size_t k = 0; k < kafka_links.size(); ++k) kafka_repair(k);
  for (auto& l : links) {
    bool up = link_up(l, now);
    // A link that comes back (or a queue that dropped changes) gets an anti-entropy pass:
    // what was missed while it was down or full is found by digest.
    if (up && !l.was_up) l.repair_wanted = true;
    if (l.queue->needs_repair()) {
      auto dropped = l.queue->take_repairs();
      l.repair_wanted = true;
      if (l.producer) {
        if (dropped.size() + l.kafka_repair.size() >= 100000)
          l.kafka_repair_all = true;
        else
          l.kafka_repair.merge(dropped);
      }
    }
    l.was_up = up;
    bool periodic = sh->opts.anti_entropy_interval.count() > 0 &&
                    now - l.last_ae >= sh->opts.anti_entropy_interval;
    // A wanted pass that cannot start now (one is running) stays wanted.
    if (up && (l.repair_wanted || periodic) && start_repair(l)) l.repair_wanted = false;
    ship(l, now);
  }
  publish();
}

// -- receiving ------------------------------------------------------------------------------

caf::result<std::string> fed_state::on_batch(const std::string& frame) {
  auto b = decode(frame, sh->limits);
  // The sender's name labels metrics and JSON: the same characters as --region allows.
  auto name_ok = [](const std::string& r) {
    return !r.empty() && std::all_of(r.begin(), r.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
  };
  if (b && !name_ok(b->sender)) b = error{errc::codec_error, "federation frame: bad sender name"};
  if (!b || b->sender == sh->opts.region) {
    std::lock_guard<std::mutex> g{sh->stats_mtx};
    ++sh->malformed;
    detail::log()->warn("federation: refused a frame: {}",
                        b ? std::string{"sent by a node of this region"} : b.err().message());
    return caf::make_error(caf::sec::invalid_argument);
  }
  // Loop rule and dedup on the actor (one thread); the storage work on the executor.
  std::vector<change> todo;
  std::uint64_t dup = 0;
  for (auto& c : b->changes) {
    if (c.origin == sh->opts.region ||
        std::find(c.path.begin(), c.path.end(), sh->opts.region) != c.path.end() ||
        !seen.first_time(c)) {
      ++dup;
      continue;
    }
    todo.push_back(std::move(c));
  }
  {
    std::lock_guard<std::mutex> g{sh->stats_mtx};
    // Counters per sending region, bounded: a peer inventing names cannot grow the map.
    if (!sh->in.count(b->sender) && sh->in.size() >= 256) b->sender = "other";
    auto& in = sh->in[b->sender];
    in.received += b->changes.size();
    in.stale += dup;
  }
  auto job = next_job++;
  auto rp = self->make_response_promise<std::string>();
  pending.emplace(job, rp);
  auto me = caf::actor_cast<caf::actor>(self);
  auto shp = sh;
  auto sender = b->sender;
  auto posted = sh->st->executor->post([shp, me, job, sender, todo = std::move(todo)]() mutable {
    auto& st = *shp->st;
    batch fwd, failed;
    fwd.sender = failed.sender = shp->opts.region;
    bool ok = true;
    shared_state::region_in n;
    std::map<std::string, std::uint64_t> conflicts;  // by policy
    std::uint64_t unknown_policy = 0;
    std::string unknown_example;
    for (auto& c : todo) {
      auto policy = st.patterns.lookup(c.key);
      if (policy.federated.empty()) {
        ++n.refused;  // not federated here
        continue;
      }
      // The merge point. A pattern's lww (also the default of a bare +federated) yields to
      // a glob bound with node::register_merge/bind_merge; another name is the policy.
      auto name = merge_policy_of(st, c.key, policy);
      // Both regions must merge the key the same way: a change of another policy would be
      // merged wrongly (a counter's state taken as an lww string), so it is refused.
      if (c.policy != name) {
        ++n.refused;
        continue;
      }
      detail::federated_write w{c.what == change::op::erase, c.key, c.value, c.ver,
                                c.expires_at_ms};
      bool applied = false;
      if (name == merge::policy_lww || w.erase) {
        // A delete of a CRDT key is a delete of its whole state, ordered by version like
        // an lww delete (docs/merge.md): there is nothing to merge it with.
        auto r = st.writes.apply_federated(w, policy, st.mode_for(policy), shp->tombs.floor(c.key));
        if (!r) {
          ++n.errors;
          ok = false;
          failed.changes.push_back(std::move(c));
          continue;
        }
        if (!*r) ++conflicts[name];
        applied = *r;
      } else {
        auto r =
            detail::apply_merged(st, w, name, policy, st.mode_for(policy), shp->tombs.floor(c.key));
        if (!r) {
          if (r.code() == errc::invalid_argument || r.code() == errc::codec_error) {
            // An unknown policy name or a state that does not decode: re-sending cannot
            // help, so the change is refused (counted, logged), never merged as lww.
            ++n.refused;
            ++unknown_policy;
            if (unknown_example.empty()) unknown_example = c.key + ": " + r.err().message();
            continue;
          }
          ++n.errors;
          ok = false;
          failed.changes.push_back(std::move(c));
          continue;
        }
        using mo = detail::merge_outcome;
        if (*r == mo::joined) ++conflicts[name];
        applied = *r != mo::unchanged;
      }
      if (!applied) {
        ++n.stale;
        continue;
      }
      ++n.applied;
      if (w.erase) shp->tombs.record(c.key, c.ver);
      c.path.push_back(shp->opts.region);
      fwd.changes.push_back(std::move(c));
    }
    if (!unknown_example.empty())
      detail::log()->warn("federation: refused change(s) from {} that cannot be merged here: {}",
                          sender, unknown_example);
    {
      std::lock_guard<std::mutex> g{shp->stats_mtx};
      auto& in = shp->in[sender];
      in.applied += n.applied;
      in.stale += n.stale;
      in.refused += n.refused;
      in.errors += n.errors;
      shp->unknown_policy += unknown_policy;
      for (auto& [p, k] : conflicts) {
        // Policy names come from this node's patterns and registrations, so the map is
        // bounded by configuration, not by what peers send.
        shp->conflicts[p] += k;
        if (p == merge::policy_lww) shp->conflicts_lww += k;
      }
    }
    auto bytes = encode(fwd, unbounded());
    auto failed_bytes = encode(failed, unbounded());
    caf::anon_send(me, fed_applied_atom::value, job, bytes ? std::move(*bytes) : std::string{},
                   failed_bytes ? std::move(*failed_bytes) : std::string{}, ok);
  });
  if (!posted) {
    pending.erase(job);
    return caf::make_error(caf::sec::runtime_error);
  }
  return rp;
}

void fed_state::on_applied(std::uint64_t job, const std::string& forwards, bool ok) {
  if (auto fwd = decode(forwards, unbounded())) {
    std::vector<std::string> linked;
    for (auto& l : links) linked.push_back(l.region);
    auto now = std::chrono::steady_clock::now();
    for (auto& c : fwd->changes)
      for (auto& r : forward_targets(c, sh->opts.region, linked)) enqueue(r, c, now);
  }
  auto it = pending.find(job);
  if (it == pending.end()) return;
  // Acknowledged only once applied: a batch whose storage writes failed is sent again.
  if (ok)
    it->second.deliver(std::string{"ok"});
  else
    it->second.deliver(caf::make_error(caf::sec::runtime_error));
  pending.erase(it);
}

// -- anti-entropy -----------------------------------------------------------------------------

// Every federated key this node knows (L1, storage, remembered deletes), with its version:
// what a digest covers and what a repair re-sends. Runs on the executor.
std::map<std::string, known_entry> known_keys(shared_state& sh,
                                              const std::vector<std::size_t>* only) {
  auto& st = *sh.st;
  std::map<std::string, known_entry> out;
  auto want = [&](std::string_view key) {
    if (only && !std::binary_search(only->begin(), only->end(), bucket_of(key))) return false;
    return !st.patterns.lookup(key).federated.empty();
  };
  auto note = [&](std::string_view key, version ver, bool erased) {
    auto [it, fresh] = out.try_emplace(std::string{key}, known_entry{ver, erased});
    if (!fresh && it->second.ver < ver) it->second = {ver, erased};
  };
  st.l1->for_each([&](std::string_view key, const buffer&, const l1_entry_info& info) {
    if (want(key)) note(key, info.ver, false);
  });
  std::string after;
  for (int page = 0; page < 10000; ++page) {
    auto keys = st.store->scan(after, 1000);
    if (!keys || keys->empty()) break;
    after = keys->back();
    for (auto& k : *keys) {
      if (!want(k)) continue;
      if (auto rec = st.store->fetch(k); rec && *rec) note(k, (*rec)->ver, false);
    }
    if (keys->size() < 1000) break;
  }
  return out;
}

std::optional<change> current_change(shared_state& sh, const std::string& key, version ver) {
  change c;
  c.key = key;
  c.ver = ver;
  c.origin = sh.opts.region;
  c.path = {sh.opts.region};
  c.policy = merge_policy_of(*sh.st, key, sh.st->patterns.lookup(key));
  auto rec = sh.st->store->fetch(key);
  if (rec && *rec && (*rec)->ver == ver) {
    c.value = (*rec)->value;
    c.expires_at_ms = (*rec)->expires_at_ms;
  } else if (auto v = sh.st->l1->get(key)) {
    c.value = **v;
  } else {
    return std::nullopt;
  }
  return c;
}

digest digest_of(const std::map<std::string, known_entry>& keys) {
  digest d;
  for (const auto& [k, e] : keys) d.add(k, e.ver, e.erased);
  return d;
}

caf::result<std::string> fed_state::on_digest(const std::string& req) {
  if (req != "WFDQ1") return caf::make_error(caf::sec::invalid_argument);
  auto job = next_job++;
  pending.emplace(job, self->make_response_promise<std::string>());
  auto shp = sh;
  auto me = caf::actor_cast<caf::actor>(self);
  // The promise is delivered on the actor (fed_digest_done), not from the executor.
  auto posted = sh->st->executor->post([shp, me, job] {
    caf::anon_send(me, fed_digest_done_atom::value, job,
                   encode_digest(digest_of(known_keys(*shp, nullptr))));
  });
  if (!posted) {
    pending.erase(job);
    return caf::make_error(caf::sec::runtime_error);
  }
  return pending[job];
}

bool fed_state::start_repair(link& l, std::size_t m) {
  caf::actor hdl;
  if (m == static_cast<std::size_t>(-1))
    hdl = gateway(l, nullptr, &m);
  else
    hdl = dialer->handle(m);
  if (!hdl || ae_running[m]) return false;
  l.last_ae = std::chrono::steady_clock::now();
  ae_running[m] = true;
  ++l.ae_passes;
  self->request(hdl, std::chrono::seconds{30}, fed_digest_atom::value, std::string{"WFDQ1"})
      .then(
          [this, m](const std::string& theirs) {
            auto remote = decode_digest(theirs);
            if (!remote) {
              ae_running[m] = false;
              return;
            }
            auto shp = sh;
            auto me = caf::actor_cast<caf::actor>(self);
            bool posted = sh->st->executor->post([shp, me, m, remote = *remote] {
              auto mine = known_keys(*shp, nullptr);
              auto diff = differing(digest_of(mine), remote);
              batch out;
              out.sender = shp->opts.region;
              for (auto& [k, e] : mine) {
                if (diff.empty()) break;
                if (!std::binary_search(diff.begin(), diff.end(), bucket_of(k))) continue;
                if (auto c = current_change(*shp, k, e.ver)) out.changes.push_back(std::move(*c));
              }
              auto bytes = encode(out, unbounded());
              caf::anon_send(me, fed_repair_atom::value, std::uint64_t{m},
                             bytes ? std::move(*bytes) : std::string{});
            });
            if (!posted) ae_running[m] = false;
          },
          [this, m](caf::error&) { ae_running[m] = false; });
  return true;
}

void fed_state::on_repair(std::uint64_t m, const std::string& frame) {
  if (m >= ae_running.size()) return;
  ae_running[m] = false;
  auto* l = link_of(address_region[m]);
  if (!l) return;
  auto b = decode(frame, unbounded());
  if (!b || b->changes.empty()) return;
  // Straight to the gateway that differs, in batches of the usual size, outside the
  // link's queue (a restarted gateway must get them, not whichever gateway is first).
  // A batch that fails is left to the next pass.
  auto hdl = dialer->handle(m);
  if (!hdl) return;
  l->repaired += b->changes.size();
  for (std::size_t at = 0; at < b->changes.size(); at += sh->opts.batch_size) {
    batch part;
    part.sender = sh->opts.region;
    auto end = std::min(b->changes.size(), at + sh->opts.batch_size);
    part.changes.assign(std::make_move_iterator(b->changes.begin() + at),
                        std::make_move_iterator(b->changes.begin() + end));
    auto bytes = encode(part, sh->limits);
    if (!bytes) continue;
    self->request(hdl, std::chrono::seconds{30}, fed_batch_atom::value, std::move(*bytes))
        .then([](const std::string&) {}, [](caf::error&) {});
  }
}

void fed_state::publish() {
  auto now = std::chrono::steady_clock::now();
  std::vector<shared_state::link_view> views;
  for (auto& l : links) {
    shared_state::link_view v;
    v.region = l.region;
    for (auto m : l.addresses) {
      const auto& spec = caf_links[m];
      v.addresses.push_back(spec.substr(spec.find('=') + 1));
    }
    if (l.producer) {
      v.addresses.push_back(kafka_address);
      if (kafka_up(l, now)) v.gateway = "kafka:" + l.producer->topic();
    } else {
      gateway(l, &v.gateway);
    }
    v.n = l.queue->counters();
    v.depth = l.queue->depth();
    v.lag = l.queue->lag_seconds(now);
    v.repaired = l.repaired;
    v.ae_passes = l.ae_passes;
    views.push_back(std::move(v));
  }
  std::lock_guard<std::mutex> g{sh->stats_mtx};
  sh->links = std::move(views);
}

using fed_actor = caf::stateful_actor<fed_state>;

class federation_impl final : public node_federation, public detail::federation_sink {
 public:
  federation_impl(detail::node_state& st, std::shared_ptr<shared_state> sh)
      : st_(st), sh_(std::move(sh)) {}

  result<void> start() {
    if (auto opened = open_producers(); !opened) return opened;
    auto init = sh_;
    actor_ = st_.system->spawn([init](fed_actor* self) { return self->state.make_behavior(init); });
    st_.system->registry().put(registry_name(), caf::actor_cast<caf::strong_actor_ptr>(actor_));
    if (auto opened = open_consumer(); !opened) {
      stop();
      return opened;
    }
    st_.federation.store(this, std::memory_order_release);
    return {};
  }

  void stop() override {
    st_.federation.store(nullptr, std::memory_order_release);
    // The consumer first: its apply waits for the actor, and what it applied is committed.
    if (consumer_) {
      {
        // The status readers hold this lock while they read the consumer's counters.
        std::lock_guard<std::mutex> g{sh_->stats_mtx};
        sh_->consumer.store(nullptr, std::memory_order_release);
      }
      consumer_.reset();
    }
    if (!actor_) return;
    st_.system->registry().erase(registry_name());
    caf::scoped_actor self{*st_.system};
    self->send_exit(actor_, caf::exit_reason::user_shutdown);
    self->wait_for(actor_);
    actor_ = nullptr;
  }

  ~federation_impl() override { stop(); }

  void local_change(const detail::committed_change& c, const key_policy& policy) override {
    change out;
    out.what =
        c.what == detail::committed_change::kind::erase ? change::op::erase : change::op::put;
    out.key.assign(c.key);
    if (out.what == change::op::put) out.value.assign(c.value);
    out.ver = c.ver;
    out.expires_at_ms = c.expires_at_ms;
    out.origin = sh_->opts.region;
    out.path = {sh_->opts.region};
    out.policy = merge_policy_of(st_, out.key, policy);
    if (out.what == change::op::erase) sh_->tombs.record(out.key, out.ver);
    std::lock_guard<std::mutex> g{sh_->inbox_mtx};
    // Bounded: the actor drains it every tick; a writer outrunning it drops (counted,
    // repaired by the next anti-entropy pass), never blocks and never grows without bound.
    if (sh_->inbox.size() >= sh_->opts.queue_limit) {
      ++sh_->inbox_dropped;
      sh_->inbox_repair.insert(out.key);
      return;
    }
    sh_->inbox.push_back(std::move(out));
  }

  void repair_now() override {
    if (actor_) caf::anon_send(actor_, fed_now_atom::value);
  }

  std::string json() const override { return status_json(*sh_); }

  // One producer per region linked over Kafka, to PREFIX<self>.<region>; their delivery
  // reports go to the actor as it runs (kafka_ack_route).
  result<void> open_producers() {
    const auto& o = sh_->opts;
    if (o.kafka_brokers.empty()) return {};
    auto format = bus::parse_kafka_format(o.kafka_format);
    if (!format) return format.err();
    sh_->kafka_format = *format;
    sh_->kafka_limits.max_key_bytes = sh_->limits.max_key;
    sh_->kafka_limits.max_value_bytes = sh_->limits.max_value;
    for (const auto& spec : o.links) {
      if (!over_kafka(spec)) continue;
      auto region = spec.substr(0, spec.find('='));
      bool known = false;
      for (auto& [r, p] : sh_->producers) known = known || r == region;
      if (known) continue;
      bus::kafka_producer_config pc;
      pc.brokers = o.kafka_brokers;
      pc.topic = kafka_topic(o.kafka_topic_prefix, o.region, region);
      pc.max_in_flight = std::max<std::size_t>(o.batch_size, 1);
      pc.properties = o.kafka_properties;
      auto index = static_cast<std::uint64_t>(sh_->producers.size());
      auto route = sh_->acks;
      auto p = bus::kafka_producer::open(
          std::move(pc), [route, index](std::string_view, const result<void>& outcome) {
            route->send(index, static_cast<bool>(outcome));
          });
      if (!p) return p.err();
      sh_->producers.emplace_back(region, std::move(*p));
    }
    return {};
  }

  // Every node of the region consumes the topics of the regions linked to it over Kafka,
  // in one consumer group: each record is applied by one member (through the actor, as a
  // batch over CAF would be), its offset committed only after that, and a member that
  // dies leaves its partitions, uncommitted records included, to the others.
  result<void> open_consumer() {
    const auto& o = sh_->opts;
    if (sh_->producers.empty()) return {};
    bus::kafka_consumer_config kc;
    kc.brokers = o.kafka_brokers;
    kc.group = o.kafka_group.empty() ? "warp-fed-" + o.region : o.kafka_group;
    std::map<std::string, std::string> sender_of;  // topic -> region
    for (auto& [region, p] : sh_->producers) {
      auto topic = kafka_topic(o.kafka_topic_prefix, region, o.region);
      kc.topics.push_back(topic);
      sender_of.emplace(topic, region);
    }
    // A member killed hands its partitions over after the session timeout (librdkafka's
    // default is 45 s); given properties override these.
    kc.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
    kc.properties.insert(kc.properties.end(), o.kafka_properties.begin(), o.kafka_properties.end());
    sh_->kafka_group = kc.group;
    sh_->kafka_topics_in = kc.topics;
    auto* sys = st_.system;
    auto actor = actor_;
    auto shp = sh_;
    // The consumer's thread asks the actor through its own blocking actor (made there), one
    // batch per sending region and poll: a request per record would cap a link at a few
    // thousand changes a second (docs/federation.md, "Benchmark").
    auto asker = std::make_shared<std::unique_ptr<caf::scoped_actor>>();
    auto ask = [sys, actor, asker](std::string frame) -> result<void> {
      if (!*asker) *asker = std::make_unique<caf::scoped_actor>(*sys);
      result<void> out{errc::timeout, "federation: no answer from the federation actor"};
      (**asker)
          ->request(actor, std::chrono::seconds{5}, fed_batch_atom::value, std::move(frame))
          .receive([&](const std::string&) { out = {}; },
                   [&](caf::error& err) {
                     // Refused as malformed (invalid_argument): re-reading cannot help.
                     if (err == caf::sec::invalid_argument)
                       out = {};
                     else
                       out = error{errc::unreachable, "federation apply: " + sys->render(err)};
                   });
      return out;
    };
    auto apply = [shp, sender_of = std::move(sender_of),
                  ask](std::span<const bus::kafka_record> records) -> result<void> {
      auto malformed = [&](const bus::kafka_record& r, const std::string& why) {
        {
          std::lock_guard<std::mutex> g{shp->stats_mtx};
          ++shp->malformed;
        }
        // Never applies: skipped, its offset committed with the batch.
        detail::log()->warn("federation: {}[{}]@{} skipped: {}", r.topic, r.partition, r.offset,
                            why);
      };
      // One batch per sending region, in record order (per key order holds: a key's
      // records share a partition), sent on before it outgrows a frame.
      std::map<std::string, batch> by_sender;
      std::map<std::string, std::size_t> bytes_of;
      auto flush = [&](const std::string& sender) -> result<void> {
        auto& b = by_sender[sender];
        if (b.changes.empty()) return {};
        auto frame = encode(b, shp->limits);
        b.changes.clear();
        bytes_of[sender] = 0;
        // Each change fit a frame alone (decoded within the same limits), so a refusal
        // here is a bug, not a stranger's input: the batch is retried, never half skipped.
        if (!frame) return frame.err();
        return ask(std::move(*frame));
      };
      for (const auto& r : records) {
        auto k = bus::decode_kafka(r.payload, sniff_format(r.payload), shp->kafka_limits);
        if (!k) {
          malformed(r, k.err().message());
          continue;
        }
        auto c = from_kafka(std::move(*k));
        if (!c) {
          malformed(r, c.err().message());
          continue;
        }
        auto it = sender_of.find(std::string{r.topic});
        auto sender = it != sender_of.end() ? it->second : c->origin;
        auto size = c->key.size() + c->value.size() + 256;
        if (by_sender[sender].changes.size() >= shp->limits.max_changes ||
            bytes_of[sender] + size > shp->limits.max_frame_bytes / 2)
          if (auto ok = flush(sender); !ok) return ok;
        auto& b = by_sender[sender];
        b.sender = sender;
        b.changes.push_back(std::move(*c));
        bytes_of[sender] += size;
      }
      for (const auto& [sender, b] : by_sender)
        if (auto ok = flush(sender); !ok) return ok;
      return {};
    };
    auto c = bus::kafka_consumer::open_batched(std::move(kc), std::move(apply));
    if (!c) return c.err();
    consumer_ = std::move(*c);
    sh_->consumer.store(&consumer_->counters(), std::memory_order_release);
    return {};
  }

  std::string metrics() const override {
    std::string out;
    auto label = [](const std::string& v) {
      std::string s;
      for (char c : v) {
        if (c == '\\' || c == '"') s.push_back('\\');
        s.push_back(c);
      }
      return s;
    };
    std::lock_guard<std::mutex> g{sh_->stats_mtx};
    auto family = [&](const char* name, const char* type, const char* help) {
      out += std::string{"# HELP "} + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto per_link = [&](const char* name, const char* type, const char* help, auto get) {
      family(name, type, help);
      // Appended piece by piece: a chain of operator+ on temporaries here trips GCC 12's
      // -Warray-bounds (a false positive) once inlined.
      for (const auto& l : sh_->links) {
        out.append(name).append("{region=\"").append(label(l.region)).append("\"} ");
        out.append(get(l)).append("\n");
      }
    };
    auto num = [](auto v) { return std::to_string(v); };
    per_link("warp_federation_link_up", "gauge", "1 when a gateway of the region is connected",
             [&](auto& l) { return num(l.gateway.empty() ? 0 : 1); });
    per_link("warp_federation_shipped_total", "counter",
             "Changes acknowledged (applied) by the linked region",
             [&](auto& l) { return num(l.n.shipped); });
    per_link("warp_federation_dropped_total", "counter",
             "Changes a full queue dropped (marked for anti-entropy repair)",
             [&](auto& l) { return num(l.n.dropped); });
    per_link("warp_federation_resent_batches_total", "counter",
             "Batches sent again after a failure or a missing acknowledgement",
             [&](auto& l) { return num(l.n.resent); });
    per_link("warp_federation_repaired_total", "counter",
             "Changes re-sent by anti-entropy (buckets whose digests differed)",
             [&](auto& l) { return num(l.repaired); });
    per_link("warp_federation_queue_depth", "gauge", "Changes queued or in flight",
             [&](auto& l) { return num(l.depth); });
    per_link("warp_federation_lag_seconds", "gauge", "Age of the oldest change queued or in flight",
             [&](auto& l) { return std::to_string(l.lag); });
    auto per_sender = [&](const char* name, const char* help, auto get) {
      family(name, "counter", help);
      for (const auto& [r, n] : sh_->in) {
        // Appended piece by piece: GCC 12 misreads `std::string{name} + ...` (-Warray-bounds).
        out += name;
        out += "{from=\"" + label(r) + "\"} " + num(get(n)) + "\n";
      }
    };
    per_sender("warp_federation_applied_total", "Changes from the region applied here",
               [](auto& n) { return n.applied; });
    per_sender("warp_federation_stale_total",
               "Changes from the region not applied: already seen, or older than the local value",
               [](auto& n) { return n.stale; });
    per_sender("warp_federation_refused_total",
               "Changes from the region for keys not federated here or of an unknown policy",
               [](auto& n) { return n.refused; });
    per_sender("warp_federation_apply_errors_total",
               "Changes whose apply failed (storage); the batch is resent",
               [](auto& n) { return n.errors; });
    family("warp_federation_conflicts_total", "counter",
           "Incoming changes resolved in favour of a newer local value, by policy");
    out += "warp_federation_conflicts_total{policy=\"lww\"} " + num(sh_->conflicts_lww) + "\n";
    for (const auto& [p, k] : sh_->conflicts)
      if (p != merge::policy_lww)
        out += "warp_federation_conflicts_total{policy=\"" + label(p) + "\"} " + num(k) + "\n";
    family("warp_federation_unmergeable_total", "counter",
           "Changes refused because their merge failed: policy not registered here, or a "
           "state that does not decode");
    out += "warp_federation_unmergeable_total " + num(sh_->unknown_policy) + "\n";
    family("warp_federation_malformed_total", "counter", "Federation frames refused");
    out += "warp_federation_malformed_total " + num(sh_->malformed) + "\n";
    family("warp_federation_rederived_total", "counter",
           "Changes of departed members of this region re-shipped by this node as its gateway");
    out += "warp_federation_rederived_total " + num(sh_->rederived) + "\n";
    family("warp_federation_gateway", "gauge", "1 when this node is its region's gateway");
    out += "warp_federation_gateway " + num(sh_->gateway == st_.name ? 1 : 0) + "\n";
    if (!sh_->producers.empty()) {
      // The producers of every Kafka link summed (one family each, whatever the links).
      bus::kafka_counters sum;
      for (auto& [r, p] : sh_->producers) {
        const auto& c = p->counters();
        auto add = [](std::atomic<std::uint64_t>& to, const std::atomic<std::uint64_t>& from) {
          to.fetch_add(from.load(std::memory_order_relaxed), std::memory_order_relaxed);
        };
        add(sum.produced, c.produced);
        add(sum.delivered, c.delivered);
        add(sum.failed, c.failed);
        add(sum.rejected, c.rejected);
        add(sum.broker_errors, c.broker_errors);
        sum.in_flight.fetch_add(c.in_flight.load(std::memory_order_relaxed));
      }
      out += bus::prometheus_text(sum, bus::kafka_side::producer, "warp_federation_kafka_producer",
                                  "");
      if (const auto* c = sh_->consumer.load(std::memory_order_acquire))
        out += bus::prometheus_text(*c, bus::kafka_side::consumer, "warp_federation_kafka_consumer",
                                    "");
    }
    return out;
  }

 private:
  detail::node_state& st_;
  std::shared_ptr<shared_state> sh_;
  caf::actor actor_;
  std::unique_ptr<bus::kafka_consumer> consumer_;
};

}  // namespace

result<std::string> fetch_federation_json(caf::actor_system& sys, const std::string& host,
                                          std::uint16_t port, std::chrono::milliseconds timeout) {
  auto published = bus::connect_to_node(sys, host, port, timeout);
  if (!published) return published.err();
  if (!*published) return error{errc::unsupported, "the node at " + host + " published no actor"};
  auto ptr = sys.middleman().remote_lookup(registry_name(), (*published)->node());
  if (!ptr)
    return error{errc::unsupported, "the node at " + host + " runs no federation (no --region)"};
  caf::scoped_actor self{sys};
  result<std::string> out{errc::timeout, "no answer"};
  self->request(caf::actor_cast<caf::actor>(ptr), timeout, fed_status_atom::value)
      .receive([&](std::string& json) { out = std::move(json); },
               [&](caf::error& err) {
                 out = error{errc::unreachable, sys.render(err)};
               });
  return out;
}

result<std::unique_ptr<node_federation>> start_federation(detail::node_state& st) {
  // The links were checked by node_config::validate (node::start runs it first).
  auto sh = std::make_shared<shared_state>();
  sh->st = &st;
  sh->opts = st.config.federation;
  sh->limits.max_key = st.config.limits.max_key_size;
  sh->limits.max_value = st.config.limits.max_value_size;
  sh->limits.max_frame_bytes = st.config.transport.max_message_size;
  auto f = std::make_unique<federation_impl>(st, sh);
  if (auto started = f->start(); !started) return started.err();
  detail::log()->info("federation: region {}, {} link(s)", sh->opts.region, sh->opts.links.size());
  return std::unique_ptr<node_federation>{std::move(f)};
}

}  // namespace warp::federation
