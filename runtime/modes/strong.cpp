#include "runtime/modes/strong.hpp"

#include <algorithm>
#include <random>
#include <set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "runtime/core/log.hpp"
#include "actors/quorum_actor.hpp"
#include "runtime/modes/node_state.hpp"

namespace warp::detail {

namespace {

using steady = std::chrono::steady_clock;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using warp::detail::log;

std::vector<std::string> member_list(const node_config& cfg, const std::string& self) {
  if (!cfg.strong.members.empty()) return cfg.strong.members;
  std::vector<std::string> out = cfg.peers;
  out.push_back(self);
  return out;
}

}  // namespace

// -- placement ----------------------------------------------------------------------------

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
  bool configured =
      !cfg.strong.members.empty() || cfg.default_policy.consistency == mode::strong_distributed;
  for (auto& spec : cfg.patterns)
    if (auto e = pattern_registry::parse_spec(spec);
        e && e->policy.consistency == mode::strong_distributed)
      configured = true;
  if (!configured) return false;
  if (!cfg.strong.members.empty()) return cfg.strong.members.size() >= 2;
  return !cfg.peers.empty();
}

strong_coordinator::strong_coordinator(node_state& st, std::string self_address)
    : st_(st),
      sys_(*st.system),
      opts_(st.config.strong),
      node_id_(st.id),
      incarnation_([] {
        std::random_device rd;
        return (static_cast<std::uint64_t>(rd()) << 32) | rd();
      }()),
      placement_(member_list(st.config, self_address), self_address,
                 st.config.strong.replication_factor, st.config.cluster.ranges),
      replica_(placement_.ranges()) {
  limits_.max_key_bytes = std::max<std::size_t>(st.config.limits.max_key_size, 1);
  limits_.max_value_bytes = std::max<std::size_t>(st.config.limits.max_value_size, 1);
  limits_.max_message_bytes =
      std::max<std::size_t>(limits_.max_message_bytes, st.config.limits.max_value_size * 2 + 65536);
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
  actors::quorum_setup setup;
  setup.placement = &placement_;
  setup.replica = &replica_;
  setup.incarnation = incarnation_;
  setup.limits = limits_;
  setup.timeout = opts_.timeout;
  auto& clock = st_.clock;
  auto node_id = node_id_;
  setup.pick_version = [&clock, node_id](const version& highest) {
    // A version above every one a majority holds: HLC past the highest, our node id. A
    // reading too far in the future (a bad clock elsewhere) is not observed (the clock's
    // own bound), only exceeded.
    clock.observe(highest.hlc);
    return version{std::max(clock.next(), highest.hlc + 1), node_id};
  };
  setup.clock_now = [&clock] { return clock.last(); };
  setup.status_extra = [this] { return progress_json(); };
  actor_ = actors::spawn_quorum_actor(sys_, std::move(setup));
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
  maint_cv_.notify_all();
  // The actor fails every call in flight (the maintenance thread's too) and quits; calls
  // sent after that are dropped, and their completions report shutting_down.
  if (actor_) actors::stop_quorum_actor(sys_, actor_);
  if (maint_.joinable()) maint_.join();
}

// -- operations: commands to the quorum actor ---------------------------------------------------

void strong_coordinator::submit(std::string_view key, std::optional<strong_record> write,
                                actors::completion<strong_record> done) {
  if (!actor_) return done(error{errc::shutting_down, "the strong mode is not started"});
  if (write)
    caf::anon_send(actor_,
                   actors::strong_write_cmd{std::string{key}, std::move(*write), std::move(done)});
  else
    caf::anon_send(actor_, actors::strong_read_cmd{std::string{key}, std::move(done)});
}

result<strong_record> strong_coordinator::run_blocking(std::string_view key,
                                                       std::optional<strong_record> write) {
  auto p = std::make_shared<std::promise<result<strong_record>>>();
  auto f = p->get_future();
  submit(key, std::move(write), actors::completion<strong_record>{[p](result<strong_record> r) {
           p->set_value(std::move(r));
         }});
  // The actor decides every operation by its deadline (or fails it when it stops, or the
  // dropped command's completion does): the bound below is only a backstop.
  if (f.wait_for(opts_.timeout * 2 + std::chrono::seconds{5}) != std::future_status::ready)
    return error{write ? errc::unknown_outcome : errc::timeout,
                 "the quorum actor did not answer in time"};
  return f.get();
}

namespace {

result<buffer> read_outcome(result<strong_record> rec) {
  if (!rec) return rec.err();
  if (rec->absent(wall_ms())) return error{errc::not_found};
  return make_buffer(std::move(rec->value));
}

result<void> write_outcome(const result<strong_record>& rec) {
  if (!rec) return rec.err();
  return {};
}

strong_record value_record(std::string_view value, std::int64_t expires_at_ms) {
  strong_record rec;
  rec.value.assign(value);
  rec.expires_at_ms = expires_at_ms;
  return rec;
}

strong_record tombstone_record() {
  strong_record rec;
  rec.tombstone = true;
  return rec;
}

}  // namespace

void strong_coordinator::get_async(std::string_view key, get_callback done) {
  submit(key, std::nullopt,
         actors::completion<strong_record>{[done = std::move(done)](result<strong_record> r) {
           done(read_outcome(std::move(r)));
         }});
}

void strong_coordinator::set_async(std::string_view key, std::string_view value,
                                   std::int64_t expires_at_ms, write_callback done) {
  submit(key, value_record(value, expires_at_ms),
         actors::completion<strong_record>{
             [done = std::move(done)](result<strong_record> r) { done(write_outcome(r)); }});
}

void strong_coordinator::remove_async(std::string_view key, write_callback done) {
  submit(key, tombstone_record(),
         actors::completion<strong_record>{
             [done = std::move(done)](result<strong_record> r) { done(write_outcome(r)); }});
}

result<buffer> strong_coordinator::get(std::string_view key) {
  return read_outcome(run_blocking(key, std::nullopt));
}

result<void> strong_coordinator::set(std::string_view key, std::string_view value,
                               std::int64_t expires_at_ms) {
  return write_outcome(run_blocking(key, value_record(value, expires_at_ms)));
}

result<void> strong_coordinator::remove(std::string_view key) {
  return write_outcome(run_blocking(key, tombstone_record()));
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
      if (auto err = st_.config.limits.check_value(decision->value); !err) return err.err();
      if (auto err = set(key, decision->value, decision->expires_at_ms); !err) return err.err();
      return decision;
    }
    case mutation::kind::erase:
      if (auto err = remove(key); !err) return err.err();
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
  if (auto err = set(key, **loaded, 0); !err) return err.err();
  return make_buffer(std::move(**loaded));
}

// -- recovery and anti-entropy ----------------------------------------------------------------

bool strong_coordinator::recovered() const {
  for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
    if (!replica_.ready(r)) return false;
  return true;
}

strong_coordinator::inflight strong_coordinator::begin_phase(std::uint32_t range,
                                                             const std::vector<std::size_t>& slots,
                                                             const wire::request& req,
                                                             std::size_t need,
                                                             steady::time_point deadline) {
  auto p = std::make_shared<std::promise<result<actors::fanout_result>>>();
  auto f = p->get_future();
  actors::strong_fanout_cmd cmd;
  cmd.range = range;
  cmd.slots = slots;
  cmd.req = req;
  cmd.need = need;
  cmd.timeout =
      std::max(std::chrono::milliseconds{1},
               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()));
  cmd.done = actors::completion<actors::fanout_result>{
      [p](result<actors::fanout_result> r) { p->set_value(std::move(r)); }};
  if (actor_)
    caf::anon_send(actor_, std::move(cmd));
  else
    cmd.done(error{errc::shutting_down, "not started"});
  return f;
}

strong_coordinator::phase strong_coordinator::end_phase(inflight& f) {
  phase out;
  out.replies.resize(placement_.replication_factor());
  // The actor completes every fan-out by its deadline (or when it stops); this thread is
  // the maintenance thread, never a scheduler thread.
  auto r = f.get();
  if (!r) return out;
  out.ok = r->ok;
  for (std::size_t s = 0; s < r->replies.size() && s < out.replies.size(); ++s)
    out.replies[s] = std::move(r->replies[s]);
  return out;
}

strong_coordinator::phase strong_coordinator::run_phase(std::uint32_t range,
                                                        const std::vector<std::size_t>& slots,
                                                        const wire::request& req, std::size_t need,
                                                        steady::time_point deadline) {
  auto f = begin_phase(range, slots, req, need, deadline);
  return end_phase(f);
}

bool strong_coordinator::pull_range(std::uint32_t range, std::size_t slot,
                                    steady::time_point deadline, std::uint64_t& merged) {
  wire::request req;
  req.what = wire::op::dump;
  req.range = range;
  req.first = true;
  for (;;) {
    auto ph = run_phase(range, {slot}, req, 1, deadline);
    auto& rep = ph.replies[slot];
    if (!rep || rep->code != wire::status::ok) return false;
    for (auto& [k, rec] : rep->records) merged += replica_.apply(range, k, rec);
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

void strong_coordinator::recover_ranges(actors::strong_count_cmd& counts) {
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
  // Wait for every other replica, or for enough ready ones for rule 1.
  for (auto r : todo) {
    probe.range = r;
    calls.push_back(begin_phase(r, other_slots(r), probe, need, deadline));
  }
  std::set<std::size_t> silent;  // member indexes the pass could not use
  auto& members = placement_.members();
  for (std::size_t i = 0; i < todo.size(); ++i) {  // end_phase returns at once when stopping
    auto range = todo[i];
    auto& replicas = placement_.replicas(range);
    auto others = other_slots(range);
    auto ph = end_phase(calls[i]);
    if (stopping()) continue;  // still collect the other futures
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
        if (pull_range(range, s, steady::now() + opts_.timeout, counts.records_merged))
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
        ++counts.ranges_bootstrapped;
      else
        ++counts.ranges_recovered;
    } else {
      for (auto s : unusable) silent.insert(replicas[s]);
    }
  }
  std::lock_guard<std::mutex> g{progress_mtx_};
  waiting_on_.clear();
  for (auto m : silent) waiting_on_.push_back(members[m]);
}

void strong_coordinator::anti_entropy_round(actors::strong_count_cmd& counts) {
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
    calls.push_back(begin_phase(r, other_slots(r), req, other_slots(r).size(), deadline));
  }
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    auto range = ranges[i];
    auto others = other_slots(range);
    auto ph = end_phase(calls[i]);
    if (stopping()) continue;  // still collect the other futures
    auto mine = replica_.digest(range);
    for (auto s : others) {
      auto& rep = ph.replies[s];
      if (!rep || rep->code != wire::status::ok || rep->digest == mine) continue;
      // Differ: pull theirs (they pull ours in their own round); the merge keeps the newest.
      ++counts.anti_entropy_pulls;
      pull_range(range, s, steady::now() + opts_.timeout, counts.records_merged);
    }
  }
}

void strong_coordinator::maintenance() {
  std::mt19937_64 rng{incarnation_};
  auto next_ae = steady::now() + opts_.anti_entropy_interval;
  auto next_report = steady::now() + std::chrono::seconds{5};
  bool caught_up = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk{maint_mtx_};
      maint_cv_.wait_for(lk, std::chrono::milliseconds{100}, [&] { return stopped_; });
      if (stopped_) return;
    }
    actors::strong_count_cmd counts;
    // Catch up ranges this replica does not hold yet (after a start or restart).
    if (!caught_up) {
      recover_ranges(counts);
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
      ++counts.anti_entropy_rounds;
      anti_entropy_round(counts);
      // Jitter, so replicas do not all compare at the same instant.
      auto base = opts_.anti_entropy_interval.count();
      next_ae = steady::now() +
                std::chrono::milliseconds{
                    base / 2 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(base))};
    }
    if (counts.ranges_recovered + counts.ranges_bootstrapped + counts.anti_entropy_rounds +
            counts.anti_entropy_pulls + counts.records_merged >
        0)
      caf::anon_send(actor_, counts);
  }
}

bool strong_coordinator::stopping() const {
  std::lock_guard<std::mutex> g{maint_mtx_};
  return stopped_;
}

std::string strong_coordinator::progress_json() const {
  nlohmann::json j;
  std::lock_guard<std::mutex> g{progress_mtx_};
  j["catch_up_ms"] = catch_up_ms_;
  j["waiting_on"] = waiting_on_;
  return j.dump();
}

}  // namespace warp::detail
