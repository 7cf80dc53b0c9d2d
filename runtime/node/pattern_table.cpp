#include "runtime/node/pattern_table.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/core/log.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/modes/strong.hpp"

namespace warp::detail {

namespace {

constexpr const char* file_name = "patterns.json";
constexpr int file_format = 1;
// The file is ours, but a hand-edited or damaged one must not make start allocate without
// bound: it is read only up to this size (4096 specs of 4 KiB fit well within it).
constexpr std::uintmax_t max_file_bytes = 32u << 20;

bool same_policy(const key_policy& a, const key_policy& b) {
  return a.consistency == b.consistency && a.ttl == b.ttl && a.hydrate == b.hydrate;
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
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    // parse_specs dropped exact duplicates: find each entry's own spec text.
    for (const auto& spec : st_.config.patterns) {
      auto e = pattern_registry::parse_spec(spec);
      if (e && e->glob == (*parsed)[i].glob) {
        table_.emplace((*parsed)[i].glob, spec);
        break;
      }
    }
  }
  ver_ = {st_.config.patterns_version, 0};
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
    if (doc.value("format", 0) != file_format) return fail("unknown format");
    // Every member is checked before it is read (a const json's operator[] on a missing
    // key is undefined behaviour).
    auto member = [](const nlohmann::json& o, const char* name) -> const nlohmann::json* {
      return o.is_object() && o.contains(name) ? &o.at(name) : nullptr;
    };
    const auto* v = member(doc, "version");
    const auto* ps = member(doc, "patterns");
    const auto* counter = v ? member(*v, "counter") : nullptr;
    const auto* node = v ? member(*v, "node") : nullptr;
    if (!counter || !counter->is_number_unsigned() || !node || !node->is_number_unsigned() ||
        node->get<std::uint64_t>() > UINT32_MAX || !ps || !ps->is_array())
      return fail("missing version or patterns");
    bus::pattern_version file_ver{counter->get<std::uint64_t>(),
                                  static_cast<std::uint32_t>(node->get<std::uint64_t>())};
    if (ver_ < file_ver) {
      specs loaded;
      for (const auto& p : *ps) {
        const auto* sp = member(p, "spec");
        if (!sp || !sp->is_string()) return fail("a pattern without a spec");
        auto spec = sp->get<std::string>();
        auto e = pattern_registry::parse_spec(spec);
        if (!e) return fail("'" + spec + "': " + e.err().message());
        loaded[e->glob] = spec;
      }
      log()->info(
          "key patterns: the table in {} (version {}.{:08x}, {} patterns) replaces the "
          "command line's (version {}.0)",
          file, file_ver.counter, file_ver.node, loaded.size(), ver_.counter);
      table_ = std::move(loaded);
      ver_ = file_ver;
    } else {
      log()->info(
          "key patterns: the command line's table (version {}.0) is not older than the "
          "one in {} (version {}.{:08x}): using the command line's",
          ver_.counter, file, file_ver.counter, file_ver.node);
    }
  }
  std::vector<std::string> out;
  for (auto& [glob, spec] : table_) out.push_back(spec);
  return out;
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
  auto next = table_;
  next[e->glob] = std::string{spec};
  return apply(std::move(next), {ver_.counter + 1, st_.id}, true);
}

result<void> pattern_table_keeper::remove(std::string_view glob) {
  std::lock_guard<std::mutex> g{mtx_};
  auto it = table_.find(glob);
  if (it == table_.end())
    return error{errc::not_found, "no pattern '" + std::string{glob} + "' in the table"};
  auto next = table_;
  next.erase(std::string{glob});
  return apply(std::move(next), {ver_.counter + 1, st_.id}, true);
}

void pattern_table_keeper::apply_remote(const bus::pattern_table& t) {
  std::lock_guard<std::mutex> g{mtx_};
  if (!(ver_ < t.ver)) return;
  specs next;
  for (const auto& [glob, spec] : t.entries) next[glob] = spec;
  if (auto ok = apply(std::move(next), t.ver, false); !ok)
    log()->error("key patterns: table version {}.{:08x} from node {:08x} not applied: {}",
                 t.ver.counter, t.ver.node, t.header.sender, ok.err().to_string());
}

// Under mtx_. Parses everything first: a bad spec changes nothing.
result<void> pattern_table_keeper::apply(specs next, bus::pattern_version ver, bool local) {
  std::vector<pattern_registry::entry> added;
  std::vector<std::string> removed;
  pattern_registry before, after;
  before.set_default(st_.config.default_policy);
  after.set_default(st_.config.default_policy);
  std::vector<std::string> affected;  // globs whose keys may change policy
  for (const auto& [glob, spec] : next) {
    auto e = pattern_registry::parse_spec(spec);
    if (!e) return error{e.err().code(), "pattern '" + spec + "': " + e.err().message()};
    if (e->glob != glob)
      return error{errc::invalid_argument, "pattern '" + spec + "' listed under '" + glob + "'"};
    if (auto ok = after.add(e->glob, e->policy); !ok) return ok;
    auto old = table_.find(glob);
    if (old == table_.end() || old->second != spec) {
      added.push_back(std::move(*e));
      affected.push_back(glob);
    }
  }
  for (const auto& [glob, spec] : table_) {
    if (auto e = pattern_registry::parse_spec(spec)) (void)before.add(e->glob, e->policy);
    if (!next.contains(glob)) {
      removed.push_back(glob);
      affected.push_back(glob);
    }
  }
  // Persist first: a change the node cannot keep is refused (a peer's is applied anyway,
  // and comes back with the next heartbeat after a restart).
  if (auto ok = persist(next, ver); !ok) {
    if (local) return ok;
    log()->error("key patterns: cannot persist version {}.{:08x}: {}", ver.counter, ver.node,
                 ok.err().to_string());
  }
  if (auto ok = st_.patterns.replace(removed, added); !ok) return ok;
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
  ver_ = ver;
  log()->info(
      "key patterns: version {}.{:08x} applied ({}: {} set, {} removed, {} L1 entries "
      "dropped)",
      ver.counter, ver.node, local ? "local change" : "from a peer", added.size(), removed.size(),
      dropped);
  if (local && st_.cluster) st_.cluster->publish_patterns(encode_locked(table_, ver_));
  return {};
}

result<void> pattern_table_keeper::persist(const specs& table, bus::pattern_version ver) const {
  auto file = path();
  if (file.empty()) return {};
  nlohmann::json doc;
  doc["format"] = file_format;
  doc["version"] = {{"counter", ver.counter}, {"node", ver.node}};
  auto& ps = doc["patterns"] = nlohmann::json::array();
  for (const auto& [glob, spec] : table) ps.push_back({{"glob", glob}, {"spec", spec}});
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

std::string pattern_table_keeper::encode_locked(const specs& table,
                                                bus::pattern_version ver) const {
  if (ver == bus::pattern_version{}) return {};
  bus::pattern_table t;
  if (st_.cluster) t.header = st_.cluster->pattern_header();
  t.header.sender = st_.id;
  t.ver = ver;
  for (const auto& [glob, spec] : table) t.entries.emplace_back(glob, spec);
  auto bytes = bus::encode(t);
  if (!bytes) {
    log()->error("key patterns: table not sent: {}", bytes.err().to_string());
    return {};
  }
  return std::move(*bytes);
}

std::string pattern_table_keeper::encoded() const {
  std::lock_guard<std::mutex> g{mtx_};
  return encode_locked(table_, ver_);
}

bus::pattern_version pattern_table_keeper::version() const {
  std::lock_guard<std::mutex> g{mtx_};
  return ver_;
}

pattern_table_view pattern_table_keeper::view() const {
  std::lock_guard<std::mutex> g{mtx_};
  pattern_table_view out;
  out.version_counter = ver_.counter;
  out.version_node = ver_.node;
  out.file = path();
  for (const auto& [glob, spec] : table_) {
    auto e = pattern_registry::parse_spec(spec);
    out.patterns.push_back({glob, spec, e ? e->policy : key_policy{}});
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
