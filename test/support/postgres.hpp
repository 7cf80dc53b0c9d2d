// Test support: a throwaway PostgreSQL cluster (initdb + postgres on a free loopback port),
// for any test that needs a real server. Works as root (runs the server as the system
// user `warp-pg`, created if missing) and as a normal user. Missing binaries or a server
// that does not come up throw std::runtime_error: a loud failure, never a skip.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "test/support/process.hpp"

namespace warp::test {

class postgres_server {
 public:
  /// Runs initdb, starts the server and creates database `dbname`.
  explicit postgres_server(std::string dbname = "warp_test");
  ~postgres_server();
  postgres_server(const postgres_server&) = delete;
  postgres_server& operator=(const postgres_server&) = delete;

  /// "postgresql://postgres@127.0.0.1:PORT/DBNAME?connect_timeout=2" (trust auth).
  std::string uri() const;
  /// The same as a key=value conninfo string.
  std::string conninfo() const;
  /// A URI for another database on the same server (e.g. "postgres").
  std::string uri_for(const std::string& dbname) const;
  std::uint16_t port() const { return port_; }
  const std::string& dbname() const { return dbname_; }
  /// The cluster's data directory.
  std::string data_dir() const;

  /// Fast shutdown (SIGINT), waits for the exit. The port stays reserved for start().
  void stop();
  /// Starts the server again on the same port and data directory; waits until it
  /// accepts connections.
  void start();
  bool running();
  /// The server's log (all starts so far).
  std::string log() const;

 private:
  void wait_ready();
  std::vector<std::string> as_server_user(std::vector<std::string> argv) const;

  std::string dbname_;
  std::uint16_t port_ = 0;
  std::string bin_dir_;
  bool drop_privileges_ = false;  // running as root: the server runs as warp-pg
  temp_dir dir_{"warp-pg"};
  std::unique_ptr<child_process> server_;
};

}  // namespace warp::test
