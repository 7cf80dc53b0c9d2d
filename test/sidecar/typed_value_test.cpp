// The typed value encoding on its own (sidecar/typed_value.hpp): round trips, the exact
// bytes of the documented layout, string escaping, and damaged or hostile values, which
// must decode to nothing (read as plain strings) without a large allocation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "sidecar/resp_writer.hpp"
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

namespace {

typed::list_t random_list(std::mt19937_64& rng, std::vector<std::string>& store) {
  store.clear();
  const std::size_t n = 1 + rng() % 40;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t len = rng() % 8 == 0 ? 128 + rng() % 300 : rng() % 6;  // some 2-byte lengths
    std::string e(len, '\0');
    for (auto& ch : e) ch = static_cast<char>('a' + rng() % 3);
    store.push_back(std::move(e));
  }
  return {store.begin(), store.end()};
}

typed::zset_t random_zset(std::mt19937_64& rng, std::vector<std::string>& store) {
  auto members = random_list(rng, store);
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  typed::zset_t z;
  for (auto m : members) z.emplace_back(static_cast<double>(rng() % 5) / 2, m);  // ties too
  std::sort(z.begin(), z.end(), typed::zless);
  return z;
}

}  // namespace

TEST_CASE("scans accept exactly what the decoders accept, and cursors read it back",
          "[sidecar][typed]") {
  std::mt19937_64 rng{42};
  std::vector<std::string> store;
  for (int round = 0; round < 300; ++round) {
    auto l = random_list(rng, store);
    auto le = typed::encode_list(l);
    auto sl = typed::scan_list(le);
    REQUIRE(sl);
    CHECK(sl->count == l.size());
    typed::cursor c{le, sl->body};
    for (std::size_t i = 0; i < l.size(); ++i) {
      if (i + 1 == l.size()) CHECK(c.pos() == sl->last);
      CHECK(c.bytes() == l[i]);
    }
    CHECK(c.pos() == le.size());

    auto z = random_zset(rng, store);
    auto ze = typed::encode_zset(z);
    const std::string_view member = z[rng() % z.size()].second;
    auto sz = typed::scan_zset(ze, &member);
    REQUIRE(sz);
    CHECK(sz->count == z.size());
    REQUIRE(sz->found);
    CHECK(z[sz->rank].second == member);
    CHECK(z[sz->rank].first == sz->score);
    // Removing the member's entry bytes and putting it back where zset_insert_pos says
    // gives the same value.
    for (double score : {-1.0, 0.0, 0.5, 1.0, 3.0}) {
      auto pos = typed::zset_insert_pos(ze, sz->body, score, member, sz->at, sz->end);
      CHECK((pos <= sz->at || pos >= sz->end));
      std::string spliced = typed::begin_value(value_type::zset, z.size(), ze.size());
      auto slice = [&](std::size_t a, std::size_t b) { spliced.append(ze, a, b - a); };
      if (pos <= sz->at) {
        slice(sz->body, pos);
        typed::append_entry(spliced, score, member);
        slice(pos, sz->at);
        slice(sz->end, ze.size());
      } else {
        slice(sz->body, sz->at);
        slice(sz->end, pos);
        typed::append_entry(spliced, score, member);
        slice(pos, ze.size());
      }
      auto expect = z;
      for (auto& e : expect)
        if (e.second == member) e.first = score;
      std::sort(expect.begin(), expect.end(), typed::zless);
      CHECK(spliced == typed::encode_zset(expect));
    }

    // Damage: every truncation, a flipped byte, trailing bytes. Scan and decoder agree.
    for (const std::string* v : {&le, &ze}) {
      std::string damaged = *v;
      switch (round % 3) {
        case 0:
          damaged.resize(rng() % damaged.size());
          break;
        case 1:
          damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
          break;
        default:
          damaged.push_back('x');
      }
      CHECK(typed::scan_list(damaged).has_value() == typed::decode_list(damaged).has_value());
      CHECK(typed::scan_zset(damaged).has_value() == typed::decode_zset(damaged).has_value());
      if (auto d = typed::decode_list(damaged))
        CHECK(typed::scan_list(damaged)->count == d->size());
    }
  }
  // A cursor never reads outside the value.
  typed::cursor past{"\xffWT\x01l\x01\x7fx", 6};
  CHECK(past.bytes().empty());
  CHECK(past.pos() == 8);
  CHECK(past.bytes().empty());
  CHECK(past.score() == 0);
  // LPUSH's splice: new elements, then the old encoded ones.
  auto before = typed::encode_list({"b", "c"});
  auto sb = typed::scan_list(before);
  REQUIRE(sb);
  auto after = typed::begin_value(value_type::list, 3, 10);
  typed::append_element(after, "a");
  after.append(before, sb->body);
  CHECK(after == typed::encode_list({"a", "b", "c"}));
}

TEST_CASE("scores are printed as %.17g, as Redis 7.0 prints them", "[sidecar][typed]") {
  auto print = [](double v) {
    std::string out;
    warp::sidecar::resp_writer{out, 3}.dbl(v);
    return out.substr(1, out.size() - 3);  // ",<text>\r\n"
  };
  auto printf17 = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return std::string(buf);
  };
  std::mt19937_64 rng{7};
  std::vector<double> values = {0.0,
                                -0.0,
                                1.0,
                                -1.0,
                                2.5,
                                0.1,
                                1e17,
                                1e17 - 16,
                                -1e17 + 16,
                                1e-5,
                                123456789012345678.0,
                                99999999999999984.0,
                                1e300,
                                -1e-300,
                                std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::max(),
                                3.0000000000000004};
  for (int i = 0; i < 20000; ++i) {
    std::uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (std::isfinite(d)) values.push_back(d);
    values.push_back(static_cast<double>(static_cast<std::int64_t>(rng() % 2000000) - 1000000) /
                     static_cast<double>(1 + rng() % 1000));
    values.push_back(static_cast<double>(static_cast<std::int64_t>(rng() >> (rng() % 64))));
  }
  for (double v : values) {
    INFO(printf17(v));
    REQUIRE(print(v) == printf17(v));
  }
  CHECK(print(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(print(-std::numeric_limits<double>::infinity()) == "-inf");
}
