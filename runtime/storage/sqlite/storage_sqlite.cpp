// The SQLite adapter: Warp's embedded default, one database file in the data directory.
//
// Durability: WAL journal with synchronous=NORMAL. A commit is in the WAL (in the OS page
// cache) before store() returns, so it survives a crash or kill -9 of the process; only a
// power loss / kernel crash can drop the last commits since the WAL was last synced.
// flush() (called on shutdown) runs a TRUNCATE checkpoint, which syncs everything into the
// main file. FULL would fsync on every commit and make write-through latency disk-bound.
//
// Concurrency: one connection guarded by a mutex. SQLite serialises writers anyway, and
// every call here is a single short statement, so a pool buys little; busy_timeout covers
// another process (e.g. a second warpd by mistake) holding the write lock.
#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <cstdio>
#include <random>

#include <spdlog/spdlog.h>

#include "warp/clock.hpp"
#include "warp/storage.hpp"
#include "warp/storage_fence.hpp"

namespace warp {

namespace {

/// Schema versions: user_version 0 = fresh file, 1 = warp_kv as a WITHOUT ROWID table,
/// 2 = warp_kv as a rowid table with a separate key index. A later version adds a migration
/// step in migrate() and bumps this.
///
/// Why v2: a WITHOUT ROWID table keeps whole rows in an index b-tree, whose cells may hold
/// only about a quarter of a page before the rest spills to overflow pages. A 1 KB value on
/// 4 KiB pages took an overflow page of its own: 200k x 1 KB used 932 MB. A rowid table keeps
/// rows up to nearly a page inline, and the key index holds only keys (docs/storage.md).
constexpr int schema_version = 2;

constexpr const char* schema_v1 =
    "CREATE TABLE IF NOT EXISTS warp_kv ("
    " key BLOB PRIMARY KEY,"
    " value BLOB NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " hlc INTEGER NOT NULL,"
    " node INTEGER NOT NULL"
    ") WITHOUT ROWID";

constexpr const char* schema_v2 =
    "CREATE TABLE warp_kv2 ("
    " id INTEGER PRIMARY KEY,"
    " key BLOB NOT NULL UNIQUE,"
    " value BLOB NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " hlc INTEGER NOT NULL,"
    " node INTEGER NOT NULL"
    ")";

/// Page size of new files (and of files migrated from v1): 8 KiB pages hold seven 1 KB rows
/// where 4 KiB pages hold three (1.14x instead of 1.33x the data).
constexpr int page_size = 8192;
/// The WAL is truncated back to this after a checkpoint, so one burst of writes does not
/// leave a file as large as the burst behind.
constexpr const char* journal_size_limit = "PRAGMA journal_size_limit = 67108864";

/// Busy/locked/cannot-open are conditions a retry may fix; anything else is a real error.
errc classify(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
      return errc::storage_unavailable;
    default:
      return errc::storage_error;
  }
}

/// Frees a statement handle; statements are reused for the connection's lifetime.
struct stmt_deleter {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_deleter>;

struct db_deleter {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using db_ptr = std::unique_ptr<sqlite3, db_deleter>;

/// Resets a reused statement when the call leaves scope, whatever path it takes, so no
/// statement stays active (an active read statement would pin the WAL).
class stmt_use {
 public:
  explicit stmt_use(sqlite3_stmt* s) : s_(s) {}
  ~stmt_use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  stmt_use(const stmt_use&) = delete;
  stmt_use& operator=(const stmt_use&) = delete;
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

int bind_blob(sqlite3_stmt* s, int idx, std::string_view bytes) {
  // A null pointer would bind SQL NULL (and violate NOT NULL for an empty value): give
  // SQLite a valid pointer even for zero bytes. SQLITE_STATIC: the bytes outlive the step.
  const char* data = bytes.data() ? bytes.data() : "";
  return sqlite3_bind_blob64(s, idx, data, bytes.size(), SQLITE_STATIC);
}

std::string column_blob(sqlite3_stmt* s, int col) {
  auto* data = static_cast<const char*>(sqlite3_column_blob(s, col));
  auto size = sqlite3_column_bytes(s, col);
  return data ? std::string{data, static_cast<std::size_t>(size)} : std::string{};
}

class sqlite_storage final : public storage, public fenced_writes {
 public:
  static result<std::unique_ptr<storage>> open(std::string path) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_ptr db{raw};  // owns the handle even when open failed
    if (rc != SQLITE_OK) {
      std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
      // Opening fails for a path we cannot reach: the operator must fix the spec.
      return error{errc::storage_unavailable, "cannot open SQLite database '" + path + "': " + msg};
    }
    auto self = std::unique_ptr<sqlite_storage>{new sqlite_storage(std::move(path), std::move(db))};
    if (auto st = self->setup(); !st) {
      if (st.err().message().find("file is not a database") != std::string::npos)
        return error{errc::storage_error,
                     "'" + self->path_ +
                         "' is not a SQLite database (wrong file, or its header is damaged): "
                         "refusing to start on it; move it away or point --storage elsewhere"};
      return error{st.code(), "cannot open SQLite database '" + self->path_ + "': " + st.err().message()};
    }
    return std::unique_ptr<storage>{std::move(self)};
  }

  ~sqlite_storage() override {
    // Statements first: sqlite3_close_v2 would otherwise keep the connection as a zombie.
    for (auto* s : {&fetch_, &upsert_, &delete_, &scan_, &count_, &clear_, &begin_, &commit_,
                    &rollback_, &fence_get_, &fence_set_})
      s->reset();
    probe_.reset();
  }

  result<std::optional<record>> fetch(std::string_view key) override {
    std::lock_guard guard{mtx_};
    return fetch_locked(key, now_ms());
  }

  result<std::vector<std::optional<record>>> fetch_batch(
      std::span<const std::string> keys) override {
    // One read transaction around the prepared loop: a consistent snapshot and one
    // lock/WAL-read-mark acquisition instead of one per key.
    std::vector<std::optional<record>> out;
    out.reserve(keys.size());
    auto now = now_ms();
    std::lock_guard guard{mtx_};
    if (auto st = exec_locked(begin_.get()); !st) return st.err();
    for (auto& key : keys) {
      auto rec = fetch_locked(key, now);
      if (!rec) {
        exec_locked(rollback_.get());
        return rec.err();
      }
      out.push_back(std::move(*rec));
    }
    if (auto st = exec_locked(commit_.get()); !st) {
      exec_locked(rollback_.get());
      return st.err();
    }
    return out;
  }

  result<void> store(std::string_view key, const record& rec) override {
    std::lock_guard guard{mtx_};
    stmt_use use{upsert_.get()};
    auto* s = use.get();
    int rc = bind_blob(s, 1, key);
    if (rc == SQLITE_OK) rc = bind_blob(s, 2, rec.value);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, rec.expires_at_ms);
    // hlc is a uint64 bit pattern: store it as the int64 with the same bits.
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(rec.ver.hlc));
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, rec.ver.node);
    if (rc != SQLITE_OK) return err(rc, "store");
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) return err(rc, "store");
    return {};
  }

  result<void> write_fenced(std::string_view fence, std::uint64_t token,
                            std::span<const fenced_change> changes) override {
    std::lock_guard guard{mtx_};
    if (!fence_ready_) {
      if (auto st = exec_sql("CREATE TABLE IF NOT EXISTS warp_fence (name TEXT PRIMARY KEY, "
                             "token INTEGER NOT NULL)");
          !st)
        return st;
      for (auto [stmt, sql] : std::initializer_list<std::pair<stmt_ptr*, const char*>>{
               {&fence_get_, "SELECT token FROM warp_fence WHERE name = ?1"},
               {&fence_set_,
                "INSERT INTO warp_fence (name, token) VALUES (?1, ?2) ON CONFLICT (name) DO "
                "UPDATE SET token = excluded.token"},
           })
        if (auto st = prepare(*stmt, sql); !st) return st;
      fence_ready_ = true;
    }
    // IMMEDIATE takes the write lock first: another process's fenced write cannot read the
    // same token between our check and our commit.
    if (auto st = exec_sql("BEGIN IMMEDIATE"); !st) return st;
    auto st = fenced_locked(fence, token, changes);
    if (st) st = exec_sql("COMMIT");
    if (!st) exec_sql("ROLLBACK");
    return st;
  }

  result<void> remove(std::string_view key) override {
    std::lock_guard guard{mtx_};
    stmt_use use{delete_.get()};
    int rc = bind_blob(use.get(), 1, key);
    if (rc == SQLITE_OK) rc = sqlite3_step(use.get());
    if (rc != SQLITE_DONE) return err(rc, "remove");
    return {};
  }

  result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    std::vector<std::string> out;
    if (count == 0) return out;
    auto now = now_ms();
    std::lock_guard guard{mtx_};
    stmt_use use{scan_.get()};
    auto* s = use.get();
    int rc = bind_blob(s, 1, after);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, now);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_int64(s, 3,
                              static_cast<sqlite3_int64>(std::min<std::size_t>(
                                  count, static_cast<std::size_t>(INT64_MAX))));
    if (rc != SQLITE_OK) return err(rc, "scan");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(column_blob(s, 0));
    if (rc != SQLITE_DONE) return err(rc, "scan");
    return out;
  }

  result<std::size_t> count() override {
    auto now = now_ms();
    std::lock_guard guard{mtx_};
    stmt_use use{count_.get()};
    int rc = sqlite3_bind_int64(use.get(), 1, now);
    if (rc == SQLITE_OK) rc = sqlite3_step(use.get());
    if (rc != SQLITE_ROW) return err(rc, "count");
    return static_cast<std::size_t>(sqlite3_column_int64(use.get(), 0));
  }

  result<void> clear() override {
    std::lock_guard guard{mtx_};
    return exec_locked(clear_.get());
  }

  result<void> flush() override {
    std::lock_guard guard{mtx_};
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    // BUSY means a reader in another connection kept part of the WAL; everything
    // committed is still durable in the WAL itself, so that is not a failure.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) return err(rc, "flush");
    // Hand the pages of deleted rows back to the file system (auto_vacuum=INCREMENTAL).
    exec_sql("PRAGMA incremental_vacuum");
    return {};
  }

  std::string describe() const override { return "sqlite:" + path_; }

  // The first node to ask writes a random id; every later one (any process, any path that
  // reaches the same file) reads the same. warp_meta is outside warp_kv, so clear()
  // (FLUSHALL) keeps it.
  result<std::string> identity() override {
    std::lock_guard guard{mtx_};
    if (!identity_.empty()) return identity_;
    if (auto st = exec_sql("CREATE TABLE IF NOT EXISTS warp_meta (name TEXT PRIMARY KEY, "
                           "value TEXT NOT NULL)");
        !st)
      return st.err();
    std::random_device rd;
    char token[33];
    std::snprintf(token, sizeof token, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
    auto insert = std::string{"INSERT OR IGNORE INTO warp_meta (name, value) VALUES "
                              "('storage_id', '"} +
                  token + "')";
    if (auto st = exec_sql(insert.c_str()); !st) return st.err();
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), "SELECT value FROM warp_meta WHERE name = 'storage_id'",
                                -1, &raw, nullptr);
    if (rc != SQLITE_OK) return err(rc, "identity");
    stmt_ptr s{raw};
    rc = sqlite3_step(s.get());
    if (rc != SQLITE_ROW) return err(rc, "identity");
    auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
    identity_ = text ? text : "";
    return identity_;
  }

  result<void> check() override {
    std::lock_guard guard{mtx_};
    if (!damaged_.empty())
      return error{errc::storage_error, "SQLite '" + path_ +
                                            "' failed its integrity check at "
                                            "startup: " +
                                            damaged_};
    stmt_use use{probe_.get()};
    int rc = sqlite3_step(use.get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "check");
    return {};
  }

 private:
  sqlite_storage(std::string path, db_ptr db) : path_(std::move(path)), db_(std::move(db)) {}

  error err(int rc, std::string_view op) const {
    return error{classify(rc), "SQLite " + std::string{op} + " on '" + path_ +
                                   "' failed: " + sqlite3_errmsg(db_.get())};
  }

  result<void> exec_sql(const char* sql) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &msg);
    if (rc == SQLITE_OK) return {};
    std::string text = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    return error{classify(rc), text};
  }

  result<void> prepare(stmt_ptr& out, const char* sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    out.reset(s);
    if (rc != SQLITE_OK) return error{classify(rc), sqlite3_errmsg(db_.get())};
    return {};
  }

  /// Pragmas, schema creation/migration and statement preparation.
  result<void> setup() {
    // Set busy_timeout first: the pragmas below may already wait for another process.
    sqlite3_busy_timeout(db_.get(), 5000);
    // Reading the header tells a non-database apart before anything writes to the file.
    if (auto st = exec_sql("SELECT count(*) FROM sqlite_schema"); !st) return st;
    // Both only take effect on a file without tables yet (a new one): set them before WAL
    // mode, which writes the header.
    exec_sql(("PRAGMA page_size = " + std::to_string(page_size)).c_str());
    // Deleted rows' pages go back to the file system on flush() (incremental_vacuum)
    // instead of staying in the file forever.
    exec_sql("PRAGMA auto_vacuum = INCREMENTAL");
    // journal_mode returns the mode it ended up in; an unwritable path fails right here.
    if (auto st = exec_sql("PRAGMA journal_mode=WAL"); !st) return st;
    if (auto st = exec_sql("PRAGMA synchronous=NORMAL"); !st) return st;
    if (auto st = exec_sql(journal_size_limit); !st) return st;
    quick_check();
    if (auto st = migrate(); !st) return st;
    for (auto [stmt, sql] : std::initializer_list<std::pair<stmt_ptr*, const char*>>{
             {&fetch_,
              "SELECT value, expires_at, hlc, node FROM warp_kv WHERE key = ?1"
              " AND (expires_at = 0 OR expires_at > ?2)"},
             {&upsert_,
              "INSERT INTO warp_kv (key, value, expires_at, hlc, node) VALUES (?1, ?2, ?3, ?4, ?5)"
              " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
              " expires_at = excluded.expires_at, hlc = excluded.hlc, node = excluded.node"},
             {&delete_, "DELETE FROM warp_kv WHERE key = ?1"},
             {&scan_,
              "SELECT key FROM warp_kv WHERE key > ?1 AND (expires_at = 0 OR expires_at > ?2)"
              " ORDER BY key LIMIT ?3"},
             {&count_, "SELECT count(*) FROM warp_kv WHERE expires_at = 0 OR expires_at > ?1"},
             {&clear_, "DELETE FROM warp_kv"},
             {&begin_, "BEGIN"},
             {&commit_, "COMMIT"},
             {&rollback_, "ROLLBACK"},
             {&probe_, "SELECT 1 FROM warp_kv LIMIT 1"},
         }) {
      if (auto st = prepare(*stmt, sql); !st) return st;
    }
    return {};
  }

  result<void> migrate() {
    // IMMEDIATE takes the write lock up front, so two processes opening a fresh file at
    // once do not both try to create the schema.
    if (auto st = exec_sql("BEGIN IMMEDIATE"); !st) return st;
    auto rollback = [&](result<void> st) {
      exec_sql("ROLLBACK");
      return st;
    };
    int current = 0;
    {
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v2(db_.get(), "PRAGMA user_version", -1, &raw, nullptr);
      stmt_ptr s{raw};
      if (rc != SQLITE_OK || sqlite3_step(raw) != SQLITE_ROW)
        return rollback(error{errc::storage_error, sqlite3_errmsg(db_.get())});
      current = sqlite3_column_int(raw, 0);
    }
    if (current > schema_version)
      return rollback(error{errc::storage_error, "schema version " + std::to_string(current) +
                                                     " is newer than this build supports (" +
                                                     std::to_string(schema_version) + ")"});
    if (current < 1) {
      // A fresh file goes straight to the current layout.
      if (auto st = exec_sql(schema_v2); !st) return rollback(st);
      if (auto st = exec_sql("ALTER TABLE warp_kv2 RENAME TO warp_kv"); !st) return rollback(st);
    } else if (current < 2) {
      // v1 -> v2: copy into the rowid layout in key order (so rowids follow key order and a
      // scan reads the table sequentially), then swap.
      spdlog::info(
          "storage: SQLite '{}': migrating to schema 2 (rowid table), this copies "
          "every row once",
          path_);
      if (auto st = exec_sql(schema_v2); !st) return rollback(st);
      if (auto st = exec_sql("INSERT INTO warp_kv2 (key, value, expires_at, hlc, node)"
                             " SELECT key, value, expires_at, hlc, node FROM warp_kv ORDER BY key");
          !st)
        return rollback(st);
      if (auto st = exec_sql("DROP TABLE warp_kv"); !st) return rollback(st);
      if (auto st = exec_sql("ALTER TABLE warp_kv2 RENAME TO warp_kv"); !st) return rollback(st);
    }
    // Future migrations: `if (current < 3) { ... }` here, in order.
    bool migrated = current >= 1 && current < schema_version;
    if (current != schema_version) {
      auto sql = "PRAGMA user_version = " + std::to_string(schema_version);
      if (auto st = exec_sql(sql.c_str()); !st) return rollback(st);
      spdlog::info("storage: SQLite '{}' schema {} -> {}", path_, current, schema_version);
    }
    if (auto st = exec_sql("COMMIT"); !st) return st;
    if (migrated) compact_after_migration();
    return {};
  }

  // The old table's pages are free but still in the file, and page_size/auto_vacuum of an
  // existing file change only through VACUUM, which WAL mode forbids for page_size. Best
  // effort: on failure (another process has the file open) the node runs on the new layout
  // with the old file size.
  void compact_after_migration() {
    auto log_failure = [&](const result<void>& st) {
      spdlog::warn(
          "storage: SQLite '{}': compaction after migration failed ({}); the file "
          "keeps its old size until VACUUM",
          path_, st.err().message());
    };
    if (auto st = exec_sql("PRAGMA journal_mode=DELETE"); !st) return log_failure(st);
    exec_sql(("PRAGMA page_size = " + std::to_string(page_size)).c_str());
    exec_sql("PRAGMA auto_vacuum = INCREMENTAL");
    if (auto st = exec_sql("VACUUM"); !st) log_failure(st);
    if (auto st = exec_sql("PRAGMA journal_mode=WAL"); !st) log_failure(st);
  }

  // A damaged file still opens (only the pages read later fail): look at it once, say so
  // loudly, and report it through check() so /readyz takes the node out of rotation while
  // /healthz (liveness) stays up and the operator can inspect it.
  void quick_check() {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), "PRAGMA quick_check(20)", -1, &raw, nullptr);
    stmt_ptr s{raw};
    std::string found;
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
        auto* t = reinterpret_cast<const char*>(sqlite3_column_text(raw, 0));
        std::string line = t ? t : "";
        if (line == "ok") continue;
        if (!found.empty()) found += "; ";
        found += line;
      }
    }
    if (rc != SQLITE_DONE && found.empty()) found = sqlite3_errmsg(db_.get());
    if (found.empty()) return;
    damaged_ = found.size() > 2000 ? found.substr(0, 2000) + "..." : found;
    spdlog::error(
        "storage: SQLite '{}' is DAMAGED (PRAGMA quick_check: {}); reads and writes "
        "of the damaged pages will fail, /readyz reports not ready. Restore it from "
        "a backup or recover it (sqlite3 '{}' .recover)",
        path_, damaged_, path_);
  }

  result<void> exec_locked(sqlite3_stmt* s) {
    stmt_use use{s};
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return err(rc, sqlite3_sql(s));
    return {};
  }

  result<void> fenced_locked(std::string_view fence, std::uint64_t token,
                             std::span<const fenced_change> changes) {
    {
      stmt_use use{fence_get_.get()};
      int rc = sqlite3_bind_text(use.get(), 1, fence.data(), static_cast<int>(fence.size()),
                                 SQLITE_STATIC);
      if (rc == SQLITE_OK) rc = sqlite3_step(use.get());
      if (rc == SQLITE_ROW) {
        auto held = static_cast<std::uint64_t>(sqlite3_column_int64(use.get(), 0));
        if (held > token)
          return error{errc::conflict, "fenced: a newer writer (token " + std::to_string(held) +
                                           ") holds '" + std::string{fence} + "'"};
      } else if (rc != SQLITE_DONE) {
        return err(rc, "write_fenced");
      }
    }
    for (const auto& c : changes) {
      stmt_use use{c.erase ? delete_.get() : upsert_.get()};
      auto* s = use.get();
      int rc = bind_blob(s, 1, c.key);
      if (!c.erase) {
        if (rc == SQLITE_OK) rc = bind_blob(s, 2, c.rec.value);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, c.rec.expires_at_ms);
        if (rc == SQLITE_OK)
          rc = sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(c.rec.ver.hlc));
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, c.rec.ver.node);
      }
      if (rc == SQLITE_OK) rc = sqlite3_step(s);
      if (rc != SQLITE_DONE) return err(rc, "write_fenced");
    }
    stmt_use use{fence_set_.get()};
    int rc = sqlite3_bind_text(use.get(), 1, fence.data(), static_cast<int>(fence.size()),
                               SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(use.get(), 2, static_cast<sqlite3_int64>(token));
    if (rc == SQLITE_OK) rc = sqlite3_step(use.get());
    if (rc != SQLITE_DONE) return err(rc, "write_fenced");
    return {};
  }

  result<std::optional<record>> fetch_locked(std::string_view key, std::int64_t now) {
    stmt_use use{fetch_.get()};
    auto* s = use.get();
    int rc = bind_blob(s, 1, key);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, now);
    if (rc != SQLITE_OK) return err(rc, "fetch");
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return std::optional<record>{};
    if (rc != SQLITE_ROW) return err(rc, "fetch");
    record rec;
    rec.value = column_blob(s, 0);
    rec.expires_at_ms = sqlite3_column_int64(s, 1);
    rec.ver.hlc = static_cast<std::uint64_t>(sqlite3_column_int64(s, 2));
    rec.ver.node = static_cast<std::uint32_t>(sqlite3_column_int64(s, 3));
    return std::optional<record>{std::move(rec)};
  }

  std::string path_;
  std::mutex mtx_;
  std::string identity_;  ///< cached after the first identity()
  db_ptr db_;
  stmt_ptr fetch_, upsert_, delete_, scan_, count_, clear_, begin_, commit_, rollback_, probe_;
  stmt_ptr fence_get_, fence_set_;  ///< prepared by the first write_fenced
  bool fence_ready_ = false;
  std::string damaged_;  ///< what quick_check found at open; "" = sound
};

}  // namespace

result<std::unique_ptr<storage>> make_sqlite_storage(std::string_view path) {
  try {
    return sqlite_storage::open(std::string{path});
  } catch (const std::exception& e) {  // bad_alloc and friends: never escape the adapter
    return error{errc::storage_error,
                 "cannot open SQLite database '" + std::string{path} + "': " + e.what()};
  }
}

}  // namespace warp
