// The node's side of the validator (validator/, docs/validator.md): its start and stop
// with the node, the pass on demand, and its numbers in node_stats.
#include <caf/all.hpp>

#include "runtime/node/node_impl.hpp"
#include "validator/validator_actor.hpp"
#include "warp/node.hpp"

namespace warp {

void start_validator(node& n, node::impl& st) {
  st.validator = std::make_unique<validation::core>(st);
  if (!st.validator->enabled()) return;
  auto* core = st.validator.get();
  // The watcher only queues the key (bounded): it runs on whichever thread applied the
  // change, a writer's or the cluster actor's.
  st.validator_watch = n.watch([core](const change_event& ev) { core->on_change(ev); });
  const auto& o = st.config.validator;
  validation::validator_settings s;
  s.interval = o.interval;
  s.grace = o.grace;
  s.sample = o.sample;
  s.max_batch = o.max_batch;
  s.max_suspects = o.max_pending;
  auto* pool = st.executor.get();
  st.validator_actor = validation::spawn_validator_actor(
      *st.system, *core, [pool](std::function<void()> job) { return pool->post(std::move(job)); },
      s);
}

void stop_validator(node& n, node::impl& st) {
  if (st.validator_watch != 0) {
    n.unwatch(st.validator_watch);
    st.validator_watch = 0;
  }
  if (st.validator_actor) {
    validation::stop_validator_actor(*st.system, st.validator_actor);
    st.validator_actor = nullptr;
  }
}

namespace detail {
validation::core* validator_of(const node& n) {
  return n.impl_->validator.get();
}
}  // namespace detail

result<validation_report> node::validate(std::string_view glob) {
  auto& st = *impl_;
  if (st.stopped.load()) return error{errc::shutting_down, "node is stopping"};
  if (auto err = st.config.limits.check_key(glob); !err) return err.err();
  if (!st.validator) return error{errc::internal, "the validator did not start"};
  auto pass = st.validator->run_pass(glob);
  validation_report out;
  out.checked = pass.checked;
  out.inconsistent = pass.inconsistent;
  out.healed = pass.healed;
  out.uncached = pass.uncached;
  out.errors = pass.errors;
  for (auto& o : pass.found)
    out.found.push_back(
        {std::move(o.key), std::string{validation::to_string(o.what)}, o.cached, o.stored});
  return out;
}

std::string node::federation_json() const {
  return impl_->federation_link ? impl_->federation_link->json()
                                : std::string{"{\"enabled\":false}"};
}

std::string node::federation_metrics() const {
  return impl_->federation_link ? impl_->federation_link->metrics() : std::string{};
}

void node::federation_repair() {
  if (impl_->federation_link) impl_->federation_link->repair_now();
}

std::string node::validator_json() const {
  return impl_->validator ? impl_->validator->json() : std::string{"{\"enabled\":false}"};
}

void fill_validator_stats(const node::impl& st, node_stats& out) {
  if (!st.validator) return;
  auto& v = out.validator;
  const auto t = st.validator->snapshot();
  using validation::finding;
  auto by = [&](finding f) { return t.by_finding[static_cast<std::size_t>(f)]; };
  v.enabled = st.validator->enabled();
  v.checked = t.checked;
  v.inconsistent = t.inconsistent;
  v.healed = t.healed;
  v.errors = t.errors;
  v.changes_dropped = t.changes_dropped;
  v.deleted_in_storage = by(finding::deleted_in_storage);
  v.older_than_storage = by(finding::older_than_storage);
  v.value_differs = by(finding::value_differs);
  v.newer_than_storage = by(finding::newer_than_storage);
  v.nines_1m = st.validator->window(60).nines();
  v.nines_5m = st.validator->window(300).nines();
  v.nines_10m = st.validator->window(600).nines();
}

}  // namespace warp
