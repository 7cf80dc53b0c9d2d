// Starts apps/warp-kafka-mock (librdkafka's mock cluster in its own process) and learns its
// bootstrap servers from its first line.
#pragma once

#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bus/kafka_bridge.hpp"
#include "test/support/process.hpp"

namespace warp::test {

class kafka_mock {
 public:
  /// `topics`: NAME or NAME:PARTITIONS, created before the bootstrap line is printed.
  explicit kafka_mock(std::vector<std::string> topics = {}, int brokers = 1) {
    std::vector<std::string> argv{binary("apps/warp-kafka-mock/warp-kafka-mock"), "--brokers",
                                  std::to_string(brokers)};
    for (auto& t : topics) argv.insert(argv.end(), {"--topic", t});
    proc_ = std::make_unique<child_process>(argv, dir_.str() + "/mock.log");
    static const std::regex re{R"(bootstrap: (\S+))"};
    for (int i = 0; i < 500; ++i) {
      std::smatch m;
      auto text = proc_->log();
      if (std::regex_search(text, m, re)) {
        bootstrap_ = m[1];
        return;
      }
      if (!proc_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    throw std::runtime_error("warp-kafka-mock did not start: " + proc_->log());
  }
  const std::string& bootstrap() const { return bootstrap_; }
  child_process& process() { return *proc_; }

 private:
  temp_dir dir_{"kafka-mock"};
  std::unique_ptr<child_process> proc_;
  std::string bootstrap_;
};

// A consumer closed in a test leaves its group; the mock's coordinator then waits up to the
// session timeout less 1 s for the members it knew before it admits a new one (librdkafka
// 2.0's rdkafka_mock_cgrp.c), so with librdkafka's default of 45 s every restart in one group
// cost 44 s. The timeout warpd's own consumers use (federation, CDC) keeps that to 5 s.
inline void restart_quickly(bus::kafka_consumer_config& cc) {
  cc.properties.insert(cc.properties.end(),
                       {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}});
}

}  // namespace warp::test
