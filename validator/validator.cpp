#include "validator/validator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/core/log.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/modes/write_path.hpp"

namespace warp::validation {

std::string_view to_string(finding f) noexcept {
  switch (f) {
    case finding::consistent:
      return "consistent";
    case finding::uncached:
      return "uncached";
    case finding::deleted_in_storage:
      return "deleted_in_storage";
    case finding::older_than_storage:
      return "older_than_storage";
    case finding::value_differs:
      return "value_differs";
    case finding::newer_than_storage:
      return "newer_than_storage";
    case finding::storage_error:
      return "storage_error";
  }
  return "unknown";
}

std::optional<double> window_stats::nines() const {
  if (checked == 0) return std::nullopt;
  if (inconsistent == 0) return std::log10(static_cast<double>(checked));
  return -std::log10(static_cast<double>(inconsistent) / static_cast<double>(checked));
}

namespace {

constexpr std::size_t recent_max = 20;
constexpr std::size_t report_max = 100;
constexpr std::size_t logged_key_max = 200;
constexpr std::size_t declared_max = 10000;

// Keys are arbitrary bytes: a log line must stay one line and bounded.
std::string printable(std::string_view key) {
  std::string out;
  const auto n = std::min(key.size(), logged_key_max);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (key.size() > n) out += "...";
  return out;
}

std::string version_text(version v) {
  if (v.empty()) return "none";
  return std::to_string(v.hlc) + "@" + std::to_string(v.node);
}

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

core::core(detail::node_state& st)
    : st_(st),
      rng_state_(
          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) {
  enabled_ = st.config.validator.mode != validate_mode::off &&
             st.config.validator.mode != validate_mode::inherit;
  for (const auto& e : st.patterns.entries())
    if (e.policy.validate != validate_mode::off && e.policy.validate != validate_mode::inherit)
      enabled_ = true;
}

validate_mode core::mode_of(std::string_view key) const {
  auto m = st_.patterns.lookup(key).validate;
  if (m == validate_mode::inherit) m = st_.config.validator.mode;
  return m == validate_mode::inherit ? validate_mode::off : m;
}

// -- inputs ---------------------------------------------------------------------------------

void core::on_change(const change_event& ev) {
  using k = change_event::kind;
  // A clear or a gap names no key: the sample covers those.
  if (ev.key.empty() || ev.what == k::cleared || ev.what == k::distrusted) return;
  if (mode_of(ev.key) == validate_mode::off) return;
  const auto due = now_ms() + st_.config.validator.grace.count();
  std::lock_guard<std::mutex> guard{mtx_};
  if (pending_keys_.count(ev.key) != 0) return;  // already waiting: one check covers both
  if (pending_.size() >= st_.config.validator.max_pending) {
    ++totals_.changes_dropped;
    return;
  }
  pending_keys_.insert(ev.key);
  pending_.push_back({ev.key, due});
}

std::vector<std::string> core::take_due_changes(std::int64_t now, std::size_t max) {
  std::vector<std::string> out;
  std::lock_guard<std::mutex> guard{mtx_};
  while (!pending_.empty() && out.size() < max && pending_.front().due_ms <= now) {
    pending_keys_.erase(pending_.front().key);
    out.push_back(std::move(pending_.front().key));
    pending_.pop_front();
  }
  return out;
}

std::vector<std::string> core::sample(std::size_t n) {
  std::vector<std::string> out;
  if (n == 0) return out;
  std::uint64_t seed;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    seed = splitmix(rng_state_);
  }
  // Reservoir sampling: every live key equally likely, n copies of keys held at most.
  std::uint64_t seen = 0;
  out.reserve(n);
  st_.l1->for_each([&](std::string_view key, const buffer&, const l1_entry_info&) {
    ++seen;
    if (out.size() < n) {
      out.emplace_back(key);
    } else if (auto j = splitmix(seed) % seen; j < n) {
      out[j].assign(key);
    }
  });
  std::erase_if(out, [&](const std::string& key) { return mode_of(key) == validate_mode::off; });
  return out;
}

// -- the check ---------------------------------------------------------------------------------

observation core::observe(std::string_view key) {
  observation o;
  o.key.assign(key);
  // Under the key's write stripe, this node's own writes (storage, then L1) cannot fall
  // between the two reads; a peer's change can, which is what the grace window is for.
  std::lock_guard<std::mutex> stripe{st_.writes.lock_of(key)};
  bool cached = false;
  buffer bytes;
  // A peek through update() (which leaves the entry as is): unlike read(), it counts no
  // hit, so validation does not skew the hit ratio.
  st_.l1->update(key, [&](const buffer* cur, l1_entry_info* info) -> std::optional<buffer> {
    if (cur) {
      cached = true;
      bytes = *cur;
      o.cached = info->ver;
    }
    return std::nullopt;
  });
  if (!cached) {
    o.what = finding::uncached;
    return o;
  }
  auto rec = st_.store->fetch(key);
  if (!rec) {
    o.what = finding::storage_error;
    return o;
  }
  if (!*rec) {
    o.what = finding::deleted_in_storage;
    return o;
  }
  o.stored = (*rec)->ver;
  if (o.cached < o.stored)
    o.what = finding::older_than_storage;
  else if (o.stored < o.cached)
    o.what = finding::newer_than_storage;
  else if (view(bytes) != (*rec)->value)
    o.what = finding::value_differs;
  else
    o.what = finding::consistent;
  return o;
}

void core::record(std::uint64_t checked, std::uint64_t inconsistent) {
  // Caller holds mtx_.
  const auto second = now_ms() / 1000;
  auto& b = buckets_[static_cast<std::size_t>(second % static_cast<std::int64_t>(buckets_.size()))];
  if (b.second != second) b = {second, 0, 0};
  b.checked += checked;
  b.inconsistent += inconsistent;
}

void core::count_consistent(std::uint64_t n) {
  if (n == 0) return;
  std::lock_guard<std::mutex> guard{mtx_};
  totals_.checked += n;
  totals_.by_finding[static_cast<std::size_t>(finding::consistent)] += n;
  record(n, 0);
}

bool core::declare(const observation& o, validate_mode m) {
  if (o.what == finding::storage_error) {
    std::lock_guard<std::mutex> guard{mtx_};
    ++totals_.errors;
    return false;
  }
  bool repeat = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // The same wrong copy seen again (noop and alert leave it cached, and the sample finds
    // it again): one inconsistency, one count, one log line; only a heal is retried.
    const std::pair seen{o.cached, o.stored};
    auto [it, fresh] = declared_.try_emplace(o.key, seen);
    repeat = !fresh && it->second == seen;
    it->second = seen;
    if (declared_.size() > declared_max) declared_.erase(declared_.begin());
    if (!repeat) {
      ++totals_.checked;
      ++totals_.inconsistent;
      ++totals_.by_finding[static_cast<std::size_t>(o.what)];
      record(1, 1);
      recent_.push_back(o);
      if (recent_.size() > recent_max) recent_.pop_front();
    }
  }
  if (repeat && m != validate_mode::heal) return false;
  if (!repeat && (m == validate_mode::alert || m == validate_mode::heal))
    detail::log()->warn(
        "validator: inconsistent key=\"{}\" finding={} l1_version={} storage_version={} "
        "node={} node_id={:08x} mode={}",
        printable(o.key), to_string(o.what), version_text(o.cached), version_text(o.stored),
        st_.name, st_.id, to_string(m));
  if (m != validate_mode::heal) return false;
  bool healed = heal(o);
  if (healed) {
    std::lock_guard<std::mutex> guard{mtx_};
    ++totals_.healed;
  }
  return healed;
}

bool core::heal(const observation& o) {
  if (before_heal) before_heal(o.key);
  const auto policy = st_.patterns.lookup(o.key);
  // The stripe orders the heal with every write of this node to the key; what it saw a
  // grace window ago is read again under it, and a change since (a newer write won) means
  // there is nothing to heal. A peer's change may still land meanwhile: every L1 change
  // below is conditional on the version, so it never replaces a newer value.
  std::lock_guard<std::mutex> stripe{st_.writes.lock_of(o.key)};
  bool cached = false;
  buffer bytes;
  version cached_ver;
  st_.l1->update(o.key, [&](const buffer* cur, l1_entry_info* info) -> std::optional<buffer> {
    if (cur) {
      cached = true;
      bytes = *cur;
      cached_ver = info->ver;
    }
    return std::nullopt;
  });
  if (!cached || cached_ver != o.cached) return false;
  auto rec = st_.store->fetch(o.key);
  if (!rec) return false;
  // An in-flight read-through holds what it fetched before: it must not fill L1 after us.
  st_.coalescer.supersede(o.key);
  st_.writes.forget(o.key);  // a stale-on-error copy of a wrong value must not be served
  version invalidate_at = cached_ver;
  bool changed = false;
  if (*rec && cached_ver < (*rec)->ver) {
    // Storage is newer: rewrite the copy, only if nothing newer arrived meanwhile.
    invalidate_at = (*rec)->ver;
    changed =
        st_.l1->put(o.key, make_buffer((*rec)->value), (*rec)->ver,
                    detail::l1_expiry((*rec)->expires_at_ms, policy), true) != put_outcome::stale;
  } else if (!*rec || (*rec)->ver < cached_ver || view(bytes) != (*rec)->value) {
    // Deleted, older in storage (storage is the source of truth), or other bytes at the
    // same version: drop the copy; the next read fetches storage's.
    changed = st_.l1->erase_if_not_newer(o.key, cached_ver);
  } else {
    return false;  // consistent by now
  }
  // Every other node's copy goes through the normal invalidation path (the sync bus).
  if (st_.cluster && policy.consistency == mode::eventual_distributed)
    st_.cluster->invalidate(o.key, invalidate_at);
  st_.notify({change_event::kind::invalidated, o.key, invalidate_at, false});
  detail::log()->info("validator: healed key=\"{}\" finding={} l1_version={} storage_version={}",
                      printable(o.key), to_string(o.what), version_text(cached_ver),
                      *rec ? version_text((*rec)->ver) : std::string{"none"});
  return changed;
}

pass_report core::run_pass(std::string_view glob) {
  const auto& opts = st_.config.validator;
  std::vector<std::string> keys;
  {
    std::uint64_t seed;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      seed = splitmix(rng_state_);
    }
    std::uint64_t seen = 0;
    const auto n = opts.max_batch;
    st_.l1->for_each([&](std::string_view key, const buffer&, const l1_entry_info&) {
      if (!glob.empty() && !glob_match(glob, key)) return;
      ++seen;
      if (keys.size() < n)
        keys.emplace_back(key);
      else if (auto j = splitmix(seed) % seen; j < n)
        keys[j].assign(key);
    });
  }
  pass_report rep;
  std::vector<observation> suspects;
  for (const auto& key : keys) {
    auto o = observe(key);
    switch (o.what) {
      case finding::consistent:
        ++rep.checked;
        break;
      case finding::uncached:
        ++rep.uncached;
        break;
      case finding::storage_error:
        ++rep.errors;
        break;
      default:
        suspects.push_back(std::move(o));
    }
  }
  count_consistent(rep.checked);
  if (!suspects.empty()) {
    // A disagreement may be a change still on its way: look again after the grace window.
    std::this_thread::sleep_for(opts.grace);
    std::uint64_t resolved = 0;
    for (const auto& first : suspects) {
      auto again = observe(first.key);
      if (again.what == finding::storage_error) {
        ++rep.errors;
        continue;
      }
      if (again.cached != first.cached || !is_inconsistent(again.what)) {
        ++resolved;
        continue;
      }
      auto m = mode_of(again.key);
      if (m == validate_mode::off) m = validate_mode::noop;  // asked for: at least counted
      ++rep.checked;
      ++rep.inconsistent;
      if (declare(again, m)) ++rep.healed;
      if (rep.found.size() < report_max) rep.found.push_back(std::move(again));
    }
    rep.checked += resolved;
    count_consistent(resolved);
  }
  std::lock_guard<std::mutex> guard{mtx_};
  ++totals_.passes;
  totals_.errors += rep.errors;
  return rep;
}

// -- what it reports ---------------------------------------------------------------------------

core::totals core::snapshot() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return totals_;
}

window_stats core::window(std::int64_t seconds) const {
  seconds = std::clamp<std::int64_t>(seconds, 1, static_cast<std::int64_t>(buckets_.size()));
  const auto now = now_ms() / 1000;
  window_stats w;
  std::lock_guard<std::mutex> guard{mtx_};
  for (const auto& b : buckets_)
    if (b.second > now - seconds && b.second <= now) {
      w.checked += b.checked;
      w.inconsistent += b.inconsistent;
    }
  return w;
}

std::string core::json() const {
  using json_t = nlohmann::json;
  const auto t = snapshot();
  const auto& opts = st_.config.validator;
  json_t windows = json_t::object();
  for (auto [name, secs] : {std::pair{"1m", 60}, std::pair{"5m", 300}, std::pair{"10m", 600}}) {
    auto w = window(secs);
    auto nines = w.nines();
    windows[name] = {{"checked", w.checked},
                     {"inconsistent", w.inconsistent},
                     {"nines", nines ? json_t(*nines) : json_t(nullptr)}};
  }
  json_t by = json_t::object();
  for (std::size_t i = 0; i < finding_count; ++i) {
    auto f = static_cast<finding>(i);
    if (is_inconsistent(f)) by[std::string{to_string(f)}] = t.by_finding[i];
  }
  json_t recent = json_t::array();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (const auto& o : recent_)
      recent.push_back({{"key", printable(o.key)},
                        {"finding", std::string{to_string(o.what)}},
                        {"l1_version", version_text(o.cached)},
                        {"storage_version", version_text(o.stored)}});
  }
  json_t patterns = json_t::array();
  for (const auto& e : st_.patterns.entries())
    if (e.policy.validate != validate_mode::inherit)
      patterns.push_back(
          {{"pattern", e.glob}, {"mode", std::string{to_string(e.policy.validate)}}});
  json_t doc = {
      {"enabled", enabled_},
      {"mode", std::string{to_string(opts.mode == validate_mode::inherit ? validate_mode::off
                                                                         : opts.mode)}},
      {"patterns", std::move(patterns)},
      {"interval_ms", opts.interval.count()},
      {"grace_ms", opts.grace.count()},
      {"sample", opts.sample},
      {"checked", t.checked},
      {"inconsistent", t.inconsistent},
      {"healed", t.healed},
      {"errors", t.errors},
      {"changes_dropped", t.changes_dropped},
      {"passes", t.passes},
      {"inconsistent_by_finding", std::move(by)},
      {"windows", std::move(windows)},
      {"recent", std::move(recent)},
  };
  return doc.dump(-1, ' ', false, json_t::error_handler_t::replace);
}

}  // namespace warp::validation
