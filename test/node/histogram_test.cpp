// Latency histograms: bucket edges, concurrent observations summed exactly, the Prometheus
// exposition (cumulative buckets, +Inf == _count, _sum in seconds), and a node's get/set and
// storage histograms counting real calls.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "warp/histogram.hpp"
#include "warp/metrics.hpp"
#include "warp/node.hpp"

using warp::latency_histogram;

TEST_CASE("histogram: an observation lands in the first bucket whose bound it does not exceed") {
  CHECK(latency_histogram::bucket_of(0) == 0);
  CHECK(latency_histogram::bucket_of(1'000) == 0);  // le="1e-06" is inclusive
  CHECK(latency_histogram::bucket_of(1'001) == 1);
  CHECK(latency_histogram::bucket_of(2'500) == 1);
  CHECK(latency_histogram::bucket_of(999'999) == 9);  // 1 ms bucket
  CHECK(latency_histogram::bucket_of(10'000'000'000) == warp::latency_bounds_ns.size() - 1);
  CHECK(latency_histogram::bucket_of(10'000'000'001) == warp::latency_bounds_ns.size());  // +Inf
}

TEST_CASE("histogram: observations from many threads are all counted, none twice") {
  latency_histogram h;
  constexpr int threads = 8, per_thread = 20'000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&h, t] {
      for (int i = 0; i < per_thread; ++i) h.observe_ns(static_cast<std::uint64_t>(t + 1) * 1'000);
    });
  for (auto& t : ts) t.join();
  auto s = h.snapshot();
  CHECK(s.count == threads * per_thread);
  std::uint64_t expected_sum = 0;
  for (int t = 0; t < threads; ++t) expected_sum += std::uint64_t(t + 1) * 1'000 * per_thread;
  CHECK(s.sum_ns == expected_sum);
  CHECK(s.buckets[0] == per_thread);      // 1 us
  CHECK(s.buckets[1] == per_thread);      // 2 us (bound 2.5 us)
  CHECK(s.buckets[2] == 3 * per_thread);  // 3, 4, 5 us (bound 5 us, inclusive)
  CHECK(s.buckets[3] == 3 * per_thread);  // 6, 7, 8 us (bound 10 us)
}

TEST_CASE("histogram: the exposition is cumulative, ends with +Inf equal to _count") {
  latency_histogram h;
  h.observe_ns(500);            // 1 us bucket
  h.observe_ns(3'000'000);      // 5 ms bucket
  h.observe_ns(20'000'000'000); // +Inf
  std::string out;
  warp::append_histogram(out, "t_seconds", "node=\"a\"", h.snapshot());
  INFO(out);
  CHECK(out.find("t_seconds_bucket{node=\"a\",le=\"1e-06\"} 1\n") != std::string::npos);
  CHECK(out.find("t_seconds_bucket{node=\"a\",le=\"0.0025\"} 1\n") != std::string::npos);
  CHECK(out.find("t_seconds_bucket{node=\"a\",le=\"0.005\"} 2\n") != std::string::npos);
  CHECK(out.find("t_seconds_bucket{node=\"a\",le=\"10\"} 2\n") != std::string::npos);
  CHECK(out.find("t_seconds_bucket{node=\"a\",le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(out.find("t_seconds_count{node=\"a\"} 3\n") != std::string::npos);
  CHECK(out.find("t_seconds_sum{node=\"a\"} 20.0030005\n") != std::string::npos);
}

TEST_CASE("histogram: a node times its gets, sets and storage calls") {
  warp::node_config cfg;
  cfg.storage = "memory";
  cfg.scheduler_threads = 1;
  auto started = warp::node::start(cfg);
  REQUIRE(started);
  auto& n = **started;
  REQUIRE(n.set("k", "v"));
  REQUIRE(n.get("k"));                          // L1 hit
  CHECK(n.get("missing").code() == warp::errc::not_found);  // miss, reaches storage
  auto& lat = n.latencies();
  CHECK(lat.set.snapshot().count == 1);
  CHECK(lat.get.snapshot().count == 2);
  CHECK(lat.get.snapshot().sum_ns > 0);
  REQUIRE(n.storage().fetch_latency());
  REQUIRE(n.storage().write_latency());
  CHECK(n.storage().fetch_latency()->snapshot().count >= 1);
  CHECK(n.storage().write_latency()->snapshot().count == 1);
  auto text = warp::prometheus_text(n);
  INFO(text);
  for (auto family : {"warp_get_duration_seconds", "warp_set_duration_seconds",
                      "warp_storage_fetch_duration_seconds", "warp_storage_write_duration_seconds",
                      "warp_propagation_delay_seconds"}) {
    INFO(family);
    CHECK(text.find(std::string{"# TYPE "} + family + " histogram\n") != std::string::npos);
  }
  CHECK(text.find("warp_get_duration_seconds_count{node=") != std::string::npos);
  n.stop();
}
