// Merge policies of federated keys (merge/policy.hpp): the built-ins over stored bytes and
// versions, custom functions, glob bindings, and what an unknown policy name does.
#include <catch2/catch.hpp>

#include "merge/policy.hpp"

using namespace warp;
using namespace warp::merge;

namespace {
merge_input in(std::string_view value, std::uint64_t hlc, std::uint32_t node = 1) {
  return merge_input{value, version{hlc, node}};
}
}  // namespace

TEST_CASE("merge policy lww: strictly newer wins, a tie keeps the local value") {
  registry reg;
  auto newer = reg.merge("lww", in("local", 100), in("incoming", 200));
  REQUIRE(newer);
  CHECK(newer->value == "incoming");
  CHECK(newer->ver == version{200, 1});
  auto older = reg.merge("lww", in("local", 300), in("incoming", 200));
  CHECK(older->value == "local");
  auto tie = reg.merge("lww", in("local", 300, 4), in("incoming", 300, 4));
  CHECK(tie->value == "local");
  // Same clock reading, larger node id: newer by the version's total order.
  CHECK(reg.merge("lww", in("local", 300, 4), in("incoming", 300, 5))->value == "incoming");
  CHECK(reg.merge("lww", std::nullopt, in("incoming", 1))->value == "incoming");
}

TEST_CASE("merge policy counter, set, map: joins of the stored CRDT states") {
  registry reg;
  pn_counter a, b;
  REQUIRE(a.add("eu", 3));
  REQUIRE(b.add("us", 4));
  auto ea = a.encode(), eb = b.encode();
  auto m = reg.merge("counter", in(ea, 10), in(eb, 20));
  REQUIRE(m);
  CHECK(pn_counter::decode(m->value)->value() == 7);
  CHECK(m->ver == version{20, 1});  // the larger version
  // Either order, same bytes: every region stores the same thing.
  CHECK(reg.merge("counter", in(eb, 20), in(ea, 10))->value == m->value);
  // Absent locally: the incoming state, checked.
  CHECK(reg.merge("counter", std::nullopt, in(eb, 20))->value == eb);

  or_set s1, s2;
  REQUIRE(s1.add("eu", "x"));
  REQUIRE(s2.add("us", "y"));
  auto es1 = s1.encode(), es2 = s2.encode();
  auto sm = reg.merge("set", in(es1, 1), in(es2, 2));
  CHECK(or_set::decode(sm->value)->members() == std::vector<std::string>{"x", "y"});

  lww_map m1, m2;
  REQUIRE(m1.set("f", "1", version{5, 1}, "eu"));
  REQUIRE(m2.set("f", "2", version{6, 1}, "us"));
  auto em1 = m1.encode(), em2 = m2.encode();
  auto mm = reg.merge("map", in(em1, 1), in(em2, 2));
  CHECK(lww_map::decode(mm->value)->get("f") == "2");

  // Bytes that are not a state of the policy's CRDT: a codec error, and which side.
  auto bad = reg.merge("counter", in("42", 1), in(eb, 2));
  REQUIRE_FALSE(bad);
  CHECK(bad.code() == errc::codec_error);
  CHECK(bad.err().message().rfind("local ", 0) == 0);
  auto bad_in = reg.merge("set", in(es1, 1), in(em2, 2));
  CHECK(bad_in.err().message().rfind("incoming ", 0) == 0);
}

TEST_CASE("merge policy registry: custom functions, and an unknown name is an error at use") {
  registry reg;
  int calls = 0;
  // A max of two decimal numbers: deterministic, commutative, idempotent.
  auto max_fn = [&calls](const merge_input& l, const merge_input& r) -> result<std::string> {
    ++calls;
    return std::string{
        std::stoll(std::string{l.value}) >= std::stoll(std::string{r.value}) ? l.value : r.value};
  };
  REQUIRE(reg.register_merge("max", max_fn));
  CHECK(reg.known("max"));
  auto m = reg.merge("max", in("7", 900), in("5", 100));
  REQUIRE(m);
  CHECK(m->value == "7");
  CHECK(m->ver == version{900, 1});
  CHECK(calls == 1);
  // Nothing local: the incoming value as is, the function is not called.
  CHECK(reg.merge("max", std::nullopt, in("5", 100))->value == "5");
  CHECK(calls == 1);
  // A function's error reaches the caller.
  REQUIRE(reg.register_merge("fails",
                             [](const merge_input&, const merge_input&) -> result<std::string> {
                               return error{errc::invalid_argument, "cannot merge"};
                             }));
  CHECK(reg.merge("fails", in("a", 1), in("b", 2)).err().message() == "cannot merge");

  // Refused registrations.
  CHECK(reg.register_merge("", max_fn).code() == errc::invalid_argument);
  CHECK(reg.register_merge("counter", max_fn).code() == errc::invalid_argument);
  CHECK(reg.register_merge("x", merge_fn{}).code() == errc::invalid_argument);

  // An unregistered name: a clear error, never a silent lww.
  auto unknown = reg.merge("cart_union", in("a", 1), in("b", 2));
  REQUIRE_FALSE(unknown);
  CHECK(unknown.code() == errc::invalid_argument);
  CHECK(unknown.err().message().find("unknown merge policy 'cart_union'") != std::string::npos);
  CHECK(reg.check("cart_union").code() == errc::invalid_argument);
  CHECK(reg.check("lww"));
  CHECK(reg.check("map"));
}

TEST_CASE("merge policy registry: globs bind keys, the pattern's own name first") {
  registry reg;
  CHECK(reg.policy_for("anything") == "lww");
  REQUIRE(reg.bind("ctr:*", "counter"));
  REQUIRE(reg.bind("ctr:special:*", "set"));
  CHECK(reg.policy_for("ctr:1") == "counter");
  CHECK(reg.policy_for("ctr:special:1") == "set");  // more literal characters
  CHECK(reg.policy_for("other") == "lww");
  CHECK(reg.policy_for("ctr:1", "map") == "map");  // the pattern's +federated=map wins
  // register_merge("cart:*", fn) binds the glob to the function.
  REQUIRE(reg.register_merge("cart:*",
                             [](const merge_input& l, const merge_input& r) -> result<std::string> {
                               return std::string{l.value} + "+" + std::string{r.value};
                             }));
  CHECK(reg.policy_for("cart:42") == "cart:*");
  CHECK(reg.merge(reg.policy_for("cart:42"), in("a", 1), in("b", 2))->value == "a+b");
  // Rebinding replaces; a binding to a name registered later resolves then.
  REQUIRE(reg.bind("ctr:*", "later"));
  CHECK(reg.policy_for("ctr:1") == "later");
  CHECK_FALSE(reg.merge("later", in("1", 1), in("2", 2)));
  REQUIRE(reg.register_merge("later",
                             [](const merge_input& l, const merge_input&) -> result<std::string> {
                               return std::string{l.value};
                             }));
  CHECK(reg.merge("later", in("1", 1), in("2", 2))->value == "1");
  CHECK(reg.bind("", "lww").code() == errc::invalid_argument);
}
