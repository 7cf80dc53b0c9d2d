// The replicated key -> value map (runtime/consensus/raft_kv.hpp): its command encoding,
// put/delete/cas, exactly-once by client id + sequence, and its snapshot.
#include <catch2/catch.hpp>

#include "runtime/consensus/raft_kv.hpp"

using namespace warp;
using namespace warp::consensus;

namespace {

kv_command cmd(std::uint64_t client, std::uint64_t seq, kv_op op, std::string key,
               std::string value = {}, std::string expected = {}, bool absent = false) {
  return kv_command{client, seq, op, std::move(key), std::move(value), std::move(expected), absent};
}

}  // namespace

TEST_CASE("raft kv: a command round-trips and a malformed one is refused") {
  auto c = cmd(7, 9, kv_op::cas, "k", "new", "old");
  auto back = decode_kv_command(encode(c));
  REQUIRE(back);
  CHECK(*back == c);
  auto bytes = encode(c);
  CHECK_FALSE(decode_kv_command(bytes.substr(0, bytes.size() - 1)));
  CHECK_FALSE(decode_kv_command(bytes + "x"));
  CHECK_FALSE(decode_kv_command(""));
  kv_limits tight;
  tight.max_value_bytes = 2;
  CHECK(decode_kv_command(bytes, tight).code() == errc::codec_error);
  // A length prefix far beyond the input is refused before anything is allocated.
  std::string huge = bytes.substr(0, 1 + 8 + 8 + 2);
  huge += std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
  CHECK(decode_kv_command(huge).code() == errc::codec_error);
}

TEST_CASE("raft kv: put, delete and compare-and-set") {
  kv_state_machine sm;
  CHECK(sm.apply(1, encode(cmd(0, 0, kv_op::put, "a", "1"))));
  CHECK(*sm.read("a") == "1");
  CHECK(sm.apply(2, encode(cmd(0, 0, kv_op::cas, "a", "2", "0"))).code() == errc::conflict);
  CHECK(*sm.read("a") == "1");
  CHECK(sm.apply(3, encode(cmd(0, 0, kv_op::cas, "a", "2", "1"))));
  CHECK(*sm.read("a") == "2");
  CHECK(sm.apply(4, encode(cmd(0, 0, kv_op::cas, "a", "3", {}, true))).code() == errc::conflict);
  CHECK(sm.apply(5, encode(cmd(0, 0, kv_op::del, "a"))));
  CHECK(sm.read("a").code() == errc::not_found);
  CHECK(sm.apply(6, encode(cmd(0, 0, kv_op::cas, "a", "4", {}, true))));
  CHECK(*sm.read("a") == "4");
  // compare-and-delete: only while the key holds the expected value.
  CHECK(sm.apply(7, encode(cmd(0, 0, kv_op::cas_del, "a", {}, "3"))).code() == errc::conflict);
  CHECK(sm.read("a"));
  CHECK(sm.apply(8, encode(cmd(0, 0, kv_op::cas_del, "a", {}, "4"))));
  CHECK(sm.read("a").code() == errc::not_found);
  CHECK(sm.apply(9, encode(cmd(0, 0, kv_op::cas_del, "a", {}, "4"))).code() == errc::conflict);
  CHECK(sm.applied() == 9);
  CHECK(sm.apply(10, "garbage").code() == errc::codec_error);
  CHECK(sm.applied() == 10);
}

TEST_CASE("raft kv: a retried command (same client and sequence) applies once") {
  kv_state_machine sm;
  REQUIRE(sm.apply(1, encode(cmd(5, 1, kv_op::put, "n", "1"))));
  REQUIRE(sm.apply(2, encode(cmd(6, 1, kv_op::put, "n", "x"))));
  // The retry of client 5's seq 1 lands after client 6's write: it must not overwrite it.
  CHECK(sm.apply(3, encode(cmd(5, 1, kv_op::put, "n", "1"))));
  CHECK(*sm.read("n") == "x");
  CHECK(sm.deduplicated() == 1);
  // A failed cas is answered the same way on its retry, also when it would succeed now.
  REQUIRE(sm.apply(4, encode(cmd(5, 2, kv_op::cas, "n", "y", "1"))).code() == errc::conflict);
  REQUIRE(sm.apply(5, encode(cmd(6, 2, kv_op::put, "n", "1"))));
  CHECK(sm.apply(6, encode(cmd(5, 2, kv_op::cas, "n", "y", "1"))).code() == errc::conflict);
  CHECK(*sm.read("n") == "1");
  CHECK(sm.apply(7, encode(cmd(5, 1, kv_op::put, "n", "old"))).code() == errc::invalid_argument);
  CHECK(*sm.read("n") == "1");
}

TEST_CASE("raft kv: a snapshot restores the map and the sessions") {
  kv_state_machine sm;
  REQUIRE(sm.apply(1, encode(cmd(5, 1, kv_op::put, "a", "1"))));
  REQUIRE(sm.apply(2, encode(cmd(5, 2, kv_op::put, "b", "2"))));
  kv_state_machine copy;
  REQUIRE(copy.restore(sm.snapshot()));
  CHECK(copy.applied() == 2);
  CHECK(*copy.read("a") == "1");
  CHECK(*copy.read("b") == "2");
  CHECK(copy.apply(3, encode(cmd(5, 2, kv_op::put, "b", "again"))));
  CHECK(*copy.read("b") == "2");
  auto snap = sm.snapshot();
  CHECK_FALSE(copy.restore(snap.substr(0, snap.size() - 3)));
  CHECK(*copy.read("b") == "2");  // a refused snapshot leaves the state as it was
}

TEST_CASE("raft kv: sessions are bounded and evicted deterministically") {
  kv_limits lim;
  lim.max_sessions = 2;
  kv_state_machine a{lim}, b{lim};
  for (index_t i = 1; i <= 5; ++i) {
    auto c = encode(cmd(i, 1, kv_op::put, "k", std::to_string(i)));
    REQUIRE(a.apply(i, c));
    REQUIRE(b.apply(i, c));
  }
  CHECK(a.snapshot() == b.snapshot());
}
