// The typed value encoding on its own (sidecar/typed_value.hpp): round trips, the exact
// bytes of the documented layout, string escaping, and damaged or hostile values, which
// must decode to nothing (read as plain strings) without a large allocation.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "sidecar/typed_value.hpp"

using namespace warp::sidecar;
using namespace std::string_literals;

TEST_CASE("typed values round trip and tag their type", "[sidecar][typed]") {
  typed::list_t l = {"a", "", "ccc", "\xff"};
  auto le = typed::encode_list(l);
  CHECK(typed::type_of(le) == value_type::list);
  CHECK(typed::decode_list(le) == l);
  CHECK(!typed::decode_zset(le));

  typed::zset_t z = {
      {-std::numeric_limits<double>::infinity(), "m"}, {-0.0, "a"}, {1.5, "a"}, {1.5, "b"}};
  auto ze = typed::encode_zset(z);
  CHECK(typed::type_of(ze) == value_type::zset);
  auto zd = typed::decode_zset(ze);
  REQUIRE(zd);
  CHECK(*zd == z);
  CHECK(std::signbit((*zd)[1].first));  // -0 survives

  typed::set_t s = {"", "a", "b"};
  auto se = typed::encode_set(s);
  CHECK(typed::type_of(se) == value_type::set);
  CHECK(typed::decode_set(se) == s);

  typed::hash_t h = {{"f2", "v"}, {"f1", ""}};
  auto he = typed::encode_hash(h);
  CHECK(typed::type_of(he) == value_type::hash);
  CHECK(typed::decode_hash(he) == h);  // insertion order kept

  CHECK(type_name(value_type::zset) == "zset");
  CHECK(type_name(value_type::none) == "none");
}

TEST_CASE("typed value layout is the documented one", "[sidecar][typed]") {
  // docs/sidecar.md, "Value encoding": version 1. Changing these bytes breaks stored data.
  CHECK(typed::encode_list({"ab", "c"}) ==
        "\xffWT\x01l\x02\x02"
        "ab\x01"
        "c"s);
  CHECK(typed::encode_set({"x"}) == "\xffWT\x01s\x01\x01x"s);
  CHECK(typed::encode_hash({{"f", "v"}}) ==
        "\xffWT\x01h\x01\x01"
        "f\x01v"s);
  CHECK(typed::encode_zset({{1.0, "m"}}) ==
        "\xffWT\x01z\x01\x00\x00\x00\x00\x00\x00\xf0\x3f\x01m"s);
  // A long element: its length is a LEB128 varint (300 = 0xAC 0x02).
  std::string big(300, 'x');
  CHECK(typed::encode_list({big}).substr(0, 8) == "\xffWT\x01l\x01\xac\x02"s);
}

TEST_CASE("plain strings stay as they are, header-like ones are escaped", "[sidecar][typed]") {
  for (std::string v : {""s, "hello"s, "\xff"s, "\xffW"s, "\xffWX"s, "\x00\xffWT"s}) {
    CHECK(!typed::needs_escape(v));
    CHECK(typed::encode_string(v) == v);  // byte-identical to the old encoding
    CHECK(typed::type_of(v) == value_type::string);
    CHECK(typed::string_payload(v) == v);
  }
  // Strings that look like typed values are stored escaped and read back unchanged.
  for (std::string v : {"\xffWT"s, "\xffWT\x01l\x01\x01x"s, "\xffWT\x01r"s, "\xffWTanything"s}) {
    CHECK(typed::needs_escape(v));
    auto stored = typed::encode_string(v);
    CHECK(stored == "\xffWT\x01r"s + v);
    CHECK(typed::type_of(stored) == value_type::string);
    CHECK(typed::string_payload(stored) == v);
  }
}

TEST_CASE("damaged typed values read as plain strings", "[sidecar][typed]") {
  auto good = typed::encode_list({"ab", "c"});
  // Every truncation, and trailing bytes, fail the list decoder: the value is a string.
  for (std::size_t n = 0; n < good.size(); ++n) {
    CHECK(!typed::decode_list(good.substr(0, n)));
    CHECK(typed::type_of(good.substr(0, n)) == value_type::string);
  }
  CHECK(!typed::decode_list(good + "x"));
  // Unknown version or tag.
  CHECK(typed::type_of("\xffWT\x02l\x01\x01x"s) == value_type::string);
  CHECK(typed::type_of("\xffWT\x01q\x01\x01x"s) == value_type::string);
  // An empty collection is never stored.
  CHECK(!typed::decode_list("\xffWT\x01l\x00"s));
  // A count far beyond the bytes present is refused before any allocation.
  CHECK(!typed::decode_list("\xffWT\x01l\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x01x"s));
  CHECK(!typed::decode_hash("\xffWT\x01h\xff\xff\xff\xff\x0f"s));
  // An element length past the end.
  CHECK(!typed::decode_set("\xffWT\x01s\x01\x7fx"s));
  // A varint longer than 64 bits.
  CHECK(!typed::decode_list("\xffWT\x01l\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"s));
  // Sets and sorted sets must be in order and without duplicates; NaN is no score.
  CHECK(
      !typed::decode_set("\xffWT\x01s\x02\x01"
                         "b\x01"
                         "a"s));
  CHECK(
      !typed::decode_set("\xffWT\x01s\x02\x01"
                         "a\x01"
                         "a"s));
  CHECK(!typed::decode_zset(typed::encode_zset({{2.0, "a"}, {1.0, "b"}})));
  CHECK(!typed::decode_zset(typed::encode_zset({{std::nan(""), "a"}})));
}
