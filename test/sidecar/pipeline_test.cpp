// Pipelines of inline commands (telnet, `redis-cli --pipe` with plain text) in one write:
// the sidecar batches consecutive SET and INCR-family commands, and every batched command
// must still write its own key and value (security finding 1: they used to reference the
// parser's argument storage, which the next inline command reused).
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "test/support/process.hpp"
#include "test/sidecar/resp_client.hpp"
#include "test/sidecar/sidecar_fixture.hpp"

using namespace warp::test;

namespace {

using keyspace = std::map<std::string, std::optional<std::string>>;

std::vector<std::string> read_n(resp_conn& c, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(c.read());
  return out;
}

}  // namespace

TEST_CASE("pipelined inline SET and INCR write their own keys", "[sidecar][pipeline][security]") {
  warpd_sidecar warp;
  {
    resp_conn c{warp.port};
    c.send_raw("SET a 1\r\nSET b 2\r\nSET c 3\r\nINCR c1\r\nINCR c2\r\nINCR c1\r\n");
    CHECK(read_n(c, 6) == std::vector<std::string>{"OK", "OK", "OK", ":1", ":1", ":2"});
    CHECK(dump_keyspace(c) ==
          keyspace{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"c1", "2"}, {"c2", "1"}});
  }
  // The reporter's way: redis-cli --pipe with plain text.
  auto cli = find_program("redis-cli");
  REQUIRE_FALSE(cli.empty());
  auto r =
      run({"/bin/sh", "-c",
           "printf 'SET d 4\\r\\nSET e 5\\r\\nINCRBY f 7\\r\\nDECR g\\r\\nDECRBY f 2\\r\\n' | " +
               cli + " -p " + std::to_string(warp.port) + " --pipe"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("errors: 0, replies: 5") != std::string::npos);
  resp_conn c{warp.port};
  CHECK(dump_keyspace(c) == keyspace{{"a", "1"},
                                     {"b", "2"},
                                     {"c", "3"},
                                     {"c1", "2"},
                                     {"c2", "1"},
                                     {"d", "4"},
                                     {"e", "5"},
                                     {"f", "5"},
                                     {"g", "-1"}});
}

TEST_CASE("inline MSET between long pipelined SETs stores exactly what was sent",
          "[sidecar][pipeline][security]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  // Values longer than a std::string's inline buffer: their bytes live on the heap, which
  // is what the old code handed out (keys like "m105_0\x00_99", values with pointer bytes).
  std::string input;
  keyspace want;
  std::vector<std::string> replies;
  std::map<std::string, long long> counters;
  for (int i = 0; i < 200; ++i) {
    const std::string n = std::to_string(i);
    std::string long_value = "long-value-" + n + "-" + std::string(40 + i % 50, 'v');
    input += "SET long:" + n + " " + long_value + "\r\n";
    want["long:" + n] = long_value;
    replies.push_back("OK");
    input += "MSET";
    for (int j = 0; j < 3; ++j) {
      std::string k = "m" + n + "_" + std::to_string(j);
      std::string v = "x" + n + "_" + std::to_string(j) + std::string(20, 'm');
      input += " " + k + " " + v;
      want[k] = v;
    }
    input += "\r\n";
    replies.push_back("OK");
    const std::string counter = "n" + std::to_string(i % 7);
    input += "INCRBY " + counter + " " + n + "\r\n";
    counters[counter] += i;
    replies.push_back(":" + std::to_string(counters[counter]));
    // Quoted inline arguments are unescaped: the stored bytes are the unescaped ones.
    input += "SET \"q " + n + "\" \"a\\x41\\tb" + std::string(30, 'q') + "\"\r\n";
    want["q " + n] = "aA\tb" + std::string(30, 'q');
    replies.push_back("OK");
  }
  for (auto& [k, v] : counters) want[k] = std::to_string(v);
  c.send_raw(input);
  CHECK(read_n(c, replies.size()) == replies);
  auto got = dump_keyspace(c);
  for (auto& [k, v] : got) {
    INFO("key " << k);
    CHECK(k.find('\0') == std::string::npos);
    CHECK(want.count(k) == 1);
  }
  CHECK(got == want);
}

TEST_CASE("pipelines mixing inline and multibulk SETs keep every key",
          "[sidecar][pipeline][security]") {
  warpd_sidecar warp;
  resp_conn c{warp.port};
  std::string input;
  keyspace want;
  for (int i = 0; i < 300; ++i) {
    const std::string k = "k" + std::to_string(i);
    const std::string v = std::string(i % 40, 'a' + static_cast<char>(i % 26)) + std::to_string(i);
    if (i % 3 == 0)
      input += resp_conn::encode({"SET", k, v});
    else
      input += "SET " + k + " " + v + "\r\n";
    want[k] = v;
  }
  c.send_raw(input);
  CHECK(read_n(c, 300) == std::vector<std::string>(300, "OK"));
  CHECK(dump_keyspace(c) == want);
}

TEST_CASE(
    "a protocol error answers every command before it and then the error, however much "
    "the client still sends",
    "[sidecar][pipeline][security]") {
  // Found by the differential fuzzer under load: the sidecar closed the socket with the
  // client's later pipeline still unread, the kernel answered with a reset, and the client
  // lost replies already sent (reply #45 of 140 read as a closed connection). A client must
  // read every reply up to the error, then the error, then the end of the stream.
  warpd_sidecar warp;
  resp_conn c{warp.port};
  // A small receive window keeps replies queued on the server's side when it closes,
  // as a busy client that is still writing does.
  int window = 64 * 1024;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &window, sizeof(window));
  const std::string value(1000, 'v');
  REQUIRE(c.cmd({"SET", "big", value}) == "OK");
  constexpr int before = 3000;
  std::string pipeline;
  for (int i = 0; i < before; ++i) pipeline += "INCR n\r\nGET big\r\n";
  pipeline += "SET \"unbalanced\r\n";
  const std::string after(4 * 1024 * 1024, 'x');  // never parsed: the stream is over
  c.send_raw(pipeline);
  c.send_raw(after);
  for (int i = 1; i <= before; ++i) {
    REQUIRE(c.read() == ":" + std::to_string(i));
    REQUIRE(c.read() == value);
  }
  CHECK(c.read() == "!ERR Protocol error: unbalanced quotes in request");
  CHECK(c.closed());
}
