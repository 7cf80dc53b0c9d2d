#include "apps/warp-bench/strong_baseline.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/warp-bench/baseline_clusters.hpp"

namespace warp_bench {

namespace fs = std::filesystem;

nlohmann::json run_etcd_baseline(const baseline_args& a) {
  // Every data dir under one fresh directory: Warp's and etcd's on the same medium.
  scratch_dir dir{a.data_dir};
  const fs::path& parent = dir.parent();

  warp_cluster warp;
  etcd_cluster etcd;
  start_warp(warp, a.warpd, a.warpd_args, dir.path());
  start_etcd(etcd, a.etcd, dir.path());
  std::string value(a.value_size, 'v');

  const char* ops[] = {"set", "get", "incr"};
  nlohmann::json out = nlohmann::json::array();
  struct row {
    std::string op;
    std::size_t clients;
    cell w, e;
  };
  std::vector<row> rows;
  for (const char* op : ops) {
    std::string o = op;
    for (auto n : a.clients) {
      row r{o, n, {}, {}};
      r.w = run_cell(
          n, a.seconds,
          [&](std::size_t t) {
            auto conn = std::make_shared<resp_client>(warp.resp_ports[t % 3]);
            return [conn, o, &value](std::uint64_t k, std::uint64_t&) {
              if (!conn->connected()) return outcome::error;
              resp_reply rep;
              if (o == "set")
                rep = conn->call({"SET", "s:" + std::to_string(k), value});
              else if (o == "get")
                rep = conn->call({"GET", "s:" + std::to_string(k)});
              else
                rep = conn->call({"INCR", "s:c:" + std::to_string(k)});
              if (rep.ok) return outcome::ok;
              // Strong keys answer `unsupported` to read-modify-write while they are ABD
              // registers: a cell to print as such, not a failure.
              if (rep.text.find("unsupported") != std::string::npos) return outcome::unsupported;
              return outcome::error;
            };
          },
          a.keys);
      r.e = run_cell(
          n, a.seconds,
          [&](std::size_t t) {
            auto conn = std::make_shared<etcd_client>(etcd.client_ports[t % 3]);
            return [conn, o, &value](std::uint64_t k, std::uint64_t& conflicts) {
              bool ok;
              if (o == "set")
                ok = conn->put("s:" + std::to_string(k), value);
              else if (o == "get")
                ok = conn->get("s:" + std::to_string(k));
              else
                ok = conn->incr("s:c:" + std::to_string(k), conflicts);
              return ok ? outcome::ok : outcome::error;
            };
          },
          a.keys);
      rows.push_back(std::move(r));
    }
  }

  std::printf(
      "\nWarp vs etcd, same run: 3 warpd processes (strong_distributed keys, RESP sidecar, one "
      "connection per client)\nvs a 3-member etcd cluster (v3 JSON gateway, linearizable reads, "
      "one keep-alive connection per client; INCR = range + txn on mod_revision, retried);\n"
      "%zu keys, %zu-byte values, %.1f s per cell, data dirs under %s\n",
      a.keys, a.value_size, a.seconds, parent.c_str());
  std::printf("%-5s %7s | %10s %8s %8s %6s | %10s %8s %8s %6s | %11s %11s\n", "op", "clients",
              "warp ops/s", "p50 us", "p99 us", "errors", "etcd ops/s", "p50 us", "p99 us",
              "errors", "warp/etcd", "p99 w/e");
  for (auto& r : rows) {
    char wcol[64], ratio[32], p99r[32];
    if (r.w.unsupported) {
      std::snprintf(wcol, sizeof wcol, "%10s %8s %8s %6s", "unsupported", "-", "-", "-");
      std::snprintf(ratio, sizeof ratio, "n/a");
      std::snprintf(p99r, sizeof p99r, "n/a");
    } else {
      std::snprintf(wcol, sizeof wcol, "%10.0f %8.0f %8.0f %6llu", r.w.rate(), r.w.p50_us,
                    r.w.p99_us, static_cast<unsigned long long>(r.w.errors));
      if (r.e.rate() > 0)
        std::snprintf(ratio, sizeof ratio, "%.2f", r.w.rate() / r.e.rate());
      else
        std::snprintf(ratio, sizeof ratio, "n/a");
      if (r.e.p99_us > 0 && r.w.ops > 0)
        std::snprintf(p99r, sizeof p99r, "%.2f", r.w.p99_us / r.e.p99_us);
      else
        std::snprintf(p99r, sizeof p99r, "n/a");
    }
    std::printf("%-5s %7zu | %s | %10.0f %8.0f %8.0f %6llu | %11s %11s\n", r.op.c_str(), r.clients,
                wcol, r.e.rate(), r.e.p50_us, r.e.p99_us,
                static_cast<unsigned long long>(r.e.errors), ratio, p99r);
    nlohmann::json j = {
        {"op", r.op}, {"clients", r.clients}, {"warp", cell_json(r.w)}, {"etcd", cell_json(r.e)}};
    if (!r.w.unsupported && r.e.rate() > 0) j["ops_ratio"] = r.w.rate() / r.e.rate();
    if (!r.w.unsupported && r.e.p99_us > 0 && r.w.ops > 0) j["p99_ratio"] = r.w.p99_us / r.e.p99_us;
    out.push_back(std::move(j));
  }
  std::uint64_t conflicts = 0;
  for (auto& r : rows) conflicts += r.e.conflicts;
  std::printf("etcd INCR compare conflicts retried: %llu\n",
              static_cast<unsigned long long>(conflicts));
  warp.stop();
  etcd.stop();
  return out;
}

}  // namespace warp_bench
