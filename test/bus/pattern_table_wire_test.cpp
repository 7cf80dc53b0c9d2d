// The pattern-table message and the heartbeat's pattern version (bus/envelope.hpp): they
// round-trip, an old heartbeat (four fields) still decodes, and every bound holds on decode
// as well as on encode.
#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include "bus/envelope.hpp"

using namespace warp::bus;
using warp::errc;

TEST_CASE("a pattern table round-trips and the heartbeat carries the table's version") {
  pattern_table t;
  t.header = {message_kind::changes, 7, 8, 0, 99};  // the kind is set by encode
  t.ver = {3, 0xabcdef01};
  t.entries = {{"user:*", "user:*=eventual_distributed:10m+rate=200"},
               {"a[bc]\\*", "a[bc]\\*=strong_local"}};
  auto bytes = encode(t);
  REQUIRE(bytes);
  CHECK(decode_header(*bytes)->kind == message_kind::pattern_table);
  auto back = decode_pattern_table(*bytes);
  REQUIRE(back);
  CHECK(back->ver == t.ver);
  CHECK(back->entries == t.entries);
  CHECK(back->header.sender == 7);
  // Not a heartbeat or a batch, and they are not a table.
  CHECK(decode_heartbeat(*bytes).code() == errc::codec_error);
  change_batch b;
  CHECK(decode_pattern_table(*encode(b)).code() == errc::codec_error);

  heartbeat hb;
  hb.name = "n";
  hb.patterns = {5, 42};
  auto hbytes = encode(hb);
  REQUIRE(hbytes);
  CHECK(decode_heartbeat(*hbytes)->patterns == pattern_version{5, 42});
  // Version (0, 0) is not written: the body is the four fields older nodes send.
  heartbeat old;
  old.name = "n";
  auto obytes = encode(old);
  REQUIRE(obytes);
  CHECK(obytes->size() < hbytes->size());
  CHECK(decode_heartbeat(*obytes)->patterns == pattern_version{});
  CHECK(pattern_version{1, 9} < pattern_version{2, 0});
  CHECK(pattern_version{2, 1} < pattern_version{2, 3});
}

TEST_CASE("pattern tables are bounded on encode and on decode") {
  wire_limits small;
  small.max_patterns = 2;
  small.max_spec_bytes = 32;
  pattern_table t;
  t.ver = {1, 1};
  for (int i = 0; i < 3; ++i) t.entries.emplace_back("k" + std::to_string(i), "k=strong_local");
  CHECK(encode(t, small).code() == errc::invalid_argument);
  auto bytes = encode(t);
  REQUIRE(bytes);
  CHECK(decode_pattern_table(*bytes, small).code() == errc::codec_error);

  pattern_table long_spec;
  long_spec.entries.emplace_back("k", "k=strong_local" + std::string(40, ' '));
  CHECK(encode(long_spec, small).code() == errc::invalid_argument);
  auto lb = encode(long_spec);
  REQUIRE(lb);
  CHECK(decode_pattern_table(*lb, small).code() == errc::codec_error);

  // A hand-made body with a wrong shape: [counter, node] without the entries.
  msgpack::sbuffer body;
  msgpack::packer<msgpack::sbuffer> pk(body);
  pk.pack_array(8);
  pk.pack(std::uint8_t{1});
  pk.pack(std::uint8_t{4});
  pk.pack(std::uint8_t{0});
  pk.pack(std::uint32_t{1});
  pk.pack(std::uint64_t{1});
  pk.pack(std::uint64_t{0});
  pk.pack(std::uint64_t{0});
  pk.pack_array(2);
  pk.pack(std::uint64_t{1});
  pk.pack(std::uint32_t{1});
  CHECK(decode_pattern_table(std::string_view{body.data(), body.size()}).code() ==
        errc::codec_error);
  // A heartbeat with a malformed version field.
  heartbeat hb;
  hb.patterns = {1, 1};
  auto hbytes = encode(hb);
  REQUIRE(hbytes);
  auto cut = *hbytes;
  cut.resize(cut.size() - 1);
  CHECK(decode_heartbeat(cut).code() == errc::codec_error);
}
