// The pure parts of federation's Kafka transport (federation/kafka_link.hpp) and of the
// gateway hand-over (link_state.hpp, region_gateway): a change as the documented envelope
// and back in both encodings (policy and expiry included), the envelope's policy field
// bounded and optional, the topic names, and which member is the gateway and re-ships
// whose changes as members come and go.
#include <catch2/catch.hpp>

#include "bus/kafka_envelope.hpp"
#include "federation/kafka_link.hpp"
#include "federation/link_state.hpp"

using namespace warp::federation;
using namespace std::chrono_literals;
namespace bus = warp::bus;

TEST_CASE("federation over kafka: a change travels as the envelope and comes back whole",
          "[federation][kafka]") {
  change c;
  c.key = "c:1";
  c.value = std::string{"\x00\x01state", 7};
  c.ver = {123456789, 42};
  c.origin = "eu";
  c.path = {"eu", "us"};
  c.policy = "counter";
  c.expires_at_ms = 1'700'000'060'000;
  for (auto f : {bus::kafka_format::msgpack, bus::kafka_format::json}) {
    auto k = to_kafka(c, 1'700'000'000'000);
    CHECK(k.op == bus::kafka_op::update);
    CHECK(k.ttl_ms == 60'000);
    CHECK(k.policy == "counter");
    auto bytes = bus::encode(k, f);
    REQUIRE(bytes);
    CHECK(sniff_format(*bytes) == f);
    auto back = bus::decode_kafka(*bytes, sniff_format(*bytes));
    REQUIRE(back);
    auto c2 = from_kafka(std::move(*back));
    REQUIRE(c2);
    CHECK(*c2 == c);
  }
  // A delete, lww, no expiry: no policy field on the wire, nothing else changes.
  change d;
  d.what = change::op::erase;
  d.key = "user:1";
  d.ver = {5, 1};
  d.origin = "us";
  d.path = {"us"};
  auto k = to_kafka(d, 1000);
  CHECK(k.policy.empty());
  CHECK(k.ttl_ms == 0);
  CHECK_FALSE(k.has_value);
  auto json = bus::encode(k, bus::kafka_format::json);
  REQUIRE(json);
  CHECK(json->find("\"policy\"") == std::string::npos);
  CHECK(json->find("\"op\":\"d\"") != std::string::npos);
  auto back = from_kafka(*bus::decode_kafka(*json, bus::kafka_format::json));
  REQUIRE(back);
  CHECK(*back == d);
  // An expiry already past still expires (1 ms), it never turns into "no expiry".
  c.expires_at_ms = 10;
  CHECK(to_kafka(c, 1000).ttl_ms == 1);
  CHECK(kafka_topic("warp.fed.", "eu", "us") == "warp.fed.eu.us");
}

TEST_CASE("federation over kafka: the envelope's policy field is optional and bounded",
          "[federation][kafka]") {
  bus::kafka_change k;
  k.key = "k";
  k.has_value = true;
  k.value = "v";
  k.origin = "eu";
  k.policy = std::string(300, 'p');
  for (auto f : {bus::kafka_format::msgpack, bus::kafka_format::json})
    CHECK(bus::encode(k, f).code() == warp::errc::invalid_argument);
  // An empty policy is refused on read (absent means lww).
  CHECK(
      bus::decode_kafka(R"({"v":1,"op":"u","key":"k","value":"dg==","version":{"hlc":1,"node":1},)"
                        R"("origin":"eu","policy":""})",
                        bus::kafka_format::json)
          .code() == warp::errc::codec_error);
  CHECK(
      bus::decode_kafka(R"({"v":1,"op":"u","key":"k","value":"dg==","version":{"hlc":1,"node":1},)"
                        R"("origin":"eu","policy":7})",
                        bus::kafka_format::json)
          .code() == warp::errc::codec_error);
  // A put without a value, or without an origin, is no federation change.
  bus::kafka_change empty;
  empty.key = "k";
  empty.origin = "eu";
  CHECK(from_kafka(empty).code() == warp::errc::codec_error);
  empty.has_value = true;
  empty.origin.clear();
  CHECK(from_kafka(empty).code() == warp::errc::codec_error);
}

TEST_CASE("federation gateway: the lowest live name leads and re-ships departed members",
          "[federation]") {
  region_gateway g{10s};
  auto t = clock_point{} + 100s;
  std::vector<member_seen> all{
      {1, "a0", true, false}, {2, "a1", true, true}, {3, "a2", true, false}};
  CHECK(g.observe(all, t).empty());
  CHECK(g.gateway() == "a0");
  CHECK_FALSE(g.self_is_gateway());
  // a2 dies: a0 re-ships it, not this node (a1).
  all[2].live = false;
  CHECK(g.observe(all, t + 1s).empty());
  // Then the gateway a0 dies too: a1 leads and takes over both hand-overs.
  all[0].live = false;
  auto gone = g.observe(all, t + 2s);
  CHECK(g.gateway() == "a1");
  CHECK(g.self_is_gateway());
  CHECK(gone == std::vector<std::uint32_t>{1, 3});
  CHECK(g.observe(all, t + 3s).empty());  // once
  // A member forgotten by the view (not only marked down) counts as gone as well.
  all.push_back({4, "a3", true, false});
  CHECK(g.observe(all, t + 4s).empty());
  all.pop_back();
  CHECK(g.observe(all, t + 5s) == std::vector<std::uint32_t>{4});
  // A member that came back before a gateway took over is not re-shipped; one gone longer
  // than the window is forgotten.
  region_gateway h{10s};
  std::vector<member_seen> two{
      {1, "a0", true, false}, {2, "a1", true, true}, {3, "b", true, false}};
  CHECK(h.observe(two, t).empty());
  two[2].live = false;
  CHECK(h.observe(two, t + 1s).empty());
  two[2].live = true;
  CHECK(h.observe(two, t + 2s).empty());
  two[2].live = false;
  CHECK(h.observe(two, t + 3s).empty());
  two[0].live = false;
  // b's departure is older than the window: only a0's changes are re-shipped.
  CHECK(h.observe(two, t + 30s) == std::vector<std::uint32_t>{1});
  CHECK(h.self_is_gateway());
}
