// Test support: a small authoritative DNS server (RFC 1035 over UDP, SRV per RFC 2782) on a
// free loopback port. It answers A and SRV queries for the names in a table the test can
// change while it runs (TTL 0, so nothing is cached), NODATA for other types of a known
// name, NXDOMAIN for every other name. SRV answers carry the targets' A records in the
// additional section unless glue is switched off.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace warp::test {

namespace dns_type {
constexpr std::uint16_t a = 1;
constexpr std::uint16_t aaaa = 28;
constexpr std::uint16_t srv = 33;
}  // namespace dns_type

class dns_server {
 public:
  struct srv_target {
    std::string target;
    std::uint16_t port = 0;
    std::uint16_t priority = 10;
    std::uint16_t weight = 10;
  };

  /// Binds 127.0.0.1 on a free UDP port and starts answering (throws if it cannot bind).
  dns_server();
  ~dns_server();
  dns_server(const dns_server&) = delete;
  dns_server& operator=(const dns_server&) = delete;

  std::uint16_t port() const { return port_; }
  /// "127.0.0.1:PORT", what --discovery-dns-server takes.
  std::string address() const;

  /// Replaces the SRV records / A records (IPv4 text) of `name` (case-insensitive, a
  /// trailing dot optional). An empty list keeps the name existing without such records.
  void set_srv(const std::string& name, std::vector<srv_target> targets);
  void set_a(const std::string& name, std::vector<std::string> ipv4);
  /// Forgets every record of `name` (it is NXDOMAIN from now on).
  void remove(const std::string& name);
  /// Whether SRV answers include the targets' A records (additional section); default on.
  void set_glue(bool on);

  /// Queries answered so far for `name` and `type` (any name when `name` is empty).
  std::size_t queries(const std::string& name = {}, std::uint16_t type = 0) const;

  /// The response to one query message from the current table; empty = no response (the
  /// message is not a query or too short to answer). Exposed for unit tests.
  std::vector<unsigned char> answer(const unsigned char* query, std::size_t len);

 private:
  struct records {
    std::vector<srv_target> srv;
    std::vector<std::string> a;
  };
  void serve();

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mtx_;
  std::map<std::string, records> table_;
  bool glue_ = true;
  std::vector<std::pair<std::string, std::uint16_t>> log_;  ///< (name, type) answered
  std::thread thread_;
};

/// A standard query (RD set, one question, class IN) for `name` and `type`.
std::vector<unsigned char> dns_query(const std::string& name, std::uint16_t type,
                                     std::uint16_t id = 0x1234);

}  // namespace warp::test
