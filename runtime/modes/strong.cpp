#include "runtime/modes/strong.hpp"

#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "runtime/core/log.hpp"
#include "actors/quorum_actor.hpp"
#include "runtime/modes/node_state.hpp"

namespace warp::detail {

namespace {

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
                 st.config.strong.replication_factor, st.config.cluster.ranges) {
  limits_.max_key_bytes = std::max<std::size_t>(st.config.limits.max_key_size, 1);
  limits_.max_value_bytes = std::max<std::size_t>(st.config.limits.max_value_size, 1);
  limits_.max_message_bytes =
      std::max<std::size_t>(limits_.max_message_bytes, st.config.limits.max_value_size * 2 + 65536);
  if (opts_.engine == strong_engine::raft)
    raft_ = std::make_unique<strong_raft>(st, member_list(st.config, self_address), self_address);
  if (placement_.self_index() == strong_placement::npos)
    log()->warn("strong: this node ({}) is not in the member list: it coordinates only",
                self_address);
}

strong_coordinator::~strong_coordinator() {
  stop();
}

result<void> strong_coordinator::start() {
  if (started_) return {};
  started_ = true;
  if (raft_) return raft_->start();
  actors::quorum_setup setup;
  setup.placement = &placement_;
  setup.anti_entropy_interval = opts_.anti_entropy_interval;
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
  actor_ = actors::spawn_quorum_actor(sys_, std::move(setup));
  log()->info("strong: {} members, replication factor {}, {} ranges replicated here",
              placement_.members().size(), placement_.replication_factor(), [&] {
                std::size_t n = 0;
                for (std::uint32_t r = 0; r < placement_.ranges(); ++r)
                  n += placement_.is_replica(r);
                return n;
              }());
  return {};
}

void strong_coordinator::stop() {
  {
    std::lock_guard<std::mutex> g{stop_mtx_};
    if (stopped_) return;
    stopped_ = true;
  }
  // The actor fails every call in flight and quits with its range actors; calls sent
  // after that are dropped, and their completions report shutting_down.
  if (raft_) raft_->stop();
  if (actor_) actors::stop_quorum_actor(sys_, actor_);
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
  if (raft_) return raft_->get_async(key, std::move(done));
  submit(key, std::nullopt,
         actors::completion<strong_record>{[done = std::move(done)](result<strong_record> r) {
           done(read_outcome(std::move(r)));
         }});
}

void strong_coordinator::set_async(std::string_view key, std::string_view value,
                                   std::int64_t expires_at_ms, write_callback done) {
  if (raft_) return raft_->set_async(key, value, expires_at_ms, std::move(done));
  submit(key, value_record(value, expires_at_ms),
         actors::completion<strong_record>{
             [done = std::move(done)](result<strong_record> r) { done(write_outcome(r)); }});
}

void strong_coordinator::remove_async(std::string_view key, write_callback done) {
  if (raft_) return raft_->remove_async(key, std::move(done));
  submit(key, tombstone_record(),
         actors::completion<strong_record>{
             [done = std::move(done)](result<strong_record> r) { done(write_outcome(r)); }});
}

result<buffer> strong_coordinator::get(std::string_view key) {
  if (raft_) return raft_->get(key);
  return read_outcome(run_blocking(key, std::nullopt));
}

result<void> strong_coordinator::set(std::string_view key, std::string_view value,
                               std::int64_t expires_at_ms) {
  if (raft_) return raft_->set(key, value, expires_at_ms);
  return write_outcome(run_blocking(key, value_record(value, expires_at_ms)));
}

result<void> strong_coordinator::remove(std::string_view key) {
  if (raft_) return raft_->remove(key);
  return write_outcome(run_blocking(key, tombstone_record()));
}

result<mutation> strong_coordinator::write(
    std::string_view key, const std::function<result<mutation>(const buffer*, std::int64_t)>& fn,
    bool read_current) {
  if (raft_) return raft_->write(key, fn, read_current);
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
  // get and set below dispatch to the Raft engine: one read-then-load for both engines.
  auto found = get(key);
  if (found || found.code() != errc::not_found) return found;
  auto loaded = load(key);
  if (!loaded) return loaded.err();
  if (!*loaded) return error{errc::not_found};
  if (auto err = set(key, **loaded, 0); !err) return err.err();
  return make_buffer(std::move(**loaded));
}

}  // namespace warp::detail
