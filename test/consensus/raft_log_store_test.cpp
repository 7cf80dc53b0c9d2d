// The durable Raft log on a real directory: reopen, torn tails at every byte, flipped bytes,
// failing writes and fsyncs (the real POSIX file_ops with a fault switch), compaction,
// snapshot install, and a raft_core restarted from what the store recovered.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <utility>

#include "runtime/consensus/crc32c.hpp"
#include "runtime/consensus/raft_log_store.hpp"

using namespace warp;
using namespace warp::consensus;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("warp-raftlog-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    fs::remove_all(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
};

// The real file operations, failing on demand.
struct faulty_ops : file_ops {
  int fail_sync_in = -1;  // the n-th datasync from now fails (1 = the next one)
  bool fail_writes = false;
  int syncs = 0;
  result<void> datasync(int fd) override {
    ++syncs;
    if (fail_sync_in > 0 && --fail_sync_in == 0)
      return error{errc::storage_error, "injected fdatasync failure"};
    return file_ops::datasync(fd);
  }
  result<void> write(int fd, std::string_view bytes) override {
    if (fail_writes) return error{errc::storage_error, "injected write failure (ENOSPC)"};
    return file_ops::write(fd, bytes);
  }
};

std::vector<entry> make_entries(index_t from, index_t to, term_t term, std::string tag = "v") {
  std::vector<entry> out;
  for (index_t i = from; i <= to; ++i)
    out.push_back(entry{term, i, entry_type::normal, tag + std::to_string(i)});
  return out;
}

std::unique_ptr<raft_log_store> open_ok(const std::string& dir, log_store_options o = {},
                                        file_ops& ops = posix_file_ops()) {
  auto s = raft_log_store::open(dir, o, ops);
  INFO((s ? std::string{} : s.err().to_string()));
  REQUIRE(s);
  return std::move(*s);
}

std::vector<fs::path> segments(const std::string& dir) {
  std::vector<fs::path> out;
  for (auto& p : fs::directory_iterator(dir))
    if (p.path().extension() == ".log") out.push_back(p.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("crc32c: the standard check value") {
  CHECK(crc32c("123456789") == 0xE3069283u);
}

TEST_CASE("raft log: reopen after a clean close gives back entries and hard state") {
  temp_dir d;
  {
    auto s = open_ok(d.str());
    auto p = s->take_recovered();
    CHECK(p.entries.empty());
    CHECK(p.hard == hard_state{});
    for (index_t i = 1; i <= 100; i += 10) REQUIRE(s->append(make_entries(i, i + 9, 1)));
    REQUIRE(s->sync());
    REQUIRE(s->save_hard_state(hard_state{3, 2, 77}));
  }
  auto s = open_ok(d.str());
  auto p = s->take_recovered();
  CHECK(p.hard == hard_state{3, 2, 77});
  REQUIRE(p.entries.size() == 100);
  CHECK(p.entries == make_entries(1, 100, 1));
  CHECK(s->recovery().truncated_bytes == 0);
}

TEST_CASE("raft log: an entry at an existing index replaces it and what follows") {
  temp_dir d;
  {
    auto s = open_ok(d.str());
    REQUIRE(s->append(make_entries(1, 10, 1)));
    REQUIRE(s->append(make_entries(6, 8, 2, "w")));
    REQUIRE(s->sync());
    CHECK(s->append(make_entries(10, 10, 2)).code() == errc::invalid_argument);  // a gap
  }
  auto p = open_ok(d.str())->take_recovered();
  auto want = make_entries(1, 5, 1);
  for (auto& e : make_entries(6, 8, 2, "w")) want.push_back(e);
  CHECK(p.entries == want);
}

TEST_CASE("raft log: segments rotate and replay in order") {
  temp_dir d;
  log_store_options o;
  o.max_segment_bytes = 512;
  {
    auto s = open_ok(d.str(), o);
    for (index_t i = 1; i <= 200; i += 7) REQUIRE(s->append(make_entries(i, i + 6, 1)));
    REQUIRE(s->sync());
    CHECK(s->segment_count() > 5);
  }
  auto p = open_ok(d.str(), o)->take_recovered();
  CHECK(p.entries == make_entries(1, 203, 1));
  for (auto& f : segments(d.str())) CHECK(fs::file_size(f) <= 512);
}

TEST_CASE("raft log: a tail cut at every byte of its last record is truncated, never replayed") {
  temp_dir base;
  std::uintmax_t before_last = 0, full = 0;
  {
    auto s = open_ok(base.str());
    REQUIRE(s->append(make_entries(1, 20, 1)));
    REQUIRE(s->sync());
    before_last = fs::file_size(segments(base.str()).back());
    REQUIRE(s->append(make_entries(21, 21, 1)));
    REQUIRE(s->sync());
    full = fs::file_size(segments(base.str()).back());
  }
  REQUIRE(full > before_last);
  int cases = 0;
  for (std::uintmax_t cut = before_last; cut < full; ++cut) {
    temp_dir d;
    fs::copy(base.path, d.path);
    fs::resize_file(segments(d.str()).back(), cut);
    {
      auto s = open_ok(d.str());
      auto p = s->take_recovered();
      INFO("cut at " << cut);
      CHECK(p.entries == make_entries(1, 20, 1));
      CHECK(s->recovery().truncated_bytes == cut - before_last);
      // The log goes on from there, and the next reopen is clean.
      REQUIRE(s->append(make_entries(21, 22, 2)));
      REQUIRE(s->sync());
    }
    auto s = open_ok(d.str());
    auto p = s->take_recovered();
    CHECK(p.entries.size() == 22);
    CHECK(p.entries.back().term == 2);
    CHECK(s->recovery().truncated_bytes == 0);
    ++cases;
  }
  CHECK(cases == static_cast<int>(full - before_last));
}

TEST_CASE(
    "raft log: a flipped byte in the last record is cut, in an earlier one the open refuses") {
  temp_dir base;
  std::uintmax_t before_last = 0, full = 0;
  {
    auto s = open_ok(base.str());
    REQUIRE(s->append(make_entries(1, 20, 1)));
    REQUIRE(s->sync());
    before_last = fs::file_size(segments(base.str()).back());
    REQUIRE(s->append(make_entries(21, 21, 1)));
    REQUIRE(s->sync());
    REQUIRE(s->save_hard_state(hard_state{1, 1, 21}));
    full = fs::file_size(segments(base.str()).back());
  }
  auto flip = [](const fs::path& f, std::uintmax_t at) {
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    io.get(c);
    io.seekp(static_cast<std::streamoff>(at));
    io.put(static_cast<char>(c ^ 0x40));
  };
  for (std::uintmax_t at = before_last; at < full; ++at) {
    temp_dir d;
    fs::copy(base.path, d.path);
    flip(segments(d.str()).back(), at);
    auto s = raft_log_store::open(d.str());
    INFO("flipped byte " << at);
    REQUIRE(s);
    CHECK((*s)->take_recovered().entries == make_entries(1, 20, 1));
    CHECK((*s)->recovery().truncated_bytes == full - before_last);
  }
  // In a record that valid ones follow: corruption, not a torn write. Refused.
  for (std::uintmax_t at : {std::uintmax_t{16}, std::uintmax_t{30}, before_last - 3}) {
    temp_dir d;
    fs::copy(base.path, d.path);
    flip(segments(d.str()).back(), at);
    auto s = raft_log_store::open(d.str());
    INFO("flipped byte " << at);
    REQUIRE(!s);
    CHECK(s.code() == errc::storage_error);
  }
  {  // the hard state has its own checksum
    temp_dir d;
    fs::copy(base.path, d.path);
    flip(d.path / "hardstate", 20);
    CHECK(raft_log_store::open(d.str()).code() == errc::storage_error);
  }
}

TEST_CASE("raft log: a failing fdatasync is returned and nothing after it is reported durable") {
  temp_dir d;
  faulty_ops ops;
  {
    auto s = open_ok(d.str(), {}, ops);
    ready rd;
    rd.entries = make_entries(1, 5, 1);
    rd.hard = hard_state{1, 1, 0};
    REQUIRE(s->persist(rd));
    ready next;
    next.entries = make_entries(6, 10, 1);
    next.hard = hard_state{1, 1, 5};
    ops.fail_sync_in = 1;
    auto r = s->persist(next);
    REQUIRE(!r);
    CHECK(r.code() == errc::storage_error);
    CHECK(s->failed());
    // Once failed, it stays failed: no retry can claim what the kernel may have dropped.
    CHECK(!s->sync());
    CHECK(!s->append(make_entries(6, 6, 1)));
    CHECK(!s->save_hard_state(hard_state{2, 0, 5}));
  }
  // The hard state of the failed ready never reached the disk; reopening re-reads the truth.
  auto s = open_ok(d.str());
  auto p = s->take_recovered();
  CHECK(p.hard == hard_state{1, 1, 0});
  REQUIRE(p.entries.size() >= 5);
  CHECK(std::vector<entry>(p.entries.begin(), p.entries.begin() + 5) == make_entries(1, 5, 1));
}

TEST_CASE("raft log: group commit, one fdatasync for a ready of many entries") {
  temp_dir d;
  faulty_ops ops;  // never failing here: it only counts
  auto s = open_ok(d.str(), {}, ops);
  ready first;
  first.entries = make_entries(1, 200, 1);
  first.hard = hard_state{1, 1, 0};  // a vote: hard state file too (temp + fsync + rename)
  ops.syncs = 0;
  REQUIRE(s->persist(first));
  CHECK(ops.syncs == 2);
  ready next;
  next.entries = make_entries(201, 400, 1);
  next.hard = hard_state{1, 1, 200};  // only the commit moved: no hard state write
  ops.syncs = 0;
  REQUIRE(s->persist(next));
  CHECK(ops.syncs == 1);
  s.reset();
  auto p = open_ok(d.str())->take_recovered();
  CHECK(p.entries.size() == 400);
  CHECK(p.hard == hard_state{1, 1, 0});  // commit is relearned from the leader
}

TEST_CASE("raft log: a failing write (disk full) and a failing hard state sync are errors") {
  temp_dir d;
  faulty_ops ops;
  auto s = open_ok(d.str(), {}, ops);
  ops.fail_writes = true;
  CHECK(s->append(make_entries(1, 3, 1)).code() == errc::storage_error);
  CHECK(s->failed());
  temp_dir d2;
  faulty_ops ops2;
  auto s2 = open_ok(d2.str(), {}, ops2);
  REQUIRE(s2->append(make_entries(1, 3, 1)));
  REQUIRE(s2->sync());
  ops2.fail_sync_in = 1;  // the temp file's fsync inside the atomic replace
  CHECK(!s2->save_hard_state(hard_state{4, 2, 3}));
  s2.reset();
  CHECK(open_ok(d2.str())->take_recovered().hard == hard_state{});
}

TEST_CASE("raft log: compaction drops the segments below the snapshot and keeps the rest") {
  temp_dir d;
  log_store_options o;
  o.max_segment_bytes = 400;
  snapshot snap{120, 1, {1, 2, 3}, "state@120"};
  {
    auto s = open_ok(d.str(), o);
    REQUIRE(s->append(make_entries(1, 200, 1)));
    REQUIRE(s->sync());
    const auto before = segments(d.str()).size();
    REQUIRE(s->compact(snap));
    CHECK(segments(d.str()).size() < before);
    CHECK(s->compact(snap).code() == errc::invalid_argument);  // not twice
    REQUIRE(s->append(make_entries(201, 210, 2)));
    REQUIRE(s->sync());
  }
  auto p = open_ok(d.str(), o)->take_recovered();
  REQUIRE(p.snap);
  CHECK(*p.snap == snap);
  auto want = make_entries(121, 200, 1);
  for (auto& e : make_entries(201, 210, 2)) want.push_back(e);
  CHECK(p.entries == want);
}

TEST_CASE("raft log: an installed snapshot replaces the whole log") {
  temp_dir d;
  snapshot snap{500, 7, {1, 2}, std::string(3000, 'z')};
  {
    auto s = open_ok(d.str());
    REQUIRE(s->append(make_entries(1, 50, 1)));
    ready rd;
    rd.snap = snap;
    rd.entries = make_entries(501, 503, 7);
    rd.hard = hard_state{7, 0, 500};
    REQUIRE(s->persist(rd));
  }
  auto s = open_ok(d.str());
  auto p = s->take_recovered();
  REQUIRE(p.snap);
  CHECK(*p.snap == snap);
  CHECK(p.entries == make_entries(501, 503, 7));
  CHECK(p.hard == hard_state{7, 0, 500});
  CHECK(segments(d.str()).size() == 1);
}

TEST_CASE("raft log: a raft core restarts from what the store recovered") {
  temp_dir d;
  raft_config c;
  c.id = 1;
  c.voters = {1};
  index_t last = 0;
  {
    auto s = open_ok(d.str());
    raft_core r{c, s->take_recovered()};
    for (int i = 0; i < 40 && r.current_role() != role::leader; ++i) r.tick();
    REQUIRE(r.current_role() == role::leader);
    for (int i = 0; i < 30; ++i) {
      REQUIRE(r.propose("p" + std::to_string(i)));
      while (r.has_ready()) {
        auto rd = r.take_ready();
        REQUIRE(s->persist(rd));
        r.advance(rd);
      }
    }
    last = r.last_index();
    CHECK(r.commit_index() == last);
  }
  auto s = open_ok(d.str());
  raft_core r{c, s->take_recovered()};
  CHECK(r.last_index() == last);
  REQUIRE(r.entry_at(last));
  CHECK(r.entry_at(last)->data == "p29");
  // The commit index is volatile: re-elected, the node commits its log again and re-applies
  // it from the start (no snapshot here), in order.
  CHECK(r.commit_index() < last);
  for (int i = 0; i < 40 && r.current_role() != role::leader; ++i) r.tick();
  REQUIRE(r.current_role() == role::leader);
  std::vector<std::string> applied;
  while (r.has_ready()) {
    auto rd = r.take_ready();
    REQUIRE(s->persist(rd));
    for (auto& e : rd.committed)
      if (!e.data.empty()) applied.push_back(e.data);
    r.advance(rd);
  }
  CHECK(r.commit_index() == last + 1);
  REQUIRE(applied.size() == 30);
  CHECK(applied.front() == "p0");
  CHECK(applied.back() == "p29");
}

namespace {
// The real file operations, running `between` once just before the first segment file is
// created: the window in which, before the fix, the node's startup and the raft host's
// create_group (a leader's batch for a group whose actor was not attached yet) both opened
// the log of one group (raft_host_actor.cpp).
struct racing_ops : file_ops {
  std::function<void()> between;
  result<int> open_append(const std::string& path) override {
    if (between && path.find("seg-") != std::string::npos) std::exchange(between, nullptr)();
    return file_ops::open_append(path);
  }
};
}  // namespace

TEST_CASE("raft log: a second store on the same directory is refused and never interleaves") {
  temp_dir d;
  racing_ops ops;
  std::unique_ptr<raft_log_store> other;
  result<std::unique_ptr<raft_log_store>> second = error{errc::internal, "not opened"};
  // The second store opens (lists no segment, creates seg-1, writes its header) while the
  // first is between listing the empty directory and creating seg-1 itself.
  ops.between = [&] { second = raft_log_store::open(d.str()); };
  {
    auto s = open_ok(d.str(), {}, ops);
    if (second) {
      // Both stores write: the leader's entries reach both actors.
      other = std::move(*second);
      REQUIRE(other->append(make_entries(1, 3, 1, "b")));
      REQUIRE(other->sync());
    } else {
      CHECK(second.code() == errc::storage_error);
      CHECK(second.err().message().find("in use") != std::string::npos);
    }
    REQUIRE(s->append(make_entries(1, 5, 1)));
    REQUIRE(s->sync());
  }
  other.reset();
  // kill -9 of the node, then a restart: the log must open and hold what was synced.
  auto r = raft_log_store::open(d.str());
  INFO((r ? std::string{} : r.err().to_string()));
  REQUIRE(r);
  CHECK((*r)->take_recovered().entries == make_entries(1, 5, 1));
  // The lock is the store's for its lifetime only: this one reopens after the first closed,
  // and a third open while it lives is refused.
  CHECK(raft_log_store::open(d.str()).code() == errc::storage_error);
}
