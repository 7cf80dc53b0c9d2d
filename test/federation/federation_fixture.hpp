// The federation process tests' fixture: regions of warpd processes (each region a cluster
// with its own storage) linked over CAF, and helpers to read them
// (federation_warpd_test.cpp, federation_crdt_warpd_test.cpp).
#pragma once

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test/apps/warpd_fixture.hpp"
#include "test/sidecar/resp_client.hpp"
#include "test/support/eventually.hpp"
#include "test/support/process.hpp"

namespace warp::test::fed {

using json = nlohmann::json;
using namespace std::chrono_literals;

inline const char* federated_pattern = "f:*=eventual_distributed+hydrate+federated";

inline std::optional<std::string> http_get(std::uint16_t port, const std::string& path) {
  httplib::Client client{"127.0.0.1", port};
  client.set_read_timeout(5, 0);
  auto res = client.Get(path.c_str());
  if (!res || res->status != 200) return std::nullopt;
  return res->body;
}

struct region {
  std::string name;
  std::vector<std::uint16_t> ports;
  warp::test::temp_dir dir{"warp-fed"};
  std::vector<std::unique_ptr<warpd_process>> nodes;
  std::vector<std::vector<std::string>> args;
  bool shared_storage = true;
  std::string max_delay = "20ms";
  /// The --pattern flags of every node.
  std::vector<std::string> patterns{federated_pattern};
  /// Give every node a RESP sidecar (node(i).resp()), for the Redis-type tests.
  bool resp = false;

  region(std::string n, std::size_t size) : name(std::move(n)) {
    for (std::size_t i = 0; i < size; ++i) ports.push_back(warp::test::free_port());
  }
  std::string gateway(std::size_t i = 0) const {
    return name + "=127.0.0.1:" + std::to_string(ports[i]);
  }
  // `links`: REGION=HOST:PORT each.
  void start(const std::vector<std::string>& links, std::vector<std::string> extra = {}) {
    for (std::size_t i = 0; i < ports.size(); ++i) {
      std::vector<std::string> e{"--region",
                                 name,
                                 "--federation-max-delay",
                                 max_delay,
                                 "--federation-ack-timeout",
                                 "1s",
                                 "--federation-anti-entropy-interval",
                                 "0"};
      for (const auto& p : patterns) e.insert(e.end(), {"--pattern", p});
      for (const auto& l : links) e.insert(e.end(), {"--federation-link", l});
      e.insert(e.end(), extra.begin(), extra.end());
      auto a = warp::test::cluster_member_args(ports, i, dir.str(), e);
      a[1] = name + std::to_string(i);  // --name: unique across regions
      if (resp)
        for (std::size_t k = 0; k + 1 < a.size(); ++k)
          if (a[k] == "--resp") a[k + 1] = "127.0.0.1:0";
      // The region's own storage, shared by its nodes (memory: each node its own).
      if (shared_storage)
        for (std::size_t k = 0; k + 1 < a.size(); ++k)
          if (a[k] == "--storage") a[k + 1] = "sqlite:" + dir.str() + "/region.db";
      args.push_back(a);
      nodes.push_back(std::make_unique<warpd_process>(a, false));
    }
    for (auto& n : nodes) REQUIRE(n->wait_ready());
  }
  void restart(std::size_t i) {
    nodes[i] = std::make_unique<warpd_process>(args[i], false);
    REQUIRE(nodes[i]->wait_ready());
  }
  json status(std::size_t i) const {
    auto body = http_get(nodes[i]->http_port(), "/admin/federation");
    return body ? json::parse(*body) : json{};
  }
};

inline std::string get(const warpd_process& n, const std::string& key) {
  auto r = n.ctl({"get", key});
  if (r.exit_code == 1) return "(nil)";
  if (r.exit_code != 0) return "(error " + std::to_string(r.exit_code) + ")";
  return r.out.substr(0, r.out.size() - (r.out.ends_with('\n') ? 1 : 0));
}

inline bool everywhere(const region& r, const std::string& key, const std::string& want,
                       std::chrono::milliseconds limit = 30s) {
  return eventually(
      [&] {
        for (auto& n : r.nodes)
          if (get(*n, key) != want) return false;
        return true;
      },
      limit);
}

/// Node `n` holds every key of `want` with its value, checked with one `warpctl mget` a poll
/// (a warpctl process per key and poll took most of a kill -9 case's minute on a loaded
/// machine). `diff`, when given, gets the keys that differed at the last poll.
inline bool holds(const warpd_process& n, const std::map<std::string, std::string>& want,
                  std::chrono::milliseconds limit = 30s, std::string* diff = nullptr) {
  std::vector<std::string> args{"--json", "mget"};
  for (const auto& [k, v] : want) args.push_back(k);
  return eventually(
      [&] {
        auto r = n.ctl(args);
        auto doc = json::parse(r.out, nullptr, false);
        std::string off;
        if (r.exit_code != 0 || !doc.is_object() || !doc.contains("values")) {
          off = "(warpctl exit " + std::to_string(r.exit_code) + ": " + r.err + ")";
        } else {
          std::map<std::string, std::string> got;
          for (const auto& e : doc["values"])
            got[e.value("key", "")] =
                e["value"].is_string() ? e["value"].get<std::string>() : std::string{"(nil)"};
          for (const auto& [k, v] : want)
            if (got[k] != v) off += k + "=" + got[k] + " (want " + v + ") ";
        }
        if (diff) *diff = off;
        return off.empty();
      },
      limit);
}

/// Every node of `r` holds every key of `want` with its value (holds() on each).
inline bool everywhere(const region& r, const std::map<std::string, std::string>& want,
                       std::chrono::milliseconds limit = 30s, std::string* diff = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (const auto& n : r.nodes) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!holds(*n, want, std::max(left, std::chrono::milliseconds{0}), diff)) return false;
  }
  return true;
}

inline std::uint64_t applied_from(const json& status, const std::string& region) {
  if (!status.contains("received_from") || !status["received_from"].contains(region)) return 0;
  return status["received_from"][region].value("applied", std::uint64_t{0});
}

inline std::uint16_t resp_port(const warpd_process& n) {
  const auto& r = n.resp();
  return static_cast<std::uint16_t>(std::stoi(r.substr(r.rfind(':') + 1)));
}

/// One command through the node's RESP sidecar (the region was started with `resp`).
inline std::string cmd(const warpd_process& n, const std::vector<std::string>& args) {
  resp_conn c{resp_port(n)};
  return c.cmd(args);
}

/// Every node of `r` answers `args` with `want` (within 60 s).
inline bool all_answer(const region& r, const std::vector<std::string>& args,
                       const std::string& want, std::string* last = nullptr) {
  return eventually(
      [&] {
        for (auto& n : r.nodes) {
          auto got = cmd(*n, args);
          if (last) *last = got;
          if (got != want) return false;
        }
        return true;
      },
      60s);
}

}  // namespace warp::test::fed
