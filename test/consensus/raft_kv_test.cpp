// The replicated key -> value map (runtime/consensus/raft_kv.hpp): its command encoding,
// put/delete/cas, exactly-once by client id + sequence, and its snapshot.
#include <catch2/catch.hpp>
#include <random>

#include "runtime/consensus/raft_kv.hpp"

using namespace warp;
using namespace warp::consensus;

namespace {

kv_command cmd(std::uint64_t client, std::uint64_t seq, kv_op op, std::string key,
               std::string value = {}, std::string expected = {}, bool absent = false) {
  return kv_command{client, seq, op, std::move(key), std::move(value), std::move(expected), absent};
}

}  // namespace

TEST_CASE("raft kv: a command round-trips and a malformed one is refused") {
  auto c = cmd(7, 9, kv_op::cas, "k", "new", "old");
  auto back = decode_kv_command(encode(c));
  REQUIRE(back);
  CHECK(*back == c);
  auto bytes = encode(c);
  CHECK_FALSE(decode_kv_command(bytes.substr(0, bytes.size() - 1)));
  CHECK_FALSE(decode_kv_command(bytes + "x"));
  CHECK_FALSE(decode_kv_command(""));
  kv_limits tight;
  tight.max_value_bytes = 2;
  CHECK(decode_kv_command(bytes, tight).code() == errc::codec_error);
  // A length prefix far beyond the input is refused before anything is allocated.
  std::string huge = bytes.substr(0, 1 + 8 + 8 + 2);
  huge += std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
  CHECK(decode_kv_command(huge).code() == errc::codec_error);
}

TEST_CASE("raft kv: put, delete and compare-and-set") {
  kv_state_machine sm;
  CHECK(sm.apply(1, encode(cmd(0, 0, kv_op::put, "a", "1"))));
  CHECK(*sm.read("a") == "1");
  CHECK(sm.apply(2, encode(cmd(0, 0, kv_op::cas, "a", "2", "0"))).code() == errc::conflict);
  CHECK(*sm.read("a") == "1");
  CHECK(sm.apply(3, encode(cmd(0, 0, kv_op::cas, "a", "2", "1"))));
  CHECK(*sm.read("a") == "2");
  CHECK(sm.apply(4, encode(cmd(0, 0, kv_op::cas, "a", "3", {}, true))).code() == errc::conflict);
  CHECK(sm.apply(5, encode(cmd(0, 0, kv_op::del, "a"))));
  CHECK(sm.read("a").code() == errc::not_found);
  CHECK(sm.apply(6, encode(cmd(0, 0, kv_op::cas, "a", "4", {}, true))));
  CHECK(*sm.read("a") == "4");
  // compare-and-delete: only while the key holds the expected value.
  CHECK(sm.apply(7, encode(cmd(0, 0, kv_op::cas_del, "a", {}, "3"))).code() == errc::conflict);
  CHECK(sm.read("a"));
  CHECK(sm.apply(8, encode(cmd(0, 0, kv_op::cas_del, "a", {}, "4"))));
  CHECK(sm.read("a").code() == errc::not_found);
  CHECK(sm.apply(9, encode(cmd(0, 0, kv_op::cas_del, "a", {}, "4"))).code() == errc::conflict);
  CHECK(sm.applied() == 9);
  CHECK(sm.apply(10, "garbage").code() == errc::codec_error);
  CHECK(sm.applied() == 10);
}

TEST_CASE("raft kv: a retried command (same client and sequence) applies once") {
  kv_state_machine sm;
  REQUIRE(sm.apply(1, encode(cmd(5, 1, kv_op::put, "n", "1"))));
  REQUIRE(sm.apply(2, encode(cmd(6, 1, kv_op::put, "n", "x"))));
  // The retry of client 5's seq 1 lands after client 6's write: it must not overwrite it.
  CHECK(sm.apply(3, encode(cmd(5, 1, kv_op::put, "n", "1"))));
  CHECK(*sm.read("n") == "x");
  CHECK(sm.deduplicated() == 1);
  // A failed cas is answered the same way on its retry, also when it would succeed now.
  REQUIRE(sm.apply(4, encode(cmd(5, 2, kv_op::cas, "n", "y", "1"))).code() == errc::conflict);
  REQUIRE(sm.apply(5, encode(cmd(6, 2, kv_op::put, "n", "1"))));
  CHECK(sm.apply(6, encode(cmd(5, 2, kv_op::cas, "n", "y", "1"))).code() == errc::conflict);
  CHECK(*sm.read("n") == "1");
  CHECK(sm.apply(7, encode(cmd(5, 1, kv_op::put, "n", "old"))).code() == errc::invalid_argument);
  CHECK(*sm.read("n") == "1");
}

TEST_CASE("raft kv: a snapshot restores the map and the sessions") {
  kv_state_machine sm;
  REQUIRE(sm.apply(1, encode(cmd(5, 1, kv_op::put, "a", "1"))));
  REQUIRE(sm.apply(2, encode(cmd(5, 2, kv_op::put, "b", "2"))));
  kv_state_machine copy;
  REQUIRE(copy.restore(sm.snapshot()));
  CHECK(copy.applied() == 2);
  CHECK(*copy.read("a") == "1");
  CHECK(*copy.read("b") == "2");
  CHECK(copy.apply(3, encode(cmd(5, 2, kv_op::put, "b", "again"))));
  CHECK(*copy.read("b") == "2");
  auto snap = sm.snapshot();
  CHECK_FALSE(copy.restore(snap.substr(0, snap.size() - 3)));
  CHECK(*copy.read("b") == "2");  // a refused snapshot leaves the state as it was
}

TEST_CASE("raft kv: sessions are bounded and evicted deterministically") {
  kv_limits lim;
  lim.max_sessions = 2;
  kv_state_machine a{lim}, b{lim};
  for (index_t i = 1; i <= 5; ++i) {
    auto c = encode(cmd(i, 1, kv_op::put, "k", std::to_string(i)));
    REQUIRE(a.apply(i, c));
    REQUIRE(b.apply(i, c));
  }
  CHECK(a.snapshot() == b.snapshot());
}

namespace {

kv_batch sample_batch() {
  kv_batch b;
  b.conditions.push_back({"a", false, 1, {}});
  b.conditions.push_back({"b", true, 0, {}});
  b.writes.push_back({"a", false, "2"});
  b.writes.push_back({"b", false, "x"});
  b.writes.push_back({"c", true, {}});
  return b;
}

}  // namespace

TEST_CASE("raft kv batch: round-trips and refuses what is beyond its bounds") {
  auto b = sample_batch();
  auto bytes = encode(b);
  auto back = decode_kv_batch(bytes);
  REQUIRE(back);
  CHECK(*back == b);
  CHECK_FALSE(decode_kv_batch(bytes.substr(0, bytes.size() - 1)));
  CHECK_FALSE(decode_kv_batch(bytes + "x"));
  CHECK_FALSE(decode_kv_batch(""));
  kv_limits few;
  few.max_batch_items = 4;  // 2 conditions + 3 writes
  CHECK(decode_kv_batch(bytes, few).code() == errc::codec_error);
  kv_limits small;
  small.max_batch_bytes = bytes.size() - 1;
  CHECK(decode_kv_batch(bytes, small).code() == errc::codec_error);
  // A count far beyond the bytes present is refused before anything is reserved.
  std::string huge{"\x01\xff\xff\xff\x7f", 5};
  CHECK(decode_kv_batch(huge).code() == errc::codec_error);
  // The batch travels in a kv_command whose value bound is the batch bound.
  kv_command c{3, 4, kv_op::batch, "a", bytes, {}, false};
  kv_limits tight;
  tight.max_value_bytes = 4;
  auto cb = decode_kv_command(encode(c), tight);
  REQUIRE(cb);
  CHECK(*cb == c);
  tight.max_batch_bytes = 4;
  CHECK_FALSE(decode_kv_command(encode(c), tight));
}

TEST_CASE("raft kv batch: 20,000 mutated inputs decode or fail cleanly") {
  auto bytes = encode(kv_command{1, 2, kv_op::batch, "a", encode(sample_batch()), {}, false});
  std::mt19937_64 rng{20261202};
  kv_limits lim;
  lim.max_batch_bytes = 4096;
  lim.max_value_bytes = 4096;
  lim.max_key_bytes = 4096;
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string m = bytes;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0:  // flip a byte
          m[rng() % m.size()] = static_cast<char>(rng());
          break;
        case 1:  // truncate
          m.resize(rng() % (m.size() + 1));
          break;
        case 2:  // insert a byte
          m.insert(m.begin() + static_cast<long>(rng() % (m.size() + 1)), static_cast<char>(rng()));
          break;
        default:  // a huge length or count at a random place
          if (m.size() >= 4) {
            auto at = rng() % (m.size() - 3);
            for (int k = 0; k < 4; ++k) m[at + k] = '\xff';
          }
      }
      if (m.empty()) m.push_back('x');
    }
    auto c = decode_kv_command(m, lim);
    if (!c) continue;
    ++decoded;
    if (c->op == kv_op::batch) (void)decode_kv_batch(c->value, lim);
    kv_state_machine sm{lim};
    (void)sm.apply(1, m);  // never crashes, whatever it decodes to
  }
  CHECK(decoded < 20000);
}

TEST_CASE("raft kv batch: applies all writes when every condition holds, nothing otherwise") {
  kv_state_machine sm;
  REQUIRE(sm.apply(1, encode(kv_command{0, 0, kv_op::put, "a", "1", {}, false})));
  REQUIRE(sm.apply(2, encode(kv_command{0, 0, kv_op::put, "c", "gone", {}, false})));
  auto b = sample_batch();
  auto ok = sm.apply(3, encode(kv_command{5, 1, kv_op::batch, "a", encode(b), {}, false}));
  REQUIRE(ok);
  CHECK(*sm.read("a") == "2");
  CHECK(*sm.read("b") == "x");
  CHECK(sm.read("c").code() == errc::not_found);
  // The same batch again: "a" no longer holds "1", so nothing applies, even the writes
  // whose keys' conditions would hold.
  kv_batch again = b;
  again.conditions = {{"b", false, 3, {}}, {"a", false, 1, {}}};  // "a" is at 3 now
  again.writes = {{"b", true, {}}, {"z", false, "new"}};
  auto refused = sm.apply(4, encode(kv_command{5, 2, kv_op::batch, "a", encode(again), {}, false}));
  REQUIRE_FALSE(refused);
  CHECK(refused.code() == errc::conflict);
  CHECK(refused.err().message().find("'a'") != std::string::npos);
  CHECK(*sm.read("b") == "x");
  CHECK(sm.read("z").code() == errc::not_found);
  // A retry of the applied batch (same client and sequence) is answered from the session.
  auto retry = sm.apply(5, encode(kv_command{5, 1, kv_op::batch, "a", encode(b), {}, false}));
  CHECK(retry.code() == errc::invalid_argument);  // below the client's last sequence
  auto dup = sm.apply(6, encode(kv_command{5, 2, kv_op::batch, "a", encode(again), {}, false}));
  CHECK(dup.code() == errc::conflict);
  CHECK(sm.deduplicated() == 1);
  // Same state on a replica restored from the snapshot.
  kv_state_machine other;
  REQUIRE(other.restore(sm.snapshot()));
  CHECK(*other.read("a") == "2");
  CHECK(*other.read("b") == "x");
}

TEST_CASE("raft kv: the write-through's unstored keys, its stored mark and their snapshot") {
  kv_state_machine sm{kv_limits{}, true};
  REQUIRE(sm.apply(1, encode(cmd(0, 0, kv_op::put, "a", "1"))));
  REQUIRE(sm.apply(2, encode(cmd(0, 0, kv_op::put, "b", "1"))));
  REQUIRE(sm.apply(3, encode(cmd(0, 0, kv_op::del, "a"))));
  // A refused compare-and-set changes nothing: nothing to store for it.
  CHECK(sm.apply(4, encode(cmd(0, 0, kv_op::cas, "c", "x", "nope"))).code() == errc::conflict);
  // A delete of an absent key is listed too: storage may hold the key from before.
  REQUIRE(sm.apply(5, encode(cmd(0, 0, kv_op::del, "gone"))));
  kv_batch b;
  b.writes = {{"d", false, "1"}, {"b", true, {}}};
  REQUIRE(sm.apply(6, encode(cmd(0, 0, kv_op::batch, "d", encode(b)))));
  using m = std::map<std::string, index_t, std::less<>>;
  CHECK(sm.unstored() == m{{"a", 3}, {"b", 6}, {"gone", 5}, {"d", 6}});

  // The mark drops what changed up to it; a key changed after it stays.
  REQUIRE(sm.apply(7, encode(stored_mark(5))));
  CHECK(sm.stored_through() == 5);
  CHECK(sm.unstored() == m{{"b", 6}, {"d", 6}});
  // An older leader's mark arriving late moves nothing back.
  REQUIRE(sm.apply(8, encode(stored_mark(2))));
  CHECK(sm.stored_through() == 5);
  REQUIRE(sm.apply(9, encode(cmd(0, 0, kv_op::put, "a", "2"))));

  // The snapshot keeps the list and the mark: a compaction loses no unstored change.
  kv_state_machine copy{kv_limits{}, true};
  REQUIRE(copy.restore(sm.snapshot()));
  CHECK(copy.unstored() == m{{"a", 9}, {"b", 6}, {"d", 6}});
  CHECK(copy.stored_through() == 5);
  REQUIRE(copy.apply(10, encode(stored_mark(9))));
  CHECK(copy.unstored().empty());
  CHECK(*copy.read("a") == "2");

  // Without tracking nothing is listed (and the mark is still accepted).
  kv_state_machine plain;
  REQUIRE(plain.apply(1, encode(cmd(0, 0, kv_op::put, "a", "1"))));
  CHECK(plain.unstored().empty());
  REQUIRE(plain.apply(2, encode(stored_mark(1))));
  // A malformed mark is refused the same way on every replica.
  auto bad = stored_mark(1);
  bad.value += "x";
  CHECK(sm.apply(11, encode(bad)).code() == errc::codec_error);
}

namespace {

void le64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A snapshot as versions 1 and 2 wrote it (no revisions, no tombstones): `applied`, the
// pairs, no session; version 2 adds the stored mark 0 and an empty unstored list.
std::string old_snapshot(int version, index_t applied,
                         const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string out(1, static_cast<char>(version));
  le64(out, applied);
  le64(out, kv.size());
  for (const auto& [k, v] : kv) {
    le64(out, k.size());
    out += k;
    le64(out, v.size());
    out += v;
  }
  le64(out, 0);  // sessions
  if (version >= 2) {
    le64(out, 0);  // stored through
    le64(out, 0);  // unstored
  }
  return out;
}

}  // namespace

TEST_CASE("raft kv: a snapshot from before the write-through lists every key as unstored") {
  auto snap = old_snapshot(1, 2, {{"a", "1"}, {"b", "2"}});
  kv_state_machine sm{kv_limits{}, true};
  REQUIRE(sm.restore(snap));
  using m = std::map<std::string, index_t, std::less<>>;
  CHECK(sm.unstored() == m{{"a", 2}, {"b", 2}});
  CHECK(sm.stored_through() == 0);
}

TEST_CASE("raft kv revisions: a write of identical bytes moves the revision and fails a batch") {
  kv_state_machine sm;
  REQUIRE(sm.apply(1, encode(cmd(0, 0, kv_op::put, "k", "v"))));
  auto at_watch = sm.versioned("k");
  CHECK(at_watch == kv_versioned{true, 1, "v"});
  // Another client writes the same bytes: the value reads the same, the revision does not.
  REQUIRE(sm.apply(2, encode(cmd(0, 0, kv_op::put, "k", "v"))));
  CHECK(*sm.read("k") == "v");
  CHECK(sm.versioned("k").revision == 2);
  kv_batch b;
  b.conditions = {{"k", false, at_watch.revision, {}}};
  b.writes = {{"k", false, "mine"}};
  auto refused = sm.apply(3, encode(cmd(9, 1, kv_op::batch, "k", encode(b))));
  CHECK(refused.code() == errc::conflict);
  CHECK(*sm.read("k") == "v");
  // Conditioned on the current revision it applies, and the written key is at its index.
  b.conditions = {{"k", false, 2, {}}};
  REQUIRE(sm.apply(4, encode(cmd(9, 2, kv_op::batch, "k", encode(b)))));
  CHECK(sm.versioned("k") == kv_versioned{true, 4, "mine"});
  // A refused compare-and-set changes no revision; an applied one does.
  CHECK(sm.apply(5, encode(cmd(0, 0, kv_op::cas, "k", "x", "nope"))).code() == errc::conflict);
  CHECK(sm.versioned("k").revision == 4);
  REQUIRE(sm.apply(6, encode(cmd(0, 0, kv_op::cas, "k", "mine", "mine"))));
  CHECK(sm.versioned("k").revision == 6);
  // The versioned read's encoding round-trips; a malformed one is refused.
  auto enc = *sm.read_versioned("k");
  CHECK(*decode_kv_versioned(enc) == kv_versioned{true, 6, "mine"});
  CHECK_FALSE(decode_kv_versioned(enc.substr(0, 5)));
  CHECK_FALSE(decode_kv_versioned(encode(kv_versioned{false, 3, {}}) + "x"));
  std::string two = encode(kv_versioned{true, 1, "v"});
  two[0] = 2;
  CHECK_FALSE(decode_kv_versioned(two));
  kv_limits tight;
  tight.max_value_bytes = 1;
  CHECK_FALSE(decode_kv_versioned(encode(kv_versioned{true, 1, std::string(100, 'x')}), tight));
}

TEST_CASE("raft kv revisions: an absent key created and deleted reads at a new revision") {
  kv_limits lim;
  lim.max_tombstones = 3;
  kv_state_machine sm{lim};
  auto never = sm.versioned("k");
  CHECK(never == kv_versioned{false, 0, {}});
  REQUIRE(sm.apply(1, encode(cmd(0, 0, kv_op::put, "k", "v"))));
  REQUIRE(sm.apply(2, encode(cmd(0, 0, kv_op::del, "k"))));
  CHECK(sm.versioned("k") == kv_versioned{false, 2, {}});
  kv_batch b;
  b.conditions = {{"k", true, never.revision, {}}};
  b.writes = {{"k", false, "late"}};
  CHECK(sm.apply(3, encode(cmd(9, 1, kv_op::batch, "k", encode(b)))).code() == errc::conflict);
  CHECK(sm.read("k").code() == errc::not_found);
  // A delete of an absent key moves nothing (Redis's WATCH ignores a DEL of nothing).
  REQUIRE(sm.apply(4, encode(cmd(0, 0, kv_op::del, "k"))));
  REQUIRE(sm.apply(5, encode(cmd(0, 0, kv_op::del, "never"))));
  CHECK(sm.versioned("k").revision == 2);
  CHECK(sm.versioned("never").revision == 0);
  b.conditions = {{"k", true, 2, {}}};
  REQUIRE(sm.apply(6, encode(cmd(9, 2, kv_op::batch, "k", encode(b)))));
  CHECK(sm.versioned("k") == kv_versioned{true, 6, "late"});
  CHECK(sm.tombstones() == 0);  // a key written again has none
  // Beyond the bound the oldest tombstones are forgotten; their keys (and keys never
  // written) then read at the floor, the newest forgotten revision: never at what a WATCH
  // taken before the forgotten delete recorded.
  for (index_t i = 0; i < 5; ++i) {
    auto key = "t" + std::to_string(i);
    REQUIRE(sm.apply(10 + 2 * i, encode(cmd(0, 0, kv_op::put, key, "v"))));
    REQUIRE(sm.apply(11 + 2 * i, encode(cmd(0, 0, kv_op::del, key))));
  }
  CHECK(sm.tombstones() == 3);
  CHECK(sm.versioned("t0").revision == 13);  // t0 (11) and t1 (13) forgotten
  CHECK(sm.versioned("never").revision == 13);
  CHECK(sm.versioned("t4").revision == 19);
  // The snapshot keeps revisions, tombstones and the floor.
  kv_state_machine copy{lim};
  REQUIRE(copy.restore(sm.snapshot()));
  CHECK(copy.snapshot() == sm.snapshot());
  CHECK(copy.versioned("t0").revision == 13);
  CHECK(copy.versioned("t3") == kv_versioned{false, 17, {}});
  CHECK(copy.versioned("k") == kv_versioned{true, 6, "late"});
}

TEST_CASE("raft kv revisions: entries and snapshots from before revisions agree on every replica") {
  // Format 1 entries (written before revisions existed) in the log, as a replica replays them.
  auto legacy = [](kv_command c) {
    c.legacy = true;
    auto bytes = encode(c);
    REQUIRE(bytes[0] == 1);
    return bytes;
  };
  std::vector<std::string> log;
  log.push_back(legacy(cmd(0, 0, kv_op::put, "a", "1")));
  log.push_back(legacy(cmd(0, 0, kv_op::put, "b", "1")));
  log.push_back(legacy(cmd(0, 0, kv_op::del, "b")));
  log.push_back(legacy(cmd(0, 0, kv_op::put, "c", "1")));
  // Replica 1 replays the whole log; replica 2 restored an old snapshot taken after entry
  // 2 and replays the rest. They must agree: revisions are replicated state.
  kv_state_machine one, two;
  for (std::size_t i = 0; i < log.size(); ++i) REQUIRE(one.apply(i + 1, log[i]));
  REQUIRE(two.restore(old_snapshot(2, 2, {{"a", "1"}, {"b", "1"}})));
  for (std::size_t i = 2; i < log.size(); ++i) REQUIRE(two.apply(i + 1, log[i]));
  CHECK(one.snapshot() == two.snapshot());
  CHECK(one.versioned("a") == kv_versioned{true, 0, "1"});
  CHECK(one.versioned("c") == kv_versioned{true, 0, "1"});
  CHECK(one.versioned("b") == kv_versioned{false, 0, {}});
  // New entries give revisions; a format 1 batch still applies on bytes.
  REQUIRE(one.apply(5, encode(cmd(0, 0, kv_op::put, "a", "2"))));
  CHECK(one.versioned("a").revision == 5);
  kv_batch old;
  old.by_revision = false;
  old.conditions = {{"a", false, 0, "2"}, {"b", true, 0, {}}};
  old.writes = {{"c", true, {}}};
  auto bytes = encode(old);
  REQUIRE(bytes[0] == 1);
  auto back = decode_kv_batch(bytes);
  REQUIRE(back);
  CHECK(*back == old);
  REQUIRE(one.apply(6, legacy(cmd(0, 0, kv_op::batch, "a", bytes))));
  CHECK(one.read("c").code() == errc::not_found);
  CHECK(one.tombstones() == 0);  // a format 1 delete leaves none
  old.conditions = {{"a", false, 0, "1"}};
  CHECK(one.apply(7, legacy(cmd(0, 0, kv_op::batch, "a", encode(old)))).code() == errc::conflict);
}
