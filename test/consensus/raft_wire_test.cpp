// The Raft wire codec: round trips, bounds, and a fuzz-style pass over random and mutated
// bytes that must never crash and never produce a message beyond the limits.
#include <catch2/catch.hpp>

#include <random>

#include "runtime/consensus/raft_wire.hpp"
#include "test/consensus/alloc_meter.hpp"

using namespace warp;
using namespace warp::consensus;

namespace {

message sample(std::mt19937_64& rng) {
  message m;
  m.type = static_cast<msg_type>(rng() % msg_type_count);
  m.from = rng() % 9 + 1;
  m.to = rng() % 9 + 1;
  m.term = rng() % 1000;
  m.log_term = rng() % 1000;
  m.index = rng();
  m.commit = rng() % 100000;
  m.reject = rng() % 2;
  m.reject_hint = rng() % 100;
  m.context = rng();
  if (m.type == msg_type::install_snapshot) {
    m.snap = snapshot{rng() % 1000, rng() % 50, {1, 2, 3}, std::string(rng() % 200, 's')};
  } else {
    for (std::size_t i = 0, n = rng() % 6; i < n; ++i) {
      entry e{m.term, m.index + i + 1, entry_type::normal, std::string(rng() % 64, 'x')};
      if (rng() % 4 == 0) {
        e.type = entry_type::config;
        e.data = encode_voters({1, 2, rng() % 7 + 3});
      }
      m.entries.push_back(std::move(e));
    }
  }
  return m;
}

}  // namespace

TEST_CASE("raft wire: every message type round-trips") {
  std::mt19937_64 rng{1};
  for (int i = 0; i < 2000; ++i) {
    auto m = sample(rng);
    auto b = encode(m);
    REQUIRE(b);
    auto d = decode(*b);
    REQUIRE(d);
    CHECK(*d == m);
  }
}

TEST_CASE("raft wire: version, sizes and shape are checked") {
  message m;
  m.type = msg_type::append;
  m.entries.assign(3, entry{1, 1, entry_type::normal, "abc"});
  auto b = encode(m);
  REQUIRE(b);
  wire_limits small;
  small.max_entries = 2;
  CHECK(decode(*b, small).code() == errc::codec_error);
  CHECK(encode(m, small).code() == errc::invalid_argument);
  small = {};
  small.max_entry_bytes = 2;
  CHECK(decode(*b, small).code() == errc::codec_error);
  small = {};
  small.max_message_bytes = b->size() - 1;
  CHECK(decode(*b, small).code() == errc::codec_error);
  std::string v2 = *b;
  REQUIRE(static_cast<unsigned char>(v2[1]) == raft_wire_version);  // after the array header
  v2[1] = 2;
  auto d = decode(v2);
  REQUIRE(!d);
  CHECK(d.err().message().find("version") != std::string::npos);
  CHECK(decode(*b + "x").code() == errc::codec_error);  // trailing bytes
  CHECK(decode("").code() == errc::codec_error);
  // A snapshot on a type that does not carry one is refused.
  m.snap = snapshot{};
  CHECK(decode(*encode(m)).code() == errc::codec_error);
}

TEST_CASE("raft wire: a few bytes claiming huge counts are refused before allocation") {
  // array32 of 2^32-1 items, bin32 of 4 GiB: the unpack limits stop them at the header.
  const std::string huge_array{"\xdd\xff\xff\xff\xff", 5};
  const std::string huge_bin{"\xc6\xff\xff\xff\xff", 5};
  std::string msg_with_huge_entries{"\x9d\x01\x04\x01\x02\x03\x00\x00\x00\xc2\x00\x00", 12};
  msg_with_huge_entries += huge_array;
  for (const auto& s : {huge_array, huge_bin, msg_with_huge_entries}) {
    test::alloc_meter::start();
    auto d = decode(s);
    test::alloc_meter::stop();
    CHECK(d.code() == errc::codec_error);
    // Not even asked for: without the unpack limits msgpack requests count x 24 bytes.
    CHECK(test::alloc_meter::largest() < 64 * 1024);
  }
}

TEST_CASE("raft wire: random and mutated bytes never crash and never exceed the limits") {
  std::mt19937_64 rng{42};
  wire_limits lim;
  lim.max_entries = 16;
  lim.max_entry_bytes = 256;
  lim.max_snapshot_bytes = 512;
  lim.max_voters = 8;
  lim.max_message_bytes = 8192;
  int decoded = 0;
  // msgpack sizes its zone chunks at 8 KiB and an array's items at 24 bytes each; bins are
  // copied. So one request is at most a chunk, a bounded bin or a bounded array, and all of
  // them together grow with the input, never with what the input claims.
  const std::size_t max_items = 16;  // the largest array the limits let through
  const std::size_t single_bound = 8192 + 64 + std::max<std::size_t>(512, max_items * 24);
  std::size_t worst_single = 0;
  auto check = [&](const std::string& bytes) {
    test::alloc_meter::start();
    auto d = decode(bytes, lim);
    test::alloc_meter::stop();
    const std::size_t single = test::alloc_meter::largest();
    const std::size_t total = test::alloc_meter::total();
    worst_single = std::max(worst_single, single);
    if (single > single_bound || total > 65536 + bytes.size() * max_items * 24) {
      FAIL("decode of " << bytes.size() << " bytes requested " << single << " at once, " << total
                        << " in all");
    }
    if (!d) {
      CHECK(d.code() == errc::codec_error);
      return;
    }
    ++decoded;
    REQUIRE(d->entries.size() <= lim.max_entries);
    for (auto& e : d->entries) REQUIRE(e.data.size() <= lim.max_entry_bytes);
    if (d->snap) {
      REQUIRE(d->snap->data.size() <= lim.max_snapshot_bytes);
      REQUIRE(d->snap->voters.size() <= lim.max_voters);
    }
  };
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 300, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    check(junk);
  }
  for (int i = 0; i < 20000; ++i) {
    auto b = *encode(sample(rng));
    switch (rng() % 4) {
      case 0:
        b[rng() % b.size()] = static_cast<char>(rng());
        break;  // flip a byte
      case 1:
        b.resize(rng() % b.size());
        break;  // truncate
      case 2:
        b.insert(rng() % b.size(), 1, static_cast<char>(rng()));
        break;
      default:
        for (int k = 0; k < 4; ++k) b[rng() % b.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    check(b);
  }
  WARN(decoded << " of 40000 random/mutated inputs decoded (within bounds); largest single "
                  "heap request of any decode: "
               << worst_single << " bytes");
}
