// The pure parts of federation (federation/link_state.hpp, frame.hpp, digest.hpp): the
// batcher and its full-queue policy, the loop rule, dedup, tombstones, digest comparison,
// and the frame codec under random and hostile input.
#include <catch2/catch.hpp>

#include <random>

#include "federation/digest.hpp"
#include "federation/frame.hpp"
#include "federation/link_state.hpp"
#include "warp/pattern.hpp"

using namespace warp::federation;
using namespace std::chrono_literals;

namespace {

change make_change(std::string key, std::uint64_t hlc, std::string origin = "A") {
  change c;
  c.key = std::move(key);
  c.value = "v" + std::to_string(hlc);
  c.ver = {hlc, 7};
  c.origin = origin;
  c.path = {origin};
  return c;
}

}  // namespace

TEST_CASE("federation batcher: a full batch leaves at once and a partial one after max delay",
          "[federation]") {
  link_queue q{100, 3, 1000ms};
  auto t0 = clock_point{} + 10s;
  REQUIRE(q.push(make_change("a", 1), t0));
  REQUIRE(q.push(make_change("b", 2), t0));
  CHECK_FALSE(q.due(t0 + 999ms));
  CHECK(q.due(t0 + 1000ms));
  REQUIRE(q.push(make_change("c", 3), t0 + 10ms));
  REQUIRE(q.push(make_change("d", 4), t0 + 10ms));
  CHECK(q.due(t0 + 10ms));  // 4 >= batch size 3
  auto b = q.take("A", t0 + 10ms);
  REQUIRE(b.changes.size() == 3);
  CHECK(b.changes[0].key == "a");
  CHECK(b.changes[2].key == "c");
  CHECK(q.depth() == 4);        // 3 in flight + 1 queued
  CHECK_FALSE(q.due(t0 + 5s));  // one batch in flight at a time
  CHECK(q.lag_seconds(t0 + 2s) == Approx(2.0));
  q.failed(b.seq);  // back to the front, order kept
  CHECK(q.counters().resent == 1);
  auto again = q.take("A", t0 + 3s);
  REQUIRE(again.changes.size() == 3);
  CHECK(again.changes[0].key == "a");
  CHECK(again.seq != b.seq);
  q.acked(b.seq);  // a stale acknowledgement changes nothing
  CHECK(q.depth() == 4);
  q.acked(again.seq);
  CHECK(q.counters().shipped == 3);
  CHECK(q.depth() == 1);
}

TEST_CASE("federation batcher: a full queue drops and counts and marks the key for repair",
          "[federation]") {
  link_queue q{2, 500, 1000ms};
  auto t = clock_point{} + 1s;
  CHECK(q.push(make_change("a", 1), t));
  CHECK(q.push(make_change("b", 2), t));
  CHECK_FALSE(q.push(make_change("c", 3), t));
  CHECK_FALSE(q.push(make_change("d", 4), t));
  CHECK(q.counters().dropped == 2);
  CHECK(q.needs_repair());
  auto keys = q.take_repairs();
  CHECK(keys == std::set<std::string>{"c", "d"});
  CHECK_FALSE(q.needs_repair());
  CHECK(q.depth() == 2);
}

TEST_CASE("federation loop rule: never back to the origin or a region in the path",
          "[federation]") {
  auto c = make_change("k", 1, "A");
  c.path = {"A", "B"};
  CHECK(forward_targets(c, "B", {"A", "C"}) == std::vector<std::string>{"C"});
  CHECK(forward_targets(c, "B", {"A"}).empty());
  c.path = {"A", "B", "C"};
  CHECK(forward_targets(c, "C", {"A", "B", "D"}) == std::vector<std::string>{"D"});
  // A chain A - B - C - D: a write in A reaches D through B and C, nothing comes back.
  auto w = make_change("k", 1, "A");
  auto hop = [](change c, const std::string& at) {
    c.path.push_back(at);
    return c;
  };
  auto at_b = hop(w, "B");
  REQUIRE(forward_targets(at_b, "B", {"A", "C"}) == std::vector<std::string>{"C"});
  auto at_c = hop(at_b, "C");
  REQUIRE(forward_targets(at_c, "C", {"B", "D"}) == std::vector<std::string>{"D"});
  auto at_d = hop(at_c, "D");
  CHECK(forward_targets(at_d, "D", {"C"}).empty());
}

TEST_CASE("federation dedup: a change is handled once and the set stays bounded", "[federation]") {
  seen_set s{4};
  auto c = make_change("k", 1);
  CHECK(s.first_time(c));
  CHECK_FALSE(s.first_time(c));
  auto d = c;
  d.what = change::op::erase;
  CHECK(s.first_time(d));  // a delete at the same version is another change
  auto other = make_change("k", 1, "B");
  CHECK(s.first_time(other));  // another origin
  for (int i = 0; i < 10; ++i) s.first_time(make_change("x" + std::to_string(i), 5));
  CHECK(s.size() == 4);
  CHECK(s.first_time(c));  // forgotten: LWW still keeps a re-delivery harmless
}

TEST_CASE("federation tombstones: the latest delete is the floor and bounded", "[federation]") {
  tombstones t{2};
  t.record("a", {5, 1});
  t.record("a", {3, 1});
  CHECK(t.floor("a") == warp::version{5, 1});
  CHECK(t.floor("b").empty());
  t.record("b", {1, 1});
  t.record("c", {1, 1});
  CHECK(t.floor("a").empty());  // oldest forgotten
  t.forget("c");
  CHECK(t.floor("c").empty());
}

TEST_CASE("federation digest: equal sets agree and a difference shows in its bucket only",
          "[federation]") {
  digest a, b;
  for (int i = 0; i < 1000; ++i) {
    a.add("key" + std::to_string(i), {std::uint64_t(i), 1}, false);
    b.add("key" + std::to_string(999 - i), {std::uint64_t(999 - i), 1}, false);  // other order
  }
  CHECK(a == b);
  CHECK(differing(a, b).empty());
  b = digest{};
  for (int i = 0; i < 1000; ++i)
    b.add("key" + std::to_string(i), {std::uint64_t(i == 42 ? 43 : i), 1}, false);
  auto diff = differing(a, b);
  REQUIRE(diff.size() == 1);
  CHECK(diff[0] == bucket_of("key42"));
  auto round = decode_digest(encode_digest(a));
  REQUIRE(round);
  CHECK(*round == a);
  CHECK_FALSE(decode_digest(encode_digest(a).substr(1)));
  CHECK(stable_hash("abc") == 0xe71fa2190541574bull);  // FNV-1a: the same on every build
}

TEST_CASE("federation frame: round trip and limits enforced on both sides", "[federation]") {
  batch b;
  b.sender = "eu";
  b.seq = 42;
  b.changes.push_back(make_change("user:1", 100, "eu"));
  auto del = make_change("user:2", 101, "us");
  del.what = change::op::erase;
  del.value.clear();
  del.path = {"us", "eu"};
  del.policy = "counter";
  del.expires_at_ms = 1234;
  b.changes.push_back(del);
  auto bytes = encode(b);
  REQUIRE(bytes);
  auto back = decode(*bytes);
  REQUIRE(back);
  CHECK(*back == b);

  frame_limits small;
  small.max_key = 4;
  CHECK_FALSE(encode(b, small));
  auto refused = decode(*bytes, small);
  REQUIRE_FALSE(refused);
  CHECK(refused.err().code() == warp::errc::codec_error);
  CHECK_FALSE(decode(bytes->substr(0, bytes->size() - 1)));
  CHECK_FALSE(decode(*bytes + "x"));
  CHECK_FALSE(decode(""));
  CHECK_FALSE(decode("WFED"));
}

TEST_CASE(
    "federation frame: a few bytes claiming 2 to the 64 changes or a huge key are refused first",
    "[federation]") {
  std::string hostile = "WFED";
  hostile.push_back(1);
  for (int i = 0; i < 8; ++i) hostile.push_back(0);       // sender ""
  for (int i = 0; i < 8; ++i) hostile.push_back(0);       // seq 0
  for (int i = 0; i < 8; ++i) hostile.push_back('\xff');  // count 2^64 - 1
  CHECK_FALSE(decode(hostile));
  frame_limits lim;
  lim.max_changes = std::size_t(-1);
  CHECK_FALSE(decode(hostile, lim));  // still bounded by the bytes left
  // One change whose key claims 2^63 bytes.
  std::string big = hostile.substr(0, 4 + 1 + 8 + 8);
  big += std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8);  // count 1
  big.push_back(1);                                           // op put
  big += std::string("\x00\x00\x00\x00\x00\x00\x00\x80", 8);  // key length 2^63
  big += std::string(100, 'k');
  CHECK_FALSE(decode(big));
}

TEST_CASE("federation frame: random and mutated frames decode within limits or fail cleanly",
          "[federation][fuzz]") {
  std::mt19937_64 rng{1234};
  batch b;
  b.sender = "ap";
  for (int i = 0; i < 20; ++i) {
    auto c = make_change("k" + std::to_string(i), i + 1, i % 2 ? "eu" : "us");
    c.path.push_back("ap");
    b.changes.push_back(c);
  }
  auto good = encode(b);
  REQUIRE(good);
  frame_limits lim;
  lim.max_frame_bytes = 1 << 16;
  lim.max_value = 1 << 12;
  int decoded = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string f = *good;
    switch (round % 4) {
      case 0:  // flip bytes
        for (int i = 0; i < 1 + int(rng() % 8); ++i) f[rng() % f.size()] = char(rng());
        break;
      case 1:  // truncate
        f.resize(rng() % f.size());
        break;
      case 2: {  // random bytes after the magic
        f = "WFED";
        f.push_back(1);
        auto n = rng() % 300;
        for (std::size_t i = 0; i < n; ++i) f.push_back(char(rng()));
        break;
      }
      default:  // splice
        f.insert(rng() % f.size(), f.substr(rng() % f.size(), rng() % 64));
        break;
    }
    auto r = decode(f, lim);
    if (r) {
      ++decoded;
      CHECK(r->changes.size() <= lim.max_changes);
      for (auto& c : r->changes) {
        CHECK(c.key.size() <= lim.max_key);
        CHECK(c.value.size() <= lim.max_value);
        CHECK(c.path.size() <= lim.max_path);
      }
    } else {
      CHECK(r.err().code() == warp::errc::codec_error);
    }
  }
  CHECK(decoded < 20000);
}

TEST_CASE(
    "federation pattern option: +federated with a policy name and refused outside eventual mode",
    "[federation][patterns]") {
  auto e = warp::pattern_registry::parse_spec("user:*=eventual_distributed+hydrate+federated");
  REQUIRE(e);
  CHECK(e->policy.federated == "lww");
  CHECK(e->policy.hydrate);
  e = warp::pattern_registry::parse_spec("c:*=eventual_distributed:30s+federated=counter");
  REQUIRE(e);
  CHECK(e->policy.federated == "counter");
  CHECK(e->policy.ttl == 30s);
  e = warp::pattern_registry::parse_spec(
      "cart:*=eventual_distributed+federated=my_merge+validate=heal");
  REQUIRE(e);
  CHECK(e->policy.federated == "my_merge");
  CHECK(warp::pattern_registry::parse_spec("x:*=eventual_distributed")->policy.federated.empty());
  auto local = warp::pattern_registry::parse_spec("x:*=strong_local+federated");
  REQUIRE_FALSE(local);
  CHECK(local.err().message().find("eventual_distributed") != std::string::npos);
  CHECK_FALSE(warp::pattern_registry::parse_spec("x:*=strong_distributed+federated=lww"));
  CHECK_FALSE(warp::pattern_registry::parse_spec("x:*=eventual_distributed+federated="));
  CHECK_FALSE(warp::pattern_registry::parse_spec("x:*=eventual_distributed+federated=a b"));
}
