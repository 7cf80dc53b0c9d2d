#include <catch2/catch.hpp>

#include <random>

#include "bus/envelope.hpp"

using namespace warp::bus;
using warp::errc;

namespace {

change_batch sample_batch(std::size_t n, std::size_t value_size = 8) {
  change_batch b;
  b.header = {message_kind::changes, 0xdeadbeef, 77, 42, 123456789};
  for (std::size_t i = 0; i < n; ++i) {
    change_record r;
    r.key = "user:" + std::to_string(i);
    r.ver = {1000 + i, 0xdeadbeef};
    r.expires_at_ms = i % 3 == 0 ? 0 : 1'700'000'000'000 + static_cast<std::int64_t>(i);
    r.kind = static_cast<record_kind>(i % 3);
    if (r.kind == record_kind::value) r.value = std::string(value_size, char('a' + i % 26));
    b.records.push_back(std::move(r));
  }
  return b;
}

}  // namespace

TEST_CASE("a change batch round-trips through the envelope") {
  auto b = sample_batch(50);
  auto bytes = encode(b);
  REQUIRE(bytes);
  auto h = decode_header(*bytes);
  REQUIRE(h);
  CHECK(h->kind == message_kind::changes);
  CHECK(h->sender == 0xdeadbeef);
  CHECK(h->incarnation == 77);
  CHECK(h->seq == 42);
  auto back = decode_batch(*bytes);
  REQUIRE(back);
  CHECK(back->header == b.header);
  CHECK(back->records == b.records);
  // Other decoders refuse a batch.
  CHECK(decode_heartbeat(*bytes).code() == errc::codec_error);
  CHECK(decode_fetch_reply(*bytes).code() == errc::codec_error);
}

TEST_CASE("large batches are compressed and still round-trip") {
  auto b = sample_batch(2000, 200);
  wire_limits lim;
  lim.compress_above = 16 * 1024;
  auto packed = encode(b, lim);
  REQUIRE(packed);
  lim.compress_above = 0;
  auto raw = encode(b, lim);
  REQUIRE(raw);
  CHECK(packed->size() < raw->size() / 4);
  auto back = decode_batch(*packed);
  REQUIRE(back);
  CHECK(back->records == b.records);
}

TEST_CASE("heartbeats and fetch replies round-trip") {
  heartbeat hb;
  hb.header = {message_kind::heartbeat, 7, 8, 9, 10};
  hb.name = "n1";
  hb.address = "127.0.0.1:4700";
  hb.leaving = true;
  hb.members = {{1, 2, "a", "127.0.0.1:1", member_state::up},
                {3, 4, "b", "127.0.0.1:2", member_state::suspect}};
  auto bytes = encode(hb);
  REQUIRE(bytes);
  auto back = decode_heartbeat(*bytes);
  REQUIRE(back);
  CHECK(back->header == hb.header);
  CHECK(back->name == "n1");
  CHECK(back->address == hb.address);
  CHECK(back->leaving);
  CHECK(back->members == hb.members);

  fetch_reply rep;
  rep.found = true;
  rep.rec = {"k", {5, 6}, 0, record_kind::value, std::string("\0binary\xff", 8)};
  auto rb = encode(rep);
  REQUIRE(rb);
  auto rback = decode_fetch_reply(*rb);
  REQUIRE(rback);
  CHECK(rback->found);
  CHECK(rback->rec == rep.rec);
  fetch_reply none;
  auto nb = encode(none);
  REQUIRE(nb);
  auto nback = decode_fetch_reply(*nb);
  REQUIRE(nback);
  CHECK_FALSE(nback->found);
}

TEST_CASE("heartbeats carry the storage identity when known, bounded like any text") {
  heartbeat hb;
  hb.header = {message_kind::heartbeat, 7, 8, 9, 10};
  hb.name = "n1";
  hb.address = "127.0.0.1:4700";
  // Unknown: the 4-element form earlier builds send; it decodes with an empty id.
  auto plain = encode(hb);
  REQUIRE(plain);
  auto back = decode_heartbeat(*plain);
  REQUIRE(back);
  CHECK(back->storage_id.empty());
  hb.storage_id = "0123456789abcdef0123456789abcdef";
  auto with = encode(hb);
  REQUIRE(with);
  CHECK(with->size() > plain->size());
  back = decode_heartbeat(*with);
  REQUIRE(back);
  CHECK(back->storage_id == hb.storage_id);
  CHECK(back->name == "n1");
  // Over the text bound: refused on encode, and on decode by a receiver with a lower bound.
  wire_limits small;
  small.max_text_bytes = 16;
  CHECK(encode(hb, small).code() == errc::invalid_argument);
  CHECK(decode_heartbeat(*with, small).code() == errc::codec_error);
}

TEST_CASE("bounds are enforced on encode and on decode") {
  wire_limits small;
  small.max_records = 10;
  small.max_key_bytes = 16;
  auto b = sample_batch(11);
  CHECK(encode(b, small).code() == errc::invalid_argument);
  auto bytes = encode(b);  // default limits: fine
  REQUIRE(bytes);
  CHECK(decode_batch(*bytes, small).code() == errc::codec_error);

  change_batch big_key;
  big_key.records.push_back({std::string(17, 'k'), {1, 1}, 0, record_kind::invalidate, {}});
  CHECK(encode(big_key, small).code() == errc::invalid_argument);
  auto bk = encode(big_key);
  REQUIRE(bk);
  CHECK(decode_batch(*bk, small).code() == errc::codec_error);

  wire_limits tiny;
  tiny.max_message_bytes = 100;
  CHECK(decode_batch(*bytes, tiny).code() == errc::codec_error);
}

TEST_CASE("a wrong version, trailing bytes and truncation are rejected") {
  auto bytes = encode(sample_batch(3));
  REQUIRE(bytes);
  auto wrong = *bytes;
  REQUIRE(static_cast<unsigned char>(wrong[1]) == envelope_version);  // fixarray, then v
  wrong[1] = 2;
  auto r = decode_batch(wrong);
  CHECK(r.code() == errc::codec_error);
  CHECK(r.err().message().find("version") != std::string::npos);
  CHECK(decode_batch(*bytes + "x").code() == errc::codec_error);
  for (std::size_t cut = 0; cut < bytes->size(); ++cut)
    CHECK(decode_batch(bytes->substr(0, cut)).code() == errc::codec_error);
}

TEST_CASE("random and mutated bytes never crash the decoders") {
  std::mt19937_64 rng{20240601};
  auto valid = encode(sample_batch(20));
  REQUIRE(valid);
  heartbeat hb;
  hb.members = {{1, 2, "a", "x:1", member_state::up}};
  auto hbytes = encode(hb);
  REQUIRE(hbytes);
  wire_limits lim;
  lim.max_message_bytes = 1 << 20;
  std::size_t decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    switch (i % 3) {
      case 0: {  // pure garbage
        input.resize(rng() % 256);
        for (auto& c : input) c = static_cast<char>(rng());
        break;
      }
      default: {  // a valid message with a few bytes flipped, cut or duplicated
        input = i % 3 == 1 ? *valid : *hbytes;
        auto flips = 1 + rng() % 4;
        for (std::size_t f = 0; f < flips; ++f)
          input[rng() % input.size()] = static_cast<char>(rng());
        if (rng() % 4 == 0) input.resize(rng() % input.size());
        break;
      }
    }
    auto b = decode_batch(input, lim);
    auto h = decode_heartbeat(input, lim);
    auto f = decode_fetch_reply(input, lim);
    (void)decode_header(input, lim);
    if (b) {
      ++decoded;
      auto again = encode(*b, lim);
      REQUIRE(again);
      auto back = decode_batch(*again, lim);
      REQUIRE(back);
      CHECK(back->records == b->records);
    }
    if (!b) CHECK(b.code() == errc::codec_error);
    if (!h) CHECK(h.code() == errc::codec_error);
    if (!f) CHECK(f.code() == errc::codec_error);
  }
  SUCCEED("decoded " << decoded << " mutated batches");
}
