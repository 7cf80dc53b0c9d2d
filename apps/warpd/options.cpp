#include "apps/warpd/options.hpp"

#include <cctype>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/control_actor.hpp"
#include "bus/envelope.hpp"
#include "runtime/membership/discovery.hpp"
#include "warp/pattern.hpp"
#include "warp/watch.hpp"

namespace warpd {

namespace {

using warp::errc;

std::string_view section_of(std::string_view key) {
  return key.substr(0, key.find('.'));
}
std::string_view name_of(std::string_view key) {
  return key.substr(key.find('.') + 1);
}

const option_def* find_option(std::string_view key) {
  for (const auto& def : option_table())
    if (def.key == key) return &def;
  return nullptr;
}

std::string kind_name(opt_kind k) {
  switch (k) {
    case opt_kind::string:
      return "a string";
    case opt_kind::string_list:
      return "a list of strings";
    case opt_kind::size:
      return "a non-negative integer";
    case opt_kind::duration:
      return "a duration (\"30s\", 30s or milliseconds)";
    case opt_kind::duration_us:
      return "a duration (\"500us\", \"2ms\", 500us or milliseconds)";
    case opt_kind::boolean:
      return "true or false";
  }
  return "?";
}

warp::error type_error(std::string_view key, const caf::config_value& v, opt_kind k) {
  return {errc::invalid_argument,
          std::string{key} + ": expected " + kind_name(k) + ", got " + caf::to_string(v)};
}

// parse_duration plus a `us` suffix, for the sub-millisecond batch delay.
warp::result<std::chrono::microseconds> parse_micros(std::string_view key, std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == "us") {
    std::int64_t n = 0;
    auto digits = text.substr(0, text.size() - 2);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec == std::errc{} && ptr == digits.data() + digits.size() && n >= 0)
      return std::chrono::microseconds{n};
    return warp::error{errc::invalid_argument,
                       std::string{key} + ": bad duration '" + std::string{text} + "'"};
  }
  auto d = warp::parse_duration(text);
  if (!d) return warp::error{errc::invalid_argument, std::string{key} + ": " + d.err().message()};
  if (d->count() >
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds::max())
          .count())
    return warp::error{errc::invalid_argument,
                       std::string{key} + ": duration overflows: '" + std::string{text} + "'"};
  return std::chrono::microseconds{*d};
}

// Typed readers over the CAF content. Absent keys yield the table's fallback; present keys
// of the wrong type are errors (CAF 0.17's file parser stores values without checking them
// against the declared option types, so this is where types get enforced).
class reader {
 public:
  explicit reader(const caf::settings& content) : content_(content) {}

  warp::result<std::string> str(std::string_view key) const {
    const auto& def = *find_option(key);
    auto* v = caf::get_if(&content_, key);
    if (!v) return std::string{def.fallback};
    if (auto s = caf::get_if<std::string>(v)) return *s;
    return type_error(key, *v, def.kind);
  }

  warp::result<std::vector<std::string>> list(std::string_view key) const {
    const auto& def = *find_option(key);
    auto* v = caf::get_if(&content_, key);
    if (!v) return std::vector<std::string>{};
    // A single string is accepted as a one-element list (`peers = "h:1"`).
    if (auto s = caf::get_if<std::string>(v)) return std::vector<std::string>{*s};
    if (auto l = caf::get_if<std::vector<std::string>>(v)) return std::vector<std::string>{*l};
    return type_error(key, *v, def.kind);
  }

  warp::result<std::size_t> size(std::string_view key) const {
    const auto& def = *find_option(key);
    auto* v = caf::get_if(&content_, key);
    if (!v) {
      std::size_t out = 0;
      std::from_chars(def.fallback.data(), def.fallback.data() + def.fallback.size(), out);
      return out;
    }
    if (auto i = caf::get_if<std::int64_t>(v); i && *i >= 0) return static_cast<std::size_t>(*i);
    return type_error(key, *v, def.kind);
  }

  warp::result<std::chrono::microseconds> duration_us(std::string_view key) const {
    const auto& def = *find_option(key);
    auto* v = caf::get_if(&content_, key);
    if (!v) return parse_micros(key, def.fallback);
    if (auto s = caf::get_if<std::string>(v)) return parse_micros(key, *s);
    if (auto ts = caf::get_if<caf::timespan>(v))
      return std::chrono::duration_cast<std::chrono::microseconds>(*ts);
    if (auto i = caf::get_if<std::int64_t>(v); i && *i >= 0)
      return std::chrono::microseconds{std::chrono::milliseconds{*i}};
    return type_error(key, *v, def.kind);
  }

  warp::result<bool> boolean(std::string_view key) const {
    const auto& def = *find_option(key);
    auto* v = caf::get_if(&content_, key);
    std::string_view text = def.fallback;
    if (v) {
      if (auto b = caf::get_if<bool>(v)) return *b;
      auto s = caf::get_if<std::string>(v);
      if (!s) return type_error(key, *v, def.kind);
      text = *s;
    }
    // The command line hands every boolean over as text.
    for (auto yes : {"true", "on", "yes", "1"})
      if (text == yes) return true;
    for (auto no : {"false", "off", "no", "0"})
      if (text == no) return false;
    return warp::error{errc::invalid_argument, std::string{key} +
                                                   ": expected true/false (on/off, "
                                                   "yes/no, 1/0), got '" +
                                                   std::string{text} + "'"};
  }

  warp::result<std::chrono::milliseconds> duration(std::string_view key) const {
    const auto& def = *find_option(key);
    auto* v = caf::get_if(&content_, key);
    if (!v) return warp::parse_duration(def.fallback);
    if (auto s = caf::get_if<std::string>(v)) {
      auto d = warp::parse_duration(*s);
      if (!d)
        return warp::error{errc::invalid_argument, std::string{key} + ": " + d.err().message()};
      return *d;
    }
    if (auto ts = caf::get_if<caf::timespan>(v))
      return std::chrono::duration_cast<std::chrono::milliseconds>(*ts);
    if (auto i = caf::get_if<std::int64_t>(v); i && *i >= 0) return std::chrono::milliseconds{*i};
    return type_error(key, *v, def.kind);
  }

 private:
  const caf::settings& content_;
};

// The RESP password from exactly one place: --resp-password, --resp-password-file, or
// the WARP_RESP_PASSWORD environment variable (used only when neither flag is given).
warp::result<void> resolve_resp_secrets(settings& out) {
  if (!out.resp_password.empty() && !out.resp_password_file.empty())
    return {errc::invalid_argument, "resp-password and resp-password-file: give one, not both"};
  if (!out.resp_password_file.empty()) {
    const auto& path = out.resp_password_file;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
      return {errc::invalid_argument,
              "resp-password-file: cannot read " + path + ": " + std::strerror(errno)};
    // Like ssh with a private key: a secret everyone on the host can read is no secret.
    if (st.st_mode & S_IROTH)
      return {errc::invalid_argument,
              "resp-password-file: " + path + " is world-readable; chmod o-r (0600 or 0640) it"};
    if (st.st_mode & S_IRGRP)
      out.warnings.push_back("resp-password-file " + path + " is group-readable");
    if (st.st_size > 64 * 1024)
      return {errc::invalid_argument, "resp-password-file: " + path + " is over 64 KiB"};
    std::ifstream in(path, std::ios::binary);
    if (!in) return {errc::invalid_argument, "resp-password-file: cannot open " + path};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.ends_with("\r\n"))
      text.resize(text.size() - 2);
    else if (text.ends_with('\n'))
      text.pop_back();
    if (text.empty()) return {errc::invalid_argument, "resp-password-file: " + path + " is empty"};
    out.resp_password = std::move(text);
  } else if (out.resp_password.empty()) {
    if (const char* env = std::getenv("WARP_RESP_PASSWORD"); env && *env) out.resp_password = env;
  }
  return {};
}

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

// The cluster options' values that cannot work, named by their flag. Bounds the wire
// format enforces (bus::wire_limits) are checked here too: a node configured above them
// would build batches its peers drop as malformed.
warp::result<void> validate_cluster(const warp::node_config& n) {
  const auto& c = n.cluster;
  auto bad = [](std::string text) { return warp::result<void>{errc::invalid_argument, std::move(text)}; };
  if (!c.discovery_dns.empty()) {
    if (n.listen.empty())
      return bad("discovery-dns: needs a listener (--listen): peers reach a node there");
    // NAME, NAME:PORT (A/AAAA) or srv:NAME (SRV): the parser discovery itself uses.
    if (auto spec = warp::detail::parse_discovery_spec(c.discovery_dns); !spec)
      return bad("discovery-dns: " + spec.err().message());
  }
  if (!c.discovery_dns_server.empty()) {
    if (c.discovery_dns.empty()) return bad("discovery-dns-server: only used with --discovery-dns");
    if (auto s = warp::detail::parse_dns_server(c.discovery_dns_server); !s)
      return bad("discovery-dns-server: " + s.err().message());
  }
  if (c.discovery_interval.count() <= 0) return bad("discovery-interval: must be positive");
  if (c.heartbeat_interval.count() <= 0) return bad("heartbeat-interval: must be positive");
  // A member is suspect after half the timeout: with fewer than two heartbeats in that
  // window, one late heartbeat makes healthy members flap.
  if (c.failure_timeout < 2 * c.heartbeat_interval)
    return bad("failure-timeout: must be at least twice heartbeat-interval (" +
               ms_text(c.heartbeat_interval) + "), got " + ms_text(c.failure_timeout));
  // Every owned range is an actor; beyond this the ranges cost more than they spread.
  constexpr std::size_t max_ranges = 65536;
  if (c.ranges == 0 || c.ranges > max_ranges)
    return bad("ranges: must be between 1 and " + std::to_string(max_ranges) + ", got " +
               std::to_string(c.ranges));
  const warp::bus::wire_limits wire;
  if (c.batch_max_records == 0 || c.batch_max_records > wire.max_records)
    return bad("batch-max-records: must be between 1 and " + std::to_string(wire.max_records) +
               ", got " + std::to_string(c.batch_max_records));
  if (c.batch_max_bytes == 0 || c.batch_max_bytes > wire.max_message_bytes)
    return bad("batch-max-bytes: must be between 1 and " + std::to_string(wire.max_message_bytes) +
               ", got " + std::to_string(c.batch_max_bytes));
  if (c.batch_target_records == 0 || c.batch_target_records > c.batch_max_records)
    return bad("batch-target-records: must be between 1 and batch-max-records (" +
               std::to_string(c.batch_max_records) + "), got " +
               std::to_string(c.batch_target_records));
  if (c.batch_max_delay > std::chrono::seconds{1})
    return bad("batch-max-delay: at most 1s (it delays every change under load), got " +
               std::to_string(c.batch_max_delay.count()) + "us");
  if (c.owner_fetch_timeout.count() <= 0) return bad("owner-fetch-timeout: must be positive");
  if (c.read_replicas == 0 || c.read_replicas > 16)
    return bad("read-replicas: must be between 1 and 16, got " + std::to_string(c.read_replicas));
  return {};
}

// -- bounds of numeric options (admin-config) ---------------------------------------------
// Every number a flag or the file gives is bounded here, so a slip (`--threads 100000`,
// `--max-value-size 0`) is a usage error naming the flag instead of a node that spends
// minutes starting threads or fails every write. Options with bounds that depend on other
// options are checked where they are read (validate_cluster, build_settings).
struct numeric_bound {
  std::string_view key;
  std::uint64_t lo;
  std::uint64_t hi;
};

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr std::uint64_t second_ms = 1000, minute_ms = 60 * second_ms, hour_ms = 60 * minute_ms,
                        day_ms = 24 * hour_ms;

const std::vector<numeric_bound>& numeric_bounds() {
  static const std::vector<numeric_bound> bounds = {
      // sizes and counts
      {"scheduler.max-threads", 1, 256},
      {"warp.l1-max-entries", 0, 1'000'000'000},
      {"warp.l1-max-bytes", 0, 1024 * GiB},
      {"warp.hotkeys-sample", 1, 1'048'576},
      {"warp.hotkeys-capacity", 1, 100'000},
      {"warp.warmup-limit", 0, 1'000'000},
      {"warp.max-key-size", 1, 1 * MiB},
      {"warp.max-value-size", 1, 1 * GiB},
      {"warp.ranges", 1, 65536},
      {"warp.batch-busy-rate", 0, 100'000'000},
      {"warp.compress-above", 0, 4 * GiB},
      {"warp.replication-factor", 1, 15},
      {"warp.read-replicas", 1, 16},
      {"warp.resp-max-clients", 1, 1'000'000},
      {"warp.resp-max-bulk-length", 1, 4 * GiB},
      {"warp.resp-max-multibulk-length", 1, 2'147'483'647},
      {"warp.resp-max-inline-length", 1, 64 * MiB},
      {"warp.resp-max-output-buffer", 1, 64 * GiB},
      {"warp.admin-max-connections", 1, 65536},
      {"warp.admin-max-watch-streams", 1, 65536},
      {"warp.admin-max-body", 0, 16 * MiB},
      {"warp.storage-rate", 0, 1'000'000'000},
      {"warp.storage-breaker", 0, 1'000'000},
      {"warp.storage-breaker-ratio", 0, 100},
      {"warp.refresh-ahead", 0, 99},
      {"warp.validator-sample", 0, 100'000},
      {"warp.validator-max-batch", 1, 100'000},
      {"warp.validator-max-pending", 1, 10'000'000},
      {"warp.federation-batch-size", 1, 65536},
      {"warp.federation-queue-limit", 1, 100'000'000},
      // durations, in milliseconds
      {"warp.default-ttl", 0, 3650 * day_ms},
      {"warp.storage-breaker-cooldown", 1, hour_ms},
      {"warp.max-stale", 0, 30 * day_ms},
      {"warp.soft-timeout", 0, minute_ms},
      {"warp.validator-interval", 10, hour_ms},
      {"warp.validator-grace", 0, 10 * minute_ms},
      {"warp.federation-max-delay", 1, minute_ms},
      {"warp.federation-anti-entropy-interval", 0, day_ms},
      {"warp.federation-ack-timeout", 100, 10 * minute_ms},
      {"warp.hotkeys-half-life", 0, 30 * day_ms},
      {"warp.discovery-interval", 1, day_ms},
      {"warp.heartbeat-interval", 1, minute_ms},
      {"warp.failure-timeout", 1, hour_ms},
      {"warp.owner-fetch-timeout", 1, minute_ms},
      {"warp.max-clock-skew", 1, day_ms},
      {"warp.strong-timeout", 1, 10 * minute_ms},
      {"warp.anti-entropy-interval", 1, day_ms},
      {"warp.strong-groups", 0, 4096},
      {"warp.raft-tick", 1, minute_ms},
      {"warp.raft-snapshot-entries", 0, 1'000'000'000},
      {"warp.watch-ring-entries", 1, 100'000'000},
      {"warp.watch-ring-bytes", 1024, 64 * GiB},
      {"warp.watch-max-watchers", 1, 1'000'000},
      {"warp.watch-max-queue", 1, 100'000'000},
      {"warp.watch-progress-interval", 10, hour_ms},
      {"warp.resp-idle-timeout", 0, 30 * day_ms},
      {"warp.admin-request-timeout", 100, 5 * minute_ms},
  };
  return bounds;
}

std::string bound_text(const option_def& def, std::uint64_t v) {
  if (def.kind == opt_kind::duration) return std::to_string(v) + "ms";
  return std::to_string(v);
}

warp::result<void> check_bounds(const reader& rd) {
  for (const auto& b : numeric_bounds()) {
    const auto* def = find_option(b.key);
    if (!def) continue;  // an option another build leaves out
    std::uint64_t v = 0;
    if (def->kind == opt_kind::size) {
      auto r = rd.size(b.key);
      if (!r) return r.err();
      v = *r;
    } else if (def->kind == opt_kind::duration) {
      auto r = rd.duration(b.key);
      if (!r) return r.err();
      // A negative duration is out of every range below.
      v = r->count() < 0 ? ~std::uint64_t{0} : static_cast<std::uint64_t>(r->count());
    } else {
      continue;
    }
    if (v < b.lo || v > b.hi)
      return {errc::invalid_argument,
              std::string{def->flag} + ": must be between " + bound_text(*def, b.lo) + " and " +
                  bound_text(*def, b.hi) + ", got " +
                  (v == ~std::uint64_t{0} ? std::string{"a negative value"} : bound_text(*def, v))};
  }
  return {};
}

// The admin endpoint's settings; the token file is read here so a missing or empty one is a
// usage error before anything starts.
warp::result<void> read_admin(const reader& rd, admin_options& a) {
  auto text = [&](std::string_view key, std::string& out) -> warp::result<void> {
    auto v = rd.str(key);
    if (!v) return v.err();
    out = std::move(*v);
    return {};
  };
  if (auto st = text("warp.admin-tls-cert", a.tls_cert); !st) return st;
  if (auto st = text("warp.admin-tls-key", a.tls_key); !st) return st;
  // The node port's TLS pair (another part of warpd) serves the admin endpoint too unless
  // it has its own; looked up by name so a build without those flags still compiles.
  if (a.tls_cert.empty() && a.tls_key.empty() && find_option("warp.tls-cert") &&
      find_option("warp.tls-key")) {
    if (auto st = text("warp.tls-cert", a.tls_cert); !st) return st;
    if (auto st = text("warp.tls-key", a.tls_key); !st) return st;
  }
  if (a.tls_cert.empty() != a.tls_key.empty())
    return {errc::invalid_argument, "--admin-tls-cert and --admin-tls-key: give both or neither"};
  std::string token_file;
  if (auto st = text("warp.admin-token-file", token_file); !st) return st;
  if (!token_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(token_file, ec))
      return {errc::invalid_argument,
              "--admin-token-file: '" + token_file + "' is not a readable regular file"};
    std::ifstream in{token_file, std::ios::binary};
    if (!in)
      return {errc::invalid_argument,
              "--admin-token-file: cannot open '" + token_file + "': " + std::strerror(errno)};
    // A token is a short secret: refuse to slurp a large file by mistake.
    constexpr std::size_t max_token = 4096;
    std::string token(max_token + 1, '\0');
    in.read(token.data(), static_cast<std::streamsize>(token.size()));
    token.resize(static_cast<std::size_t>(in.gcount()));
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    if (token.size() > max_token)
      return {errc::invalid_argument,
              "--admin-token-file: '" + token_file + "' is longer than 4096 bytes"};
    if (token.size() < 16)
      return {errc::invalid_argument, "--admin-token-file: the token in '" + token_file +
                                          "' must be at least 16 characters"};
    for (unsigned char c : token)
      if (c <= 0x20 || c >= 0x7f)
        return {errc::invalid_argument, "--admin-token-file: the token in '" + token_file +
                                            "' must be printable ASCII without spaces"};
    a.token = std::move(token);
  }
  auto n = rd.size("warp.admin-max-connections");
  if (!n) return n.err();
  a.max_connections = *n;
  auto ws = rd.size("warp.admin-max-watch-streams");
  if (!ws) return ws.err();
  a.max_watch_streams = *ws;
  auto t = rd.duration("warp.admin-request-timeout");
  if (!t) return t.err();
  a.request_timeout = *t;
  auto b = rd.size("warp.admin-max-body");
  if (!b) return b.err();
  a.max_body = *b;
  return {};
}

}  // namespace

// The RESP sidecar is on by default.
constexpr std::string_view resp_default = "127.0.0.1:6380";

const std::vector<option_def>& option_table() {
  // The fallbacks here are warpd's defaults (they differ from node_config's in-code
  // defaults where a daemon wants different ones: durable SQLite storage, admin HTTP on).
  static const std::vector<option_def> table = {
      {"warp.name", "--name", opt_kind::string, "",
       "Node name shown in views, logs and metrics (default: warp-<pid>)"},
      {"warp.listen", "--listen", opt_kind::string, "127.0.0.1:4700",
       "HOST:PORT of the node-to-node and warpctl endpoint (CAF); port 0 = any free port, "
       "empty = off"},
      {"warp.peers", "--peers", opt_kind::string_list, "", "Seed peers, HOST:PORT,..."},
      // -- federation (docs/federation.md) -------------------------------------------------
      {"warp.region", "--region", opt_kind::string, "",
       "This node's region; empty = no federation (needs --listen)"},
      {"warp.federation-link", "--federation-link", opt_kind::string_list, "",
       "REGION=HOST:PORT of a gateway of another region (its node port), repeatable; "
       "several for one region are tried in order"},
      {"warp.federation-batch-size", "--federation-batch-size", opt_kind::size, "500",
       "Changes per batch sent to a region, at most"},
      {"warp.federation-max-delay", "--federation-max-delay", opt_kind::duration, "1s",
       "A change waits at most this long for its batch to fill"},
      {"warp.federation-queue-limit", "--federation-queue-limit", opt_kind::size, "100000",
       "Changes queued per linked region, at most"},
      {"warp.federation-queue-full", "--federation-queue-full", opt_kind::string, "repair",
       "Full queue: repair (drop, count, re-send by anti-entropy; writers never block)"},
      {"warp.federation-anti-entropy-interval", "--federation-anti-entropy-interval",
       opt_kind::duration, "60s",
       "How often digests of the federated keys are compared with each region (0 = only "
       "after an overflow or a link coming back)"},
      {"warp.federation-ack-timeout", "--federation-ack-timeout", opt_kind::duration, "5s",
       "A batch not acknowledged (applied) within this long is sent again"},
      {"warp.federation-kafka", "--federation-kafka", opt_kind::string, "",
       "Kafka bootstrap servers (HOST:PORT[,...]) of the federation's Kafka transport: a "
       "link REGION=kafka travels over topics PREFIX<from>.<to>; empty = no Kafka"},
      {"warp.federation-kafka-topic-prefix", "--federation-kafka-topic-prefix", opt_kind::string,
       "warp.fed.", "Prefix of the federation topics (PREFIX<from>.<to>)"},
      {"warp.federation-kafka-group", "--federation-kafka-group", opt_kind::string, "",
       "Consumer group of this region's nodes (the same on every node of the region); "
       "empty = warp-fed-<region>"},
      {"warp.federation-kafka-format", "--federation-kafka-format", opt_kind::string, "msgpack",
       "Envelope of the records this node produces: msgpack | json (docs/kafka.md)"},
      {"warp.federation-kafka-property", "--federation-kafka-property", opt_kind::string_list, "",
       "Extra librdkafka setting of the federation's producers and consumer, NAME=VALUE "
       "(repeatable), e.g. security.protocol=ssl"},
      {"warp.storage", "--storage", opt_kind::string, "sqlite",
       "memory | sqlite (DATA-DIR/warp.db) | sqlite:PATH | postgres:URI"},
      {"warp.data-dir", "--data-dir", opt_kind::string, "./warp-data",
       "Directory for durable state (the SQLite database)"},
      {"warp.http", "--http", opt_kind::string, "127.0.0.1:4780",
       "HOST:PORT of the admin HTTP endpoint (/healthz, /metrics, /admin/stats, "
       "/admin/config, /admin/cluster); empty = off"},
      {"warp.resp", "--resp", opt_kind::string, resp_default,
       "HOST:PORT of the RESP (Redis protocol) sidecar; empty = off"},
      {"warp.resp-password", "--resp-password", opt_kind::string, "",
       "Password the RESP sidecar requires (AUTH); empty = none. Visible in `ps`: prefer "
       "--resp-password-file or WARP_RESP_PASSWORD"},
      {"warp.resp-password-file", "--resp-password-file", opt_kind::string, "",
       "File holding the RESP password (one trailing newline stripped; must not be "
       "world-readable)"},
      {"warp.patterns", "--pattern", opt_kind::string_list, "",
       "Key policy GLOB=MODE[:TTL], repeatable; MODE is strong_local, "
       "eventual_distributed or strong_distributed (+hydrate); changed at run time with "
       "/admin/patterns or `warpctl patterns`"},
      {"warp.patterns-version", "--patterns-version", opt_kind::size, "0",
       "Version counter of the --pattern table: a run-time table persisted in DATA-DIR/"
       "patterns.json or held by a peer replaces it only if its counter is higher (or equal "
       "with a higher node id); 0 = any run-time change wins"},
      {"warp.default-mode", "--default-mode", opt_kind::string, "strong_local",
       "Consistency mode of keys no pattern matches"},
      {"warp.default-ttl", "--default-ttl", opt_kind::duration, "0",
       "TTL of keys no pattern matches (250ms, 30s, 10m, 2h, 1d; 0 = none)"},
      // -- storage protection (key_policy::protection, docs/storage.md "Protection") -------
      {"warp.storage-rate", "--storage-rate", opt_kind::size, "0",
       "Node-wide limit on read-through storage fetches per second (token bucket, burst = "
       "one second); over it a miss fails with rate_limited; 0 = none; a pattern's +rate= "
       "gives it its own"},
      {"warp.storage-breaker", "--storage-breaker", opt_kind::size, "0",
       "Consecutive unreachable-storage failures that open the node-wide circuit breaker "
       "(misses then fail fast: storage_unavailable circuit open); 0 = never opens"},
      {"warp.storage-breaker-ratio", "--storage-breaker-ratio", opt_kind::size, "0",
       "Failure PERCENT of the last 10 s of storage fetches (once 20 are in the window) that "
       "opens the node-wide circuit breaker; 0 = off (a pattern's +breaker_ratio= gives it "
       "its own)"},
      {"warp.storage-breaker-cooldown", "--storage-breaker-cooldown", opt_kind::duration, "5s",
       "How long an open breaker fails fast before one probe fetch is let through"},
      {"warp.max-stale", "--max-stale", opt_kind::duration, "0",
       "Stale-on-error: how long past its L1 expiry or invalidation a value may still be "
       "served (counted as stale) when storage fails or the breaker is open; 0 = never"},
      {"warp.soft-timeout", "--soft-timeout", opt_kind::duration, "0",
       "With a stale value at hand, a miss waits this long for storage, then answers stale "
       "while the fetch goes on; 0 = off (needs --max-stale)"},
      {"warp.refresh-ahead", "--refresh-ahead", opt_kind::size, "0",
       "A hit in the last PERCENT of a key's L1 TTL refreshes it in the background (1-99; "
       "0 = off)"},
      // -- the validator (docs/validator.md) -------------------------------------------
      {"warp.validator", "--validator", opt_kind::string, "off",
       "Validator mode of keys whose pattern sets no +validate=: off | noop (count) | alert "
       "(count and log each inconsistency) | heal (also invalidate or refresh the copy)"},
      {"warp.validator-interval", "--validator-interval", opt_kind::duration, "1s",
       "How often the validator checks changed keys and a random sample of cached keys"},
      {"warp.validator-grace", "--validator-grace", opt_kind::duration, "500ms",
       "Grace window for changes in flight: a disagreement is declared only if still there "
       "this long after it was first seen"},
      {"warp.validator-sample", "--validator-sample", opt_kind::size, "64",
       "Cached keys drawn at random per validator tick"},
      {"warp.validator-max-batch", "--validator-max-batch", opt_kind::size, "1000",
       "Keys one validator tick (or one warpctl validate) checks, at most"},
      {"warp.validator-max-pending", "--validator-max-pending", opt_kind::size, "10000",
       "Changed keys waiting for their check, at most (more are dropped and counted)"},
      {"warp.log-level", "--log-level", opt_kind::string, "info",
       "trace, debug, info, warn, error, critical or off"},
      {"warp.l1-max-entries", "--l1-max-entries", opt_kind::size, "0",
       "Upper bound on L1 entries (0 = unbounded)"},
      {"warp.l1-max-bytes", "--l1-max-bytes", opt_kind::size, "268435456",
       "Upper bound on L1 bytes (0 = unbounded)"},
      // -- hot keys, warm-up and admission (docs/hotkeys.md) --------------------------------
      {"warp.l1-admission", "--l1-admission", opt_kind::string, "tinylfu",
       "Admission filter of a full L1: tinylfu (a new key enters only if read more often "
       "than the entry it would evict; only with --l1-max-entries/--l1-max-bytes) or none "
       "(sampled LRU alone)"},
      {"warp.hotkeys", "--hotkeys", opt_kind::boolean, "true",
       "Track the hottest keys read on this node (/admin/hotkeys, warpctl hotkeys)"},
      {"warp.hotkeys-sample", "--hotkeys-sample", opt_kind::size, "64",
       "Hot-key tracking records one read in N (rounded up to a power of two; 1 = all)"},
      {"warp.hotkeys-capacity", "--hotkeys-capacity", opt_kind::size, "256",
       "Keys kept in the hot-key list"},
      {"warp.hotkeys-half-life", "--hotkeys-half-life", opt_kind::duration, "60s",
       "Hot-key counts halve once per half-life (0 = never)"},
      {"warp.warmup", "--warmup", opt_kind::boolean, "false",
       "Load hot keys into L1 on start and when this node takes over key ranges (on/off)"},
      {"warp.warmup-limit", "--warmup-limit", opt_kind::size, "1000",
       "Most keys one warm-up loads"},
      {"warp.max-key-size", "--max-key-size", opt_kind::size, "8192",
       "Largest key a client may send, in bytes"},
      {"warp.max-value-size", "--max-value-size", opt_kind::size, "16777216",
       "Largest value a client may send, in bytes"},
      {"scheduler.max-threads", "--threads", opt_kind::size, "2",
       "Worker threads of the actor system (CAF's scheduler.max-threads)"},
      // -- cluster (node_config.cluster, docs/cluster.md); fallbacks = cluster_options' --
      {"warp.discovery-dns", "--discovery-dns", opt_kind::string, "",
       "DNS discovery: NAME or NAME:PORT (every A/AAAA record is a peer; PORT defaults to "
       "this node's listen port) or srv:NAME (every SRV record is a peer at its target and "
       "port); empty = off"},
      {"warp.discovery-interval", "--discovery-interval", opt_kind::duration, "10s",
       "How often the discovery name is re-resolved"},
      {"warp.discovery-dns-server", "--discovery-dns-server", opt_kind::string, "",
       "DNS server discovery asks, HOST[:PORT] (IPv4, port 53 by default); empty = the "
       "system resolver"},
      {"warp.heartbeat-interval", "--heartbeat-interval", opt_kind::duration, "200ms",
       "How often a node tells every peer it is alive"},
      {"warp.failure-timeout", "--failure-timeout", opt_kind::duration, "2s",
       "A peer silent for half of this is suspect, for all of it down (at least twice "
       "--heartbeat-interval)"},
      {"warp.ranges", "--ranges", opt_kind::size, "271",
       "Number of key ranges (must be the same on every node of a cluster)"},
      {"warp.allow-unshared-storage", "--allow-unshared-storage", opt_kind::boolean, "false",
       "Run even when a cluster member uses other storage while eventual_distributed keys "
       "are configured (logged as a warning); default: refuse to run (exit 1)"},
      {"warp.batching", "--batching", opt_kind::boolean, "true",
       "Adaptive batching of outgoing change records (true/false, on/off); off = one "
       "message per record"},
      {"warp.batch-max-records", "--batch-max-records", opt_kind::size, "4096",
       "Most records in one outgoing batch"},
      {"warp.batch-max-bytes", "--batch-max-bytes", opt_kind::size, "1048576",
       "Most bytes in one outgoing batch"},
      {"warp.batch-max-delay", "--batch-max-delay", opt_kind::duration_us, "500us",
       "How long a record may wait for more under load (500us, 2ms, ...; an idle node sends "
       "at once)"},
      {"warp.batch-busy-rate", "--batch-busy-rate", opt_kind::size, "20000",
       "Changes/s above which records are held back to batch at all; below it every change "
       "goes out at once (0 = always batch)"},
      {"warp.batch-target-records", "--batch-target-records", opt_kind::size, "256",
       "Under load a batch waits only until this many records arrive at the observed rate "
       "(capped by --batch-max-delay); at most --batch-max-records"},
      {"warp.compress-above", "--compress-above", opt_kind::size, "65536",
       "Batches larger than this many bytes are zlib-compressed (0 = never)"},
      {"warp.owner-fetch-timeout", "--owner-fetch-timeout", opt_kind::duration, "500ms",
       "How long a miss waits for the key range's owner before reading storage itself"},
      {"warp.max-clock-skew", "--max-clock-skew", opt_kind::duration, "5s",
       "A clock reading from another node or region further ahead than this is ignored, "
       "counted (warp_hlc_remote_skew_total) and logged (docs/merge.md)"},
      {"warp.read-replicas", "--read-replicas", opt_kind::size, "2",
       "Nodes that coalesce a range's misses: the owner, then standbys asked when it does "
       "not answer in time (1 = owner only)"},
      // -- strong_distributed (runtime/modes/strong.hpp, docs/strong.md) ---------------------
      {"warp.replication-factor", "--replication-factor", opt_kind::size, "3",
       "Copies of each key range for strong_distributed keys; quorums are majorities"},
      {"warp.strong-timeout", "--strong-timeout", opt_kind::duration, "1s",
       "Bound on one strong get/set/delete (past the store phase: unknown_outcome)"},
      {"warp.strong-members", "--strong-members", opt_kind::string_list, "",
       "Replica members HOST:PORT,... (the same list on every node; empty = --listen plus "
       "--peers)"},
      {"warp.strong-join", "--strong-join", opt_kind::boolean, "false",
       "Raft engine: join a running cluster; with an empty data dir take a fresh member id "
       "and vote nowhere until `warpctl members add` (docs/strong.md, Membership)"},
      {"warp.anti-entropy-interval", "--anti-entropy-interval", opt_kind::duration, "5s",
       "How often each strong range's digest is compared with its replicas (abd engine)"},
      {"warp.strong-engine", "--strong-engine", opt_kind::string, "raft",
       "What serves strong_distributed keys: raft (durable Raft groups, logs under "
       "<data-dir>/raft, read-modify-write) or abd (quorum registers in memory)"},
      {"warp.strong-groups", "--strong-groups", opt_kind::size, "0",
       "Raft groups the strong key space is split over (0 = 4 x the member count)"},
      {"warp.raft-tick", "--raft-tick", opt_kind::duration, "100ms",
       "Raft tick: heartbeats every tick, elections after 10-20 ticks without a leader"},
      {"warp.raft-snapshot-entries", "--raft-snapshot-entries", opt_kind::size, "10000",
       "Entries a Raft group applies before it snapshots its state and drops the log below "
       "(0 = never)"},
      // -- watch and history of strong keys (docs/coordination.md, "Watch") --------------
      {"warp.watch-ring-entries", "--watch-ring-entries", opt_kind::size, "4096",
       "Changes each Raft key group keeps for watch replay and history (older: compacted)"},
      {"warp.watch-ring-bytes", "--watch-ring-bytes", opt_kind::size, "4194304",
       "Bytes of keys and values each Raft key group keeps for watch replay and history"},
      {"warp.watch-max-watchers", "--watch-max-watchers", opt_kind::size, "256",
       "Concurrent watches on this node (C++ API and SSE)"},
      {"warp.watch-max-queue", "--watch-max-queue", opt_kind::size, "10000",
       "Events queued for one watcher before it is cut off as slow"},
      {"warp.watch-progress-interval", "--watch-progress-interval", opt_kind::duration, "1s",
       "How often an idle watch gets a progress event"},
      {"warp.admin-max-watch-streams", "--admin-max-watch-streams", opt_kind::size, "64",
       "Concurrent GET /v1/watch streams on the admin port (503 beyond)"},
      // -- node port security (node_config.transport, bus/node_transport, docs/security.md)
      {"warp.tls-cert", "--tls-cert", opt_kind::string, "",
       "PEM certificate (chain) this node presents on the node port; with --tls-key and "
       "--tls-ca turns on mutual TLS"},
      {"warp.tls-key", "--tls-key", opt_kind::string, "", "PEM private key of --tls-cert"},
      {"warp.tls-ca", "--tls-ca", opt_kind::string, "",
       "PEM CA certificate(s): peers and warpctl must present a certificate signed by it"},
      {"warp.insecure", "--insecure", opt_kind::boolean, "false",
       "Allow --listen on a non-loopback address without TLS (and RESP/admin ports there "
       "without a password/token)"},
      {"warp.max-message-size", "--max-message-size", opt_kind::size, "67108864",
       "Largest message a node-port connection may announce after its handshake, in bytes "
       "(at least --max-value-size + 64 KiB)"},
      {"warp.max-handshake-size", "--max-handshake-size", opt_kind::size, "65536",
       "Largest first (handshake) message of a node-port connection, in bytes: the most a "
       "stranger can make the node allocate per connection (1 KiB..16 MiB)"},
      {"warp.max-pending-connections", "--max-pending-connections", opt_kind::size, "64",
       "Node-port connections allowed in their handshake at once (each at most 5 s)"},
      // -- RESP sidecar limits (sidecar/resp_server.hpp resp_options) ---------------------
      {"warp.resp-max-clients", "--resp-max-clients", opt_kind::size, "10000",
       "Most concurrent RESP clients; further connections are refused"},
      {"warp.resp-idle-timeout", "--resp-idle-timeout", opt_kind::duration, "0",
       "Disconnect RESP clients idle this long, whole seconds (0 = never)"},
      {"warp.resp-max-bulk-length", "--resp-max-bulk-length", opt_kind::size, "536870912",
       "Largest RESP bulk string a client may send, in bytes"},
      {"warp.resp-max-multibulk-length", "--resp-max-multibulk-length", opt_kind::size, "1048576",
       "Most elements in one RESP command (multibulk)"},
      {"warp.resp-max-inline-length", "--resp-max-inline-length", opt_kind::size, "65536",
       "Longest inline (telnet-style) RESP command, in bytes"},
      {"warp.resp-max-output-buffer", "--resp-max-output-buffer", opt_kind::size, "67108864",
       "Per-client output bound in bytes; a client over it is disconnected"},
      // -- admin HTTP security and limits (admin_http.hpp, docs/security.md) ---------------
      {"warp.admin-tls-cert", "--admin-tls-cert", opt_kind::string, "",
       "PEM certificate (chain) of the admin HTTP endpoint; with --admin-tls-key it serves "
       "HTTPS only (default: --tls-cert when given)"},
      {"warp.admin-tls-key", "--admin-tls-key", opt_kind::string, "",
       "PEM private key for --admin-tls-cert"},
      {"warp.admin-token-file", "--admin-token-file", opt_kind::string, "",
       "File holding the bearer token every admin endpoint beyond /healthz, /readyz and "
       "/metrics requires; without it those are served on loopback binds only"},
      {"warp.admin-max-connections", "--admin-max-connections", opt_kind::size, "256",
       "Most concurrent admin HTTP connections; the oldest unfinished one is dropped for a "
       "new one"},
      {"warp.admin-request-timeout", "--admin-request-timeout", opt_kind::duration, "5s",
       "An admin HTTP request must arrive whole (head and body) within this"},
      {"warp.admin-max-body", "--admin-max-body", opt_kind::size, "65536",
       "Largest admin HTTP request body, in bytes (larger: 413 before reading it)"},
      {"warp.fault-injection", "--fault-injection", opt_kind::boolean, "false",
       "TEST ONLY (warp-nemesis): serve POST /admin/fault/partition on the admin port, which "
       "cuts this node's node-port links to the peers named in its body (HOST:PORT,...; "
       "empty heals) and refuses to dial them (docs/strong.md, \"Partition fault\")"},
      {"warp.resp-max-client-memory", "--resp-max-client-memory", opt_kind::size, "1073741824",
       "Bound on all RESP clients' buffers together (query + output), in bytes; over it the "
       "biggest clients are disconnected (Redis maxmemory-clients); 0 = none"},
      {"warp.resp-auth-max-failures", "--resp-auth-max-failures", opt_kind::size, "10",
       "Failed AUTH attempts after which a RESP connection is closed (0 = never)"},
      {"warp.resp-allow-flush", "--resp-allow-flush", opt_kind::boolean, "true",
       "Allow FLUSHDB/FLUSHALL on the RESP port (false: they answer an error and remove "
       "nothing)"},
      {"warp.resp-auth-failure-delay", "--resp-auth-failure-delay", opt_kind::duration, "10ms",
       "Pause after a failed AUTH, doubled per further failure (at most 2s); 0 = none"},
      // -- TLS on the RESP port ----------------------------------------------------------
      {"warp.resp-tls-cert", "--resp-tls-cert", opt_kind::string, "",
       "PEM certificate (chain) for TLS on the RESP port (default: --tls-cert if set)"},
      {"warp.resp-tls-key", "--resp-tls-key", opt_kind::string, "",
       "PEM private key for TLS on the RESP port (default: --tls-key if set)"},
      {"warp.resp-tls-ca", "--resp-tls-ca", opt_kind::string, "",
       "PEM CA bundle that verifies RESP client certificates (default: --tls-ca if set)"},
      {"warp.resp-tls-port", "--resp-tls-port", opt_kind::string, "",
       "PORT or HOST:PORT of a separate TLS listener beside --resp; empty = TLS on --resp "
       "itself when a certificate is given"},
      {"warp.resp-tls-auth-clients", "--resp-tls-auth-clients", opt_kind::string, "no",
       "RESP client certificates: no | optional | yes (Redis tls-auth-clients)"},
      // -- memory storage bounds ---------------------------------------------------------
      {"warp.maxmemory", "--maxmemory", opt_kind::size, "0",
       "Bound on --storage memory in bytes (keys + values + overhead estimate); 0 = none"},
      {"warp.maxmemory-policy", "--maxmemory-policy", opt_kind::string, "noeviction",
       "At --maxmemory: noeviction (writes fail with -OOM) | allkeys-lru | volatile-ttl"},
      // -- CDC ingest: Debezium change events from Kafka (docs/kafka.md) ------------------
      {"warp.cdc-brokers", "--cdc-brokers", opt_kind::string, "",
       "Kafka bootstrap servers (HOST:PORT[,...]) of the CDC topic; empty = no CDC ingest"},
      {"warp.cdc-topic", "--cdc-topic", opt_kind::string, "",
       "Kafka topic of Debezium change events, e.g. dbserver1.public.users"},
      {"warp.cdc-group", "--cdc-group", opt_kind::string, "warp-cdc",
       "Kafka consumer group of the CDC ingest (one per region: its members share the "
       "partitions)"},
      {"warp.cdc-key", "--cdc-key", opt_kind::string, "",
       "Cache key template over the row's key columns, e.g. 'user:{id}'"},
      {"warp.cdc-mode", "--cdc-mode", opt_kind::string, "invalidate",
       "invalidate (remove the key) | hydrate (store the row's JSON as the value)"},
      {"warp.cdc-commit-interval", "--cdc-commit-interval", opt_kind::duration, "200ms",
       "How often the CDC consumer commits the offsets of applied events (also on shutdown "
       "and rebalance); a crash re-applies at most this much"},
      {"warp.cdc-property", "--cdc-property", opt_kind::string_list, "",
       "Extra librdkafka setting of the CDC consumer, NAME=VALUE (repeatable), e.g. "
       "security.protocol=ssl or session.timeout.ms=10000"},
  };
  return table;
}

warpd_config::warpd_config() {
  // Declare the warp.* options so CAF lists them (`--caf#dump-config`) and knows the
  // section. CAF's own options (scheduler.max-threads) are declared by CAF already.
  opt_group group{custom_options_, "warp"};
  for (const auto& def : option_table()) {
    if (section_of(def.key) != "warp") continue;
    auto name = name_of(def.key);
    switch (def.kind) {
      case opt_kind::string:
      case opt_kind::duration:
      // Booleans come from the command line as text (on/off, yes/no, ...), and CAF drops a
      // value that does not fit the declared type: declare them as strings, the reader
      // accepts both a CAF bool from the file and text.
      case opt_kind::duration_us:
      case opt_kind::boolean:
        group.add<std::string>(name, def.help);
        break;
      case opt_kind::string_list:
        group.add<std::vector<std::string>>(name, def.help);
        break;
      case opt_kind::size:
        group.add<std::size_t>(name, def.help);
        break;
    }
  }
  load<caf::io::middleman>();
  warp::actors::register_control_protocol(*this);
}

namespace {

// CAF 0.17 stores sections and keys nobody declared without a word: `wrap { resp-password
// = "x" }` would start a node without its password. Everything in the file must be an
// option CAF or warpd declared. `prefix` is the dotted section path walked so far.
warp::result<void> check_declared(const warpd_config& cfg, const caf::settings& section,
                            const std::string& prefix, const std::string& path) {
  const auto& opts = cfg.declared_options();
  for (const auto& [name, value] : section) {
    auto full = prefix.empty() ? name : prefix + "." + name;
    if (auto sub = caf::get_if<caf::settings>(&value)) {
      bool known = false;
      for (const auto& opt : opts) {
        auto cat = opt.category();
        if (cat.size() >= full.size() && cat.compare(0, full.size(), full) == 0 &&
            (cat.size() == full.size() || cat[full.size()] == '.')) {
          known = true;
          break;
        }
      }
      if (!known)
        return {errc::invalid_argument,
                "config file '" + path + "': unknown section '" + full + "'"};
      if (auto st = check_declared(cfg, *sub, full, path); !st) return st;
      continue;
    }
    auto category = prefix.empty() ? std::string{"global"} : prefix;
    if (!opts.qualified_name_lookup(category, name))
      return {errc::invalid_argument, "config file '" + path + "': unknown option '" + full + "'"};
  }
  return {};
}

}  // namespace

warp::result<void> load_config_file(warpd_config& cfg, const std::string& path) {
  std::istringstream none;
  std::ifstream file;
  std::istream* in = &none;
  if (!path.empty()) {
    // An ifstream opens a directory without complaint and reads it as empty: the node
    // would start on defaults.
    std::error_code ec;
    auto st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st))
      return {errc::invalid_argument, "cannot open config file '" + path + "': no such file"};
    if (!std::filesystem::is_regular_file(st))
      return {errc::invalid_argument,
              "config file '" + path + "' is not a regular file (a directory?)"};
    file.open(path);
    if (!file)
      return {errc::invalid_argument,
              "cannot open config file '" + path + "': " + std::strerror(errno)};
    in = &file;
  }
  if (auto err = cfg.parse(caf::actor_system_config::string_list{}, *in))
    return {errc::invalid_argument,
            "config file '" + path + "': " + caf::actor_system_config::render(err)};
  if (auto st = check_declared(cfg, caf::content(cfg), "", path); !st) return st;
  // warpd's defaults for CAF's own options, unless the file set them (parse() rebuilds the
  // content, so they go in afterwards). CAF's scheduler default is at least 4 threads; a
  // cache node on a small box wants 2.
  const auto& content = caf::content(cfg);
  if (!caf::get_if(&content, "scheduler.max-threads"))
    cfg.set("scheduler.max-threads", std::int64_t{2});
  // CAF's own log file is not wanted: warpd logs through spdlog.
  if (!caf::get_if(&content, "logger.verbosity")) cfg.set("logger.verbosity", caf::atom("quiet"));
  return {};
}

void apply_cli(warpd_config& cfg, const cli_values& cli) {
  for (const auto& [key, value] : cli.strings) cfg.set(key, value);
  for (const auto& [key, value] : cli.lists) cfg.set(key, value);
  for (const auto& [key, value] : cli.sizes) cfg.set(key, static_cast<std::int64_t>(value));
}

// The CDC flags come as a set: a topic needs brokers and a key template, and the other way
// round; a half-given set is an error rather than an ingest that silently never starts.
static warp::result<void> validate_cdc(const warp::federation::cdc_config& c) {
  bool any = !c.brokers.empty() || !c.topic.empty() || !c.key_template.empty();
  if (!any) return {};
  if (c.brokers.empty() || c.topic.empty() || c.key_template.empty())
    return warp::error{errc::invalid_argument,
                       "cdc: --cdc-brokers, --cdc-topic and --cdc-key go together"};
  if (c.group.empty()) return warp::error{errc::invalid_argument, "cdc-group: empty"};
  if (c.commit_interval.count() <= 0)
    return warp::error{errc::invalid_argument, "cdc-commit-interval: must be > 0"};
  if (auto t = warp::federation::key_template::parse(c.key_template); !t) return t.err();
  return {};
}

warp::result<settings> build_settings(const warpd_config& cfg) {
  const auto& content = caf::content(cfg);
  // A typo in the file (`lisen = ...`) would otherwise be silently ignored.
  if (auto section = caf::get_if<caf::settings>(&content, "warp")) {
    for (const auto& entry : *section) {
      auto key = "warp." + entry.first;
      if (!find_option(key))
        return warp::error{errc::invalid_argument, "unknown option '" + key + "'"};
    }
  } else if (caf::get_if(&content, "warp")) {
    return warp::error{errc::invalid_argument, "'warp' must be a section: warp { ... }"};
  }

  reader rd{content};
  if (auto st = check_bounds(rd); !st) return st.err();
  settings out;
  if (auto st = read_admin(rd, out.admin); !st) return st.err();
  auto& n = out.node;
  {
    auto fi = rd.boolean("warp.fault-injection");
    if (!fi) return fi.err();
    out.fault_injection = *fi;
  }
#define WARPD_READ(target, call) \
  do {                           \
    auto v = call;               \
    if (!v) return v.err();      \
    target = std::move(*v);      \
  } while (false)
  WARPD_READ(n.name, rd.str("warp.name"));
  WARPD_READ(n.listen, rd.str("warp.listen"));
  WARPD_READ(n.peers, rd.list("warp.peers"));
  WARPD_READ(n.storage, rd.str("warp.storage"));
  WARPD_READ(n.data_dir, rd.str("warp.data-dir"));
  WARPD_READ(n.http, rd.str("warp.http"));
  WARPD_READ(n.resp, rd.str("warp.resp"));
  WARPD_READ(out.resp_password, rd.str("warp.resp-password"));
  WARPD_READ(out.resp_password_file, rd.str("warp.resp-password-file"));
  WARPD_READ(n.patterns, rd.list("warp.patterns"));
  {
    std::size_t pv = 0;
    WARPD_READ(pv, rd.size("warp.patterns-version"));
    n.patterns_version = pv;
  }
  WARPD_READ(n.log_level, rd.str("warp.log-level"));
  WARPD_READ(n.l1.max_entries, rd.size("warp.l1-max-entries"));
  WARPD_READ(n.l1.max_bytes, rd.size("warp.l1-max-bytes"));
  {
    std::string admission;
    WARPD_READ(admission, rd.str("warp.l1-admission"));
    if (admission == "tinylfu")
      n.l1.admission = warp::l1_admission::tinylfu;
    else if (admission == "none")
      n.l1.admission = warp::l1_admission::none;
    else
      return warp::error{errc::invalid_argument,
                         "l1-admission: tinylfu or none, got '" + admission + "'"};
    auto& h = n.hot_keys;
    std::size_t sample = 0;
    WARPD_READ(h.track, rd.boolean("warp.hotkeys"));
    WARPD_READ(sample, rd.size("warp.hotkeys-sample"));
    h.sample_every = static_cast<std::uint32_t>(sample);
    WARPD_READ(h.capacity, rd.size("warp.hotkeys-capacity"));
    WARPD_READ(h.half_life, rd.duration("warp.hotkeys-half-life"));
    WARPD_READ(h.warmup, rd.boolean("warp.warmup"));
    WARPD_READ(h.warmup_limit, rd.size("warp.warmup-limit"));
  }
  WARPD_READ(n.limits.max_key_size, rd.size("warp.max-key-size"));
  WARPD_READ(n.limits.max_value_size, rd.size("warp.max-value-size"));
  WARPD_READ(n.scheduler_threads, rd.size("scheduler.max-threads"));
  WARPD_READ(n.max_clock_skew, rd.duration("warp.max-clock-skew"));
  WARPD_READ(n.default_policy.ttl, rd.duration("warp.default-ttl"));
  {
    auto& g = n.default_policy.guard;
    std::size_t rate = 0, breaker = 0, refresh = 0;
    WARPD_READ(rate, rd.size("warp.storage-rate"));
    WARPD_READ(breaker, rd.size("warp.storage-breaker"));
    WARPD_READ(refresh, rd.size("warp.refresh-ahead"));
    g.rate = static_cast<double>(rate);
    g.breaker_failures = static_cast<std::uint32_t>(breaker);
    std::size_t ratio_pct = 0;
    WARPD_READ(ratio_pct, rd.size("warp.storage-breaker-ratio"));
    g.breaker_ratio = static_cast<double>(ratio_pct) / 100.0;
    g.refresh_ahead_pct = static_cast<std::uint32_t>(refresh);
    WARPD_READ(g.breaker_cooldown, rd.duration("warp.storage-breaker-cooldown"));
    WARPD_READ(g.max_stale, rd.duration("warp.max-stale"));
    WARPD_READ(g.soft_timeout, rd.duration("warp.soft-timeout"));
  }
  {
    auto& val = n.validator;
    std::string text;
    WARPD_READ(text, rd.str("warp.validator"));
    auto m = warp::parse_validate_mode(text);
    if (!m) return warp::error{errc::invalid_argument, "validator: " + m.err().message()};
    val.mode = *m;
    WARPD_READ(val.interval, rd.duration("warp.validator-interval"));
    WARPD_READ(val.grace, rd.duration("warp.validator-grace"));
    WARPD_READ(val.sample, rd.size("warp.validator-sample"));
    WARPD_READ(val.max_batch, rd.size("warp.validator-max-batch"));
    WARPD_READ(val.max_pending, rd.size("warp.validator-max-pending"));
  }
  {
    auto& f = n.federation;
    WARPD_READ(f.region, rd.str("warp.region"));
    WARPD_READ(f.links, rd.list("warp.federation-link"));
    WARPD_READ(f.batch_size, rd.size("warp.federation-batch-size"));
    WARPD_READ(f.max_delay, rd.duration("warp.federation-max-delay"));
    WARPD_READ(f.queue_limit, rd.size("warp.federation-queue-limit"));
    WARPD_READ(f.queue_full, rd.str("warp.federation-queue-full"));
    WARPD_READ(f.anti_entropy_interval, rd.duration("warp.federation-anti-entropy-interval"));
    WARPD_READ(f.ack_timeout, rd.duration("warp.federation-ack-timeout"));
    WARPD_READ(f.kafka_brokers, rd.str("warp.federation-kafka"));
    WARPD_READ(f.kafka_topic_prefix, rd.str("warp.federation-kafka-topic-prefix"));
    WARPD_READ(f.kafka_group, rd.str("warp.federation-kafka-group"));
    WARPD_READ(f.kafka_format, rd.str("warp.federation-kafka-format"));
    std::vector<std::string> props;
    WARPD_READ(props, rd.list("warp.federation-kafka-property"));
    for (auto& p : props) {
      auto eq = p.find('=');
      if (eq == std::string::npos || eq == 0)
        return warp::error{errc::invalid_argument,
                           "federation-kafka-property: expected NAME=VALUE, got '" + p + "'"};
      f.kafka_properties.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    }
  }
  std::string mode_text;
  WARPD_READ(mode_text, rd.str("warp.default-mode"));
  auto& c = n.cluster;
  WARPD_READ(c.discovery_dns, rd.str("warp.discovery-dns"));
  WARPD_READ(c.discovery_interval, rd.duration("warp.discovery-interval"));
  WARPD_READ(c.discovery_dns_server, rd.str("warp.discovery-dns-server"));
  WARPD_READ(c.heartbeat_interval, rd.duration("warp.heartbeat-interval"));
  WARPD_READ(c.failure_timeout, rd.duration("warp.failure-timeout"));
  WARPD_READ(c.ranges, rd.size("warp.ranges"));
  WARPD_READ(c.batching, rd.boolean("warp.batching"));
  WARPD_READ(c.allow_unshared_storage, rd.boolean("warp.allow-unshared-storage"));
  WARPD_READ(c.batch_max_records, rd.size("warp.batch-max-records"));
  WARPD_READ(c.batch_max_bytes, rd.size("warp.batch-max-bytes"));
  WARPD_READ(c.batch_max_delay, rd.duration_us("warp.batch-max-delay"));
  std::size_t busy_rate = 0;
  WARPD_READ(busy_rate, rd.size("warp.batch-busy-rate"));
  c.batch_busy_rate = static_cast<double>(busy_rate);
  WARPD_READ(c.batch_target_records, rd.size("warp.batch-target-records"));
  WARPD_READ(c.compress_above, rd.size("warp.compress-above"));
  WARPD_READ(c.owner_fetch_timeout, rd.duration("warp.owner-fetch-timeout"));
  WARPD_READ(c.read_replicas, rd.size("warp.read-replicas"));
  auto& sc = n.strong;
  WARPD_READ(sc.replication_factor, rd.size("warp.replication-factor"));
  WARPD_READ(sc.timeout, rd.duration("warp.strong-timeout"));
  WARPD_READ(sc.members, rd.list("warp.strong-members"));
  WARPD_READ(sc.anti_entropy_interval, rd.duration("warp.anti-entropy-interval"));
  WARPD_READ(sc.join, rd.boolean("warp.strong-join"));
  std::string engine_text;
  WARPD_READ(engine_text, rd.str("warp.strong-engine"));
  if (engine_text == "raft")
    sc.engine = warp::strong_engine::raft;
  else if (engine_text == "abd")
    sc.engine = warp::strong_engine::abd;
  else
    return warp::error{errc::invalid_argument,
                       "strong-engine: must be raft or abd, got '" + engine_text + "'"};
  WARPD_READ(sc.groups, rd.size("warp.strong-groups"));
  WARPD_READ(sc.raft_tick, rd.duration("warp.raft-tick"));
  WARPD_READ(sc.raft_snapshot_entries, rd.size("warp.raft-snapshot-entries"));
  WARPD_READ(sc.watch.ring_entries, rd.size("warp.watch-ring-entries"));
  WARPD_READ(sc.watch.ring_bytes, rd.size("warp.watch-ring-bytes"));
  WARPD_READ(sc.watch.max_watchers, rd.size("warp.watch-max-watchers"));
  WARPD_READ(sc.watch.max_queue, rd.size("warp.watch-max-queue"));
  WARPD_READ(sc.watch.progress_interval, rd.duration("warp.watch-progress-interval"));
  if (sc.replication_factor == 0 || sc.replication_factor > 15)
    return warp::error{errc::invalid_argument,
                       "replication-factor: must be between 1 and 15, got " +
                           std::to_string(sc.replication_factor)};
  if (sc.timeout.count() <= 0)
    return warp::error{errc::invalid_argument, "strong-timeout: must be positive"};
  if (sc.anti_entropy_interval.count() <= 0)
    return warp::error{errc::invalid_argument, "anti-entropy-interval: must be positive"};
  for (const auto& m : sc.members)
    if (auto e = parse_endpoint(m); !e)
      return warp::error{errc::invalid_argument, "strong-members: " + e.err().message()};
  auto& tr = n.transport;
  WARPD_READ(tr.tls_cert, rd.str("warp.tls-cert"));
  WARPD_READ(tr.tls_key, rd.str("warp.tls-key"));
  WARPD_READ(tr.tls_ca, rd.str("warp.tls-ca"));
  WARPD_READ(tr.insecure, rd.boolean("warp.insecure"));
  WARPD_READ(tr.max_message_size, rd.size("warp.max-message-size"));
  WARPD_READ(tr.max_handshake_size, rd.size("warp.max-handshake-size"));
  WARPD_READ(tr.max_pending_connections, rd.size("warp.max-pending-connections"));
  if (tr.tls() && (tr.tls_cert.empty() || tr.tls_key.empty() || tr.tls_ca.empty()))
    return warp::error{errc::invalid_argument,
                       "tls: --tls-cert, --tls-key and --tls-ca go together (got only some)"};
  if (tr.max_handshake_size < 1024 || tr.max_handshake_size > 16 * 1024 * 1024)
    return warp::error{errc::invalid_argument,
                       "max-handshake-size: must be between 1024 and 16777216, got " +
                           std::to_string(tr.max_handshake_size)};
  if (tr.max_message_size > (std::size_t{1} << 31))
    return warp::error{errc::invalid_argument,
                       "max-message-size: must be at most 2147483648, got " +
                           std::to_string(tr.max_message_size)};
  if (tr.max_pending_connections == 0 || tr.max_pending_connections > 65536)
    return warp::error{errc::invalid_argument,
                       "max-pending-connections: must be between 1 and 65536, got " +
                           std::to_string(tr.max_pending_connections)};
  auto& r = out.resp;
  std::chrono::milliseconds idle{0};
  WARPD_READ(r.max_clients, rd.size("warp.resp-max-clients"));
  WARPD_READ(idle, rd.duration("warp.resp-idle-timeout"));
  WARPD_READ(r.max_bulk_length, rd.size("warp.resp-max-bulk-length"));
  WARPD_READ(r.max_multibulk_length, rd.size("warp.resp-max-multibulk-length"));
  WARPD_READ(r.max_inline_length, rd.size("warp.resp-max-inline-length"));
  WARPD_READ(r.max_output_buffer, rd.size("warp.resp-max-output-buffer"));
  WARPD_READ(r.max_client_memory, rd.size("warp.resp-max-client-memory"));
  WARPD_READ(r.auth_max_failures, rd.size("warp.resp-auth-max-failures"));
  WARPD_READ(r.auth_failure_delay, rd.duration("warp.resp-auth-failure-delay"));
  WARPD_READ(r.allow_flush, rd.boolean("warp.resp-allow-flush"));
  WARPD_READ(r.tls_cert, rd.str("warp.resp-tls-cert"));
  WARPD_READ(r.tls_key, rd.str("warp.resp-tls-key"));
  WARPD_READ(r.tls_ca, rd.str("warp.resp-tls-ca"));
  WARPD_READ(r.tls_port, rd.str("warp.resp-tls-port"));
  WARPD_READ(r.tls_auth_clients, rd.str("warp.resp-tls-auth-clients"));
  // The node port's TLS files (another option group) serve the RESP port too when no
  // resp-tls-* file is given: one certificate per host is the common case.
  for (auto [own, shared] :
       {std::pair<std::string*, std::string_view>{&r.tls_cert, "warp.tls-cert"},
        {&r.tls_key, "warp.tls-key"},
        {&r.tls_ca, "warp.tls-ca"}})
    if (own->empty() && find_option(shared)) WARPD_READ(*own, rd.str(shared));
  WARPD_READ(out.maxmemory, rd.size("warp.maxmemory"));
  std::string policy_text;
  WARPD_READ(policy_text, rd.str("warp.maxmemory-policy"));
  WARPD_READ(out.maxmemory_policy, warp::parse_maxmemory_policy(policy_text));
  WARPD_READ(out.cdc.brokers, rd.str("warp.cdc-brokers"));
  WARPD_READ(out.cdc.topic, rd.str("warp.cdc-topic"));
  WARPD_READ(out.cdc.group, rd.str("warp.cdc-group"));
  WARPD_READ(out.cdc.key_template, rd.str("warp.cdc-key"));
  {
    std::string mode_text;
    WARPD_READ(mode_text, rd.str("warp.cdc-mode"));
    WARPD_READ(out.cdc.mode, warp::federation::parse_cdc_mode(mode_text));
  }
  WARPD_READ(out.cdc.commit_interval, rd.duration("warp.cdc-commit-interval"));
  {
    std::vector<std::string> props;
    WARPD_READ(props, rd.list("warp.cdc-property"));
    for (auto& p : props) {
      auto eq = p.find('=');
      if (eq == std::string::npos || eq == 0)
        return warp::error{errc::invalid_argument,
                           "cdc-property: expected NAME=VALUE, got '" + p + "'"};
      out.cdc.properties.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    }
  }
#undef WARPD_READ
  if (auto e = validate_cdc(out.cdc); !e) return e.err();
  if (out.maxmemory > 0 && n.storage != "memory")
    return warp::error{errc::invalid_argument,
                       "maxmemory: bounds --storage memory only (storage is '" + n.storage + "')"};
  if (auto e = resolve_resp_secrets(out); !e) return e.err();
  if (r.tls_cert.empty() != r.tls_key.empty())
    return warp::error{errc::invalid_argument,
                       "resp-tls-cert and resp-tls-key: give both or neither"};
  if (!r.tls_port.empty() && r.tls_cert.empty())
    return warp::error{errc::invalid_argument,
                       "resp-tls-port: needs --resp-tls-cert and --resp-tls-key"};
  if (r.tls_auth_clients != "no" && r.tls_auth_clients != "optional" && r.tls_auth_clients != "yes")
    return warp::error{
        errc::invalid_argument,
        "resp-tls-auth-clients: expected no, optional or yes, got '" + r.tls_auth_clients + "'"};
  if (r.tls_auth_clients != "no" && r.tls_ca.empty())
    return warp::error{errc::invalid_argument,
                       "resp-tls-auth-clients " + r.tls_auth_clients + ": needs --resp-tls-ca"};
  if (!r.tls_port.empty()) {
    // A bare port listens on --resp's host (loopback by default).
    if (r.tls_port.find(':') == std::string::npos) {
      auto host = n.resp.empty() ? std::string{"127.0.0.1"} : n.resp.substr(0, n.resp.rfind(':'));
      r.tls_port = host + ":" + r.tls_port;
    }
    if (auto e = parse_endpoint(r.tls_port); !e)
      return warp::error{errc::invalid_argument, "resp-tls-port: " + e.err().message()};
  }
  if (auto e = validate_cluster(n); !e) return e.err();
  // The sidecar's idle clock ticks in seconds: refuse what it would silently round.
  if (idle.count() % 1000 != 0)
    return warp::error{errc::invalid_argument,
                       "resp-idle-timeout: must be whole seconds (0 = never), got " +
                           std::to_string(idle.count()) + "ms"};
  r.idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(idle);
  for (const auto& [what, value] :
       {std::pair<const char*, std::size_t>{"resp-max-clients", r.max_clients},
        {"resp-max-bulk-length", r.max_bulk_length},
        {"resp-max-multibulk-length", r.max_multibulk_length},
        {"resp-max-inline-length", r.max_inline_length},
        {"resp-max-output-buffer", r.max_output_buffer}})
    if (value == 0)
      return warp::error{errc::invalid_argument, std::string{what} + ": must be at least 1"};

  auto m = warp::parse_mode(mode_text);
  if (!m) return warp::error{errc::invalid_argument, "default-mode: " + m.err().message()};
  n.default_policy.consistency = *m;
  if (n.storage.empty()) return warp::error{errc::invalid_argument, "storage: must not be empty"};
  if (n.scheduler_threads == 0)
    return warp::error{errc::invalid_argument, "threads: must be at least 1"};
  if (n.limits.max_key_size == 0)
    return warp::error{errc::invalid_argument, "max-key-size: must be at least 1"};
  // Fail on a bad pattern here, with the flag's name, rather than deep inside node start.
  if (auto e = warp::pattern_registry::parse_specs(n.patterns); !e)
    return warp::error{errc::invalid_argument, e.err().message()};
  for (const auto& [what, ep] : {std::pair<const char*, const std::string*>{"listen", &n.listen},
                                 {"http", &n.http},
                                 {"resp", &n.resp}})
    if (!ep->empty())
      if (auto e = parse_endpoint(*ep); !e)
        return warp::error{errc::invalid_argument, std::string{what} + ": " + e.err().message()};
  for (const auto& peer : n.peers)
    if (auto e = parse_endpoint(peer); !e)
      return warp::error{errc::invalid_argument, "peers: " + e.err().message()};
  return out;
}

}  // namespace warpd
