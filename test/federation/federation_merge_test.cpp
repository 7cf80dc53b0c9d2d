// The federation's merge point for keys that are not lww (runtime/modes/federated_merge.hpp,
// docs/merge.md): a CRDT state or a custom function's bytes from another region meet the
// local state through the key's policy, over a real write path (memory storage, L1) of a
// node_state built by hand, two of them standing for two regions.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

// node_state's destructor needs every type it owns complete.
#include "merge/crdt.hpp"
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/federated_merge.hpp"
#include "runtime/modes/node_state.hpp"
#include "runtime/modes/strong.hpp"

using warp::errc;
using warp::version;
using warp::detail::merge_outcome;
using warp::merge::lww_map;
using warp::merge::or_set;
using warp::merge::pn_counter;

namespace {

struct region_node {
  warp::detail::node_state st;
  warp::key_policy policy;
  explicit region_node(std::uint32_t id) {
    st.id = id;
    st.config.data_dir.clear();
    st.l1 = std::make_unique<warp::l1_store>(warp::l1_options{});
    st.store = warp::make_memory_storage();
    policy.consistency = warp::mode::eventual_distributed;
  }
  // A state arriving from another region at `ver`.
  warp::result<merge_outcome> apply(std::string_view key, std::string_view policy_name,
                                    const std::string& bytes, version ver, version floor = {}) {
    policy.federated = std::string{policy_name};
    warp::detail::federated_write w{false, key, bytes, ver, 0};
    return warp::detail::apply_merged(st, w, policy_name, policy, *st.local_mode, floor);
  }
  std::string stored(std::string_view key) {
    auto r = st.store->fetch(key);
    REQUIRE(r);
    return *r ? (*r)->value : std::string{"(none)"};
  }
  version stored_version(std::string_view key) {
    auto r = st.store->fetch(key);
    REQUIRE(r);
    REQUIRE(*r);
    return (*r)->ver;
  }
};

pn_counter counter_of(std::initializer_list<std::pair<const char*, std::int64_t>> adds) {
  pn_counter c;
  for (auto& [origin, d] : adds) REQUIRE(c.add(origin, d));
  return c;
}

}  // namespace

TEST_CASE(
    "federation merge apply: counter states of two regions join to the exact sum, in any order "
    "and redelivered",
    "[federation][merge]") {
  region_node a{1}, b{2};
  // A incremented by 3; B by 5 and decremented by 1, concurrently (neither saw the other).
  auto ca = counter_of({{"A", 3}});
  auto cb = counter_of({{"B", 5}, {"B", -1}});
  const version va{100, 1}, vb{90, 2};
  REQUIRE(a.apply("c", "counter", ca.encode(), va).value() == merge_outcome::taken);
  REQUIRE(b.apply("c", "counter", cb.encode(), vb).value() == merge_outcome::taken);
  // Exchange in opposite orders: each side joins.
  CHECK(a.apply("c", "counter", cb.encode(), vb).value() == merge_outcome::joined);
  CHECK(b.apply("c", "counter", ca.encode(), va).value() == merge_outcome::joined);
  auto sa = pn_counter::decode(a.stored("c"));
  REQUIRE(sa);
  CHECK(sa->value() == 7);
  CHECK(a.stored("c") == b.stored("c"));  // the same bytes in both regions
  // The join is a new value: its version is above both sides'.
  CHECK(va < a.stored_version("c"));
  // Redelivery (a re-sent batch, an anti-entropy pass) and an older state change nothing.
  CHECK(a.apply("c", "counter", cb.encode(), vb).value() == merge_outcome::unchanged);
  CHECK(a.apply("c", "counter", counter_of({{"B", 2}}).encode(), version{80, 2}).value() ==
        merge_outcome::unchanged);
  CHECK(pn_counter::decode(a.stored("c"))->value() == 7);
  // A later state of B that includes everything A has is taken as is, at its version.
  auto later = *pn_counter::decode(b.stored("c"));
  REQUIRE(later.add("B", 10));
  const version vl{a.stored_version("c").hlc + 1000, 2};  // newer than the join
  CHECK(a.apply("c", "counter", later.encode(), vl).value() == merge_outcome::taken);
  CHECK(a.stored_version("c") == vl);
  CHECK(pn_counter::decode(a.stored("c"))->value() == 17);
  // L1 holds what storage holds (the region's readers see the merged state).
  auto cached = a.st.l1->get("c");
  REQUIRE(cached);
  CHECK(std::string{**cached} == a.stored("c"));
}

TEST_CASE("federation merge apply: OR-set states converge to the union, a concurrent add wins",
          "[federation][merge]") {
  region_node a{1}, b{2};
  or_set sa;
  REQUIRE(sa.add("A", "x"));
  REQUIRE(a.apply("s", "set", sa.encode(), {10, 1}).value() == merge_outcome::taken);
  REQUIRE(b.apply("s", "set", sa.encode(), {10, 1}).value() == merge_outcome::taken);
  // B removes x (it saw A's add) and adds y; A concurrently adds x again (a fresh dot) and z.
  auto sb = *or_set::decode(b.stored("s"));
  REQUIRE(sb.remove("x"));
  REQUIRE(sb.add("B", "y"));
  REQUIRE(sa.add("A", "x"));
  REQUIRE(sa.add("A", "z"));
  CHECK(b.apply("s", "set", sb.encode(), {20, 2}).value() != merge_outcome::unchanged);
  CHECK(a.apply("s", "set", sa.encode(), {21, 1}).value() != merge_outcome::unchanged);
  CHECK(a.apply("s", "set", sb.encode(), {20, 2}).value() == merge_outcome::joined);
  CHECK(b.apply("s", "set", sa.encode(), {21, 1}).value() == merge_outcome::joined);
  for (auto* n : {&a, &b}) {
    auto s = or_set::decode(n->stored("s"));
    REQUIRE(s);
    CHECK(s->members() == std::vector<std::string>{"x", "y", "z"});
  }
  CHECK(a.stored("s") == b.stored("s"));
  // A remove that observed every add of an element removes it everywhere.
  auto sr = *or_set::decode(a.stored("s"));
  REQUIRE(sr.remove("y"));
  CHECK(b.apply("s", "set", sr.encode(), {30, 1}).value() == merge_outcome::taken);
  CHECK(or_set::decode(b.stored("s"))->members() == std::vector<std::string>{"x", "z"});
}

TEST_CASE("federation merge apply: LWW-map fields, custom functions and unknown policies",
          "[federation][merge]") {
  region_node a{1};
  lww_map m1, m2;
  REQUIRE(m1.set("f", "old", {10, 1}, "A"));
  REQUIRE(m1.set("g", "a", {11, 1}, "A"));
  REQUIRE(m2.set("f", "new", {12, 2}, "B"));
  REQUIRE(a.apply("h", "map", m1.encode(), {11, 1}).value() == merge_outcome::taken);
  CHECK(a.apply("h", "map", m2.encode(), {12, 2}).value() == merge_outcome::joined);
  auto got = lww_map::decode(a.stored("h"));
  REQUIRE(got);
  CHECK(got->live() == std::vector<std::pair<std::string, std::string>>{{"f", "new"}, {"g", "a"}});

  // A custom function registered on the node: the longer value wins (commutative,
  // associative, idempotent).
  REQUIRE(a.st.merges.register_merge(
      "longest",
      [](const warp::merge_input& l, const warp::merge_input& r) -> warp::result<std::string> {
        if (l.value.size() != r.value.size())
          return std::string{l.value.size() > r.value.size() ? l.value : r.value};
        return std::string{std::max(l.value, r.value)};
      }));
  REQUIRE(a.apply("k", "longest", "abcd", {10, 1}).value() == merge_outcome::taken);
  CHECK(a.apply("k", "longest", "xy", {20, 2}).value() == merge_outcome::unchanged);
  CHECK(a.stored("k") == "abcd");  // lww would have taken the newer "xy"
  CHECK(a.apply("k", "longest", "abcdef", {5, 2}).value() == merge_outcome::taken);
  CHECK(a.stored("k") == "abcdef");

  // An unknown policy is an error naming it; the key keeps its value.
  auto unknown = a.apply("k", "no_such_fn", "zzzzzzzzzz", {30, 2});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.err().code() == errc::invalid_argument);
  CHECK(unknown.err().message().find("'no_such_fn'") != std::string::npos);
  CHECK(a.stored("k") == "abcdef");
  // Bytes that are no state of the policy's CRDT: refused, nothing written.
  auto bad = a.apply("c", "counter", "not a counter", {30, 2});
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code() == errc::codec_error);
  CHECK(a.stored("c") == "(none)");
  // A state older than a delete remembered here does not resurrect the key.
  CHECK(a.apply("c", "counter", counter_of({{"B", 1}}).encode(), {40, 2}, {50, 1}).value() ==
        merge_outcome::unchanged);
  CHECK(a.stored("c") == "(none)");
}
