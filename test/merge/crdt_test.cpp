// The CRDTs of federated keys (merge/crdt.hpp): their semantics, the three semilattice laws
// on seeded random states, and their encodings under truncation and mutation.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "merge/crdt.hpp"
#include "test/consensus/alloc_meter.hpp"

using namespace warp;
using namespace warp::merge;

namespace {

const std::vector<std::string> origins{"eu", "us", "ap"};

// Random reachable states: three replicas (one per origin) do random local operations and
// now and then merge another replica's state, and every state on the way is kept. Only
// reachable states are meaningful for the OR-set (its context covers its dots).
template <class T, class Op>
std::vector<T> random_states(std::uint64_t seed, Op op, int steps = 400) {
  std::mt19937_64 rng{seed};
  std::vector<T> replicas(origins.size());
  std::vector<T> pool;
  for (int i = 0; i < steps; ++i) {
    auto r = rng() % replicas.size();
    if (rng() % 4 == 0) {
      replicas[r].merge(replicas[rng() % replicas.size()]);
    } else {
      op(replicas[r], r, rng);
    }
    pool.push_back(replicas[r]);
  }
  return pool;
}

template <class T>
T merged(T a, const T& b) {
  a.merge(b);
  return a;
}

template <class T>
void check_laws(const std::vector<T>& pool, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  for (int i = 0; i < 2000; ++i) {
    const auto& x = pool[rng() % pool.size()];
    const auto& y = pool[rng() % pool.size()];
    const auto& z = pool[rng() % pool.size()];
    REQUIRE(merged(x, x) == x);                                   // idempotent
    REQUIRE(merged(x, y) == merged(y, x));                        // commutative
    REQUIRE(merged(merged(x, y), z) == merged(x, merged(y, z)));  // associative
    REQUIRE(merged(x, y).encode() == merged(y, x).encode());      // canonical bytes
  }
}

void counter_op(pn_counter& c, std::size_t r, std::mt19937_64& rng) {
  auto delta = static_cast<std::int64_t>(rng() % 2001) - 1000;
  switch (rng() % 10) {
    case 0:  // DEL
      REQUIRE(c.reset());
      break;
    case 1:  // SET
      REQUIRE(c.assign(origins[r], delta));
      break;
    default:
      REQUIRE(c.add(origins[r], delta));
  }
}

void set_op(or_set& s, std::size_t r, std::mt19937_64& rng) {
  auto element = "e" + std::to_string(rng() % 12);
  if (rng() % 3 == 0)
    s.remove(element);
  else
    REQUIRE(s.add(origins[r], element));
}

// Versions from a shared, mostly increasing clock, with repeats: a repeated version from
// two origins (and from one origin with two contents) exercises every tie-break.
void map_op(lww_map& m, std::size_t r, std::mt19937_64& rng) {
  static std::uint64_t hlc = 1000;
  hlc += rng() % 3;  // 0: the same reading again
  version ver{hlc, static_cast<std::uint32_t>(rng() % 2 ? 7 : 8)};
  auto field = "f" + std::to_string(rng() % 8);
  if (rng() % 4 == 0)
    REQUIRE(m.remove(field, ver, origins[r]));
  else
    REQUIRE(m.set(field, "v" + std::to_string(rng() % 5), ver, origins[r]));
}

}  // namespace

// -- semantics -----------------------------------------------------------------------------

TEST_CASE("crdt counter: concurrent increments in two regions merge to their sum") {
  pn_counter eu, us;
  REQUIRE(*eu.add("eu", 5) == 5);
  REQUIRE(*eu.add("eu", -2) == 3);
  REQUIRE(*us.add("us", 10) == 10);
  REQUIRE(*us.add("us", -1) == 9);
  auto a = merged(eu, us);
  auto b = merged(us, eu);
  CHECK(a.value() == 12);
  CHECK(a == b);
  // Redelivery of the same state changes nothing (never counted twice, unlike a sum of
  // deltas).
  CHECK(merged(a, us).value() == 12);
  // Both sides go on and meet again.
  REQUIRE(eu.add("eu", 100));
  CHECK(merged(a, eu).value() == 112);
}

TEST_CASE("crdt counter: INCRBY past the int64 range is refused and changes nothing") {
  pn_counter c;
  REQUIRE(c.add("eu", std::numeric_limits<std::int64_t>::max()));
  auto r = c.add("eu", 1);
  REQUIRE_FALSE(r);
  CHECK(r.err().message() == "increment or decrement would overflow");
  CHECK(c.value() == std::numeric_limits<std::int64_t>::max());
  REQUIRE(*c.add("eu", std::numeric_limits<std::int64_t>::min()) == -1);
  CHECK_FALSE(c.add("", 1));  // an origin is required
  // Two regions each near the top: the merged value saturates, deterministically.
  pn_counter other;
  REQUIRE(other.add("us", std::numeric_limits<std::int64_t>::max()));
  pn_counter big;
  REQUIRE(big.add("eu", std::numeric_limits<std::int64_t>::max()));
  CHECK(merged(big, other).value() == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("crdt counter: SET assigns the value here, increments made elsewhere add on top") {
  pn_counter eu, us;
  REQUIRE(eu.add("eu", 7));
  us.merge(eu);
  REQUIRE(us.add("us", 3));  // eu has not seen it
  REQUIRE(eu.assign("eu", 100));
  CHECK(eu.value() == 100);
  CHECK(eu.present());
  CHECK(merged(eu, us).value() == 103);
  CHECK(merged(us, eu).encode() == merged(eu, us).encode());
  // SET after seeing everything: exactly the value everywhere.
  auto all = merged(eu, us);
  REQUIRE(all.assign("eu", -5));
  CHECK(all.value() == -5);
  CHECK(merged(us, all).value() == -5);
  CHECK(merged(eu, all).value() == -5);
  // SET 0 is a value, not a delete.
  REQUIRE(all.assign("us", 0));
  CHECK(all.value() == 0);
  CHECK(all.present());
  // The whole int64 range, from one end to the other.
  pn_counter c;
  REQUIRE(c.assign("eu", std::numeric_limits<std::int64_t>::min()));
  REQUIRE(c.assign("eu", std::numeric_limits<std::int64_t>::max()));
  CHECK(c.value() == std::numeric_limits<std::int64_t>::max());
  CHECK_FALSE(c.assign("", 1));
}

TEST_CASE(
    "crdt counter: DEL resets to what it observed, so the merged value after it is the "
    "concurrent increments only, in both orders") {
  pn_counter eu, us;
  REQUIRE(eu.add("eu", 5));
  REQUIRE(us.add("us", 10));
  eu.merge(us);
  us.merge(eu);
  REQUIRE(eu.value() == 15);
  // eu deletes what it saw (15) while us, not knowing, adds 2.
  REQUIRE(*eu.reset() == true);
  CHECK(eu.value() == 0);
  CHECK_FALSE(eu.present());    // deleted: GET nil, EXISTS 0
  CHECK(*eu.reset() == false);  // a second DEL finds nothing
  REQUIRE(us.add("us", 2));
  auto a = merged(eu, us);
  auto b = merged(us, eu);
  CHECK(a.encode() == b.encode());
  CHECK(a.value() == 2);
  CHECK(a.present());
  // An INCR after the DEL starts from 0, as on redis-server.
  pn_counter after = eu;
  CHECK(*after.add("eu", 1) == 1);
  CHECK(after.present());
  // A redelivered state from before the DEL does not bring the old value back.
  pn_counter old_us;
  REQUIRE(old_us.add("us", 10));
  CHECK(merged(eu, old_us).value() == 0);
  CHECK_FALSE(merged(eu, old_us).present());
  // Both regions delete concurrently what each saw: each increment is subtracted once,
  // 0 and absent everywhere, and new increments count from there.
  pn_counter x, y;
  REQUIRE(x.add("eu", 4));
  y.merge(x);
  REQUIRE(y.add("us", 1));
  REQUIRE(x.reset());
  REQUIRE(y.reset());
  auto xy = merged(x, y);
  CHECK(xy.value() == 0);
  CHECK_FALSE(xy.present());
  CHECK(xy.encode() == merged(y, x).encode());
  CHECK(xy.entries().count(pn_counter::reset_origin("eu")) == 1);
  REQUIRE(x.add("eu", 2));
  CHECK(merged(x, y).value() == 2);
}

TEST_CASE(
    "crdt presence: an emptied set, a hash of tombstones and a reset counter read as absent, "
    "and their states still win over older adds") {
  or_set s;
  REQUIRE(s.add("eu", "a"));
  auto before = s;
  CHECK(*crdt_present(s.encode()));
  REQUIRE(s.remove("a"));
  CHECK_FALSE(*crdt_present(s.encode()));
  CHECK_FALSE(s.context().empty());                        // the context is kept
  CHECK_FALSE(*crdt_present(merged(s, before).encode()));  // the older add stays removed

  lww_map m;
  REQUIRE(m.set("f", "v", version{10, 1}, "eu"));
  CHECK(*crdt_present(m.encode()));
  auto older = m;
  REQUIRE(m.remove("f", version{11, 1}, "eu"));
  CHECK_FALSE(*crdt_present(m.encode()));
  CHECK_FALSE(*crdt_present(merged(m, older).encode()));

  pn_counter c;
  CHECK(*crdt_present(c.encode()));  // INCRBY k 0 stores this: "0" on redis-server too
  REQUIRE(c.add("eu", 1));
  REQUIRE(c.add("eu", -1));
  CHECK(*crdt_present(c.encode()));  // counted down to 0: present
  REQUIRE(c.reset());
  CHECK_FALSE(*crdt_present(c.encode()));
  // A write of net 0 after the DEL (INCRBY 0, SET 0) makes it present again, at 0.
  auto zero = c;
  REQUIRE(*zero.add("eu", 0) == 0);
  CHECK(zero.present());
  zero = c;
  REQUIRE(zero.assign("us", 0));
  CHECK(zero.present());
  CHECK(zero.value() == 0);
  // So does counting up and back down again, as on redis-server.
  zero = c;
  REQUIRE(zero.add("eu", 3));
  REQUIRE(zero.add("eu", -3));
  CHECK(zero.present());
  CHECK_FALSE(crdt_present("\x09\x01"));  // no CRDT
}

TEST_CASE("crdt set: a concurrent add and remove of one element leaves it present") {
  or_set base;
  REQUIRE(base.add("eu", "apple"));
  or_set eu = base, us = base;
  CHECK(eu.remove("apple"));       // eu removes what it saw
  REQUIRE(us.add("us", "apple"));  // us adds it again, concurrently
  CHECK(merged(eu, us).contains("apple"));
  CHECK(merged(us, eu).contains("apple"));
  // A remove that observed every add wins.
  auto both = merged(eu, us);
  auto removed = both;
  removed.remove("apple");
  CHECK_FALSE(merged(removed, both).contains("apple"));
  CHECK_FALSE(merged(both, removed).contains("apple"));
  CHECK_FALSE(merged(removed, us).contains("apple"));
}

TEST_CASE("crdt set: SADD and SREM answers and state that does not grow with removes") {
  or_set s;
  CHECK(*s.add("eu", "a") == true);
  CHECK(*s.add("eu", "a") == false);
  CHECK(*s.add("eu", "b") == true);
  CHECK(s.members() == std::vector<std::string>{"a", "b"});
  CHECK(s.remove("a"));
  CHECK_FALSE(s.remove("a"));
  auto size_before = s.encode().size();
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(s.add("eu", "tmp" + std::to_string(i)));
    REQUIRE(s.remove("tmp" + std::to_string(i)));
  }
  // A thousand adds and removes later: the same elements, the same size of state (the
  // context holds one counter per origin, no tombstone per removed add).
  CHECK(s.members() == std::vector<std::string>{"b"});
  CHECK(s.encode().size() == size_before);
  CHECK(s.context().at("eu") == 1003);
}

TEST_CASE("crdt map: per field the newer version wins, ties break the same way on every side") {
  lww_map eu, us;
  REQUIRE(*eu.set("name", "old", version{100, 1}, "eu"));
  REQUIRE(*us.set("name", "new", version{200, 2}, "us"));
  REQUIRE(*us.set("city", "Oslo", version{150, 2}, "us"));
  REQUIRE(*eu.remove("city", version{160, 1}, "eu"));
  auto a = merged(eu, us);
  CHECK(a == merged(us, eu));
  CHECK(a.get("name") == "new");
  CHECK_FALSE(a.get("city"));  // the later delete wins; its tombstone stays
  CHECK(a.live() == std::vector<std::pair<std::string, std::string>>{{"name", "new"}});
  // An older write arriving late changes nothing; a replay neither.
  CHECK_FALSE(*a.set("name", "older", version{150, 9}, "ap"));
  CHECK_FALSE(*a.set("name", "new", version{200, 2}, "us"));

  // The same version from two origins: the larger origin wins, whichever arrives first.
  lww_map x, y;
  REQUIRE(x.set("f", "from-eu", version{300, 3}, "eu"));
  REQUIRE(y.set("f", "from-us", version{300, 3}, "us"));
  CHECK(merged(x, y).get("f") == "from-us");
  CHECK(merged(y, x).get("f") == "from-us");
  // The same version and origin, a value against a delete: the delete wins.
  lww_map v, d;
  REQUIRE(v.set("f", "value", version{300, 3}, "eu"));
  REQUIRE(d.remove("f", version{300, 3}, "eu"));
  CHECK_FALSE(merged(v, d).get("f"));
  CHECK_FALSE(merged(d, v).get("f"));
  // Tombstones go only when asked, and only up to the horizon.
  CHECK(a.drop_tombstones(159) == 0);
  CHECK(a.drop_tombstones(160) == 1);
  CHECK(a.fields().size() == 1);
}

// -- the laws on random states ---------------------------------------------------------------

TEST_CASE("crdt laws: merge is idempotent, commutative and associative on random states") {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    INFO("seed " << seed);
    check_laws(random_states<pn_counter>(seed, counter_op), seed);
    check_laws(random_states<or_set>(seed, set_op), seed);
    check_laws(random_states<lww_map>(seed, map_op), seed);
  }
}

TEST_CASE("crdt laws: replicas that exchanged states in any order agree") {
  // Three replicas operate, then each merges the others in a different order.
  std::mt19937_64 rng{7};
  std::vector<or_set> sets(3);
  std::vector<pn_counter> counters(3);
  for (int i = 0; i < 300; ++i) {
    auto r = rng() % 3;
    set_op(sets[r], r, rng);
    counter_op(counters[r], r, rng);
  }
  auto s012 = merged(merged(sets[0], sets[1]), sets[2]);
  auto s210 = merged(merged(sets[2], sets[1]), sets[0]);
  auto s102 = merged(merged(sets[1], sets[0]), sets[2]);
  CHECK(s012 == s210);
  CHECK(s012 == s102);
  auto c = merged(merged(counters[0], counters[1]), counters[2]);
  std::int64_t sum = counters[0].value() + counters[1].value() + counters[2].value();
  CHECK(c.value() == sum);  // each origin's entry lives on one replica only
}

// -- encodings ------------------------------------------------------------------------------

namespace {

template <class T>
void check_round_trip(const std::vector<T>& pool) {
  for (auto& s : pool) {
    auto bytes = s.encode();
    auto back = T::decode(bytes);
    REQUIRE(back);
    REQUIRE(*back == s);
    REQUIRE(back->encode() == bytes);
  }
}

// Every strict prefix of an encoding is refused.
template <class T>
void check_truncation(const T& s) {
  auto bytes = s.encode();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto d = T::decode(std::string_view{bytes}.substr(0, n));
    REQUIRE_FALSE(d);
    REQUIRE(d.code() == errc::codec_error);
  }
}

std::string le64(std::uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

template <class T>
void fuzz(std::vector<T> pool, std::uint64_t seed, const crdt_limits& lim) {
  std::mt19937_64 rng{seed};
  int decoded = 0;
  auto check = [&](const std::string& bytes) {
    test::alloc_meter::start();
    auto d = T::decode(bytes, lim);
    test::alloc_meter::stop();
    // Every allocation is bounded by the input: nothing sized by a claimed count.
    if (test::alloc_meter::largest() > 4096 + bytes.size())
      FAIL("decode of " << bytes.size() << " bytes asked for " << test::alloc_meter::largest());
    if (!d) {
      REQUIRE(d.code() == errc::codec_error);
      return;
    }
    ++decoded;
    // Whatever decodes is canonical and within the limits.
    REQUIRE(d->encode() == bytes);
  };
  for (int i = 0; i < 20000; ++i) {
    auto b = pool[rng() % pool.size()].encode();
    switch (rng() % 4) {
      case 0:
        b[rng() % b.size()] = static_cast<char>(rng());
        break;
      case 1:
        b.resize(rng() % b.size());
        break;
      case 2:
        b.insert(rng() % (b.size() + 1), 1, static_cast<char>(rng()));
        break;
      default:
        for (int k = 0; k < 4; ++k) b[rng() % b.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    check(b);
  }
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    check(junk);
  }
  CHECK(decoded > 0);  // some mutations (a value byte) still decode
}

}  // namespace

TEST_CASE("crdt encoding: states round-trip byte for byte and every prefix is refused") {
  auto counters = random_states<pn_counter>(11, counter_op, 100);
  auto sets = random_states<or_set>(11, set_op, 100);
  auto maps = random_states<lww_map>(11, map_op, 100);
  check_round_trip(counters);
  check_round_trip(sets);
  check_round_trip(maps);
  check_truncation(counters.back());
  check_truncation(sets.back());
  check_truncation(maps.back());
  CHECK(*crdt_kind_of(counters.back().encode()) == crdt_kind::counter);
  CHECK(*crdt_kind_of(sets.back().encode()) == crdt_kind::set);
  CHECK(*crdt_kind_of(maps.back().encode()) == crdt_kind::map);
  // One kind's bytes are not another's, and an unknown encoding version is named.
  CHECK_FALSE(or_set::decode(counters.back().encode()));
  auto future = counters.back().encode();
  future[1] = 2;
  auto d = pn_counter::decode(future);
  REQUIRE_FALSE(d);
  CHECK(d.err().message().find("unknown encoding version 2") != std::string::npos);
  CHECK_FALSE(crdt_kind_of("\x09\x01"));
}

TEST_CASE("crdt encoding: a frame claiming 2^32 elements is refused before allocating") {
  const std::string claim = le64(std::uint64_t{1} << 32);
  const std::string counter = std::string{"\x01\x01", 2} + claim;
  const std::string set_ctx = std::string{"\x02\x01", 2} + claim;
  const std::string set_elems = std::string{"\x02\x01", 2} + le64(0) + claim;
  const std::string map = std::string{"\x03\x01", 2} + claim;
  // A string claiming 4 GiB inside an otherwise fine frame.
  const std::string big_str = std::string{"\x03\x01", 2} + le64(1) + le64(std::uint64_t{1} << 32);
  test::alloc_meter::start();
  auto a = pn_counter::decode(counter);
  auto b = or_set::decode(set_ctx);
  auto c = or_set::decode(set_elems);
  auto d = lww_map::decode(map);
  auto e = lww_map::decode(big_str);
  test::alloc_meter::stop();
  CHECK(a.code() == errc::codec_error);
  CHECK(b.code() == errc::codec_error);
  CHECK(c.code() == errc::codec_error);
  CHECK(d.code() == errc::codec_error);
  CHECK(e.code() == errc::codec_error);
  CHECK(test::alloc_meter::largest() < 1024);  // error messages only
  // Within the count bound but beyond the bytes: refused at the first missing element.
  crdt_limits lim;
  lim.max_entries = std::size_t{1} << 40;
  test::alloc_meter::start();
  auto f = lww_map::decode(map, lim);
  test::alloc_meter::stop();
  CHECK(f.code() == errc::codec_error);
  CHECK(test::alloc_meter::largest() < 1024);
}

TEST_CASE("crdt encoding: 20,000 mutated inputs per kind never crash nor allocate by a claim") {
  crdt_limits lim;
  lim.max_entries = 64;
  lim.max_item = 1024;
  lim.max_origins = 16;
  fuzz(random_states<pn_counter>(21, counter_op, 200), 21, lim);
  fuzz(random_states<or_set>(22, set_op, 200), 22, lim);
  fuzz(random_states<lww_map>(23, map_op, 200), 23, lim);
}
