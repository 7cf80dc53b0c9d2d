#include "runtime/modes/strong.hpp"

#include <algorithm>
#include <random>
#include <set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/quorum_actor.hpp"
#include "runtime/node/node_impl.hpp"

namespace warp::detail {

namespace {

using steady = std::chrono::steady_clock;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<spdlog::logger> log() {
  if (auto l = spdlog::get("warp")) return l;
  return spdlog::default_logger();
}

std::pair<std::string, std::uint16_t> split_address(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) return {addr, 0};
  std::string host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  try {
    port = static_cast<unsigned>(std::stoul(addr.substr(colon + 1)));
  } catch (...) {
    port = 0;
  }
  return {host, static_cast<std::uint16_t>(port > 65535 ? 0 : port)};
}

std::vector<std::string> member_list(const node_config& cfg, const std::string& self) {
  if (!cfg.strong.members.empty()) return cfg.strong.members;
  std::vector<std::string> out = cfg.peers;
  out.push_back(self);
  return out;
}

const char* no_quorum_text = "no quorum of ready replicas answered in time";

}  // namespace

// -- placement ----------------------------------------------------------------------------

strong_placement::strong_placement(std::vector<std::string> members, const std::string& self,
                                   std::size_t replication_factor, std::size_t ranges)
    : map_(ranges == 0 ? 1 : ranges) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  members_ = std::move(members);
  for (std::size_t i = 0; i < members_.size(); ++i)
    if (members_[i] == self) self_ = i;
  rf_ = std::clamp<std::size_t>(replication_factor, 1, std::max<std::size_t>(1, members_.size()));
  rf_ = std::min<std::size_t>(rf_, 15);
  // Rendezvous ids from the addresses: stable across restarts of a member. A (very
  // unlikely) 32-bit collision is resolved by rehashing with the index, deterministically.
  std::vector<std::uint32_t> ids;
  std::unordered_map<std::uint32_t, std::size_t> index_of;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    auto id = static_cast<std::uint32_t>(stable_hash(members_[i]));
    for (std::size_t salt = 1; id == 0 || index_of.count(id); ++salt)
      id = static_cast<std::uint32_t>(stable_hash(members_[i] + "#" + std::to_string(salt)));
    ids.push_back(id);
    index_of[id] = i;
  }
  map_.assign(ids);
  replicas_.resize(map_.ranges());
  for (std::uint32_t r = 0; r < map_.ranges(); ++r)
    for (auto id : map_.replicas(r, rf_)) replicas_[r].push_back(index_of.at(id));
  std::string fp;
  for (auto& m : members_) fp += m + ",";
  fp += "|rf=" + std::to_string(rf_) + "|ranges=" + std::to_string(map_.ranges());
  fingerprint_ = stable_hash(fp);
}

bool strong_placement::is_replica(std::uint32_t range) const {
  if (self_ == npos) return false;
  auto& r = replicas_[range];
  return std::find(r.begin(), r.end(), self_) != r.end();
}

// -- coordinator ----------------------------------------------------------------------------

bool strong_coordinator::clustered(const node_config& cfg) {
  return !cfg.listen.empty() && (!cfg.peers.empty() || cfg.strong.members.size() >= 2 ||
                                 !cfg.cluster.discovery_dns.empty());
}

bool strong_coordinator::wanted(const node_config& cfg) {
  if (cfg.listen.empty()) return false;
  // Catch-up and anti-entropy run in the background and cost every node CPU and messages:
  // only a cluster configured with strong_distributed keys (a pattern, the default mode, or
  // an explicit member list) pays for them. Such keys cannot be added at runtime
  // (node::register_pattern refuses): every node's coordinator must run from the start.
  bool configured = !cfg.strong.members.empty() ||
                    cfg.default_policy.consistency == mode::strong_distributed;
  for (auto& spec : cfg.patterns)
    if (auto e = pattern_registry::parse_spec(spec);
        e && e->policy.consistency == mode::strong_distributed)
      configured = true;
  if (!configured) return false;
  if (!cfg.strong.members.empty()) return cfg.strong.members.size() >= 2;
  return !cfg.peers.empty();
}

strong_coordinator::strong_coordinator(node::impl& st, std::string self_address)
    : st_(st),
      sys_(*st.system),
      opts_(st.config.strong),
      node_id_(st.id),
      placement_(member_list(st.config, self_address), self_address,
                 st.config.strong.replication_factor, st.config.cluster.ranges),
      replica_(placement_.ranges()) {
  std::random_device rd;
  ctx_.fingerprint = placement_.fingerprint();
  ctx_.incarnation = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  ctx_.limits.max_key_bytes = std::max<std::size_t>(st.config.limits.max_key_size, 1);
  ctx_.limits.max_value_bytes = std::max<std::size_t>(st.config.limits.max_value_size, 1);
  ctx_.limits.max_message_bytes = std::max<std::size_t>(
      ctx_.limits.max_message_bytes, st.config.limits.max_value_size * 2 + 65536);
  ctx_.replica = &replica_;
  ctx_.clock_now = [this] { return st_.clock.last(); };
  ctx_.status_json = [this] { return status_json(); };
  for (std::size_t i = 0; i < placement_.members().size(); ++i) {
    if (i == placement_.self_index()) continue;
    auto p = std::make_unique<quorum_peer>();
    p->address = placement_.members()[i];
    auto [host, port] = split_address(p->address);
    p->host = host;
    p->port = port;
    ctx_.peers.push_back(std::move(p));
  }
  // Ranges this node does not replicate are never asked; mark them ready so status and
  // serve() answer plainly.
  for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
    if (!placement_.is_replica(r)) replica_.set_ready(r, true);
  if (placement_.self_index() == strong_placement::npos)
    log()->warn("strong: this node ({}) is not in the member list: it coordinates only",
                self_address);
}

strong_coordinator::~strong_coordinator() {
  stop();
}

void strong_coordinator::start() {
  if (started_) return;
  started_ = true;
  actor_ = actors::spawn_quorum_actor(sys_, ctx_);
  ctx_.actor = actor_;
  started_at_ = steady::now();
  maint_ = std::thread([this] { maintenance(); });
  log()->info("strong: {} members, replication factor {}, {} ranges replicated here",
              placement_.members().size(), placement_.replication_factor(), [&] {
                std::size_t n = 0;
                for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
                  n += placement_.is_replica(r);
                return n;
              }());
}

void strong_coordinator::stop() {
  {
    std::lock_guard<std::mutex> g{maint_mtx_};
    if (stopped_) return;
    stopped_ = true;
  }
  ctx_.stopping.store(true);
  maint_cv_.notify_all();
  // Wake every waiting call: they see `stopping` and fail.
  {
    std::lock_guard<std::mutex> g{ctx_.pending_mtx};
    for (auto& [id, entry] : ctx_.pending) {
      std::lock_guard<std::mutex> cg{entry.first->mtx};
      entry.first->cv.notify_all();
    }
  }
  if (maint_.joinable()) maint_.join();
  if (actor_) {
    actors::stop_quorum_actor(sys_, actor_);
    actor_ = nullptr;
  }
}

strong_coordinator::inflight strong_coordinator::begin_phase(std::uint32_t range,
                                                             const std::vector<std::size_t>& slots,
                                                             const wire::request& req) {
  auto& replicas = placement_.replicas(range);
  inflight f;
  f.call = std::make_shared<pending_call>();
  f.call->replies.resize(replicas.size());
  f.slots = slots.size();
  auto call_id = ctx_.next_call.fetch_add(1, std::memory_order_relaxed);
  std::optional<std::size_t> local_slot;
  // Register first, then send: a reply can never arrive before its entry exists.
  {
    std::lock_guard<std::mutex> g{ctx_.pending_mtx};
    for (auto s : slots) {
      if (replicas[s] == placement_.self_index()) {
        local_slot = s;
        continue;
      }
      auto id = (call_id << 4) | s;
      ctx_.pending.emplace(id, std::pair{f.call, static_cast<std::uint32_t>(s)});
      f.ids.push_back(id);
    }
  }
  for (auto s : slots) {
    auto m = replicas[s];
    if (m == placement_.self_index()) continue;
    auto peer = m < placement_.self_index() || placement_.self_index() == strong_placement::npos
                    ? m
                    : m - 1;
    wire::request r = req;
    r.id = (call_id << 4) | s;
    if (!ctx_.peers[peer]->connected.load(std::memory_order_acquire)) {
      wire::reply rep;
      rep.id = r.id;
      rep.code = wire::status::unreachable;
      ctx_.deliver(std::move(rep));
      continue;
    }
    ctx_.enqueue(peer, std::move(r));
  }
  if (local_slot) {
    wire::request r = req;
    r.id = (call_id << 4) | *local_slot;
    auto rep = serve(replica_, r);
    std::lock_guard<std::mutex> g{f.call->mtx};
    f.call->replies[*local_slot] = std::move(rep);
    ++f.call->answered;
  }
  return f;
}

strong_coordinator::phase strong_coordinator::end_phase(inflight& f, std::size_t need,
                                                        steady::time_point deadline) {
  phase out;
  {
    std::unique_lock<std::mutex> lk{f.call->mtx};
    auto count_ok = [&] {
      std::size_t ok = 0;
      for (auto& r : f.call->replies) ok += r && r->code == wire::status::ok;
      return ok;
    };
    f.call->cv.wait_until(lk, deadline, [&] {
      return ctx_.stopping.load(std::memory_order_relaxed) || count_ok() >= need ||
             f.call->answered >= f.slots;
    });
    out.replies = f.call->replies;
    out.ok = count_ok();
  }
  {
    std::lock_guard<std::mutex> g{ctx_.pending_mtx};
    for (auto id : f.ids) ctx_.pending.erase(id);
  }
  f.ids.clear();
  for (auto& r : out.replies)
    if (r && r->code == wire::status::mismatch && out.ok < need)
      log()->warn(
          "strong: a replica has a different member list / replication factor; "
          "every node must be configured with the same members");
  return out;
}

strong_coordinator::phase strong_coordinator::run_phase(std::uint32_t range,
                                                        const std::vector<std::size_t>& slots,
                                                        const wire::request& req, std::size_t need,
                                                        steady::time_point deadline) {
  auto f = begin_phase(range, slots, req);
  return end_phase(f, need, deadline);
}

result<strong_record> strong_coordinator::read_quorum(std::string_view key,
                                                      steady::time_point deadline) {
  auto range = placement_.range_of(key);
  auto rf = placement_.replication_factor();
  auto maj = placement_.majority();
  std::vector<std::size_t> all(rf);
  for (std::size_t i = 0; i < rf; ++i) all[i] = i;
  wire::request req;
  req.what = wire::op::read;
  req.range = range;
  req.key.assign(key);
  auto p1 = run_phase(range, all, req, maj, deadline);
  if (ctx_.stopping.load()) return error{errc::shutting_down, "node is stopping"};
  if (p1.ok < maj) {
    ctx_.counters.quorum_timeouts.fetch_add(1, std::memory_order_relaxed);
    return error{errc::timeout, std::string{no_quorum_text} + " (" + std::to_string(p1.ok) +
                                    " of " + std::to_string(maj) + " needed)"};
  }
  strong_record newest;
  for (auto& r : p1.replies)
    if (r && r->code == wire::status::ok && r->rec && newest.ver < r->rec->ver) newest = *r->rec;
  // Which ok replies already hold the newest version: they count toward the write-back.
  std::size_t have = 0;
  std::vector<std::size_t> lacking;
  for (std::size_t s = 0; s < rf; ++s) {
    auto& r = p1.replies[s];
    bool holds = r && r->code == wire::status::ok && r->rec && r->rec->ver == newest.ver;
    if (holds)
      ++have;
    else
      lacking.push_back(s);
  }
  if (have >= maj || newest.ver.empty()) return newest;
  // Replicas disagree: make the newest value stable at a majority before returning it, so
  // no later read can return an older one (the ABD read's second phase).
  ctx_.counters.read_repairs.fetch_add(1, std::memory_order_relaxed);
  wire::request wb;
  wb.what = wire::op::store;
  wb.range = range;
  wb.key.assign(key);
  wb.rec = newest;
  auto p2 = run_phase(range, lacking, wb, maj - have, deadline);
  if (ctx_.stopping.load()) return error{errc::shutting_down, "node is stopping"};
  if (p2.ok + have < maj) {
    ctx_.counters.quorum_timeouts.fetch_add(1, std::memory_order_relaxed);
    return error{errc::timeout, std::string{no_quorum_text} + " (read repair)"};
  }
  return newest;
}

status strong_coordinator::write_quorum(std::string_view key, strong_record rec) {
  auto deadline = steady::now() + opts_.timeout;
  auto range = placement_.range_of(key);
  auto rf = placement_.replication_factor();
  auto maj = placement_.majority();
  std::vector<std::size_t> all(rf);
  for (std::size_t i = 0; i < rf; ++i) all[i] = i;
  // Phase 1: the highest version a majority holds.
  wire::request q;
  q.what = wire::op::read_version;
  q.range = range;
  q.key.assign(key);
  auto p1 = run_phase(range, all, q, maj, deadline);
  if (ctx_.stopping.load()) return error{errc::shutting_down, "node is stopping"};
  if (p1.ok < maj) {
    ctx_.counters.quorum_timeouts.fetch_add(1, std::memory_order_relaxed);
    return error{errc::timeout, std::string{no_quorum_text} + " (" + std::to_string(p1.ok) +
                                    " of " + std::to_string(maj) + " needed); nothing was written"};
  }
  version highest;
  for (auto& r : p1.replies)
    if (r && r->code == wire::status::ok && r->rec && highest < r->rec->ver) highest = r->rec->ver;
  // A version above every one a majority holds: HLC past the highest, our node id.
  st_.clock.observe(highest.hlc);
  auto hlc = std::max(st_.clock.next(), highest.hlc + 1);
  rec.ver = version{hlc, node_id_};
  // Phase 2: store it at a majority.
  wire::request w;
  w.what = wire::op::store;
  w.range = range;
  w.key.assign(key);
  w.rec = std::move(rec);
  auto p2 = run_phase(range, all, w, maj, deadline);
  if (p2.ok < maj) {
    ctx_.counters.unknown_outcomes.fetch_add(1, std::memory_order_relaxed);
    if (ctx_.stopping.load())
      return error{errc::unknown_outcome,
                   "node stopped during the write; it may or may not have been applied"};
    return error{errc::unknown_outcome,
                 "only " + std::to_string(p2.ok) + " of " + std::to_string(maj) +
                     " replicas acknowledged in time; the write may or may not have been applied"};
  }
  return {};
}

result<buffer> strong_coordinator::get(std::string_view key) {
  if (ctx_.stopping.load()) return error{errc::shutting_down, "node is stopping"};
  ctx_.counters.gets.fetch_add(1, std::memory_order_relaxed);
  auto rec = read_quorum(key, steady::now() + opts_.timeout);
  if (!rec) return rec.err();
  if (rec->absent(wall_ms())) return error{errc::not_found};
  return make_buffer(std::move(rec->value));
}

status strong_coordinator::set(std::string_view key, std::string_view value,
                               std::int64_t expires_at_ms) {
  if (ctx_.stopping.load()) return error{errc::shutting_down, "node is stopping"};
  ctx_.counters.sets.fetch_add(1, std::memory_order_relaxed);
  strong_record rec;
  rec.value.assign(value);
  rec.expires_at_ms = expires_at_ms;
  return write_quorum(key, std::move(rec));
}

status strong_coordinator::remove(std::string_view key) {
  if (ctx_.stopping.load()) return error{errc::shutting_down, "node is stopping"};
  ctx_.counters.deletes.fetch_add(1, std::memory_order_relaxed);
  strong_record rec;
  rec.tombstone = true;
  return write_quorum(key, std::move(rec));
}

result<mutation> strong_coordinator::write(
    std::string_view key, const std::function<result<mutation>(const buffer*, std::int64_t)>& fn,
    bool read_current) {
  if (read_current)
    return error{errc::unsupported,
                 "read-modify-write is not available for strong_distributed keys (quorum "
                 "registers offer linearizable get/set/delete only)"};
  auto decision = fn(nullptr, 0);
  if (!decision) return decision;
  switch (decision->what) {
    case mutation::kind::keep:
      return decision;
    case mutation::kind::put: {
      if (decision->value.size() > st_.config.limits.max_value_size)
        return error{errc::value_too_large, "value of " + std::to_string(decision->value.size()) +
                                                " bytes exceeds the limit of " +
                                                std::to_string(st_.config.limits.max_value_size)};
      if (auto err = set(key, decision->value, decision->expires_at_ms); !err.ok()) return err;
      return decision;
    }
    case mutation::kind::erase:
      if (auto err = remove(key); !err.ok()) return err;
      return decision;
  }
  return decision;
}

result<buffer> strong_coordinator::get_or_load(std::string_view key, const loader& load) {
  auto found = get(key);
  if (found || found.code() != errc::not_found) return found;
  auto loaded = load(key);
  if (!loaded) return loaded.err();
  if (!*loaded) return error{errc::not_found};
  if (auto err = set(key, **loaded, 0); !err.ok()) return err;
  return make_buffer(std::move(**loaded));
}

// -- recovery and anti-entropy ----------------------------------------------------------------

bool strong_coordinator::recovered() const {
  for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
    if (!replica_.ready(r)) return false;
  return true;
}

bool strong_coordinator::pull_range(std::uint32_t range, std::size_t slot,
                                    steady::time_point deadline) {
  wire::request req;
  req.what = wire::op::dump;
  req.range = range;
  req.first = true;
  for (;;) {
    auto ph = run_phase(range, {slot}, req, 1, deadline);
    auto& rep = ph.replies[slot];
    if (!rep || rep->code != wire::status::ok) return false;
    std::uint64_t merged = 0;
    for (auto& [k, rec] : rep->records) merged += replica_.apply(range, k, rec);
    ctx_.counters.records_merged.fetch_add(merged, std::memory_order_relaxed);
    if (!rep->more || rep->records.empty()) return true;
    req.first = false;
    req.key = rep->records.back().first;
  }
}

std::vector<std::size_t> strong_coordinator::other_slots(std::uint32_t range) const {
  auto& replicas = placement_.replicas(range);
  std::vector<std::size_t> others;
  for (std::size_t s = 0; s < replicas.size(); ++s)
    if (replicas[s] != placement_.self_index()) others.push_back(s);
  return others;
}

void strong_coordinator::recover_ranges() {
  std::vector<std::uint32_t> todo;
  for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
    if (placement_.is_replica(r) && !replica_.ready(r)) todo.push_back(r);
  if (todo.empty()) return;
  auto need = placement_.recovery_quorum();
  if (need == 0) {  // a single copy: nothing to copy from
    for (auto r : todo) replica_.set_ready(r, true);
    return;
  }
  // Probe every pending range's other replicas at once (a digest: a tiny reply whose status
  // says whether that replica is ready), and wait for all of them with ONE deadline. A
  // replica that is paused, partitioned or slow then costs one timeout per pass, not one
  // per range: ranges that do not need it catch up without waiting for it.
  auto deadline = steady::now() + std::max(opts_.timeout, std::chrono::milliseconds{500});
  wire::request probe;
  probe.what = wire::op::digest;
  std::vector<inflight> calls;
  calls.reserve(todo.size());
  for (auto r : todo) {
    probe.range = r;
    calls.push_back(begin_phase(r, other_slots(r), probe));
  }
  std::set<std::size_t> silent;  // member indexes the pass could not use
  auto& members = placement_.members();
  for (std::size_t i = 0; i < todo.size(); ++i) {  // end_phase returns at once when stopping
    auto range = todo[i];
    auto& replicas = placement_.replicas(range);
    auto others = other_slots(range);
    // Wait for every other replica, or for enough ready ones for rule 1.
    auto ph = end_phase(calls[i], need, deadline);
    if (ctx_.stopping.load()) continue;  // still drain the pending entries
    std::vector<std::size_t> ready_slots, unusable;
    std::size_t not_ready = 0;
    for (auto s : others) {
      auto& rep = ph.replies[s];
      if (rep && rep->code == wire::status::ok)
        ready_slots.push_back(s);
      else if (rep && rep->code == wire::status::not_ready)
        ++not_ready;
      else
        unusable.push_back(s);
    }
    bool census = ready_slots.size() + not_ready == others.size();
    // Copy the range completely from every replica that answered ready, if one of the
    // rules can hold with these answers (else try again next pass).
    std::size_t copied = 0;
    if (ready_slots.size() >= need || census)
      for (auto s : ready_slots) {
        if (pull_range(range, s, steady::now() + opts_.timeout))
          ++copied;
        else
          unusable.push_back(s);
      }
    // Ready when (1) a recovery quorum of ready replicas was copied completely, or (2)
    // every other replica answered, and every one of them that is ready was copied: then
    // this node holds everything any ready replica holds (docs/strong.md, "Crash
    // recovery"). (2) with no ready replica at all is the bootstrap of a fresh cluster.
    if (copied >= need || (census && copied == ready_slots.size())) {
      replica_.set_ready(range, true);
      if (copied == 0)
        ctx_.counters.ranges_bootstrapped.fetch_add(1, std::memory_order_relaxed);
      else
        ctx_.counters.ranges_recovered.fetch_add(1, std::memory_order_relaxed);
    } else {
      for (auto s : unusable) silent.insert(replicas[s]);
    }
  }
  std::lock_guard<std::mutex> g{progress_mtx_};
  waiting_on_.clear();
  for (auto m : silent) waiting_on_.push_back(members[m]);
}

void strong_coordinator::anti_entropy_round() {
  // Digests of every ready range from every other replica, all at once with one deadline
  // (a silent replica costs one timeout per round, not one per range); then pull the
  // ranges that differ.
  std::vector<std::uint32_t> ranges;
  for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
    if (placement_.is_replica(r) && replica_.ready(r) && !other_slots(r).empty())
      ranges.push_back(r);
  auto deadline = steady::now() + opts_.timeout;
  wire::request req;
  req.what = wire::op::digest;
  std::vector<inflight> calls;
  calls.reserve(ranges.size());
  for (auto r : ranges) {
    req.range = r;
    calls.push_back(begin_phase(r, other_slots(r), req));
  }
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    auto range = ranges[i];
    auto others = other_slots(range);
    auto ph = end_phase(calls[i], others.size(), deadline);
    if (ctx_.stopping.load()) continue;  // still drain the pending entries
    auto mine = replica_.digest(range);
    for (auto s : others) {
      auto& rep = ph.replies[s];
      if (!rep || rep->code != wire::status::ok || rep->digest == mine) continue;
      // Differ: pull theirs (they pull ours in their own round); the merge keeps the newest.
      ctx_.counters.anti_entropy_pulls.fetch_add(1, std::memory_order_relaxed);
      pull_range(range, s, steady::now() + opts_.timeout);
    }
  }
}

void strong_coordinator::maintenance() {
  std::mt19937_64 rng{ctx_.incarnation};
  auto next_ae = steady::now() + opts_.anti_entropy_interval;
  auto next_report = steady::now() + std::chrono::seconds{5};
  bool caught_up = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk{maint_mtx_};
      maint_cv_.wait_for(lk, std::chrono::milliseconds{100}, [&] { return stopped_; });
      if (stopped_) return;
    }
    // Catch up ranges this replica does not hold yet (after a start or restart).
    if (!caught_up) {
      recover_ranges();
      if (recovered()) {
        caught_up = true;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started_at_)
                      .count();
        {
          std::lock_guard<std::mutex> g{progress_mtx_};
          catch_up_ms_ = ms;
          waiting_on_.clear();
        }
        log()->info("strong: every replicated range caught up, {} ms after start", ms);
      } else if (steady::now() >= next_report) {
        next_report = steady::now() + std::chrono::seconds{5};
        std::string waiting;
        {
          std::lock_guard<std::mutex> g{progress_mtx_};
          for (auto& w : waiting_on_) waiting += (waiting.empty() ? "" : ", ") + w;
        }
        std::size_t replicated = 0, ready = 0;
        for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
          if (placement_.is_replica(r)) {
            ++replicated;
            ready += replica_.ready(r);
          }
        log()->warn(
            "strong: still catching up: {} of {} ranges ready; replicas not answering or "
            "not copied in the last pass: {}",
            ready, replicated, waiting.empty() ? "none (waiting for ready replicas)" : waiting);
      }
    }
    if (opts_.anti_entropy_interval.count() > 0 && steady::now() >= next_ae) {
      ctx_.counters.anti_entropy_rounds.fetch_add(1, std::memory_order_relaxed);
      anti_entropy_round();
      // Jitter, so replicas do not all compare at the same instant.
      auto base = opts_.anti_entropy_interval.count();
      next_ae = steady::now() +
                std::chrono::milliseconds{
                    base / 2 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(base))};
    }
  }
}

std::string strong_coordinator::status_json() const {
  nlohmann::json j;
  j["members"] = placement_.members();
  j["self"] = placement_.self_index() == strong_placement::npos
                  ? -1
                  : static_cast<std::int64_t>(placement_.self_index());
  j["replication_factor"] = placement_.replication_factor();
  j["ranges"] = placement_.ranges();
  std::size_t replicated = 0, ready = 0;
  for (std::uint32_t r = 0; r < placement_.ranges(); ++r) {
    if (!placement_.is_replica(r)) continue;
    ++replicated;
    ready += replica_.ready(r);
  }
  j["replicated_ranges"] = replicated;
  j["ready_ranges"] = ready;
  j["recovered"] = ready == replicated;
  j["keys"] = replica_.key_count();
  {
    std::lock_guard<std::mutex> g{progress_mtx_};
    j["catch_up_ms"] = catch_up_ms_;
    j["waiting_on"] = waiting_on_;
  }
  std::size_t connected = 0;
  for (auto& p : ctx_.peers) connected += p->connected.load();
  j["peers_connected"] = connected;
  auto& c = j["counters"];
#define WARP_JSON(name) c[#name] = ctx_.counters.name.load(std::memory_order_relaxed);
  WARP_STRONG_COUNTERS(WARP_JSON)
#undef WARP_JSON
  return j.dump();
}

}  // namespace warp::detail
