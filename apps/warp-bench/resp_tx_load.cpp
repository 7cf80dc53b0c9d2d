// `warp-bench resp-tx-load`: a load generator for what redis-benchmark cannot send, a
// MULTI/EXEC of 5 commands (SET, INCR, LPUSH, LPOP, ZADD, each client on keys of its own
// so the list and sorted set stay small). --clients connections on threads, each keeping
// --pipeline transactions in flight; prints transactions per second (the last line, or
// JSON with --json). sidecar/bench/resp_bench.sh runs it against warpd and redis-server.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/warp-bench/bench.hpp"

namespace {

struct tx_args {
  int port = 6379;
  int clients = 50;
  int pipeline = 1;
  long transactions = 20000;
  bool json = false;
};

std::string bulk_cmd(std::initializer_list<std::string> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

/// Skips one complete RESP2 reply at `pos`; false when the buffer ends first. An error
/// reply sets `error`.
bool skip_reply(const std::string& buf, std::size_t& pos, bool& error) {
  if (pos >= buf.size()) return false;
  auto eol = buf.find("\r\n", pos);
  if (eol == std::string::npos) return false;
  char type = buf[pos];
  long n = std::atol(buf.c_str() + pos + 1);
  std::size_t next = eol + 2;
  if (type == '-') error = true;
  if (type == '$' && n >= 0) {
    if (buf.size() < next + static_cast<std::size_t>(n) + 2) return false;
    next += static_cast<std::size_t>(n) + 2;
  } else if (type == '*') {
    for (long i = 0; i < n; ++i)
      if (!skip_reply(buf, next, error)) return false;
  }
  pos = next;
  return true;
}

int run(const tx_args& a) {
  std::atomic<long> done{0};
  std::atomic<bool> failed{false};
  const long per_client = std::max<long>(1, a.transactions / a.clients);
  auto worker = [&](int id) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(a.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      failed = true;
      ::close(fd);
      return;
    }
    const std::string p = "txb:" + std::to_string(id) + ":";
    std::string in, batch;
    char chunk[64 * 1024];
    for (long sent = 0; sent < per_client && !failed;) {
      const long n = std::min<long>(a.pipeline, per_client - sent);
      batch.clear();
      for (long i = 0; i < n; ++i) {
        auto m = std::to_string((sent + i) % 100);
        batch += bulk_cmd({"MULTI"});
        batch += bulk_cmd({"SET", p + "k", "value"});
        batch += bulk_cmd({"INCR", p + "n"});
        batch += bulk_cmd({"LPUSH", p + "l", "job"});
        batch += bulk_cmd({"LPOP", p + "l"});
        batch += bulk_cmd({"ZADD", p + "z", m, "m" + m});
        batch += bulk_cmd({"EXEC"});
      }
      for (std::size_t off = 0; off < batch.size();) {
        auto w = ::send(fd, batch.data() + off, batch.size() - off, MSG_NOSIGNAL);
        if (w <= 0) {
          failed = true;
          break;
        }
        off += static_cast<std::size_t>(w);
      }
      long replies = 0;
      std::size_t pos = 0;
      bool error = false;
      while (replies < n * 7 && !failed) {
        while (replies < n * 7 && skip_reply(in, pos, error)) ++replies;
        if (replies == n * 7) break;
        auto r = ::recv(fd, chunk, sizeof(chunk), 0);
        if (r <= 0) {
          failed = true;
          break;
        }
        in.append(chunk, static_cast<std::size_t>(r));
      }
      if (error) {
        std::cerr << "resp-tx-load: an error reply: " << in.substr(0, 200) << "\n";
        failed = true;
      }
      in.erase(0, pos);
      sent += n;
      done += n;
    }
    ::close(fd);
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < a.clients; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed) {
    std::cerr << "resp-tx-load: failed\n";
    return 1;
  }
  double tps = static_cast<double>(done.load()) / secs;
  if (a.json)
    std::cout << "{\"bench\":\"resp-tx-load\",\"transactions\":" << done.load()
              << ",\"tx_per_s\":" << tps << "}\n";
  else
    std::cout << static_cast<long>(tps) << "\n";
  return 0;
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "resp-tx-load", "MULTI/EXEC of 5 commands against a RESP server: transactions per second");
  auto a = std::make_shared<tx_args>();
  cmd->add_option("--port", a->port, "RESP port on 127.0.0.1")->required();
  cmd->add_option("--clients", a->clients, "connections, one thread each");
  cmd->add_option("--pipeline", a->pipeline, "transactions in flight per connection");
  cmd->add_option("--transactions", a->transactions, "transactions in all");
  cmd->add_flag("--json", a->json, "a JSON line");
  cmd->callback([a] { std::exit(run(*a)); });
}

const bool registered = warp_bench::register_subcommand(&setup);

}  // namespace
