// warp-bench federation: replicated updates/s between two regions and the replication lag
// at a paced load, over the CAF link and over the Kafka transport, each beside its raw
// baseline measured in the same run (issue #13 item 8, docs/federation.md "Benchmark"):
//
//   CAF link   vs raw CAF: one-way messages of the same key and value sizes between two
//                          actor systems over CAF's network layer (loopback TCP);
//   Kafka link vs raw librdkafka: produce->consume on the same broker (kafka_baseline.hpp).
//
// Each region is one warpd process (`f:*` federated, memory storage). Updates go into
// region A through its sidecar (pipelined SETs of fresh keys); throughput counts until
// region B reports them all applied (/admin/federation), and the lag of a paced update is
// the time from its SET to B's keyspace notification for the key (SUBSCRIBE
// __keyevent@0__:set on B's sidecar). The raw baselines deliver a message to a consumer and
// stop; the links also apply each update to a node and notify a subscriber, which is the
// cost the ratio shows.
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "apps/warp-bench/baseline_clusters.hpp"
#include "apps/warp-bench/bench.hpp"
#include "apps/warp-bench/kafka_baseline.hpp"
#include "test/support/process.hpp"

namespace warp_bench {
namespace {

namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;

using fed_count_atom = caf::atom_constant<caf::atom("wbfcount")>;

struct federation_bench_options {
  std::size_t updates = 20'000;
  double rate = 1000;  // paced phase, updates per second
  double seconds = 5;
  std::size_t value_bytes = 64;
  std::string max_delay = "5ms";
  std::size_t batch = 500;
  int partitions = 4;
  int fetch_wait_ms = 10;
  std::string warpd;
  bool caf_link = true, kafka_link = true;
  bool json = false;
};

std::string warpd_binary(const std::string& given) {
  if (!given.empty()) return given;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  auto p = (self.parent_path() / "../warpd/warpd").lexically_normal();
  if (ec || !fs::exists(p)) die("warpd not found (give --warpd PATH)");
  return p.string();
}

// -- raw CAF --------------------------------------------------------------------------------

struct caf_sink_state {
  std::uint64_t received = 0;
  static inline const char* name = "warp-bench.federation-sink";
};

caf::behavior caf_sink(caf::stateful_actor<caf_sink_state>* self, std::shared_ptr<latencies> lat) {
  return {
      [=](const std::string&, const std::string& value) {
        ++self->state.received;
        lat->add(stamp_of(value));
      },
      [=](fed_count_atom) { return self->state.received; },
  };
}

/// One actor system sends (key, value) messages to a sink published by another, over the
/// middleman on loopback: what a federation link's batches travel on, without the
/// batching, the apply and the acknowledgement.
class raw_caf_pair {
 public:
  raw_caf_pair() {
    for (auto* cfg : {&sink_cfg_, &source_cfg_}) {
      cfg->load<caf::io::middleman>();
      cfg->set("scheduler.max-threads", 2);
      cfg->set("logger.verbosity", caf::atom("quiet"));
    }
    sink_sys_ = std::make_unique<caf::actor_system>(sink_cfg_);
    source_sys_ = std::make_unique<caf::actor_system>(source_cfg_);
    sink_ = sink_sys_->spawn(caf_sink, lat_);
    auto port = sink_sys_->middleman().publish(sink_, 0, "127.0.0.1");
    if (!port) die("raw CAF: cannot publish the sink: " + sink_sys_->render(port.error()));
    auto remote = source_sys_->middleman().remote_actor("127.0.0.1", *port);
    if (!remote) die("raw CAF: cannot reach the sink: " + source_sys_->render(remote.error()));
    remote_ = *remote;
  }
  ~raw_caf_pair() {
    caf::anon_send_exit(sink_, caf::exit_reason::user_shutdown);
    remote_ = nullptr;
    sink_ = nullptr;
  }
  raw_caf_pair(const raw_caf_pair&) = delete;
  raw_caf_pair& operator=(const raw_caf_pair&) = delete;

  /// `n` messages (paced at `rate` per second when > 0), from the first send to the last
  /// one received.
  phase_result run(std::size_t n, double rate, std::size_t value_bytes, const std::string& prefix) {
    auto base = received();
    lat_->clear();
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n; ++i) {
      pace(t0, i, rate);
      caf::anon_send(remote_, prefix + std::to_string(i), stamped(value_bytes));
    }
    return finish_phase([&] { return received() - base; }, n, t0, lat_.get());
  }

 private:
  std::uint64_t received() {
    std::uint64_t out = 0;
    caf::scoped_actor self{*sink_sys_};
    self->request(sink_, 10s, fed_count_atom::value)
        .receive([&](std::uint64_t v) { out = v; }, [](caf::error&) {});
    return out;
  }

  caf::actor_system_config sink_cfg_, source_cfg_;
  std::unique_ptr<caf::actor_system> sink_sys_, source_sys_;
  std::shared_ptr<latencies> lat_ = std::make_shared<latencies>();
  caf::actor sink_, remote_;
};

// -- two regions ----------------------------------------------------------------------------

struct region_node {
  std::string name;
  std::uint16_t node_port = warp::test::free_port();
  std::uint16_t http_port = warp::test::free_port();
  std::uint16_t resp_port = warp::test::free_port();
  std::unique_ptr<warp::test::child_process> proc;

  std::optional<json> federation_status() const {
    httplib::Client c{"127.0.0.1", http_port};
    c.set_read_timeout(5, 0);
    auto res = c.Get("/admin/federation");
    if (!res || res->status != 200) return std::nullopt;
    auto j = json::parse(res->body, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }
  /// Changes from `from` this region applied (0 before the first).
  std::uint64_t applied_from(const std::string& from) const {
    auto s = federation_status();
    if (!s || !s->contains("received_from") || !(*s)["received_from"].contains(from)) return 0;
    return (*s)["received_from"][from].value("applied", std::uint64_t{0});
  }
};

/// Regions A and B, one warpd each, linked over CAF (`kafka` empty) or over Kafka.
class region_pair {
 public:
  region_pair(const federation_bench_options& o, const std::string& warpd, const fs::path& dir,
              const std::string& kafka) {
    a_.name = "A";
    b_.name = "B";
    auto link = [&](const region_node& other) {
      return other.name + "=" +
             (kafka.empty() ? "127.0.0.1:" + std::to_string(other.node_port) : "kafka");
    };
    for (auto* n : {&a_, &b_}) {
      const auto& other = n == &a_ ? b_ : a_;
      auto data = dir / ((kafka.empty() ? "caf-" : "kafka-") + n->name);
      fs::create_directories(data);
      std::vector<std::string> argv{warpd,
                                    "--name",
                                    n->name + "0",
                                    "--region",
                                    n->name,
                                    "--listen",
                                    "127.0.0.1:" + std::to_string(n->node_port),
                                    "--http",
                                    "127.0.0.1:" + std::to_string(n->http_port),
                                    "--resp",
                                    "127.0.0.1:" + std::to_string(n->resp_port),
                                    "--storage",
                                    "memory",
                                    "--data-dir",
                                    data.string(),
                                    "--pattern",
                                    "f:*=eventual_distributed+federated",
                                    "--federation-link",
                                    link(other),
                                    "--federation-max-delay",
                                    o.max_delay,
                                    "--federation-batch-size",
                                    std::to_string(o.batch),
                                    "--federation-anti-entropy-interval",
                                    "0",
                                    "--log-level",
                                    "warn"};
      if (!kafka.empty())
        argv.insert(argv.end(), {"--federation-kafka", kafka, "--federation-kafka-property",
                                 "fetch.wait.max.ms=" + std::to_string(o.fetch_wait_ms)});
      n->proc = std::make_unique<warp::test::child_process>(argv, (data / "warpd.log").string());
    }
    for (auto* n : {&a_, &b_}) wait_ready(*n);
  }

  region_node& a() { return a_; }
  region_node& b() { return b_; }

  /// A key written in A reaches B (the first one waits for the link, or the consumer
  /// group's join).
  void warm_up(const std::string& key) {
    resp_client wa{a_.resp_port}, rb{b_.resp_port};
    auto deadline = clk::now() + 90s;
    while (clk::now() < deadline) {
      wa.call({"SET", key, "1"});
      for (int i = 0; i < 20; ++i) {
        if (rb.call({"GET", key}).text == "1") return;
        std::this_thread::sleep_for(50ms);
      }
    }
    die("federation: a key written in region A never reached region B; B's log:\n" +
        b_.proc->log());
  }

 private:
  static void wait_ready(region_node& n) {
    auto deadline = clk::now() + 30s;
    while (clk::now() < deadline) {
      if (!n.proc->running()) break;
      resp_client c{n.resp_port};
      if (c.connected() && c.call({"PING"}).ok) return;
      std::this_thread::sleep_for(50ms);
    }
    die("warpd " + n.name + " did not start; its log:\n" + n.proc->log());
  }

  region_node a_, b_;
};

/// `n` updates of fresh keys into A, pipelined 100 at a time, until B applied them all.
phase_result link_throughput(region_pair& regions, std::size_t n, std::size_t value_bytes,
                             const std::string& prefix) {
  auto base = regions.b().applied_from("A");
  resp_client w{regions.a().resp_port};
  auto value = std::string(value_bytes, 'v');
  auto t0 = clk::now();
  constexpr std::size_t depth = 100;
  std::string out;
  for (std::size_t i = 0; i < n; i += depth) {
    out.clear();
    auto end = std::min(n, i + depth);
    for (std::size_t k = i; k < end; ++k)
      resp_client::encode(out, {"SET", prefix + std::to_string(k), value});
    if (!w.send(out)) die("federation: region A's sidecar closed the connection");
    for (std::size_t k = i; k < end; ++k)
      if (!w.read().ok) die("federation: a SET into region A failed");
  }
  return finish_phase([&] { return regions.b().applied_from("A") - base; }, n, t0, nullptr,
                      std::chrono::seconds{120}, std::chrono::milliseconds{2});
}

/// Updates at `rate` per second for `n` updates; each one's lag is the time from its SET
/// into A to B's keyspace notification for its key.
phase_result link_lag(region_pair& regions, std::size_t n, double rate, std::size_t value_bytes,
                      const std::string& prefix) {
  std::vector<std::atomic<std::int64_t>> sent(n);
  latencies lat;
  std::atomic<std::size_t> got{0};
  std::atomic<bool> stop{false};
  resp_client sub{regions.b().resp_port};
  sub.set_timeout(1s);
  std::string subscribe;
  resp_client::encode(subscribe, {"SUBSCRIBE", "__keyevent@0__:set"});
  auto confirmed = sub.send(subscribe) ? sub.read_array() : std::nullopt;
  if (!confirmed || confirmed->empty() || (*confirmed)[0] != "subscribe")
    die("federation: cannot subscribe on region B");
  std::thread listener{[&] {
    while (!stop) {
      auto m = sub.read_array();
      if (!m || m->size() != 3 || (*m)[2].rfind(prefix, 0) != 0) continue;
      auto i = std::strtoull((*m)[2].c_str() + prefix.size(), nullptr, 10);
      if (i >= n) continue;
      auto t = sent[i].load(std::memory_order_acquire);
      if (t == 0) continue;
      lat.add(t);
      ++got;
    }
  }};
  resp_client w{regions.a().resp_port};
  auto value = std::string(value_bytes, 'v');
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) {
    pace(t0, i, rate);
    sent[i].store(now_ns(), std::memory_order_release);
    if (!w.call({"SET", prefix + std::to_string(i), value}).ok)
      die("federation: a paced SET into region A failed");
  }
  auto r = finish_phase([&] { return std::uint64_t{got}; }, n, t0, &lat, std::chrono::seconds{60},
                        std::chrono::milliseconds{2});
  stop = true;
  listener.join();
  return r;
}

struct comparison {
  const char* name;
  phase_result raw_tput, link_tput, raw_lat, link_lat;
  json to_json() const {
    return {{"raw_msgs_per_s", raw_tput.msgs_per_s},
            {"link_updates_per_s", link_tput.msgs_per_s},
            {"throughput_ratio", link_tput.msgs_per_s / std::max(raw_tput.msgs_per_s, 1e-9)},
            {"raw_p50_us", raw_lat.p50_us},
            {"raw_p99_us", raw_lat.p99_us},
            {"link_p50_us", link_lat.p50_us},
            {"link_p99_us", link_lat.p99_us}};
  }
  void print(const federation_bench_options& o) const {
    std::printf("  over %s:\n", name);
    std::printf(
        "    throughput (%zu updates): raw %.0f msg/s, federation %.0f updates/s, ratio %.2f\n",
        o.updates, raw_tput.msgs_per_s, link_tput.msgs_per_s,
        link_tput.msgs_per_s / std::max(raw_tput.msgs_per_s, 1e-9));
    std::printf(
        "    lag at %.0f/s for %.0f s: raw p50 %.0f us p99 %.0f us; federation p50 %.0f us p99 "
        "%.0f us; ratio p50 %.2f p99 %.2f\n",
        o.rate, o.seconds, raw_lat.p50_us, raw_lat.p99_us, link_lat.p50_us, link_lat.p99_us,
        link_lat.p50_us / std::max(raw_lat.p50_us, 1.0),
        link_lat.p99_us / std::max(raw_lat.p99_us, 1.0));
  }
  bool complete(std::size_t updates, std::size_t paced) const {
    return raw_tput.received >= updates && link_tput.received >= updates &&
           raw_lat.received >= paced && link_lat.received >= paced;
  }
};

void run(const federation_bench_options& o) {
  auto warpd = warpd_binary(o.warpd);
  scratch_dir dir{""};
  auto paced = static_cast<std::size_t>(o.rate * o.seconds);
  std::vector<comparison> done;
  if (o.caf_link) {
    comparison c{"the CAF link", {}, {}, {}, {}};
    {
      raw_caf_pair raw;
      c.raw_tput = raw.run(o.updates, 0, o.value_bytes, "f:t:");
      c.raw_lat = raw.run(paced, o.rate, o.value_bytes, "f:l:");
    }
    region_pair regions{o, warpd, dir.path(), ""};
    regions.warm_up("f:warm");
    c.link_tput = link_throughput(regions, o.updates, o.value_bytes, "f:t:");
    c.link_lat = link_lag(regions, paced, o.rate, o.value_bytes, "f:l:");
    done.push_back(c);
  }
  if (o.kafka_link) {
    comparison c{"Kafka", {}, {}, {}, {}};
    auto p = ":" + std::to_string(o.partitions);
    kafka_mock_broker mock{{"warp.fed.A.B" + p, "warp.fed.B.A" + p, "raw-tput" + p, "raw-lat" + p}};
    const raw_kafka_options raw_opt{mock.bootstrap(), o.value_bytes, 1000, o.fetch_wait_ms};
    c.raw_tput = raw_kafka_phase(raw_opt, "raw-tput", o.updates, 0);
    c.raw_lat = raw_kafka_phase(raw_opt, "raw-lat", paced, o.rate);
    region_pair regions{o, warpd, dir.path(), mock.bootstrap()};
    regions.warm_up("f:warm");
    c.link_tput = link_throughput(regions, o.updates, o.value_bytes, "f:t:");
    c.link_lat = link_lag(regions, paced, o.rate, o.value_bytes, "f:l:");
    done.push_back(c);
  }
  std::printf(
      "federation, 2 regions of 1 warpd, %zu-byte values, batch %zu, max delay %s, Kafka "
      "fetch.wait.max.ms %d\n",
      o.value_bytes, o.batch, o.max_delay.c_str(), o.fetch_wait_ms);
  bool complete = true;
  json j{{"bench", "federation"},
         {"updates", o.updates},
         {"rate", o.rate},
         {"value_bytes", o.value_bytes},
         {"max_delay", o.max_delay}};
  for (const auto& c : done) {
    c.print(o);
    complete = complete && c.complete(o.updates, paced);
    j[c.name == std::string{"Kafka"} ? "kafka" : "caf"] = c.to_json();
  }
  if (!complete) std::printf("  WARNING: not every update or message arrived\n");
  j["complete"] = complete;
  if (o.json) std::cout << j.dump() << std::endl;
}

void setup(CLI::App& app) {
  static federation_bench_options opt;
  auto* cmd = app.add_subcommand(
      "federation",
      "Replicated updates/s and lag between two regions over the CAF link and Kafka, beside raw "
      "CAF and raw librdkafka in the same run");
  cmd->add_option("--updates", opt.updates, "Updates of the throughput phase")
      ->capture_default_str();
  cmd->add_option("--rate", opt.rate, "Paced phase: updates per second")->capture_default_str();
  cmd->add_option("--seconds", opt.seconds, "Paced phase: duration")->capture_default_str();
  cmd->add_option("--value-bytes", opt.value_bytes, "Value size (>= 8)")->capture_default_str();
  cmd->add_option("--max-delay", opt.max_delay, "warpd --federation-max-delay")
      ->capture_default_str();
  cmd->add_option("--batch", opt.batch, "warpd --federation-batch-size")->capture_default_str();
  cmd->add_option("--partitions", opt.partitions, "Partitions of the mock's topics")
      ->capture_default_str();
  cmd->add_option("--fetch-wait-ms", opt.fetch_wait_ms,
                  "fetch.wait.max.ms of every consumer (raw and warpd's)")
      ->capture_default_str();
  cmd->add_option("--warpd", opt.warpd, "warpd binary (default: next to this one)");
  cmd->add_flag("--no-caf{false}", opt.caf_link, "Skip the CAF link comparison");
  cmd->add_flag("--no-kafka{false}", opt.kafka_link, "Skip the Kafka comparison");
  cmd->add_flag("--json", opt.json, "Also print the figures as one JSON object");
  cmd->callback([] { run(opt); });
}

const bool registered = register_subcommand(&setup);

}  // namespace
}  // namespace warp_bench
