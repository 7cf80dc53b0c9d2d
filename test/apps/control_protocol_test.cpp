// The control protocol from a plain CAF client (what warpctl does, minus the CLI): typed
// answers, warp-category errors, and unknown requests answered with an error.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/control_actor.hpp"
#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

TEST_CASE("control protocol: typed replies, warp errors, unknown requests") {
  temp_dir dir{"warpd-proto"};
  warpd_process d{{"--storage", "memory", "--data-dir", dir.str() + "/data", "--name", "proto",
                   "--max-key-size", "8"}};
  REQUIRE(d.wait_ready());
  auto colon = d.node().rfind(':');
  auto port = static_cast<std::uint16_t>(std::stoi(d.node().substr(colon + 1)));

  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  warp::actors::register_control_protocol(cfg);
  cfg.set("scheduler.max-threads", std::int64_t{1});
  caf::actor_system sys{cfg};
  auto node = sys.middleman().remote_actor("127.0.0.1", port);
  REQUIRE(node);
  caf::scoped_actor self{sys};

  std::string name;
  std::uint16_t version = 0;
  self->request(*node, 10s, caf::ping_atom::value)
      .receive([&](caf::pong_atom, std::string& n, std::uint32_t,
                   std::uint16_t v) { name = n, version = v; },
               [&](caf::error& err) { FAIL(sys.render(err)); });
  CHECK(name == "proto");
  CHECK(version == warp::actors::control_protocol_version);

  bool stored = false;
  self->request(*node, 10s, caf::put_atom::value, std::string{"k"}, std::string{"v"},
                std::int64_t{-1})
      .receive([&](caf::ok_atom) { stored = true; },
               [&](caf::error& err) { FAIL(sys.render(err)); });
  CHECK(stored);

  warp::error failure;
  self->request(*node, 10s, caf::get_atom::value, std::string{"much-too-long"})
      .receive([&](std::string&) { FAIL("expected key_too_large"); },
               [&](caf::error& err) {
                 CHECK(err.category() == warp::actors::control_error_category());
                 CHECK(sys.render(err).find("key_too_large") != std::string::npos);
                 failure = warp::actors::from_caf_error(err);
               });
  CHECK(failure.code() == warp::errc::key_too_large);
  CHECK(failure.message().find("max-key-size 8") != std::string::npos);

  // A request the protocol does not have: a clear error, and the node keeps serving.
  self->request(*node, 10s, caf::add_atom::value, 1, 2)
      .receive([&](caf::message&) { FAIL("expected an error"); },
               [&](caf::error& err) { failure = warp::actors::from_caf_error(err); });
  CHECK(failure.code() == warp::errc::unsupported);
  CHECK(failure.message().find("unknown control request") != std::string::npos);

  std::string value;
  self->request(*node, 10s, caf::get_atom::value, std::string{"k"})
      .receive([&](std::string& v) { value = v; }, [&](caf::error& err) { FAIL(sys.render(err)); });
  CHECK(value == "v");
}

TEST_CASE("control errors convert both ways") {
  using namespace warp::actors;
  warp::error e{warp::errc::storage_unavailable, "db down"};
  auto c = to_caf_error(e);
  CHECK(c.category() == control_error_category());
  CHECK(c.code() == static_cast<std::uint8_t>(warp::errc::storage_unavailable));
  auto back = from_caf_error(c);
  CHECK(back.code() == warp::errc::storage_unavailable);
  CHECK(back.message() == "db down");
  CHECK(render_control_error(c.code(), c.category(), c.context()) ==
        "warp: storage_unavailable (db down)");
  CHECK_FALSE(to_caf_error(warp::error{}));
  CHECK(from_caf_error(caf::error{}).ok());
  CHECK(from_caf_error(caf::make_error(caf::sec::request_timeout)).code() == warp::errc::timeout);
  CHECK(from_caf_error(caf::make_error(caf::sec::cannot_connect_to_node)).code() ==
        warp::errc::unreachable);
}
