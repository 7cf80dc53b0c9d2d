// warp-kafka-mock: hosts librdkafka's mock cluster (rdkafka_mock.h) so tests and benchmarks
// have a Kafka-protocol broker without a JVM. Prints "bootstrap: HOST:PORT,..." on stdout,
// then runs until SIGTERM/SIGINT. A real broker is what production uses (docs/kafka.md).
//
//   warp-kafka-mock [--brokers N] [--topic NAME[:PARTITIONS]]...
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) {
  stop_requested = 1;
}

struct topic_spec {
  std::string name;
  int partitions = 1;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "warp-kafka-mock: %s\n"
               "usage: warp-kafka-mock [--brokers N (1-9, default 1)] "
               "[--topic NAME[:PARTITIONS (1-1024)]]...\n",
               why);
  return 2;
}

bool parse_int(std::string_view text, int lo, int hi, int& out) {
  if (text.empty() || text.size() > 6) return false;
  int v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  std::vector<topic_spec> topics;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage("librdkafka mock cluster for tests");
      return 0;
    }
    if (i + 1 >= argc) return usage("missing value");
    std::string_view v = argv[++i];
    if (a == "--brokers") {
      if (!parse_int(v, 1, 9, brokers)) return usage("--brokers wants 1-9");
    } else if (a == "--topic") {
      topic_spec t;
      auto colon = v.rfind(':');
      t.name = std::string{v.substr(0, colon)};
      if (colon != std::string_view::npos && !parse_int(v.substr(colon + 1), 1, 1024, t.partitions))
        return usage("--topic NAME:PARTITIONS wants 1-1024 partitions");
      if (t.name.empty() || t.name.size() > 249) return usage("bad topic name");
      topics.push_back(std::move(t));
    } else {
      return usage("unknown option");
    }
  }

  // The mock cluster needs a client handle to live in; a producer that is never used.
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    std::fprintf(stderr, "warp-kafka-mock: rd_kafka_new: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    std::fprintf(stderr, "warp-kafka-mock: could not create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  for (auto& t : topics) {
    auto e =
        rd_kafka_mock_topic_create(mc, t.name.c_str(), t.partitions, brokers < 3 ? brokers : 3);
    if (e) {
      std::fprintf(stderr, "warp-kafka-mock: topic %s: %s\n", t.name.c_str(), rd_kafka_err2str(e));
      rd_kafka_mock_cluster_destroy(mc);
      rd_kafka_destroy(rk);
      return 1;
    }
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("bootstrap: %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  std::fflush(stdout);
  while (!stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds{50});
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
