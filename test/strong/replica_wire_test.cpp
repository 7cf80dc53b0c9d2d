// Unit tests of the strong_distributed building blocks: the replica's max-merge register
// store (order independence, digests, paging, readiness), the quorum wire format (round
// trips, bounds, garbage), and placement (same on every node, whatever the flag order).
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "runtime/modes/strong.hpp"
#include "actors/strong_context.hpp"
#include "merge/strong_replica.hpp"
#include "bus/strong_wire.hpp"

using namespace warp;
using namespace warp::detail;

namespace {

strong_record value(std::uint64_t hlc, std::uint32_t node, std::string v) {
  strong_record r;
  r.ver = version{hlc, node};
  r.value = std::move(v);
  return r;
}

strong_record tomb(std::uint64_t hlc, std::uint32_t node) {
  strong_record r;
  r.ver = version{hlc, node};
  r.tombstone = true;
  return r;
}

}  // namespace

TEST_CASE("a replica keeps the newest version of each key, whatever the arrival order") {
  std::vector<std::pair<std::string, strong_record>> updates;
  for (int k = 0; k < 20; ++k)
    for (int v = 1; v <= 10; ++v) {
      auto key = "k" + std::to_string(k);
      if (v % 4 == 0)
        updates.emplace_back(key, tomb(static_cast<std::uint64_t>(v) << 16, 7));
      else
        updates.emplace_back(
            key, value(static_cast<std::uint64_t>(v) << 16, static_cast<std::uint32_t>(v % 3),
                       "v" + std::to_string(v)));
    }
  // One replica per range, as the range actors hold them.
  std::vector<strong_replica> a(8, strong_replica{true}), b(8, strong_replica{true});
  std::mt19937 rng{42};
  auto shuffled = updates;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  for (auto& [k, r] : updates) a[stable_hash(k) % 8].apply(k, r);
  for (auto& [k, r] : shuffled) {
    b[stable_hash(k) % 8].apply(k, r);
    b[stable_hash(k) % 8].apply(k, r);  // duplicates change nothing
  }
  for (std::uint32_t r = 0; r < 8; ++r) CHECK(a[r].digest() == b[r].digest());
  for (int k = 0; k < 20; ++k) {
    auto key = "k" + std::to_string(k);
    auto got = b[stable_hash(key) % 8].get(key);
    CHECK(got.ver.hlc == (10ull << 16));
    CHECK(got.value == "v10");
    CHECK_FALSE(got.tombstone);
  }
}

TEST_CASE("an older version never replaces a newer one, and equal versions are no change") {
  strong_replica r{true};
  CHECK(r.apply("k", value(5, 1, "new")));
  CHECK_FALSE(r.apply("k", value(4, 9, "old")));
  CHECK_FALSE(r.apply("k", value(5, 1, "same version")));
  CHECK(r.get("k").value == "new");
  CHECK(r.apply("k", tomb(6, 1)));
  auto got = r.get("k");
  CHECK(got.tombstone);
  CHECK(got.value.empty());
  CHECK(got.absent(0));
  CHECK_FALSE(r.apply("k", value(5, 2, "late")));  // the delete's version wins
  CHECK(r.get("k", false).value.empty());          // version-only reads carry no value
  CHECK(strong_record{}.absent(0));
  auto expiring = value(7, 1, "x");
  expiring.expires_at_ms = 1000;
  CHECK_FALSE(expiring.absent(999));
  CHECK(expiring.absent(1000));
}

TEST_CASE("dump pages through a range in key order, and digests differ when versions differ") {
  strong_replica r{true};
  for (int i = 0; i < 100; ++i)
    r.apply("key" + std::to_string(1000 + i), value(static_cast<std::uint64_t>(i + 1), 1, "v"));
  std::vector<std::string> seen;
  std::string after;
  bool first = true;
  for (;;) {
    auto page = r.dump(after, first, 7, 1 << 20);
    for (auto& [k, rec] : page.records) seen.push_back(k);
    if (!page.more) break;
    after = page.records.back().first;
    first = false;
  }
  REQUIRE(seen.size() == 100);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  strong_replica other{true};
  for (int i = 0; i < 100; ++i)
    other.apply("key" + std::to_string(1000 + i), value(static_cast<std::uint64_t>(i + 1), 1, "v"));
  CHECK(other.digest() == r.digest());
  other.apply("key1050", value(500, 1, "newer"));
  CHECK_FALSE(other.digest() == r.digest());
  r.apply("key1050", value(500, 1, "newer"));
  CHECK(other.digest() == r.digest());
}

TEST_CASE("a fresh replica serves nothing as a quorum member until its range is ready") {
  strong_replica r;
  CHECK_FALSE(r.ready());
  wire::request req;
  req.id = 9;
  req.what = wire::op::store;
  req.range = 2;
  req.key = "k";
  req.rec = value(3, 1, "v");
  auto rep = serve(r, req);
  CHECK(rep.id == 9);
  CHECK(rep.code == wire::status::not_ready);
  CHECK(r.get("k").value == "v");  // applied anyway: a max-merge never hurts
  CHECK(r.key_count() == 1);
  r.set_ready(true);
  req.what = wire::op::read;
  rep = serve(r, req);
  CHECK(rep.code == wire::status::ok);
  REQUIRE(rep.rec);
  CHECK(rep.rec->value == "v");
}

TEST_CASE("quorum messages round-trip") {
  wire::request_batch rb;
  rb.head.fingerprint = 0x1234;
  rb.head.incarnation = 77;
  rb.head.hlc_now = 1ull << 40;
  wire::request a;
  a.id = 1;
  a.what = wire::op::read;
  a.range = 3;
  a.key = "user:1";
  wire::request b;
  b.id = 2;
  b.what = wire::op::store;
  b.range = 270;
  b.key = std::string("bin\0key", 7);
  b.rec = value(99, 5, std::string("va\0lue", 6));
  b.rec->expires_at_ms = -5;
  wire::request c;
  c.id = 3;
  c.what = wire::op::store;
  c.key = "gone";
  c.rec = tomb(100, 6);
  rb.items = {a, b, c};
  auto bytes = wire::encode(rb);
  REQUIRE(bytes);
  auto back = wire::decode_requests(*bytes);
  REQUIRE(back);
  CHECK(back->head.fingerprint == 0x1234);
  CHECK(back->head.incarnation == 77);
  REQUIRE(back->items.size() == 3);
  CHECK(back->items[1].key == b.key);
  REQUIRE(back->items[1].rec);
  CHECK(*back->items[1].rec == *b.rec);
  CHECK(back->items[2].rec->tombstone);
  CHECK_FALSE(wire::decode_replies(*bytes));  // a request batch is not a reply batch

  wire::reply_batch pb;
  wire::reply r1;
  r1.id = 5;
  r1.code = wire::status::not_ready;
  r1.digest = range_digest{42, 3};
  r1.more = true;
  r1.records.emplace_back("a", value(1, 1, "x"));
  r1.records.emplace_back("b", tomb(2, 1));
  wire::reply r2;
  r2.id = 6;
  r2.rec = value(9, 9, "y");
  pb.items = {r1, r2};
  auto pbytes = wire::encode(pb);
  REQUIRE(pbytes);
  auto pback = wire::decode_replies(*pbytes);
  REQUIRE(pback);
  REQUIRE(pback->items.size() == 2);
  CHECK(pback->items[0].code == wire::status::not_ready);
  CHECK(pback->items[0].digest == range_digest{42, 3});
  CHECK(pback->items[0].more);
  CHECK(pback->items[0].records == r1.records);
  CHECK(pback->items[1].rec == r2.rec);
}

TEST_CASE("quorum message bounds hold on encode and decode") {
  wire::strong_limits lim;
  lim.max_key_bytes = 8;
  lim.max_value_bytes = 16;
  lim.max_items = 2;
  wire::request_batch rb;
  wire::request r;
  r.key = "123456789";  // 9 > 8
  rb.items = {r};
  CHECK(wire::encode(rb, lim).code() == errc::invalid_argument);
  rb.items[0].key = "ok";
  rb.items[0].what = wire::op::store;
  rb.items[0].rec = value(1, 1, std::string(17, 'x'));
  CHECK(wire::encode(rb, lim).code() == errc::invalid_argument);
  rb.items = {wire::request{}, wire::request{}, wire::request{}};
  CHECK(wire::encode(rb, lim).code() == errc::invalid_argument);
  // Encoded with generous limits, decoded with tight ones: rejected, not truncated.
  rb.items = {wire::request{}, wire::request{}, wire::request{}};
  auto bytes = wire::encode(rb);
  REQUIRE(bytes);
  CHECK(wire::decode_requests(*bytes, lim).code() == errc::codec_error);
  wire::request big;
  big.key = std::string(100, 'k');
  wire::request_batch one;
  one.items = {big};
  bytes = wire::encode(one);
  REQUIRE(bytes);
  CHECK(wire::decode_requests(*bytes, lim).code() == errc::codec_error);
}

TEST_CASE("garbage, truncated and mutated quorum messages are rejected without crashing") {
  std::mt19937_64 rng{7};
  wire::request_batch rb;
  for (int i = 0; i < 5; ++i) {
    wire::request r;
    r.id = static_cast<std::uint64_t>(i);
    r.what = i % 2 ? wire::op::store : wire::op::read_version;
    r.key = "key" + std::to_string(i);
    if (i % 2) r.rec = value(static_cast<std::uint64_t>(i), 1, "value" + std::to_string(i));
    rb.items.push_back(r);
  }
  auto good = *wire::encode(rb);
  wire::reply_batch pb;
  wire::reply rep;
  rep.records.emplace_back("k", value(1, 1, "v"));
  pb.items = {rep, rep};
  auto good_rep = *wire::encode(pb);
  std::size_t rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string bytes;
    switch (iter % 4) {
      case 0:  // random bytes
        bytes.resize(rng() % 64);
        for (auto& ch : bytes) ch = static_cast<char>(rng());
        break;
      case 1:  // truncated
        bytes = good.substr(0, rng() % good.size());
        break;
      case 2: {  // a few bytes flipped
        bytes = iter % 8 == 2 ? good : good_rep;
        for (int f = 0; f < 3; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
        break;
      }
      default:  // huge declared sizes: array32/bin32 headers with nothing behind them
        bytes = std::string("\x96\x01\x01\x00\x00\x00\xdd\xff\xff\xff\xff", 11);
        break;
    }
    auto a = wire::decode_requests(bytes);
    auto b = wire::decode_replies(bytes);
    if (!a) {
      CHECK(a.code() == errc::codec_error);
      ++rejected;
    }
    if (!b) CHECK(b.code() == errc::codec_error);
  }
  CHECK(rejected > 10000);
}

TEST_CASE("placement is the same on every node, whatever order the members are listed in") {
  std::vector<std::string> members{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003",
                                   "127.0.0.1:7004", "127.0.0.1:7005"};
  strong_placement a{members, "127.0.0.1:7001", 3, 271};
  auto reversed = members;
  std::reverse(reversed.begin(), reversed.end());
  strong_placement b{reversed, "127.0.0.1:7004", 3, 271};
  CHECK(a.fingerprint() == b.fingerprint());
  CHECK(a.majority() == 2);
  CHECK(a.recovery_quorum() == 2);
  std::vector<std::size_t> load(5);
  for (std::uint32_t r = 0; r < 271; ++r) {
    auto& ra = a.replicas(r);
    REQUIRE(ra.size() == 3);
    CHECK(ra == b.replicas(r));
    auto sorted = ra;
    std::sort(sorted.begin(), sorted.end());
    CHECK(std::unique(sorted.begin(), sorted.end()) == sorted.end());
    for (auto m : ra) ++load[m];
  }
  for (auto l : load) CHECK(l > 100);  // roughly 271 * 3 / 5 each
  CHECK(a.range_of("user:1") == b.range_of("user:1"));
  // A different member list or replication factor is a different fingerprint.
  strong_placement c{
      {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}, "127.0.0.1:7001", 3, 271};
  strong_placement d{members, "127.0.0.1:7001", 5, 271};
  CHECK(c.fingerprint() != a.fingerprint());
  CHECK(d.fingerprint() != a.fingerprint());
  CHECK(d.recovery_quorum() == 3);
  // The replication factor is capped by the member count.
  strong_placement e{{"127.0.0.1:7001", "127.0.0.1:7002"}, "127.0.0.1:7001", 3, 16};
  CHECK(e.replication_factor() == 2);
  CHECK(e.majority() == 2);
  CHECK(e.recovery_quorum() == 1);
  strong_placement f{{"h:1", "h:2", "h:3", "h:4"}, "h:9", 4, 16};
  CHECK(f.self_index() == strong_placement::npos);
  CHECK(f.recovery_quorum() == 3);
}
