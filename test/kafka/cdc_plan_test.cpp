// CDC ingest's mapping (federation/cdc_ingest): Debezium event -> actions on cache keys.
#include <catch2/catch.hpp>

#include <random>

#include <nlohmann/json.hpp>

#include "federation/cdc_ingest.hpp"

using namespace warp;
using namespace warp::federation;

namespace {

std::string event(const char* op, const char* before, const char* after, bool envelope = true) {
  std::string payload =
      std::string{R"({"op":")"} + op + R"(","before":)" + before + R"(,"after":)" + after +
      R"(,"source":{"connector":"postgresql","db":"app","table":"users"},"ts_ms":1})";
  return envelope ? R"({"schema":{"type":"struct"},"payload":)" + payload + "}" : payload;
}

key_template tmpl(std::string_view t) {
  auto k = key_template::parse(t);
  REQUIRE(k);
  return *k;
}

}  // namespace

TEST_CASE("cdc: key templates render string and integer columns") {
  auto t = tmpl("order:{tenant}:{id}");
  CHECK(t.columns() == std::vector<std::string>{"tenant", "id"});
  CHECK(*t.render(nlohmann::json::parse(R"({"tenant":"acme","id":42,"x":1.5})")) ==
        "order:acme:42");
  CHECK(t.render(nlohmann::json::parse(R"({"tenant":"acme"})")).code() == errc::codec_error);
  CHECK(t.render(nlohmann::json::parse(R"({"tenant":"a","id":1.5})")).code() == errc::codec_error);
  CHECK(t.render(nlohmann::json::parse(R"({"tenant":null,"id":1})")).code() == errc::codec_error);
  CHECK(*tmpl("{{x}}{id}").render(nlohmann::json::parse(R"({"id":-3})")) == "{x}-3");
  for (auto bad : {"", "user", "user:{", "user:{}", "user:}", "a{b{c}"})
    CHECK(key_template::parse(bad).code() == errc::invalid_argument);
  CHECK(parse_cdc_mode("hydrate"));
  CHECK(parse_cdc_mode("refresh").code() == errc::invalid_argument);
}

TEST_CASE("cdc: c/u/r/d map to invalidate or hydrate, with or without the schema envelope") {
  auto t = tmpl("user:{id}");
  using k = cdc_action::kind;
  for (bool env : {true, false}) {
    auto c = plan_cdc(event("c", "null", R"({"id":1,"name":"ann"})", env), t, cdc_mode::hydrate);
    REQUIRE(c);
    REQUIRE(c->size() == 1);
    CHECK((*c)[0].what == k::hydrate);
    CHECK((*c)[0].key == "user:1");
    CHECK(nlohmann::json::parse((*c)[0].value)["name"] == "ann");

    auto u = plan_cdc(event("u", R"({"id":1,"name":"ann"})", R"({"id":1,"name":"bob"})", env), t,
                      cdc_mode::invalidate);
    REQUIRE(u);
    CHECK(*u == std::vector<cdc_action>{{k::invalidate, "user:1", {}}});

    auto d = plan_cdc(event("d", R"({"id":7,"name":"x"})", "null", env), t, cdc_mode::hydrate);
    REQUIRE(d);
    CHECK(*d == std::vector<cdc_action>{{k::invalidate, "user:7", {}}});

    auto r = plan_cdc(event("r", "null", R"({"id":"9"})", env), t, cdc_mode::invalidate);
    REQUIRE(r);
    CHECK(*r == std::vector<cdc_action>{{k::invalidate, "user:9", {}}});
  }
  // A key column that changed: the old key goes too.
  auto moved = plan_cdc(event("u", R"({"id":1})", R"({"id":2})"), t, cdc_mode::hydrate);
  REQUIRE(moved);
  REQUIRE(moved->size() == 2);
  CHECK((*moved)[0] == cdc_action{k::invalidate, "user:1", {}});
  CHECK((*moved)[1].key == "user:2");
  // Tombstones (null Kafka value, or a JSON null) do nothing.
  CHECK(plan_cdc("", t, cdc_mode::hydrate)->empty());
  CHECK(plan_cdc("null", t, cdc_mode::hydrate)->empty());
  CHECK(plan_cdc(R"({"schema":{},"payload":null})", t, cdc_mode::hydrate)->empty());
}

TEST_CASE("cdc: malformed events are clear errors, never crashes") {
  auto t = tmpl("user:{id}");
  for (std::string bad :
       {std::string{"not json"}, std::string{"[1,2]"}, std::string{R"({"payload":{"op":"u"}})"},
        std::string{R"({"payload":{"op":"x","after":{"id":1}}})"},
        std::string{R"({"payload":{"op":"d","before":null}})"},
        std::string{R"({"payload":{"op":"c","after":{"name":"no id"}}})"},
        std::string{R"({"payload":{"op":7,"after":{"id":1}}})"}, std::string(100'000, '{')}) {
    INFO(bad.substr(0, 80));
    auto r = plan_cdc(bad, t, cdc_mode::hydrate);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::codec_error);
    CHECK(r.err().message().find("malformed CDC event") == 0);
  }
  cdc_limits small;
  small.max_event_bytes = 10;
  CHECK(plan_cdc(event("c", "null", R"({"id":1})"), t, cdc_mode::hydrate, small).code() ==
        errc::codec_error);
  // Mutations of a valid event: every outcome is a plan or a codec_error.
  std::mt19937_64 rng{7};
  auto seed = event("u", R"({"id":1,"name":"ann"})", R"({"id":1,"name":"bob"})");
  for (int i = 0; i < 20'000; ++i) {
    auto m = seed;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 4); ++e) {
      if (m.empty()) break;
      auto at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = static_cast<char>(rng());
          break;
        case 1:
          m.erase(at, rng() % 8);
          break;
        default:
          m.insert(at, 1, "{}[]\",:0"[rng() % 8]);
      }
    }
    auto r = plan_cdc(m, t, cdc_mode::hydrate);
    if (!r) CHECK(r.code() == errc::codec_error);
  }
}
