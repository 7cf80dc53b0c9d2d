// The watch hub's core (actors/watch_hub.hpp) as a pure class: no actors, time passed in.
// And its state machine decorator on a real kv map: what it reports for each applied entry.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "actors/watch_hub.hpp"

using namespace warp;
using namespace warp::actors;
using namespace std::chrono_literals;

namespace {

using tp = watch_hub::time_point;

std::string stored(std::string_view v) {
  std::string out(1, '\x01');
  out.append(8, '\0');
  out.append(v);
  return out;
}

applied_change put(std::uint32_t g, std::uint64_t i, std::string k, std::string v,
                   std::optional<std::string> prev = {}) {
  applied_change c;
  c.group = g;
  c.index = i;
  applied_write w;
  w.key = std::move(k);
  w.raw_value = stored(v);
  if (prev) {
    w.had_prev = true;
    w.raw_prev = stored(*prev);
  }
  c.writes.push_back(std::move(w));
  return c;
}

applied_change del(std::uint32_t g, std::uint64_t i, std::string k) {
  applied_change c;
  c.group = g;
  c.index = i;
  applied_write w;
  w.deleted = true;
  w.key = std::move(k);
  w.had_prev = true;
  w.raw_prev = stored("old");
  c.writes.push_back(std::move(w));
  return c;
}

std::vector<watch_event> drain(watch_stream& s) {
  std::vector<watch_event> out;
  while (auto e = s.next(0ms)) out.push_back(std::move(*e));
  return out;
}

watch_from from_text(std::string_view t) {
  auto f = parse_watch_from(t);
  REQUIRE(f);
  return *f;
}

}  // namespace

TEST_CASE("watch hub: replays after the start, then streams live, in order per key", "[watch]") {
  tp now{};
  watch_hub hub{{}, {0, 1}, true};
  hub.applied(put(0, 1, "account:a", "1"), now);
  hub.applied(put(1, 1, "account:b", "1"), now);
  hub.applied(put(0, 2, "other:x", "x"), now);
  hub.applied(put(0, 3, "account:a", "2", "1"), now);
  auto s = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("account:", from_text("0"), true, s, now));
  auto ev = drain(*s);
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].key == "account:a");
  CHECK(ev[0].revision == 1);
  CHECK(ev[0].value == "1");
  CHECK(ev[1].revision == 3);
  CHECK(ev[1].has_prev);
  CHECK(ev[1].prev_value == "1");
  CHECK(ev[2].key == "account:b");
  CHECK(ev[2].group == 1);
  // Live: a delete, then a put; the cursor says where to resume after each.
  hub.applied(del(0, 4, "account:a"), now);
  hub.applied(put(1, 2, "account:c", "3"), now);
  ev = drain(*s);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].type == watch_event::kind::del);
  CHECK(ev[0].cursor == "0:4,1:1");
  CHECK(ev[1].cursor == "0:4,1:2");
}

TEST_CASE("watch hub: a cursor resumes with nothing missed and nothing repeated", "[watch]") {
  tp now{};
  watch_hub hub{{}, {0, 1}, true};
  for (std::uint64_t i = 1; i <= 10; ++i) {
    hub.applied(put(0, i, "k" + std::to_string(i), "v"), now);
    hub.applied(put(1, i, "j" + std::to_string(i), "v"), now);
  }
  auto s = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("", from_text("0:4,1:7"), false, s, now));
  auto ev = drain(*s);
  REQUIRE(ev.size() == 6 + 3);
  CHECK(ev.front().revision == 5);
  CHECK(ev.back().revision == 10);
  CHECK(ev.back().group == 1);
  // Glob filter.
  auto g = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("k?", from_text("0"), false, g, now));
  CHECK(drain(*g).size() == 9);
  CHECK(hub.watchers() == 2);
}

TEST_CASE("watch hub: a start below the retained window ends with compacted", "[watch]") {
  tp now{};
  watch_hub_options o;
  o.ring_entries = 4;
  watch_hub hub{o, {0}, true};
  for (std::uint64_t i = 1; i <= 10; ++i) hub.applied(put(0, i, "k", std::to_string(i)), now);
  CHECK(hub.floor(0) == 6);
  CHECK(hub.retained(0) == 4);
  auto s = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("k", from_text("3"), false, s, now));
  auto ev = drain(*s);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == watch_event::kind::compacted);
  CHECK(ev[0].revision == 6);
  CHECK(s->ended());
  CHECK(hub.watchers() == 0);
  // From the floor itself: every retained change.
  auto t = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("k", from_text("6"), false, t, now));
  ev = drain(*t);
  REQUIRE(ev.size() == 4);
  CHECK(ev[0].revision == 7);
  // The ring is also bounded by bytes.
  watch_hub_options b;
  b.ring_bytes = 1000;
  watch_hub small{b, {0}, true};
  for (std::uint64_t i = 1; i <= 100; ++i)
    small.applied(put(0, i, "k", std::string(100, 'x')), now);
  CHECK(small.retained(0) < 10);
  CHECK(small.floor(0) > 90);
}

TEST_CASE("watch hub: a slow watcher is cut off with a reason and resumes from its cursor",
          "[watch]") {
  tp now{};
  watch_hub_options o;
  o.max_queue = 5;
  watch_hub hub{o, {0}, true};
  auto s = std::make_shared<watch_stream>(o.max_queue);
  REQUIRE(hub.add("", watch_from{}, false, s, now));
  for (std::uint64_t i = 1; i <= 20; ++i) hub.applied(put(0, i, "k", std::to_string(i)), now);
  auto ev = drain(*s);
  REQUIRE(ev.size() == 6);
  CHECK(ev[4].revision == 5);
  CHECK(ev[5].type == watch_event::kind::slow);
  CHECK(ev[5].cursor == "0:5");
  CHECK(hub.watchers() == 0);
  CHECK(hub.stats().slow == 1);
  // Resume from the slow event's cursor: 6..20, each once.
  auto r = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("", from_text(ev[5].cursor), false, r, now));
  ev = drain(*r);
  REQUIRE(ev.size() == 15);
  CHECK(ev.front().revision == 6);
  CHECK(ev.back().revision == 20);
}

TEST_CASE("watch hub: progress when idle, restore after a restart, limits", "[watch]") {
  tp now{};
  watch_hub_options o;
  o.progress_interval = 1s;
  o.max_watchers = 2;
  watch_hub hub{o, {0, 1}, true};
  auto s = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("a", watch_from{}, false, s, now));
  hub.applied(put(0, 5, "b", "x"), now);  // does not match
  hub.tick(now + 500ms);
  CHECK(drain(*s).empty());
  hub.tick(now + 1500ms);
  auto ev = drain(*s);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == watch_event::kind::progress);
  CHECK(ev[0].cursor == "0:5,1:0");

  // A restart: the group restores its snapshot at 100 and replays 101.. from its log. A
  // cursor ahead of the replay gets only what is beyond it.
  watch_hub fresh{o, {0, 1}, true};
  fresh.restored(0, 100);
  auto r = std::make_shared<watch_stream>(100);
  REQUIRE(fresh.add("", from_text("0:102,1:0"), false, r, now));
  for (std::uint64_t i = 101; i <= 104; ++i) fresh.applied(put(0, i, "k", "v"), now);
  ev = drain(*r);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].revision == 103);
  auto old = std::make_shared<watch_stream>(100);
  REQUIRE(fresh.add("", from_text("0:50,1:0"), false, old, now));
  CHECK(drain(*old).at(0).type == watch_event::kind::compacted);
  // A snapshot installed over a live watcher's position is a gap: compacted, never silent.
  fresh.restored(1, 40);
  ev = drain(*r);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == watch_event::kind::compacted);
  CHECK(ev[0].group == 1);

  auto x = std::make_shared<watch_stream>(100);
  auto y = std::make_shared<watch_stream>(100);
  auto z = std::make_shared<watch_stream>(100);
  REQUIRE(hub.add("", watch_from{}, false, x, now));
  auto over = hub.add("", watch_from{}, false, y, now);
  REQUIRE_FALSE(over);
  CHECK(over.code() == errc::rate_limited);
  watch_hub partial{o, {0}, false};
  CHECK(partial.add("", watch_from{}, false, z, now).code() == errc::unsupported);
  CHECK(parse_watch_from("0:1,x").code() == errc::invalid_argument);
}

TEST_CASE("watch hub: history newest first and get_at through the replaced values", "[watch]") {
  tp now{};
  watch_hub_options o;
  o.ring_entries = 5;
  watch_hub hub{o, {0}, true};
  hub.applied(put(0, 1, "k", "v1"), now);
  hub.applied(put(0, 2, "other", "o"), now);
  hub.applied(put(0, 3, "k", "v3", "v1"), now);
  hub.applied(del(0, 4, "k"), now);
  auto h = hub.history(0, "k");
  REQUIRE(h.size() == 3);
  CHECK(h[0].revision == 4);
  CHECK(h[0].deleted);
  CHECK(h[2].value == "v1");
  auto at = hub.get_at(0, "k", 3);
  REQUIRE(at);
  REQUIRE(*at);
  CHECK((*at)->value == "v3");
  CHECK((*at)->revision == 3);
  CHECK(hub.get_at(0, "k", 9).code() == errc::invalid_argument);
  for (std::uint64_t i = 5; i <= 7; ++i)
    hub.applied(put(0, i, "k", "n" + std::to_string(i), "x"), now);
  // 1 and 2 fell out (floor 2): revision 0 is compacted; revision 2 is answered by the oldest
  // retained change's replaced value.
  auto gone = hub.get_at(0, "k", 0);
  CHECK(gone.code() == errc::not_found);
  CHECK(gone.err().message().rfind("compacted(2)", 0) == 0);
  auto two = hub.get_at(0, "k", 2);
  REQUIRE(two);
  REQUIRE(*two);
  CHECK((*two)->value == "v1");
  CHECK(hub.get_at(0, "never", 6).value() == std::nullopt);
}

TEST_CASE("watch hub: the state machine decorator reports changes, not refusals or retries",
          "[watch]") {
  std::vector<applied_change> seen;
  std::vector<std::uint64_t> restores;
  watched_kv_state_machine sm{7,
                              {},
                              [&](applied_change c) { seen.push_back(std::move(c)); },
                              [&](std::uint32_t, std::uint64_t i) { restores.push_back(i); }};
  consensus::kv_command c;
  c.client = 9;
  c.seq = 1;
  c.key = "k";
  c.value = stored("a");
  REQUIRE(sm.apply(1, consensus::encode(c)));
  REQUIRE(sm.apply(2, consensus::encode(c)));  // the same retry: deduplicated
  c.seq = 2;
  c.op = consensus::kv_op::cas;
  c.expected = stored("zzz");
  CHECK_FALSE(sm.apply(3, consensus::encode(c)));  // refused
  c.seq = 3;
  c.op = consensus::kv_op::del;
  REQUIRE(sm.apply(4, consensus::encode(c)));
  c.seq = 4;
  REQUIRE(sm.apply(5, consensus::encode(c)));  // absent: no change
  REQUIRE(seen.size() == 5);
  REQUIRE(seen[0].writes.size() == 1);
  CHECK(seen[0].group == 7);
  CHECK(seen[1].writes.empty());
  CHECK(seen[2].writes.empty());
  REQUIRE(seen[3].writes.size() == 1);
  CHECK(seen[3].writes[0].deleted);
  CHECK(decode_strong_value(seen[3].writes[0].raw_prev).value == "a");
  CHECK(seen[4].writes.empty());
  auto snap = sm.snapshot();
  REQUIRE(sm.restore(snap));
  CHECK(restores == std::vector<std::uint64_t>{5});
}

TEST_CASE("watch hub: a transaction's writes share a revision and arrive together", "[watch]") {
  std::vector<applied_change> seen;
  watched_kv_state_machine sm{0, {}, [&](applied_change c) { seen.push_back(std::move(c)); }, {}};
  consensus::kv_command c;
  c.key = "t:a";
  c.value = stored("1");
  REQUIRE(sm.apply(1, consensus::encode(c)));
  consensus::kv_batch b;
  b.conditions.push_back({"t:a", false, 1, {}});  // "t:a" as written at revision 1
  b.writes.push_back({"t:a", false, stored("2")});
  b.writes.push_back({"t:b", false, stored("x")});
  b.writes.push_back({"t:a", false, stored("3")});
  b.writes.push_back({"t:gone", true, {}});  // absent: no change
  c.op = consensus::kv_op::batch;
  c.value = consensus::encode(b);
  REQUIRE(sm.apply(2, consensus::encode(c)));
  // A failed condition applies nothing and reports nothing.
  REQUIRE_FALSE(sm.apply(3, consensus::encode(c)));
  REQUIRE(seen.size() == 3);
  REQUIRE(seen[1].writes.size() == 3);
  CHECK(seen[1].writes[0].key == "t:a");
  CHECK(decode_strong_value(seen[1].writes[0].raw_prev).value == "1");
  CHECK(seen[1].writes[1].key == "t:b");
  CHECK_FALSE(seen[1].writes[1].had_prev);
  CHECK(decode_strong_value(seen[1].writes[2].raw_prev).value == "2");
  CHECK(seen[2].writes.empty());

  watch_hub hub{{}, {0}, true};
  auto t0 = std::chrono::steady_clock::now();
  for (auto& a : seen) hub.applied(a, t0);
  auto out = std::make_shared<watch_stream>(100);
  watch_from from;
  from.all = 0;
  REQUIRE(hub.add("t:", from, true, out, t0));
  std::vector<watch_event> got;
  while (auto e = out->next(std::chrono::milliseconds{0})) got.push_back(std::move(*e));
  REQUIRE(got.size() == 4);
  CHECK(got[1].revision == 2);
  CHECK(got[3].revision == 2);
  // Inside the transaction the cursor stays before it; its last event moves past it.
  CHECK(got[1].cursor == got[0].cursor);
  CHECK(got[2].cursor == got[0].cursor);
  CHECK(got[3].cursor != got[0].cursor);
  CHECK(got[3].value == "3");
  CHECK(got[3].prev_value == "2");

  // A queue with room for 2 events cannot take the transaction's 3: the watch ends slow
  // at the revision before it, and nothing of the transaction was queued.
  auto small = std::make_shared<watch_stream>(2);
  from.all = 1;
  REQUIRE(hub.add("t:", from, false, small, t0));
  auto first = small->next(std::chrono::milliseconds{0});
  REQUIRE(first);
  CHECK(first->type == watch_event::kind::slow);
}
