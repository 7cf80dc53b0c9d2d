// The Raft hosts' batch frame (runtime/consensus/raft_batch.hpp): round trips, bounds, and
// random and mutated frames that must decode within the limits or fail with codec_error,
// never crash and never allocate beyond the frame's own size.
#include <catch2/catch.hpp>

#include <random>

#include "runtime/consensus/raft_batch.hpp"
#include "test/consensus/alloc_meter.hpp"

using namespace warp;
using namespace warp::consensus;

namespace {

raft_batch sample_batch(std::mt19937_64& rng) {
  raft_batch b;
  b.sender = rng() % 7 + 1;
  for (std::size_t i = 0, n = rng() % 12; i < n; ++i)
    b.items.push_back(batch_item{static_cast<std::uint32_t>(rng() % 64),
                                 std::string(rng() % 80, static_cast<char>('a' + rng() % 26))});
  return b;
}

}  // namespace

TEST_CASE("raft batch: frames round-trip") {
  std::mt19937_64 rng{7};
  for (int i = 0; i < 2000; ++i) {
    auto b = sample_batch(rng);
    auto f = encode(b);
    REQUIRE(f);
    auto d = decode_batch(*f);
    REQUIRE(d);
    CHECK(*d == b);
  }
}

TEST_CASE("raft batch: version, sender, counts, lengths and trailing bytes are checked") {
  raft_batch b{3, {{1, "abc"}, {2, "de"}}};
  auto f = encode(b);
  REQUIRE(f);
  std::string bad_version = *f;
  bad_version[0] = 9;
  CHECK(decode_batch(bad_version).code() == errc::codec_error);
  CHECK(decode_batch(*f + "x").code() == errc::codec_error);
  CHECK(decode_batch(f->substr(0, f->size() - 1)).code() == errc::codec_error);
  CHECK(decode_batch("").code() == errc::codec_error);
  batch_limits lim;
  lim.max_items = 1;
  CHECK(decode_batch(*f, lim).code() == errc::codec_error);
  CHECK(encode(b, lim).code() == errc::invalid_argument);
  lim = {};
  lim.max_item_bytes = 2;
  CHECK(decode_batch(*f, lim).code() == errc::codec_error);
  lim = {};
  lim.max_frame_bytes = f->size() - 1;
  CHECK(decode_batch(*f, lim).code() == errc::codec_error);
  raft_batch zero{0, {}};
  CHECK(decode_batch(*encode(zero)).code() == errc::codec_error);  // sender 0 is nobody
}

TEST_CASE("raft batch: a few bytes claiming 2^32 items or a 4 GiB item are refused first") {
  // version 1, sender 1, count 0xffffffff.
  std::string huge_count{"\x01\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff", 13};
  // count 1, group 0, length 0xffffffff, 3 bytes of payload.
  std::string huge_item{
      "\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
      "\x00\x00\x00\x00\xff\xff\xff\xff"
      "abc",
      24};
  for (const auto& s : {huge_count, huge_item}) {
    test::alloc_meter::start();
    auto d = decode_batch(s);
    test::alloc_meter::stop();
    CHECK(d.code() == errc::codec_error);
    CHECK(test::alloc_meter::largest() < 4096);
  }
}

TEST_CASE("raft batch: random and mutated frames never crash and stay within the limits") {
  std::mt19937_64 rng{99};
  batch_limits lim;
  lim.max_items = 8;
  lim.max_item_bytes = 64;
  lim.max_frame_bytes = 4096;
  int decoded = 0;
  auto check = [&](const std::string& bytes) {
    test::alloc_meter::start();
    auto d = decode_batch(bytes, lim);
    test::alloc_meter::stop();
    // Everything decoded is a copy of part of the input: nothing beyond a small multiple.
    if (test::alloc_meter::total() > 1024 + bytes.size() * 4)
      FAIL("decode of " << bytes.size() << " bytes requested " << test::alloc_meter::total());
    if (!d) {
      CHECK(d.code() == errc::codec_error);
      return;
    }
    ++decoded;
    REQUIRE(d->items.size() <= lim.max_items);
    for (auto& it : d->items) REQUIRE(it.bytes.size() <= lim.max_item_bytes);
  };
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (!junk.empty() && rng() % 2) junk[0] = 1;  // past the version check, half the time
    check(junk);
  }
  for (int i = 0; i < 20000; ++i) {
    auto b = sample_batch(rng);
    b.items.resize(std::min<std::size_t>(b.items.size(), lim.max_items));
    for (auto& it : b.items) it.bytes.resize(std::min<std::size_t>(it.bytes.size(), 64));
    auto f = *encode(b, lim);
    switch (rng() % 4) {
      case 0:
        f[rng() % f.size()] = static_cast<char>(rng());
        break;
      case 1:
        f.resize(rng() % f.size());
        break;
      case 2:
        f.insert(rng() % f.size(), 1, static_cast<char>(rng()));
        break;
      default:
        for (int k = 0; k < 4; ++k) f[rng() % f.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    check(f);
  }
  CHECK(decoded > 0);
  WARN(decoded << " of 40000 random/mutated frames decoded within bounds");
}
