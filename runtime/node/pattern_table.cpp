#include "runtime/node/pattern_table.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/core/log.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/modes/strong.hpp"

namespace warp::detail {

namespace {

constexpr const char* file_name = "patterns.json";
// 1: one version for the whole table (still read); 2: a version per glob, and tombstones.
constexpr int file_format = 2;
// The file is ours, but a hand-edited or damaged one must not make start allocate without
// bound: it is read only up to this size (4096 specs of 4 KiB fit well within it).
constexpr std::uintmax_t max_file_bytes = 32u << 20;

bool same_policy(const key_policy& a, const key_policy& b) {
  return a.consistency == b.consistency && a.ttl == b.ttl && a.hydrate == b.hydrate;
}

// Forgets the oldest tombstones beyond the bound. The newest ones by pattern_wins' order
// are kept, so two nodes that trim the union of what they know keep the same ones.
void trim_tombstones(bus::pattern_entries& table, std::size_t keep) {
  std::vector<const bus::pattern_entry*> dead;
  for (const auto& [glob, e] : table)
    if (e.removed()) dead.push_back(&e);
  if (dead.size() <= keep) return;
  std::sort(dead.begin(), dead.end(),
            [](const auto* a, const auto* b) { return bus::pattern_wins(*b, *a); });
  std::vector<std::string> drop;
  for (std::size_t i = 0; i < dead.size() - keep; ++i) drop.push_back(dead[i]->glob);
  for (const auto& g : drop) table.erase(g);
}

std::size_t live_count(const bus::pattern_entries& table) {
  return static_cast<std::size_t>(std::count_if(
      table.begin(), table.end(), [](const auto& kv) { return !kv.second.removed(); }));
}

result<void> sync_fd(int fd, const std::string& what) {
  if (::fsync(fd) != 0)
    return error{errc::storage_error, "fsync " + what + ": " + std::strerror(errno)};
  return {};
}

}  // namespace

std::string pattern_table_keeper::path() const {
  if (st_.config.data_dir.empty()) return {};
  return (std::filesystem::path{st_.config.data_dir} / file_name).string();
}

result<std::vector<std::string>> pattern_table_keeper::load_start_table() {
  std::lock_guard<std::mutex> g{mtx_};
  auto parsed = pattern_registry::parse_specs(st_.config.patterns);
  if (!parsed) return parsed.err();
  const bus::pattern_version cmdline_ver{st_.config.patterns_version, 0};
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    // parse_specs dropped exact duplicates: find each entry's own spec text.
    for (const auto& spec : st_.config.patterns) {
      auto e = pattern_registry::parse_spec(spec);
      if (e && e->glob == (*parsed)[i].glob) {
        table_.emplace((*parsed)[i].glob, bus::pattern_entry{(*parsed)[i].glob, spec, cmdline_ver});
        break;
      }
    }
  }
  auto file = path();
  std::error_code ec;
  if (!file.empty() && std::filesystem::exists(file, ec)) {
    auto fail = [&](const std::string& why) {
      return error{errc::invalid_argument, "pattern table " + file + ": " + why +
                                               " (fix or remove the file; docs/keyspaces.md)"};
    };
    auto size = std::filesystem::file_size(file, ec);
    if (ec) return fail(ec.message());
    if (size > max_file_bytes) return fail("larger than " + std::to_string(max_file_bytes));
    std::ifstream in{file, std::ios::binary};
    std::stringstream text;
    text << in.rdbuf();
    auto doc = nlohmann::json::parse(text.str(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return fail("not JSON");
    const int format = doc.value("format", 0);
    if (format != 1 && format != file_format) return fail("unknown format");
    // Every member is checked before it is read (a const json's operator[] on a missing
    // key is undefined behaviour).
    auto member = [](const nlohmann::json& o, const char* name) -> const nlohmann::json* {
      return o.is_object() && o.contains(name) ? &o.at(name) : nullptr;
    };
    auto read_version = [&](const nlohmann::json& o) -> std::optional<bus::pattern_version> {
      const auto* counter = member(o, "counter");
      const auto* node = member(o, "node");
      if (!counter || !counter->is_number_unsigned() || !node || !node->is_number_unsigned() ||
          node->get<std::uint64_t>() > UINT32_MAX)
        return std::nullopt;
      return bus::pattern_version{counter->get<std::uint64_t>(),
                                  static_cast<std::uint32_t>(node->get<std::uint64_t>())};
    };
    const auto* ps = member(doc, "patterns");
    if (!ps || !ps->is_array()) return fail("missing patterns");
    // Format 1: one version for the whole table, given to each of its globs.
    std::optional<bus::pattern_version> table_ver;
    if (format == 1) {
      const auto* v = member(doc, "version");
      if (v) table_ver = read_version(*v);
      if (!table_ver) return fail("missing version");
    }
    entries loaded;
    for (const auto& p : *ps) {
      const auto* gl = member(p, "glob");
      const auto* sp = member(p, "spec");
      bus::pattern_entry e;
      if (format == 1) {
        e.ver = *table_ver;
      } else {
        auto v = read_version(p);
        if (!v) return fail("a pattern without its version");
        e.ver = *v;
      }
      if (sp && sp->is_null() && format != 1) {  // a tombstone
        if (!gl || !gl->is_string() || gl->get<std::string>().empty())
          return fail("a removed pattern without its glob");
        e.glob = gl->get<std::string>();
      } else {
        if (!sp || !sp->is_string()) return fail("a pattern without a spec");
        e.spec = sp->get<std::string>();
        auto parsed_spec = pattern_registry::parse_spec(e.spec);
        if (!parsed_spec) return fail("'" + e.spec + "': " + parsed_spec.err().message());
        e.glob = parsed_spec->glob;
      }
      bus::merge_pattern(loaded, e);
    }
    bus::pattern_version file_ver;  // the newest change in the file
    for (const auto& [glob, e] : loaded) file_ver = std::max(file_ver, e.ver);
    if (cmdline_ver < file_ver) {
      log()->info(
          "key patterns: the table in {} (newest change {}.{:08x}, {} patterns, {} removed) "
          "replaces the command line's (version {}.0)",
          file, file_ver.counter, file_ver.node, live_count(loaded),
          loaded.size() - live_count(loaded), cmdline_ver.counter);
      table_ = std::move(loaded);
    } else {
      log()->info(
          "key patterns: the command line's table (version {}.0) is not older than the "
          "one in {} (newest change {}.{:08x}): using the command line's",
          cmdline_ver.counter, file, file_ver.counter, file_ver.node);
    }
  }
  std::vector<std::string> out;
  for (auto& [glob, e] : table_)
    if (!e.removed()) out.push_back(e.spec);
  return out;
}

bus::pattern_version pattern_table_keeper::next_version() const {
  std::uint64_t newest = 0;
  for (const auto& [glob, e] : table_) newest = std::max(newest, e.ver.counter);
  return {newest + 1, st_.id};
}

result<void> pattern_table_keeper::set(std::string_view spec) {
  auto e = pattern_registry::parse_spec(spec);
  if (!e) return e.err();
  if (e->policy.consistency == mode::strong_distributed && !st_.strong_mode &&
      strong_coordinator::clustered(st_.config))
    return error{errc::unsupported,
                 "strong_distributed patterns need a node started with strong_distributed keys "
                 "(--pattern or --strong-members); this one runs no quorum coordinator"};
  std::lock_guard<std::mutex> g{mtx_};
  auto it = table_.find(e->glob);
  if ((it == table_.end() || it->second.removed()) && live_count(table_) >= max_live)
    return error{errc::invalid_argument,
                 "the pattern table holds " + std::to_string(max_live) + " patterns already"};
  auto next = table_;
  next[e->glob] = bus::pattern_entry{e->glob, std::string{spec}, next_version()};
  return apply(std::move(next), true);
}

result<void> pattern_table_keeper::remove(std::string_view glob) {
  std::lock_guard<std::mutex> g{mtx_};
  auto it = table_.find(glob);
  if (it == table_.end() || it->second.removed())
    return error{errc::not_found, "no pattern '" + std::string{glob} + "' in the table"};
  auto next = table_;
  next[std::string{glob}] = bus::pattern_entry{std::string{glob}, {}, next_version()};
  return apply(std::move(next), true);
}

void pattern_table_keeper::apply_remote(const bus::pattern_table& t) {
  std::lock_guard<std::mutex> g{mtx_};
  auto next = table_;
  bool changed = false;
  for (const auto& e : t.entries)
    if (e.ver != bus::pattern_version{}) changed |= bus::merge_pattern(next, e);
  if (!changed) return;
  if (auto ok = apply(std::move(next), false); !ok)
    log()->error("key patterns: table {}.{:08x} from node {:08x} not applied: {}", t.ver.counter,
                 t.ver.node, t.header.sender, ok.err().to_string());
}

// Under mtx_. Parses everything first: a bad spec changes nothing.
result<void> pattern_table_keeper::apply(entries next, bool local) {
  trim_tombstones(next, max_tombstones);
  std::vector<pattern_registry::entry> added;
  std::vector<std::string> removed;
  pattern_registry before, after;
  before.set_default(st_.config.default_policy);
  after.set_default(st_.config.default_policy);
  std::vector<std::string> affected;  // globs whose keys may change policy
  auto live_spec = [](const entries& t, const std::string& glob) -> const std::string* {
    auto it = t.find(glob);
    return it == t.end() || it->second.removed() ? nullptr : &it->second.spec;
  };
  for (const auto& [glob, entry] : next) {
    if (entry.removed()) continue;
    auto e = pattern_registry::parse_spec(entry.spec);
    if (!e) return error{e.err().code(), "pattern '" + entry.spec + "': " + e.err().message()};
    if (e->glob != glob)
      return error{errc::invalid_argument,
                   "pattern '" + entry.spec + "' listed under '" + glob + "'"};
    if (auto ok = after.add(e->glob, e->policy); !ok) return ok;
    const auto* old = live_spec(table_, glob);
    if (!old || *old != entry.spec) {
      added.push_back(std::move(*e));
      affected.push_back(glob);
    }
  }
  for (const auto& [glob, entry] : table_) {
    if (entry.removed()) continue;
    if (auto e = pattern_registry::parse_spec(entry.spec)) (void)before.add(e->glob, e->policy);
    if (!live_spec(next, glob)) {
      removed.push_back(glob);
      affected.push_back(glob);
    }
  }
  // Persist first: a change the node cannot keep is refused (a peer's is applied anyway,
  // and comes back with the next heartbeat after a restart).
  if (auto ok = persist(next); !ok) {
    if (local) return ok;
    log()->error("key patterns: cannot persist the table: {}", ok.err().to_string());
  }
  if (auto ok = st_.patterns.replace(removed, added); !ok) return ok;
  // A pattern set again got a fresh limiter/breaker slot; the old slot and those of removed
  // patterns serve nobody any more: drop them (and their metrics).
  if (!added.empty() || !removed.empty()) {
    std::vector<std::uint32_t> live_slots;
    for (const auto& e : st_.patterns.entries())
      if (e.policy.guard_slot != 0) live_slots.push_back(e.policy.guard_slot);
    st_.writes.retire_guards(live_slots);
  }
  for (const auto& e : added) {
    if (e.policy.guard.refresh_ahead_pct > 0)
      st_.refresh_ahead_on.store(true, std::memory_order_relaxed);
    if (e.policy.consistency == mode::strong_distributed && !st_.strong_mode)
      log()->warn(
          "key patterns: '{}' is strong_distributed, but this node runs no quorum "
          "coordinator: its keys are served as strong_local here",
          e.glob);
  }
  // Keys whose mode, TTL or hydration changed lose their L1 entries (and any read in
  // flight may not fill it): what was cached under the old policy carries the old
  // guarantees (an eventual copy nobody invalidates under strong_local, a TTL that is now
  // too long). Storage keeps the values; the next read fetches them under the new policy.
  std::size_t dropped = 0;
  if (!affected.empty()) {
    std::vector<std::string> keys;
    st_.l1->for_each([&](std::string_view key, const buffer&, const l1_entry_info&) {
      for (const auto& g : affected)
        if (glob_match(g, key)) {
          if (!same_policy(before.lookup(key), after.lookup(key))) keys.emplace_back(key);
          return;
        }
    });
    for (const auto& k : keys) {
      st_.coalescer.supersede(k);
      if (st_.l1->erase(k)) ++dropped;
    }
  }
  table_ = std::move(next);
  auto sum = bus::pattern_summary(table_);
  log()->info(
      "key patterns: table {}.{:08x} applied ({}: {} set, {} removed, {} L1 entries "
      "dropped)",
      sum.counter, sum.node, local ? "local change" : "from a peer", added.size(), removed.size(),
      dropped);
  // Ours or merged from a peer: every peer gets the result (the cluster actor sends it on
  // to each reachable member), so a change floods the cluster in one round.
  if (st_.cluster)
    if (auto bytes = encode_locked(table_); !bytes.empty())
      st_.cluster->publish_patterns(std::move(bytes));
  return {};
}

result<void> pattern_table_keeper::persist(const entries& table) const {
  auto file = path();
  if (file.empty()) return {};
  nlohmann::json doc;
  doc["format"] = file_format;
  bus::pattern_version newest;  // for people reading the file; each glob has its own
  for (const auto& [glob, e] : table) newest = std::max(newest, e.ver);
  doc["version"] = {{"counter", newest.counter}, {"node", newest.node}};
  auto& ps = doc["patterns"] = nlohmann::json::array();
  for (const auto& [glob, e] : table) {
    nlohmann::json spec = e.removed() ? nlohmann::json(nullptr) : nlohmann::json(e.spec);
    ps.push_back(
        {{"glob", glob}, {"spec", spec}, {"counter", e.ver.counter}, {"node", e.ver.node}});
  }
  auto text = doc.dump(2) + "\n";
  std::error_code ec;
  std::filesystem::create_directories(st_.config.data_dir, ec);
  // temp + fsync + rename + fsync of the directory: a crash leaves the old file or the
  // new one, never a torn one.
  auto tmp = file + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return error{errc::storage_error, "open " + tmp + ": " + std::strerror(errno)};
  std::size_t off = 0;
  while (off < text.size()) {
    auto n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto why = std::string{std::strerror(errno)};
      ::close(fd);
      return error{errc::storage_error, "write " + tmp + ": " + why};
    }
    off += static_cast<std::size_t>(n);
  }
  auto synced = sync_fd(fd, tmp);
  ::close(fd);
  if (!synced) return synced;
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    return error{errc::storage_error, "rename " + tmp + ": " + std::strerror(errno)};
  int dir = ::open(st_.config.data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    auto ok = sync_fd(dir, st_.config.data_dir);
    ::close(dir);
    if (!ok) return ok;
  }
  return {};
}

std::string pattern_table_keeper::encode_locked(const entries& table) const {
  bus::pattern_table t;
  t.ver = bus::pattern_summary(table);
  if (t.ver == bus::pattern_version{}) return {};  // nothing to share
  if (st_.cluster) t.header = st_.cluster->pattern_header();
  t.header.sender = st_.id;
  // Command-line patterns at (0, 0) stay this node's own (bus::pattern_summary).
  for (const auto& [glob, e] : table)
    if (e.ver != bus::pattern_version{}) t.entries.push_back(e);
  auto bytes = bus::encode(t);
  if (!bytes) {
    log()->error("key patterns: table not sent: {}", bytes.err().to_string());
    return {};
  }
  return std::move(*bytes);
}

std::string pattern_table_keeper::encoded() const {
  std::lock_guard<std::mutex> g{mtx_};
  return encode_locked(table_);
}

bus::pattern_version pattern_table_keeper::version() const {
  std::lock_guard<std::mutex> g{mtx_};
  return bus::pattern_summary(table_);
}

pattern_table_view pattern_table_keeper::view() const {
  std::lock_guard<std::mutex> g{mtx_};
  pattern_table_view out;
  // The newest change's version (a removal counts): what the next change builds on.
  bus::pattern_version newest;
  for (const auto& [glob, e] : table_) newest = std::max(newest, e.ver);
  out.version_counter = newest.counter;
  out.version_node = newest.node;
  out.file = path();
  for (const auto& [glob, e] : table_) {
    if (e.removed()) continue;
    auto p = pattern_registry::parse_spec(e.spec);
    out.patterns.push_back({glob, e.spec, p ? p->policy : key_policy{}});
  }
  return out;
}

}  // namespace warp::detail

namespace warp {

std::string to_json(const pattern_table_view& t) {
  char node[16];
  std::snprintf(node, sizeof node, "%08x", t.version_node);
  nlohmann::json ps = nlohmann::json::array();
  for (const auto& p : t.patterns)
    ps.push_back({{"glob", p.glob},
                  {"spec", p.spec},
                  {"mode", std::string{to_string(p.policy.consistency)}},
                  {"ttl_ms", p.policy.ttl.count()},
                  {"hydrate", p.policy.hydrate}});
  nlohmann::json doc{{"version", {{"counter", t.version_counter}, {"node", node}}},
                     {"file", t.file},
                     {"patterns", std::move(ps)}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace warp
