// A real Node.js Redis client (node-redis v5 from npm) against warpd's sidecar: pipelining,
// pub/sub and RESP3 client-side caching. node and npm must be installed (loud failure if
// not); the npm install happens once into the build tree, never into the sources.
#include <catch2/catch.hpp>

#include <filesystem>

#include "test/support/process.hpp"
#include "test/sidecar/sidecar_fixture.hpp"

using namespace warp::test;
namespace fs = std::filesystem;

TEST_CASE("node-redis v5: pipelining, pub/sub, RESP3 client-side caching", "[sidecar][node]") {
  auto node = find_program("node");
  auto npm = find_program("npm");
  INFO("node: '" << node << "' npm: '" << npm << "'");
  REQUIRE_FALSE(node.empty());
  REQUIRE_FALSE(npm.empty());

  fs::path src = fs::path(WARP_SOURCE_DIR) / "test/sidecar/node";
  fs::path work = fs::path(binary("test/sidecar-node"));
  fs::create_directories(work);
  for (auto name : {"package.json", "sidecar_client_test.mjs"})
    fs::copy_file(src / name, work / name, fs::copy_options::overwrite_existing);
  if (!fs::exists(work / "node_modules/redis/package.json")) {
    auto install =
        run({"/bin/sh", "-c",
             "cd '" + work.string() + "' && '" + npm + "' install --no-audit --no-fund 2>&1"},
            std::chrono::seconds{240});
    INFO("npm install output:\n" << install.out << install.err);
    REQUIRE(install.exit_code == 0);
  }

  warpd_sidecar warp;
  auto r = run({node, (work / "sidecar_client_test.mjs").string(), std::to_string(warp.port)},
               std::chrono::seconds{120});
  INFO("node output:\n" << r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("ALL PASSED") != std::string::npos);
}
