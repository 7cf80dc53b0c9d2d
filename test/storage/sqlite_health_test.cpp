// SQLite on disk and in trouble: the space 1 KB values take (within 1.5x of the data), the
// migration of files written by the old WITHOUT ROWID layout, a file that is not a database
// (refused), a damaged one (opens, says so, check() fails), and per-operation error counts
// for SQLite and PostgreSQL alike.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test/support/postgres.hpp"
#include "test/support/process.hpp"
#include "warp/storage.hpp"
#include "warp/storage_fence.hpp"

namespace fs = std::filesystem;

namespace {

warp::record rec(std::string value) {
  warp::record r;
  r.value = std::move(value);
  r.ver = {777, 3};
  return r;
}

std::string key_of(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "user:%010d", i);
  return buf;
}

std::string value_of(int i, std::size_t size) {
  std::string v(size, 'v');
  // Not all the same bytes, so nothing could compress it away.
  for (std::size_t j = 0; j < size; j += 7) v[j] = static_cast<char>('a' + (i + j) % 26);
  return v;
}

std::uintmax_t on_disk(const std::string& path) {
  std::uintmax_t total = 0;
  for (auto suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    auto n = fs::file_size(path + suffix, ec);
    if (!ec) total += n;
  }
  return total;
}

std::string query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  std::string out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

void exec(sqlite3* db, const std::string& sql) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  INFO(sql << ": " << (msg ? msg : ""));
  sqlite3_free(msg);
  REQUIRE(rc == SQLITE_OK);
}

// A file as the schema-1 code wrote it: WITHOUT ROWID, 4 KiB pages, user_version 1.
void write_v1_file(const std::string& path, int rows, std::size_t value_size) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  exec(db, "PRAGMA journal_mode=WAL");
  exec(db,
       "CREATE TABLE warp_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER NOT "
       "NULL, hlc INTEGER NOT NULL, node INTEGER NOT NULL) WITHOUT ROWID");
  exec(db, "PRAGMA user_version = 1");
  exec(db, "BEGIN");
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO warp_kv VALUES (?1, ?2, 0, 777, 3)", -1, &st,
                             nullptr) == SQLITE_OK);
  for (int i = 0; i < rows; ++i) {
    auto k = key_of(i);
    auto v = value_of(i, value_size);
    sqlite3_bind_blob(st, 1, k.data(), static_cast<int>(k.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  exec(db, "COMMIT");
  exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_close(db);
}

}  // namespace

TEST_CASE("sqlite: 200k x 1 KB values take at most 1.5x their size on disk",
          "[storage][sqlite][size]") {
  warp::test::temp_dir dir{"warp-sqlite-size"};
  auto path = dir.str() + "/size.db";
  constexpr int rows = 200000;
  constexpr std::size_t value_size = 1024;
  std::uintmax_t data = 0;
  auto t0 = std::chrono::steady_clock::now();
  {
    auto s = warp::make_sqlite_storage(path);
    REQUIRE(s);
    // In transactions of 1000 rows through the fenced write (the Raft write-through's path:
    // the same upsert as store()): 200k one-row transactions took 36 s alone and passed the
    // 180 s limit once under CI load, and how rows are grouped into transactions changes
    // neither the rows' layout nor the WAL's bound (checkpoints run after any commit).
    auto* fenced = warp::fenced_writes_of(**s);
    REQUIRE(fenced);
    std::vector<warp::fenced_change> batch;
    for (int i = 0; i < rows; ++i) {
      auto& c = batch.emplace_back();
      c.key = key_of(i);
      c.rec = rec(value_of(i, value_size));
      data += c.key.size() + value_size;
      if (batch.size() == 1000 || i + 1 == rows) {
        REQUIRE(fenced->write_fenced("size-test", 1, batch));
        batch.clear();
      }
    }
    // Measured while open too: the WAL must not hold a second copy of everything.
    auto open_size = on_disk(path);
    INFO("open: " << open_size << " bytes on disk for " << data << " bytes of data");
    CHECK(static_cast<double>(open_size) <= 1.5 * static_cast<double>(data));
    REQUIRE((*s)->flush());
    CHECK(value_of(17, value_size) == (*(*s)->fetch(key_of(17)))->value);
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto size = on_disk(path);
  WARN("sqlite 200k x 1 KB: " << size << " bytes on disk for " << data << " bytes of data ("
                              << static_cast<double>(size) / static_cast<double>(data) << "x), "
                              << secs << " s to write");
  CHECK(static_cast<double>(size) <= 1.5 * static_cast<double>(data));
}

TEST_CASE("sqlite: a schema-1 file is migrated in place, keeps its rows and shrinks",
          "[storage][sqlite][migration]") {
  warp::test::temp_dir dir{"warp-sqlite-migrate"};
  auto path = dir.str() + "/old.db";
  constexpr int rows = 5000;
  write_v1_file(path, rows, 1024);
  auto before = on_disk(path);
  {
    auto s = warp::make_sqlite_storage(path);
    REQUIRE(s);
    auto n = (*s)->count();
    REQUIRE(n);
    CHECK(*n == rows);
    for (int i : {0, 1, 2500, rows - 1}) {
      auto r = (*s)->fetch(key_of(i));
      REQUIRE(r);
      REQUIRE(r->has_value());
      CHECK((*r)->value == value_of(i, 1024));
      CHECK((*r)->ver.hlc == 777);
    }
    auto keys = (*s)->scan("", 3);
    REQUIRE(keys);
    CHECK(*keys == std::vector<std::string>{key_of(0), key_of(1), key_of(2)});
    REQUIRE((*s)->store("new", rec("x")));
    REQUIRE((*s)->flush());
  }
  CHECK(query(path, "PRAGMA user_version") == "2");
  CHECK(query(path, "PRAGMA journal_mode") == "wal");
  CHECK(query(path, "PRAGMA page_size") == "8192");
  CHECK(query(path, "SELECT count(*) FROM warp_kv") == std::to_string(rows + 1));
  auto after = on_disk(path);
  INFO("v1 file " << before << " bytes, migrated " << after);
  CHECK(after * 2 < before);
  // Opening again does not migrate again.
  auto again = warp::make_sqlite_storage(path);
  REQUIRE(again);
  CHECK(*(*again)->count() == rows + 1);
}

TEST_CASE("sqlite: a file that is not a database is refused with a clear error",
          "[storage][sqlite][errors]") {
  warp::test::temp_dir dir{"warp-sqlite-notdb"};
  auto path = dir.str() + "/junk.db";
  std::ofstream{path} << std::string(8192, 'x');
  auto s = warp::open_storage("sqlite:" + path, dir.str());
  REQUIRE_FALSE(s);
  INFO(s.err().message());
  CHECK(s.err().message().find("is not a SQLite database") != std::string::npos);
  CHECK(s.err().message().find(path) != std::string::npos);
  // Nothing was written to it.
  CHECK(fs::file_size(path) == 8192);
}

TEST_CASE("sqlite: a damaged file opens, check() reports it, failed calls are counted",
          "[storage][sqlite][errors]") {
  warp::test::temp_dir dir{"warp-sqlite-damaged"};
  auto path = dir.str() + "/damaged.db";
  {
    auto s = warp::make_sqlite_storage(path);
    REQUIRE(s);
    for (int i = 0; i < 3000; ++i) REQUIRE((*s)->store(key_of(i), rec(value_of(i, 1024))));
    REQUIRE((*s)->flush());
  }
  {
    // Scribble over pages in the middle of the file; page 1 (the header) stays intact.
    auto size = fs::file_size(path);
    std::fstream f{path, std::ios::in | std::ios::out | std::ios::binary};
    for (std::uintmax_t off = size / 3; off < size / 3 + 64 * 1024; off += 8192) {
      f.seekp(static_cast<std::streamoff>(off));
      std::string junk(8192, '\xA5');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
  }
  auto s = warp::open_storage("sqlite:" + path, dir.str());
  REQUIRE(s);
  auto& st = **s;
  auto c = st.check();
  REQUIRE_FALSE(c);
  CHECK(c.err().message().find("integrity check") != std::string::npos);
  // Reading everything runs into the damage; each failed call is counted under its op.
  int failed = 0;
  for (int i = 0; i < 3000; ++i)
    if (!st.fetch(key_of(i))) ++failed;
  CHECK(failed > 0);
  auto counts = st.error_counts();
  REQUIRE(counts);
  CHECK((*counts)[static_cast<std::size_t>(warp::storage_op::fetch)] ==
        static_cast<std::uint64_t>(failed));
  CHECK((*counts)[static_cast<std::size_t>(warp::storage_op::check)] == 1);
  CHECK((*counts)[static_cast<std::size_t>(warp::storage_op::store)] == 0);
}

TEST_CASE("a sound sqlite file and memory storage pass check() and count nothing",
          "[storage][errors]") {
  warp::test::temp_dir dir{"warp-check"};
  for (std::string spec : {std::string{"memory"}, "sqlite:" + dir.str() + "/ok.db"}) {
    INFO(spec);
    auto s = warp::open_storage(spec, dir.str());
    REQUIRE(s);
    REQUIRE((*s)->store("k", rec("v")));
    CHECK((*s)->check());
    auto counts = (*s)->error_counts();
    REQUIRE(counts);
    for (auto n : *counts) CHECK(n == 0);
  }
}

TEST_CASE("postgres: errors are counted per operation and check() fails while it is down",
          "[storage][postgres][errors]") {
  warp::test::postgres_server pg;
  auto s = warp::open_storage(pg.uri(), "");
  REQUIRE(s);
  auto& st = **s;
  REQUIRE(st.store("k", rec("v")));
  CHECK(st.check());
  pg.stop();
  CHECK_FALSE(st.check());
  CHECK_FALSE(st.fetch("k"));
  CHECK_FALSE(st.store("k", rec("w")));
  auto counts = st.error_counts();
  REQUIRE(counts);
  CHECK((*counts)[static_cast<std::size_t>(warp::storage_op::check)] >= 1);
  CHECK((*counts)[static_cast<std::size_t>(warp::storage_op::fetch)] >= 1);
  CHECK((*counts)[static_cast<std::size_t>(warp::storage_op::store)] >= 1);
  pg.start();
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    back = st.check().has_value();
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  CHECK(back);
}
