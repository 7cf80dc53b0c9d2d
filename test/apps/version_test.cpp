// `--version` on every binary: the same version and commit everywhere, and the same facts
// in the warp_build_info metric, so an operator can tell which build each node runs.
#include <catch2/catch.hpp>

#include <string>

#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"
#include "warp/build_info.hpp"

using namespace warp::test;

TEST_CASE("every binary prints its version and commit with --version") {
  auto b = warp::build();
  REQUIRE_FALSE(b.version.empty());
  // A build from a git checkout knows its commit (this test tree is one).
  CHECK(b.commit != "unknown");
  for (const std::string rel : {"apps/warpd/warpd", "apps/warpctl/warpctl",
                                "apps/warp-bench/warp-bench", "apps/warp-nemesis/warp-nemesis"}) {
    auto name = rel.substr(rel.rfind('/') + 1);
    INFO(name);
    auto r = run({binary(rel), "--version"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == warp::version_line(name) + "\n");
    CHECK(r.out.find(std::string{b.commit}) != std::string::npos);
  }
}
