// The Kafka change envelope (bus/kafka_envelope): both encodings round-trip, bounds hold on
// both sides, and 20,000 mutated inputs per encoding never crash or over-allocate.
#include <catch2/catch.hpp>

#include <random>

#include "bus/kafka_envelope.hpp"

using namespace warp;
using namespace warp::bus;

namespace {

kafka_change sample() {
  kafka_change c;
  c.op = kafka_op::update;
  c.key = "user:42";
  c.has_value = true;
  c.value = std::string{"\x00\x01\xffhello", 8};
  c.ver = version{(1'700'000'000'000ull << 16) | 7, 3};
  c.origin = "eu";
  c.path = {"eu", "us"};
  c.ttl_ms = 60'000;
  c.ts_ms = 1'700'000'000'123;
  return c;
}

}  // namespace

TEST_CASE("kafka envelope: both encodings round-trip every field") {
  for (auto f : {kafka_format::json, kafka_format::msgpack}) {
    INFO(to_string(f));
    auto c = sample();
    auto bytes = encode(c, f);
    REQUIRE(bytes);
    auto back = decode_kafka(*bytes, f);
    REQUIRE(back);
    CHECK(*back == c);
    // A delete has no value; a repair carries one; a binary key survives JSON.
    c.op = kafka_op::remove;
    c.has_value = false;
    c.value.clear();
    c.key = std::string{"k\xff\x00z", 4};
    bytes = encode(c, f);
    REQUIRE(bytes);
    back = decode_kafka(*bytes, f);
    REQUIRE(back);
    CHECK(*back == c);
  }
}

TEST_CASE("kafka envelope: the JSON form uses the documented field names") {
  auto bytes = encode(sample(), kafka_format::json);
  REQUIRE(bytes);
  for (auto field : {"\"v\":1", "\"op\":\"u\"", "\"key\":\"user:42\"", "\"value\":\"AAH/aGVsbG8=\"",
                     "\"version\":{", "\"hlc\":", "\"node\":3", "\"origin\":\"eu\"",
                     "\"path\":[\"eu\",\"us\"]", "\"ttl_ms\":60000", "\"ts_ms\":1700000000123"})
    CHECK(bytes->find(field) != std::string::npos);
  // Written by hand, as another service would.
  auto c = decode_kafka(
      R"({"v":1,"op":"c","key":"a","value":"eHl6","version":{"hlc":5,"node":1},"origin":"us"})",
      kafka_format::json);
  REQUIRE(c);
  CHECK(c->value == "xyz");
  CHECK(c->path.empty());
  CHECK(c->ttl_ms == 0);
}

TEST_CASE("kafka envelope: bounds, versions and bad fields are clear errors") {
  kafka_limits small;
  small.max_key_bytes = 4;
  auto c = sample();
  CHECK(encode(c, kafka_format::json, small).code() == errc::invalid_argument);
  CHECK(encode(c, kafka_format::msgpack, small).code() == errc::invalid_argument);
  for (auto f : {kafka_format::json, kafka_format::msgpack}) {
    auto bytes = encode(c, f);
    REQUIRE(bytes);
    CHECK(decode_kafka(*bytes, f, small).code() == errc::codec_error);
    kafka_limits tiny;
    tiny.max_message_bytes = bytes->size() - 1;
    CHECK(decode_kafka(*bytes, f, tiny).code() == errc::codec_error);
    CHECK(decode_kafka(bytes->substr(0, bytes->size() / 2), f).code() == errc::codec_error);
    CHECK(decode_kafka("", f).code() == errc::codec_error);
  }
  CHECK(decode_kafka(R"({"v":2,"op":"c","key":"a","version":{"hlc":1,"node":1},"origin":""})",
                     kafka_format::json)
            .code() == errc::codec_error);
  CHECK(decode_kafka(R"({"v":1,"op":"x","key":"a","version":{"hlc":1,"node":1},"origin":""})",
                     kafka_format::json)
            .code() == errc::codec_error);
  CHECK(decode_kafka(
            R"({"v":1,"op":"c","key":"a","value":"***=","version":{"hlc":1,"node":1},"origin":""})",
            kafka_format::json)
            .code() == errc::codec_error);
  CHECK(decode_kafka(
            R"({"v":1,"op":"d","key":"a","value":"eHl6","version":{"hlc":1,"node":1},"origin":""})",
            kafka_format::json)
            .code() == errc::codec_error);
  // Deep nesting is refused before the parser sees it.
  std::string deep(100'000, '[');
  auto r = decode_kafka(deep, kafka_format::json);
  CHECK(r.code() == errc::codec_error);
  CHECK(r.err().message().find("deep") != std::string::npos);
  CHECK(parse_kafka_format("json"));
  CHECK(parse_kafka_format("avro").code() == errc::invalid_argument);
}

TEST_CASE("kafka envelope: base64 matches RFC 4648 and rejects junk") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(*base64_decode("Zm9vYg==", 100) == "foob");
  CHECK(base64_decode("Zm9vYg=", 100).code() == errc::codec_error);
  CHECK(base64_decode("Z=9vYg==", 100).code() == errc::codec_error);
  CHECK(base64_decode("Zm9vYmFy", 5).code() == errc::codec_error);
}

TEST_CASE("kafka envelope: 20,000 mutated inputs per encoding never crash the decoder") {
  std::mt19937_64 rng{20261202};
  for (auto f : {kafka_format::json, kafka_format::msgpack}) {
    auto seed = *encode(sample(), f);
    int decoded = 0;
    for (int i = 0; i < 20'000; ++i) {
      std::string m = seed;
      int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 5) {
          case 0:  // flip a byte
            if (!m.empty()) m[rng() % m.size()] = static_cast<char>(rng());
            break;
          case 1:  // truncate
            if (!m.empty()) m.resize(rng() % m.size());
            break;
          case 2:  // insert random bytes
            m.insert(m.begin() + static_cast<long>(m.empty() ? 0 : rng() % m.size()),
                     static_cast<char>(rng()));
            break;
          case 3:  // a huge msgpack length header (bin32/array32/map32) somewhere
            if (!m.empty()) {
              const char hdr[] = {'\xc6', '\xdd', '\xdf'};
              auto at = rng() % m.size();
              m[at] = hdr[rng() % 3];
              m.insert(at + 1, "\x7f\xff\xff\xff");
            }
            break;
          default:  // duplicate a slice
            if (m.size() > 2) {
              auto a = rng() % m.size();
              auto n = rng() % (m.size() - a);
              m.insert(a, m.substr(a, n));
            }
        }
      }
      auto r = decode_kafka(m, f);
      if (r)
        ++decoded;
      else
        CHECK(r.code() == errc::codec_error);
    }
    INFO(to_string(f) << ": " << decoded << " mutated inputs still decoded");
    SUCCEED();
  }
}
