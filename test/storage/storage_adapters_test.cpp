// Adapter-specific behaviour: durability, outages, specs and their errors.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "test/support/postgres.hpp"
#include "test/support/process.hpp"
#include "warp/storage.hpp"

namespace {

warp::record rec(std::string value) {
  warp::record r;
  r.value = std::move(value);
  r.ver = {12345, 9};
  return r;
}

std::string value_of(warp::storage& s, std::string_view key) {
  auto r = s.fetch(key);
  INFO((r ? "" : r.err().to_string()));
  REQUIRE(r);
  return r->has_value() ? (*r)->value : "<absent>";
}

std::string pragma(const std::string& path, const std::string& sql) {
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

}  // namespace

TEST_CASE("sqlite: a value survives close and reopen", "[storage][sqlite]") {
  warp::test::temp_dir dir{"warp-sqlite"};
  auto data_dir = dir.str() + "/nested/data";  // `sqlite` creates the data directory
  {
    auto s = warp::open_storage("sqlite", data_dir);
    INFO((s ? "" : s.err().to_string()));
    REQUIRE(s);
    CHECK((*s)->describe() == "sqlite:" + data_dir + "/warp.db");
    REQUIRE((*s)->store("durable", rec("yes")));
    REQUIRE((*s)->store("gone", rec("no")));
    REQUIRE((*s)->remove("gone"));
    REQUIRE((*s)->flush());
  }
  CHECK(std::filesystem::exists(data_dir + "/warp.db"));
  {
    auto s = warp::open_storage("sqlite:" + data_dir + "/warp.db", "");
    REQUIRE(s);
    CHECK(value_of(**s, "durable") == "yes");
    CHECK(value_of(**s, "gone") == "<absent>");
    auto r = (*s)->fetch("durable");
    CHECK((*r)->ver == warp::version{12345, 9});
  }
}

TEST_CASE("sqlite: a value stored without flush survives (WAL replay)", "[storage][sqlite]") {
  warp::test::temp_dir dir{"warp-sqlite"};
  auto path = dir.str() + "/w.db";
  {
    auto s = warp::make_sqlite_storage(path);
    REQUIRE(s);
    REQUIRE((*s)->store("k", rec("v")));
  }  // no flush()
  auto s = warp::make_sqlite_storage(path);
  REQUIRE(s);
  CHECK(value_of(**s, "k") == "v");
}

TEST_CASE("sqlite: WAL mode and a versioned schema", "[storage][sqlite]") {
  warp::test::temp_dir dir{"warp-sqlite"};
  auto path = dir.str() + "/s.db";
  {
    auto s = warp::make_sqlite_storage(path);
    REQUIRE(s);
    REQUIRE((*s)->store("k", rec("v")));
  }
  CHECK(pragma(path, "PRAGMA journal_mode") == "wal");
  CHECK(pragma(path, "PRAGMA user_version") == "2");
  CHECK(pragma(path, "SELECT typeof(key) || ',' || typeof(value) FROM warp_kv") == "blob,blob");
}

TEST_CASE("sqlite: two handles on one file see each other's writes", "[storage][sqlite]") {
  warp::test::temp_dir dir{"warp-sqlite"};
  auto a = warp::make_sqlite_storage(dir.str() + "/x.db");
  auto b = warp::make_sqlite_storage(dir.str() + "/x.db");
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE((*a)->store("k", rec("from-a")));
  CHECK(value_of(**b, "k") == "from-a");
}

TEST_CASE("sqlite: a database from a newer schema is refused", "[storage][sqlite]") {
  warp::test::temp_dir dir{"warp-sqlite"};
  auto path = dir.str() + "/future.db";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto s = warp::make_sqlite_storage(path);
  REQUIRE_FALSE(s);
  CHECK(s.err().message().find("newer") != std::string::npos);
  CHECK(s.err().message().find(path) != std::string::npos);
}

TEST_CASE("storage specs: bad specs and paths give clear errors", "[storage][errors]") {
  SECTION("sqlite path in a missing directory") {
    auto s = warp::open_storage("sqlite:/nonexistent-dir/x.db", "");
    REQUIRE_FALSE(s);
    CHECK(s.code() == warp::errc::storage_unavailable);
    CHECK(s.err().message().find("cannot open SQLite database '/nonexistent-dir/x.db'") !=
          std::string::npos);
  }
  SECTION("a file that is not a database") {
    warp::test::temp_dir dir;
    auto path = dir.str() + "/junk.db";
    std::ofstream{path} << std::string(8192, 'x');
    auto s = warp::open_storage("sqlite:" + path, "");
    REQUIRE_FALSE(s);
    CHECK(s.err().message().find(path) != std::string::npos);
  }
  SECTION("data directory that cannot be created") {
    warp::test::temp_dir dir;
    std::ofstream{dir.str() + "/file"} << "x";
    auto s = warp::open_storage("sqlite", dir.str() + "/file/sub");
    REQUIRE_FALSE(s);
    CHECK(s.code() == warp::errc::storage_unavailable);
    CHECK(s.err().message().find(dir.str() + "/file/sub") != std::string::npos);
  }
  SECTION("unknown scheme") {
    auto s = warp::open_storage("bogus:x", "");
    REQUIRE_FALSE(s);
    CHECK(s.code() == warp::errc::invalid_argument);
    CHECK(s.err().message().find("'bogus:x'") != std::string::npos);
  }
  SECTION("empty paths") {
    CHECK(warp::open_storage("sqlite:", "").code() == warp::errc::invalid_argument);
    CHECK(warp::open_storage("postgres:", "").code() == warp::errc::invalid_argument);
    CHECK(warp::open_storage("", "").code() == warp::errc::invalid_argument);
  }
  SECTION("PostgreSQL nobody listens on") {
    auto start = std::chrono::steady_clock::now();
    auto s = warp::open_storage("postgres://127.0.0.1:1/nope?connect_timeout=2", "");
    REQUIRE_FALSE(s);
    CHECK(s.code() == warp::errc::storage_unavailable);
    CHECK(s.err().message().find("127.0.0.1:1") != std::string::npos);
    CHECK(s.err().message().find('\n') == std::string::npos);  // one line, for logs
    // Bounded by connect_timeout, not by the OS's TCP timeout (generous: no timing test).
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
  }
}

TEST_CASE("postgres: every spec form opens and describe() hides the password",
          "[storage][postgres]") {
  warp::test::postgres_server pg;
  auto port = std::to_string(pg.port());
  for (auto spec : {pg.uri(), "postgres:" + pg.uri(), "postgres:" + pg.conninfo(),
                    "postgres://postgres:s3cret@127.0.0.1:" + port + "/warp_test",
                    "postgres:host=127.0.0.1 port=" + port +
                        " user=postgres password='s3 cret' dbname=warp_test"}) {
    INFO(spec);
    auto s = warp::open_storage(spec, "");
    INFO((s ? "" : s.err().to_string()));
    REQUIRE(s);
    CHECK((*s)->describe().rfind("postgres:", 0) == 0);
    CHECK((*s)->describe().find("s3") == std::string::npos);
    REQUIRE((*s)->store("spec", rec(spec)));
    CHECK(value_of(**s, "spec") == spec);
  }
}

TEST_CASE("postgres: a server outage is an error not a crash and calls recover after it",
          "[storage][postgres]") {
  warp::test::postgres_server pg;
  auto opened = warp::open_storage(pg.uri(), "");
  INFO((opened ? "" : opened.err().to_string()));
  REQUIRE(opened);
  auto& s = **opened;
  REQUIRE(s.store("k", rec("before")));
  // Fill the pool with several connections so all of them go stale in the outage.
  {
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
      ts.emplace_back([&] {
        for (int j = 0; j < 50; ++j) (void)s.fetch("k");
      });
    for (auto& t : ts) t.join();
  }

  pg.stop();
  auto r = s.fetch("k");
  REQUIRE_FALSE(r);
  CHECK(r.code() == warp::errc::storage_unavailable);
  CHECK(s.store("k", rec("during")).code() == warp::errc::storage_unavailable);
  CHECK(s.remove("k").code() == warp::errc::storage_unavailable);
  CHECK(s.scan("", 10).code() == warp::errc::storage_unavailable);
  CHECK(s.count().code() == warp::errc::storage_unavailable);
  std::vector<std::string> keys{"k"};
  CHECK(s.fetch_batch(keys).code() == warp::errc::storage_unavailable);

  pg.start();
  // The value written before the outage survived the server restart.
  CHECK(value_of(s, "k") == "before");
  REQUIRE(s.store("k", rec("after")));
  CHECK(value_of(s, "k") == "after");
}

TEST_CASE("postgres: stale pooled connections are replaced after a restart",
          "[storage][postgres]") {
  warp::test::postgres_server pg;
  auto opened = warp::open_storage(pg.uri(), "");
  REQUIRE(opened);
  auto& s = **opened;
  REQUIRE(s.store("k", rec("v")));
  pg.stop();
  pg.start();
  // No call happened during the outage: the first call meets a broken pooled connection
  // and must succeed through the retry on a fresh one.
  CHECK(value_of(s, "k") == "v");
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int j = 0; j < 100; ++j)
        if (!s.fetch("k")) ++failures;
    });
  for (auto& t : ts) t.join();
  CHECK(failures == 0);
}

TEST_CASE("postgres: the fixture serves two databases and reports its URI",
          "[storage][postgres][fixture]") {
  warp::test::postgres_server pg{"other_db"};
  CHECK(pg.running());
  CHECK(pg.uri().find(":" + std::to_string(pg.port()) + "/other_db") != std::string::npos);
  auto s = warp::open_storage(pg.uri(), "");
  REQUIRE(s);
  pg.stop();
  CHECK_FALSE(pg.running());
}

TEST_CASE("memory: random stores and removes agree with a reference map", "[storage][memory]") {
  // The memory adapter's open-addressing index moves slots back on removal: check it
  // against std::map over many grows and removes, with a small key space so keys collide,
  // come back after removal and probe through each other's runs.
  auto s = warp::make_memory_storage();
  std::map<std::string, std::string> model;
  std::uint64_t x = 88172645463325252ULL;  // xorshift: deterministic
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int round = 0; round < 60000; ++round) {
    const std::size_t space = round < 30000 ? 5000 : 300;
    auto key = "k" + std::to_string(next() % space);
    if (next() % 3 == 0) {
      REQUIRE(s->remove(key));
      model.erase(key);
    } else {
      auto value = std::string(next() % 40, 'v') + std::to_string(round);
      REQUIRE(s->store(key, rec(value)));
      model[key] = value;
    }
    if (round % 5000 == 4999) {
      auto n = s->count();
      REQUIRE(n);
      REQUIRE(*n == model.size());
      for (std::size_t k = 0; k < space; ++k) {
        auto key_k = "k" + std::to_string(k);
        auto it = model.find(key_k);
        REQUIRE(value_of(*s, key_k) == (it == model.end() ? "<absent>" : it->second));
      }
      std::vector<std::string> scanned;
      std::string after;
      for (;;) {
        auto page = s->scan(after, 97);
        REQUIRE(page);
        scanned.insert(scanned.end(), page->begin(), page->end());
        if (page->size() < 97) break;
        after = page->back();
      }
      std::vector<std::string> expected;
      for (auto& [k, v] : model) expected.push_back(k);
      REQUIRE(scanned == expected);
    }
  }
  REQUIRE(s->clear());
  REQUIRE(*s->count() == 0);
  REQUIRE(s->store("again", rec("x")));
  REQUIRE(value_of(*s, "again") == "x");
}
