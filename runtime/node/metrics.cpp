#include "warp/metrics.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "warp/build_info.hpp"
#include "warp/config.hpp"
#include "warp/node.hpp"

namespace warp {

// Label values may hold any byte; the exposition format wants \\, \" and \n escaped.
std::string prometheus_label(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void append_prometheus_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

namespace {

// Writes one metric family with a single sample. Each family is written exactly once, so
// HELP/TYPE precede its only sample as the format requires.
class exposition {
 public:
  explicit exposition(std::string labels) : labels_(std::move(labels)) {}

  void counter(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, help, "counter", value);
  }
  void gauge(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, help, "gauge", value);
  }
  void info(std::string_view name, std::string_view help, const std::string& extra_labels) {
    head(name, help, "gauge");
    out_.append(name).append("{").append(labels_).append(",").append(extra_labels).append("} 1\n");
  }
  /// One family, one sample per value of `label` (every sample also has the node label).
  void counters(std::string_view name, std::string_view help, std::string_view label,
                const std::vector<std::pair<std::string_view, std::uint64_t>>& samples) {
    head(name, help, "counter");
    for (const auto& [value, n] : samples) {
      out_.append(name).append("{").append(labels_).append(",").append(label).append("=\"");
      out_.append(value).append("\"} ").append(std::to_string(n));
      out_ += '\n';
    }
  }
  /// counters() for a gauge family.
  void gauges(std::string_view name, std::string_view help, std::string_view label,
              const std::vector<std::pair<std::string_view, std::uint64_t>>& samples) {
    head(name, help, "gauge");
    for (const auto& [value, n] : samples) {
      out_.append(name).append("{").append(labels_).append(",").append(label).append("=\"");
      out_.append(value).append("\"} ").append(std::to_string(n));
      out_ += '\n';
    }
  }
  /// A gauge family of real values, one sample per value of `label`.
  void real_gauges(std::string_view name, std::string_view help, std::string_view label,
                   const std::vector<std::pair<std::string_view, double>>& samples) {
    head(name, help, "gauge");
    for (const auto& [value, x] : samples) {
      out_.append(name).append("{").append(labels_).append(",").append(label).append("=\"");
      out_.append(value).append("\"} ").append(fmt_real(x));
      out_ += '\n';
    }
  }
  void histogram(std::string_view name, std::string_view help, const histogram_snapshot& h) {
    head(name, help, "histogram");
    append_histogram(out_, name, labels_, h);
  }
  std::string take() { return std::move(out_); }

 private:
  void head(std::string_view name, std::string_view help, std::string_view type) {
    append_prometheus_header(out_, name, type, help);
  }
  void family(std::string_view name, std::string_view help, std::string_view type,
              std::uint64_t value) {
    head(name, help, type);
    out_.append(name).append("{").append(labels_).append("} ").append(std::to_string(value));
    out_ += '\n';
  }

  static std::string fmt_real(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", x);
    return buf;
  }

  std::string labels_;
  std::string out_;
};

// A postgres spec may carry a password (`password=...` or `scheme://user:pw@host`): never
// expose it on /metrics or /admin/config.
std::string redact_storage(std::string spec) {
  if (auto at = spec.find("password="); at != std::string::npos) {
    auto start = at + 9;
    auto end = spec.find_first_of(" &", start);
    spec.replace(start, end == std::string::npos ? std::string::npos : end - start, "***");
  }
  if (auto scheme = spec.find("://"); scheme != std::string::npos) {
    auto at = spec.find('@', scheme);
    auto colon = spec.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      spec.replace(colon + 1, at - colon - 1, "***");
  }
  return spec;
}

nlohmann::json policy_json(const key_policy& p) {
  return {{"mode", std::string{to_string(p.consistency)}},
          {"ttl_ms", p.ttl.count()},
          {"hydrate", p.hydrate}};
}

}  // namespace

std::string display_name(const node_config& cfg) {
  if (!cfg.name.empty()) return cfg.name;
  return "warp-" + std::to_string(::getpid());
}

std::string prometheus_text(const node& n) {
  const auto& cfg = n.config();
  auto s = n.stats();
  exposition out{"node=\"" + prometheus_label(display_name(cfg)) + "\""};
  out.info("warp_node_info", "Static facts about this node (value is always 1).",
           "id=\"" + std::to_string(n.id()) + "\",storage=\"" +
               prometheus_label(redact_storage(cfg.storage)) + "\",listen=\"" +
               prometheus_label(cfg.listen) + "\"");
  auto b = build();
  out.info("warp_build_info", "What this binary was built from (value is always 1).",
           "version=\"" + prometheus_label(b.version) + "\",commit=\"" +
               prometheus_label(b.commit) + "\",compiler=\"" + prometheus_label(b.compiler) +
               "\"");
  out.counter("warp_l1_hits_total", "L1 lookups that found a live entry.", s.l1.hits);
  out.counter("warp_l1_misses_total", "L1 lookups that found no live entry.", s.l1.misses);
  out.counter("warp_l1_evictions_total", "L1 entries dropped to honour the entry or byte bound.",
              s.l1.evictions);
  out.counter("warp_l1_expirations_total", "L1 entries dropped because their TTL passed.",
              s.l1.expirations);
  out.counter("warp_l1_sets_total", "Values stored into L1.", s.l1.sets);
  out.counter("warp_l1_removes_total", "Entries removed from L1.", s.l1.removes);
  out.gauge("warp_l1_entries", "Live entries in L1.", s.l1.entries);
  out.gauge("warp_l1_bytes", "Bytes held by L1 (keys, values and per-entry overhead).", s.l1.bytes);
  out.gauge("warp_l1_max_entries", "Configured L1 entry bound (0 = unbounded).",
            cfg.l1.max_entries);
  out.gauge("warp_l1_max_bytes", "Configured L1 byte bound (0 = unbounded).", cfg.l1.max_bytes);
  out.counter("warp_storage_fetches_total", "Reads that reached storage.", s.storage_fetches);
  // Per storage operation when the adapter counts them (every adapter open_storage() makes,
  // SQLite and PostgreSQL alike); a caller-supplied adapter has the node's total only.
  if (auto counts = n.storage().error_counts()) {
    std::vector<std::pair<std::string_view, std::uint64_t>> samples;
    for (std::size_t i = 0; i < storage_op_count; ++i)
      samples.emplace_back(to_string(static_cast<storage_op>(i)), (*counts)[i]);
    out.counters("warp_storage_errors_total", "Storage calls that failed, per operation.", "op",
                 samples);
  } else {
    out.counter("warp_storage_errors_total", "Storage calls that failed.", s.storage_errors);
  }
  out.counter("warp_storage_writes_total", "Writes made to storage.", s.storage_writes);
  out.counter("warp_stale_serves_total",
              "Reads answered with a stale value (storage failed, breaker open, or slower than "
              "the soft timeout).",
              s.stale_serves);
  out.counter("warp_soft_timeouts_total",
              "Stale answers given because storage was slower than the soft timeout.",
              s.soft_timeouts);
  out.counter("warp_refresh_aheads_total",
              "Background refreshes of keys hit near the end of their L1 TTL.", s.refresh_aheads);
  out.counter("warp_hlc_remote_skew_total",
              "Clock readings from other nodes or regions ignored for being more than "
              "--max-clock-skew ahead of this node's clock.",
              s.hlc_remote_skew);
  out.counter("warp_l1_admission_rejects_total",
              "New keys the L1 admission filter (TinyLFU) kept out of a full L1.",
              s.l1.admission_rejects);
  out.counter("warp_hotkeys_sampled_total", "Reads recorded by hot-key tracking (the sample).",
              s.hot_keys.sampled);
  out.gauge("warp_hotkeys_tracked", "Keys in the hot-key list.", s.hot_keys.tracked);
  out.counter("warp_warmup_runs_total", "Warm-ups run (on start, on taking over ranges).",
              s.warmup.runs);
  out.counter("warp_warmup_keys_loaded_total", "Keys a warm-up loaded into L1.", s.warmup.loaded);
  out.counter("warp_warmup_keys_failed_total",
              "Keys a warm-up could not load (storage error, rate limit, open breaker).",
              s.warmup.failed);
  out.counter("warp_warmup_keys_absent_total", "Keys a warm-up found absent in storage.",
              s.warmup.absent);
  out.gauge("warp_warmup_running", "1 while a warm-up runs.", s.warmup.running ? 1 : 0);
  if (!s.protection.empty()) {
    std::vector<std::string> names;
    for (const auto& p : s.protection) names.push_back(prometheus_label(p.pattern));
    auto family = [&](auto field) {
      std::vector<std::pair<std::string_view, std::uint64_t>> samples;
      for (std::size_t i = 0; i < names.size(); ++i)
        samples.emplace_back(names[i], field(s.protection[i]));
      return samples;
    };
    out.gauges("warp_storage_breaker_state",
               "Circuit breaker of storage fetches: 0 closed, 1 open, 2 half-open.", "pattern",
               family([](const node_stats::guard_entry& p) -> std::uint64_t {
                 return p.breaker == "open" ? 1 : p.breaker == "half_open" ? 2 : 0;
               }));
    out.counters("warp_storage_breaker_transitions_total", "Circuit breaker state changes.",
                 "pattern", family([](const node_stats::guard_entry& p) { return p.transitions; }));
    out.counters("warp_storage_breaker_rejected_total",
                 "Storage fetches failed fast because the breaker was open.", "pattern",
                 family([](const node_stats::guard_entry& p) { return p.rejected_open; }));
    out.counters("warp_storage_rate_limited_total",
                 "Storage fetches refused by the pattern's rate limit.", "pattern",
                 family([](const node_stats::guard_entry& p) { return p.rate_limited; }));
  }
  out.counter("warp_coalesced_reads_total", "L1 misses that joined an in-flight fetch.",
              s.coalesced_reads);
  const auto& lat = n.latencies();
  out.histogram("warp_get_duration_seconds",
                "Latency of node gets (L1 hits, read-through misses, remote reads).",
                lat.get.snapshot());
  out.histogram("warp_set_duration_seconds",
                "Latency of node sets (storage write-through, L1, replication hand-off).",
                lat.set.snapshot());
  if (const auto* f = n.storage().fetch_latency())
    out.histogram("warp_storage_fetch_duration_seconds", "Latency of storage fetches.",
                  f->snapshot());
  if (const auto* w = n.storage().write_latency())
    out.histogram("warp_storage_write_duration_seconds",
                  "Latency of storage writes (store and remove).", w->snapshot());
  out.histogram("warp_propagation_delay_seconds",
                "Eventual mode: from a change's version (the writer's clock) to its application "
                "on this node; millisecond resolution, includes clock skew.",
                lat.propagation.snapshot());
  out.counter("warp_node_port_accepted_total", "Connections accepted on the node port.",
              s.node_port.accepted);
  out.counter("warp_node_port_refused_oversize_total",
              "Node port connections closed for announcing a message over the limit.",
              s.node_port.refused_oversize);
  out.counter("warp_node_port_refused_pending_total",
              "Node port connections refused while too many handshakes were pending.",
              s.node_port.refused_pending);
  out.counter("warp_node_port_tls_failures_total",
              "Node port TLS handshakes that failed (no certificate, or not signed by the CA).",
              s.node_port.refused_tls);
  out.counter("warp_node_port_refused_malformed_total",
              "Node port connections closed for a BASP message out of place.",
              s.node_port.refused_malformed);
  // The validator (docs/validator.md): only on nodes that run it.
  if (const auto& v = s.validator; v.enabled) {
    out.counter("warp_validator_checked_total", "Cached keys the validator compared with storage.",
                v.checked);
    out.counters("warp_validator_inconsistent_total",
                 "Cached copies that still disagreed with storage after the grace window.",
                 "finding",
                 {{"deleted_in_storage", v.deleted_in_storage},
                  {"older_than_storage", v.older_than_storage},
                  {"value_differs", v.value_differs},
                  {"newer_than_storage", v.newer_than_storage}});
    out.counter("warp_validator_healed_total", "Inconsistent copies the validator healed.",
                v.healed);
    out.counter("warp_validator_errors_total", "Validator checks that could not read storage.",
                v.errors);
    out.counter("warp_validator_changes_dropped_total",
                "Changed keys not queued for a check (the queue was full).", v.changes_dropped);
    std::vector<std::pair<std::string_view, double>> nines;
    if (v.nines_1m) nines.emplace_back("1m", *v.nines_1m);
    if (v.nines_5m) nines.emplace_back("5m", *v.nines_5m);
    if (v.nines_10m) nines.emplace_back("10m", *v.nines_10m);
    out.real_gauges("warp_validator_consistency_nines",
                    "Consistency of cached copies with storage, -log10(inconsistent/checked) "
                    "over the window (log10(checked) when none was inconsistent).",
                    "window", nines);
  }
  return out.take();
}

std::string validation_json(const validation_report& r) {
  nlohmann::json found = nlohmann::json::array();
  auto ver = [](version v) {
    return v.empty() ? std::string{"none"} : std::to_string(v.hlc) + "@" + std::to_string(v.node);
  };
  for (const auto& f : r.found)
    found.push_back({{"key", f.key},
                     {"finding", f.finding},
                     {"l1_version", ver(f.l1_version)},
                     {"storage_version", ver(f.storage_version)}});
  nlohmann::json doc = {{"checked", r.checked}, {"inconsistent", r.inconsistent},
                        {"healed", r.healed},   {"uncached", r.uncached},
                        {"errors", r.errors},   {"found", std::move(found)}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string stats_json(node& n) {
  const auto& cfg = n.config();
  auto s = n.stats();
  nlohmann::json keys = nullptr;
  if (auto count = n.key_count()) keys = *count;
  nlohmann::json patterns = nlohmann::json::array();
  for (const auto& e : n.patterns().entries()) {
    auto p = policy_json(e.policy);
    p["glob"] = e.glob;
    patterns.push_back(std::move(p));
  }
  nlohmann::json protection = nlohmann::json::array();
  for (const auto& p : s.protection)
    protection.push_back({{"pattern", p.pattern},
                          {"breaker", p.breaker},
                          {"transitions", p.transitions},
                          {"rate_limited", p.rate_limited},
                          {"rejected_open", p.rejected_open}});
  auto lookups = s.l1.hits + s.l1.misses;
  nlohmann::json doc = {
      {"node",
       {{"name", display_name(cfg)},
        {"id", n.id()},
        {"listen", cfg.listen},
        {"listen_port", n.listen_port()},
        {"storage", n.storage().describe()}}},
      {"l1",
       {{"hits", s.l1.hits},
        {"misses", s.l1.misses},
        {"hit_ratio",
         lookups ? static_cast<double>(s.l1.hits) / static_cast<double>(lookups) : 0.0},
        {"evictions", s.l1.evictions},
        {"expirations", s.l1.expirations},
        {"sets", s.l1.sets},
        {"removes", s.l1.removes},
        {"entries", s.l1.entries},
        {"bytes", s.l1.bytes},
        {"max_entries", cfg.l1.max_entries},
        {"max_bytes", cfg.l1.max_bytes},
        {"admission", cfg.l1.admission == l1_admission::tinylfu ? "tinylfu" : "none"},
        {"admission_rejects", s.l1.admission_rejects}}},
      {"warmup",
       {{"enabled", cfg.hot_keys.warmup},
        {"limit", cfg.hot_keys.warmup_limit},
        {"runs", s.warmup.runs},
        {"loaded", s.warmup.loaded},
        {"failed", s.warmup.failed},
        {"absent", s.warmup.absent},
        {"running", s.warmup.running}}},
      {"storage",
       {{"fetches", s.storage_fetches},
        {"errors", s.storage_errors},
        {"writes", s.storage_writes},
        {"coalesced_reads", s.coalesced_reads},
        {"keys", keys},
        {"stale_serves", s.stale_serves},
        {"soft_timeouts", s.soft_timeouts},
        {"refresh_aheads", s.refresh_aheads},
        {"protection", protection}}},
      {"patterns", std::move(patterns)},
      {"default_policy", policy_json(n.patterns().default_policy())},
  };
  return doc.dump();
}

std::string hot_keys_json(const node& n, std::size_t limit) {
  const auto& cfg = n.config();
  const auto s = n.stats();
  nlohmann::json keys = nlohmann::json::array();
  for (auto& h : n.hot_keys(limit)) {
    // Keys are bytes: invalid UTF-8 is replaced in the dump below, never a throw.
    nlohmann::json k = {{"key", h.key}, {"reads", h.reads}};
    keys.push_back(std::move(k));
  }
  nlohmann::json doc = {
      {"node", display_name(cfg)},
      {"tracking", cfg.hot_keys.track},
      {"sample_every", cfg.hot_keys.sample_every},
      {"half_life_ms", cfg.hot_keys.half_life.count()},
      {"capacity", cfg.hot_keys.capacity},
      {"sampled", s.hot_keys.sampled},
      {"decays", s.hot_keys.decays},
      {"keys", std::move(keys)},
      {"warmup",
       {{"enabled", cfg.hot_keys.warmup},
        {"limit", cfg.hot_keys.warmup_limit},
        {"runs", s.warmup.runs},
        {"loaded", s.warmup.loaded},
        {"failed", s.warmup.failed},
        {"absent", s.warmup.absent},
        {"running", s.warmup.running}}},
  };
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string config_json(const node_config& cfg) {
  nlohmann::json doc = {
      {"name", display_name(cfg)},
      {"listen", cfg.listen},
      {"peers", cfg.peers},
      {"storage", redact_storage(cfg.storage)},
      {"data_dir", cfg.data_dir},
      {"http", cfg.http},
      {"resp", cfg.resp},
      {"patterns", cfg.patterns},
      {"default_mode", std::string{to_string(cfg.default_policy.consistency)}},
      {"default_ttl_ms", cfg.default_policy.ttl.count()},
      {"log_level", cfg.log_level},
      {"l1_max_entries", cfg.l1.max_entries},
      {"l1_max_bytes", cfg.l1.max_bytes},
      {"l1_admission", cfg.l1.admission == l1_admission::tinylfu ? "tinylfu" : "none"},
      {"hotkeys", cfg.hot_keys.track},
      {"hotkeys_sample", cfg.hot_keys.sample_every},
      {"hotkeys_capacity", cfg.hot_keys.capacity},
      {"hotkeys_half_life_ms", cfg.hot_keys.half_life.count()},
      {"warmup", cfg.hot_keys.warmup},
      {"warmup_limit", cfg.hot_keys.warmup_limit},
      {"max_key_size", cfg.limits.max_key_size},
      {"max_value_size", cfg.limits.max_value_size},
      {"threads", cfg.scheduler_threads},
  };
  return doc.dump();
}

}  // namespace warp
