// The pattern-table message and the heartbeat's pattern version (bus/envelope.hpp): they
// round-trip, an old heartbeat (four fields) still decodes, and every bound holds on decode
// as well as on encode.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include <msgpack.hpp>

#include "bus/envelope.hpp"

using namespace warp::bus;
using warp::errc;

TEST_CASE("a pattern table round-trips and the heartbeat carries the table's version") {
  pattern_table t;
  t.header = {message_kind::changes, 7, 8, 0, 99};  // the kind is set by encode
  t.entries = {{"user:*", "user:*=eventual_distributed:10m+rate=200", {3, 0xabcdef01}},
               {"a[bc]\\*", "a[bc]\\*=strong_local", {1, 2}},
               {"gone:*", "", {2, 5}}};  // a tombstone
  auto bytes = encode(t);
  REQUIRE(bytes);
  CHECK(decode_header(*bytes)->kind == message_kind::pattern_table);
  auto back = decode_pattern_table(*bytes);
  REQUIRE(back);
  CHECK(back->entries == t.entries);
  CHECK(back->entries[2].removed());
  // The summary is computed from the entries received, never taken from the sender.
  pattern_entries table;
  for (const auto& e : t.entries) merge_pattern(table, e);
  CHECK(back->ver == pattern_summary(table));
  CHECK(back->ver.counter == 3);
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
  for (int i = 0; i < 3; ++i)
    t.entries.push_back({"k" + std::to_string(i), "k=strong_local", {1, 1}});
  CHECK(encode(t, small).code() == errc::invalid_argument);
  auto bytes = encode(t);
  REQUIRE(bytes);
  CHECK(decode_pattern_table(*bytes, small).code() == errc::codec_error);

  pattern_table long_spec;
  long_spec.entries.push_back({"k", "k=strong_local" + std::string(40, ' '), {1, 1}});
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

namespace {
// A body of the first format: [counter, node, [[glob, spec]...]] (builds before per-glob
// versions), sealed in an envelope by hand.
std::string first_format_table(std::uint64_t counter, std::uint32_t node,
                               const std::vector<std::pair<std::string, std::string>>& ps) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(8);
  pk.pack(std::uint8_t{1});
  pk.pack(std::uint8_t{4});
  pk.pack(std::uint8_t{0});
  pk.pack(std::uint32_t{9});
  pk.pack(std::uint64_t{1});
  pk.pack(std::uint64_t{0});
  pk.pack(std::uint64_t{0});
  pk.pack_array(3);
  pk.pack(counter);
  pk.pack(node);
  pk.pack_array(static_cast<std::uint32_t>(ps.size()));
  for (const auto& [g, s] : ps) {
    pk.pack_array(2);
    pk.pack(g);
    pk.pack(s);
  }
  return {buf.data(), buf.size()};
}
}  // namespace

TEST_CASE("a pattern table of the first format still decodes, each glob at the table's version") {
  auto bytes = first_format_table(4, 7, {{"a:*", "a:*=strong_local"}, {"b:*", "b:*=strong_local"}});
  auto t = decode_pattern_table(bytes);
  REQUIRE(t);
  REQUIRE(t->entries.size() == 2);
  CHECK(t->entries[0] == pattern_entry{"a:*", "a:*=strong_local", {4, 7}});
  CHECK(t->entries[1].ver == pattern_version{4, 7});
  CHECK_FALSE(t->entries[1].removed());
  // An empty spec is not a tombstone in the first format: it is malformed.
  CHECK(decode_pattern_table(first_format_table(1, 1, {{"a:*", ""}})).code() == errc::codec_error);
  // The second format with an unknown format number is refused, not guessed at.
  pattern_table t2;
  t2.entries.push_back({"a:*", "a:*=strong_local", {1, 1}});
  auto b2 = encode(t2);
  REQUIRE(b2);
  auto pos = b2->rfind('\x92');  // the body's array(2) header, then the format byte 2
  REQUIRE(pos != std::string::npos);
  REQUIRE((*b2)[pos + 1] == '\x02');
  (*b2)[pos + 1] = '\x03';
  CHECK(decode_pattern_table(*b2).code() == errc::codec_error);
}

TEST_CASE(
    "merging pattern tables entry by entry is commutative, idempotent and order-independent") {
  // Random changes made on 4 nodes, each from its own view (its counter is one above the
  // newest it has), delivered to every node in a random order, some more than once: every
  // node ends with the same table, and each glob's newest change is in it.
  std::mt19937_64 rng{GENERATE(1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u)};
  constexpr int nodes = 4;
  std::vector<pattern_entries> view(nodes);
  std::vector<pattern_entry> made;
  const std::vector<std::string> globs{"a:*", "b:*", "c:*", "d:*", "e:*", "f:*"};
  for (int step = 0; step < 60; ++step) {
    int n = static_cast<int>(rng() % nodes);
    // Sometimes a node first hears of some changes made so far.
    if (!made.empty() && rng() % 3 == 0)
      for (int k = 0; k < 3; ++k) merge_pattern(view[n], made[rng() % made.size()]);
    std::uint64_t counter = pattern_summary(view[n]).counter + 1;
    const auto& g = globs[rng() % globs.size()];
    pattern_entry e{g,
                    rng() % 4 == 0 ? "" : g + "=strong_local:" + std::to_string(rng() % 100),
                    {counter, static_cast<std::uint32_t>(n + 1)}};
    merge_pattern(view[n], e);
    made.push_back(e);
  }
  // Expected: for each glob, the winner over every change made.
  pattern_entries expected;
  for (const auto& e : made) merge_pattern(expected, e);
  for (int n = 0; n < nodes; ++n) {
    auto order = made;
    std::shuffle(order.begin(), order.end(), rng);
    // Duplicates: idempotent.
    for (int k = 0; k < 20; ++k) order.push_back(made[rng() % made.size()]);
    std::shuffle(order.begin(), order.end(), rng);
    for (const auto& e : order) merge_pattern(view[n], e);
    CHECK(view[n] == expected);
    CHECK(pattern_summary(view[n]) == pattern_summary(expected));
  }
  // Merging whole tables in either direction gives the same table (commutative).
  pattern_entries x, y;
  for (std::size_t i = 0; i < made.size(); ++i) merge_pattern(i % 2 ? x : y, made[i]);
  auto xy = x, yx = y;
  for (const auto& [g, e] : y) merge_pattern(xy, e);
  for (const auto& [g, e] : x) merge_pattern(yx, e);
  CHECK(xy == yx);
  CHECK(xy == expected);
  auto again = xy;
  for (const auto& [g, e] : y) CHECK_FALSE(merge_pattern(again, e));  // idempotent
}

TEST_CASE("two changes to one glob at the same version converge on the same winner") {
  pattern_entry a{"x:*", "x:*=strong_local", {5, 1}};
  pattern_entry b{"x:*", "x:*=eventual_distributed", {5, 1}};
  pattern_entry gone{"x:*", "", {5, 1}};
  CHECK(pattern_wins(b, a) != pattern_wins(a, b));
  CHECK(pattern_wins(a, gone));  // a tombstone is the least at one version
  pattern_entries p, q;
  merge_pattern(p, a);
  merge_pattern(p, b);
  merge_pattern(q, b);
  merge_pattern(q, a);
  CHECK(p == q);
  CHECK(p.at("x:*") == (pattern_wins(a, b) ? a : b));
  CHECK(pattern_summary(p) !=
        pattern_summary(pattern_entries{{"x:*", pattern_wins(a, b) ? b : a}}));
  CHECK(pattern_summary(pattern_entries{}) == pattern_version{});
}
