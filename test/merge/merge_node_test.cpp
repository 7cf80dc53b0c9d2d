// The merge-related node API: register_merge and bind_merge fill the registry the
// federation apply path reads (detail::merges_of), and the clock bound comes from the config.
#include <catch2/catch.hpp>

#include "merge/policy.hpp"
#include "warp/node.hpp"

namespace {

std::unique_ptr<warp::node> memory_node(std::chrono::milliseconds skew = std::chrono::seconds{5}) {
  warp::node_config cfg;
  cfg.storage = "memory";
  cfg.scheduler_threads = 1;
  cfg.max_clock_skew = skew;
  auto n = warp::node::start(cfg);
  REQUIRE(n);
  return std::move(*n);
}

}  // namespace

TEST_CASE("merge node API: registered functions and bindings reach the node's registry") {
  auto n = memory_node();
  auto& reg = warp::detail::merges_of(*n);
  REQUIRE(n->register_merge(
      "cart:*",
      [](const warp::merge_input& l, const warp::merge_input& r) -> warp::result<std::string> {
        return std::string{std::max(l.value, r.value)};
      }));
  REQUIRE(n->bind_merge("ctr:*", "counter"));
  REQUIRE(n->bind_merge("tags:*", "not_yet_registered"));
  CHECK(reg.policy_for("cart:1") == "cart:*");
  CHECK(reg.policy_for("ctr:1") == "counter");
  CHECK(reg.policy_for("plain") == "lww");
  auto m = reg.merge(reg.policy_for("cart:1"), warp::merge_input{"b", {1, 1}},
                     warp::merge_input{"c", {2, 2}});
  REQUIRE(m);
  CHECK(m->value == "c");
  // A binding to a name nobody registered fails at first use, naming the policy.
  auto unknown = reg.merge(reg.policy_for("tags:1"), warp::merge_input{"a", {1, 1}},
                           warp::merge_input{"b", {2, 2}});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.err().message().find("'not_yet_registered'") != std::string::npos);
  // Built-ins cannot be replaced through the node either.
  CHECK(n->register_merge("lww",
                          [](const warp::merge_input& l, const warp::merge_input&)
                              -> warp::result<std::string> { return std::string{l.value}; })
            .code() == warp::errc::invalid_argument);
  CHECK(n->stats().hlc_remote_skew == 0);
}

TEST_CASE("merge node API: max_clock_skew must be positive") {
  warp::node_config cfg;
  cfg.storage = "memory";
  cfg.max_clock_skew = std::chrono::milliseconds{0};
  auto n = warp::node::start(cfg);
  REQUIRE_FALSE(n);
  CHECK(n.err().message().find("max_clock_skew") != std::string::npos);
  CHECK(cfg.validate().code() == warp::errc::invalid_argument);
}
