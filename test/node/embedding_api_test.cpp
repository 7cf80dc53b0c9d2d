// The embedding API of issue #10: get_if_present, get_many, the async calls, validate(),
// no listener by default.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "counting_storage.hpp"
#include "warp/node.hpp"

using namespace std::chrono_literals;
using warp::errc;

namespace {

struct api_fixture {
  std::shared_ptr<warp::test::counting_storage> store =
      std::make_shared<warp::test::counting_storage>();
  std::unique_ptr<warp::node> node;

  api_fixture() {
    warp::node_config cfg;  // the defaults: no listener
    cfg.storage_adapter = store;
    cfg.log_level = "warn";
    cfg.executor_threads = 2;
    auto n = warp::node::start(std::move(cfg));
    REQUIRE(n);
    node = std::move(*n);
  }
};

std::string text(const warp::result<warp::buffer>& r) {
  return r ? std::string{warp::view(*r)} : "<" + std::string{warp::to_string(r.code())} + ">";
}

}  // namespace

TEST_CASE("an embedded node opens no port by default") {
  CHECK(warp::node_config{}.listen.empty());
  api_fixture f;
  CHECK(f.node->listen_port() == 0);
}

TEST_CASE("get_if_present answers from L1 only, never from storage") {
  api_fixture f;
  REQUIRE(f.store->store("cold", warp::record{"in storage", 0, {1, 1}}));
  auto fetches = f.store->fetches.load();
  CHECK_FALSE(f.node->get_if_present("cold"));
  CHECK(f.store->fetches == fetches);
  REQUIRE(f.node->set("hot", "v"));
  auto hit = f.node->get_if_present("hot");
  REQUIRE(hit);
  CHECK(warp::view(*hit) == "v");
  std::string seen;
  CHECK(f.node->read_if_present("hot", [&](std::string_view b) { seen = b; }));
  CHECK(seen == "v");
  CHECK_FALSE(f.node->read_if_present("cold", [&](std::string_view) { FAIL("no hit"); }));
  CHECK(f.store->fetches == fetches);
}

TEST_CASE("get_many: one result per key, in order, misses read through") {
  api_fixture f;
  REQUIRE(f.node->set("a", "1"));
  REQUIRE(f.store->store("b", warp::record{"2", 0, {1, 1}}));
  std::string_view keys[] = {"a", "missing", "b", std::string_view{}};
  auto out = f.node->get_many(keys);
  REQUIRE(out.size() == 4);
  CHECK(text(out[0]) == "1");
  CHECK(text(out[1]) == "<not_found>");
  CHECK(text(out[2]) == "2");
  CHECK(text(out[3]) == "<not_found>");
}

TEST_CASE("the async calls run on the executor and report through future and callback") {
  api_fixture f;
  REQUIRE(f.node->set_async("k", "v").get());
  CHECK(text(f.node->get_async("k").get()) == "v");
  CHECK(text(f.node->get_async("nope").get()) == "<not_found>");

  // A miss runs on an executor thread, not the caller's.
  REQUIRE(f.store->store("cold", warp::record{"c", 0, {1, 1}}));
  std::promise<std::thread::id> ran_on;
  f.node->get_async("cold", [&](warp::result<warp::buffer> r) {
    CHECK(text(r) == "c");
    ran_on.set_value(std::this_thread::get_id());
  });
  CHECK(ran_on.get_future().get() != std::this_thread::get_id());

  auto many = f.node->get_many_async({"k", "cold", "nope"}).get();
  REQUIRE(many.size() == 3);
  CHECK(text(many[2]) == "<not_found>");

  auto decided = f.node
                     ->update_async("n",
                                    [](const warp::buffer* cur, std::int64_t) {
                                      return warp::result<warp::mutation>{
                                          warp::mutation::put(cur ? "again" : "first", 0)};
                                    })
                     .get();
  REQUIRE(decided);
  CHECK(text(f.node->get("n")) == "first");
  REQUIRE(f.node->remove_async("n").get());
  CHECK(f.node->get("n").code() == errc::not_found);

  auto loaded = f.node->get_or_load_async("loaded", [](std::string_view) {
    return warp::result<std::optional<std::string>>{std::optional<std::string>{"L"}};
  });
  CHECK(text(loaded.get()) == "L");

  // A storage failure comes back as the outcome, not as an exception.
  f.store->fail_store = true;
  CHECK(f.node->set_async("k", "x").get().code() == errc::storage_unavailable);
  f.store->fail_store = false;
}

TEST_CASE("after stop the async calls fail fast with shutting_down") {
  api_fixture f;
  f.node->stop();
  CHECK(f.node->set_async("k", "v").get().code() == errc::shutting_down);
  CHECK(f.node->get_async("k").get().code() == errc::shutting_down);
  std::atomic<bool> called{false};
  f.node->remove_async("k", [&](warp::result<void> st) {
    CHECK(st.code() == errc::shutting_down);
    called = true;
  });
  CHECK(called);  // at once, on the caller's thread
}

TEST_CASE("node_config::validate names the field and its default") {
  warp::node_config ok;
  CHECK(ok.validate());

  warp::node_config c;
  c.executor_threads = 0;
  auto r = c.validate();
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::invalid_argument);
  CHECK(r.err().message() == "executor_threads must be at least 1 (default " +
                                 std::to_string(warp::node_config{}.executor_threads) + ")");

  c = {};
  c.log_level = "loud";
  CHECK(c.validate().code() == errc::invalid_argument);
  c = {};
  c.patterns = {"user:*=no_such_mode"};
  CHECK_FALSE(c.validate());
  c = {};
  c.listen = "not an endpoint";
  CHECK_FALSE(c.validate());
  c = {};
  c.listen = "10.1.2.3:4700";  // off loopback without TLS
  CHECK(c.validate().err().message().find("without TLS") != std::string::npos);
  c.transport.insecure = true;
  CHECK(c.validate());
  // node::start refuses what validate refuses.
  c = {};
  c.scheduler_threads = 0;
  CHECK(warp::node::start(c).code() == errc::invalid_argument);
}
