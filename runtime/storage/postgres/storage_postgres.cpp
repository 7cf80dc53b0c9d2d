// The PostgreSQL adapter (libpqxx 6.4, as Debian 12 ships it).
//
// A small pool of connections (mutex + vector of idle ones, at most pool_size open), each
// with the statements prepared. A broken connection (server restarted, network cut) is
// dropped together with every idle one (they were opened to the same server and are most
// likely broken too) and the call is retried once on a fresh connection; when that cannot
// connect either the call returns storage_unavailable. Every statement is idempotent
// (upsert, delete by key, reads), so the retry cannot apply anything twice.
// Nothing here throws: pqxx exceptions are mapped to warp errors at the pool boundary.
#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>

#include <spdlog/spdlog.h>

#include "warp/clock.hpp"
#include "warp/storage.hpp"
#include "warp/storage_fence.hpp"

namespace warp {

namespace {

bool is_uri(std::string_view c) {
  return c.substr(0, 13) == "postgresql://" || c.substr(0, 11) == "postgres://";
}

/// Adds connection defaults the spec does not set itself:
/// - connect_timeout: without it a black-holed server makes every call (and the node's
///   startup) hang for the OS's TCP connect timeout (minutes);
/// - TCP keepalives and tcp_user_timeout: a server host that vanishes mid-call (no RST)
///   is noticed in about 30 s instead of the kernel's ~2 h keepalive / ~15 min retransmit.
std::string with_defaults(std::string_view conninfo) {
  std::string out{conninfo};
  const bool uri = is_uri(out);
  for (auto [key, value] :
       {std::pair{"connect_timeout", "5"}, std::pair{"keepalives_idle", "10"},
        std::pair{"keepalives_interval", "5"}, std::pair{"keepalives_count", "3"},
        std::pair{"tcp_user_timeout", "30000"}}) {
    if (out.find(key) != std::string::npos) continue;
    if (uri)
      out += out.find('?') == std::string::npos ? "?" : "&";
    else if (!out.empty())
      out += ' ';
    out += std::string{key} + "=" + value;
  }
  return out;
}

/// The conninfo without passwords, for describe() and error messages.
std::string redact(std::string_view conninfo) {
  std::string s{conninfo};
  if (is_uri(s)) {
    auto start = s.find("://") + 3;
    auto at = s.find('@', start);
    auto slash = s.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      auto colon = s.find(':', start);
      if (colon != std::string::npos && colon < at) s.erase(colon, at - colon);
    }
    // password=... in the query string.
    for (auto pos = s.find("password="); pos != std::string::npos; pos = s.find("password=")) {
      auto end = s.find('&', pos);
      if (pos > 0 && (s[pos - 1] == '&' || s[pos - 1] == '?')) {
        s.erase(pos, end == std::string::npos ? std::string::npos : end - pos + 1);
        if (!s.empty() && (s.back() == '&' || s.back() == '?')) s.pop_back();
      } else {
        break;  // part of another word: leave it
      }
    }
    return s;
  }
  // key=value form: drop the password pair (its value may be quoted).
  for (auto pos = s.find("password"); pos != std::string::npos; pos = s.find("password", pos)) {
    auto eq = s.find_first_not_of(' ', pos + 8);
    if (eq == std::string::npos || s[eq] != '=' || (pos > 0 && s[pos - 1] != ' ')) {
      pos += 8;
      continue;
    }
    auto v = s.find_first_not_of(' ', eq + 1);
    auto end = v;
    if (v != std::string::npos && s[v] == '\'') {
      for (end = v + 1; end < s.size() && s[end] != '\''; ++end)
        if (s[end] == '\\') ++end;
      if (end < s.size()) ++end;
    } else if (v != std::string::npos) {
      end = s.find(' ', v);
    }
    if (end == std::string::npos || end > s.size()) end = s.size();
    s.erase(pos, end - pos);
  }
  while (s.find("  ") != std::string::npos) s.erase(s.find("  "), 1);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

/// libpq's connect failure without the server's address: `connection to server at
/// "HOST", port P failed: Connection refused\n\tIs the server running...` -> `Connection
/// refused`. Anything not of that shape becomes a fixed text rather than risk an address.
std::string connect_reason(std::string_view what) {
  auto first = what.substr(0, what.find('\n'));
  auto failed = first.rfind("failed: ");
  if (failed == std::string_view::npos) return "server unreachable";
  auto reason = first.substr(failed + 8);
  while (!reason.empty() && (reason.back() == ' ' || reason.back() == '\r'))
    reason.remove_suffix(1);
  if (reason.empty() || reason.find('"') != std::string_view::npos ||
      reason.find('=') != std::string_view::npos)
    return "server unreachable";
  return std::string{reason};
}

/// SQLSTATE classes that mean "the connection or server went away", not "your query
/// was wrong": 08 connection exception, 57P admin shutdown / crash / cannot connect now.
bool connection_state(const std::string& sqlstate) {
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0;
}

constexpr std::size_t pool_size = 4;
constexpr std::size_t batch_chunk = 500;  // keys per IN (...) query in fetch_batch

constexpr const char* schema_sql =
    "CREATE TABLE IF NOT EXISTS warp_kv ("
    " key BYTEA PRIMARY KEY,"
    " value BYTEA NOT NULL,"
    " expires_at BIGINT NOT NULL DEFAULT 0,"
    " hlc BIGINT NOT NULL DEFAULT 0,"
    " node INTEGER NOT NULL DEFAULT 0)";

/// Serialises schema creation between nodes starting at once: CREATE TABLE IF NOT
/// EXISTS alone can still fail with a unique violation on pg_type when two race.
constexpr const char* schema_lock_sql = "SELECT pg_advisory_xact_lock(7373706172)";

using conn_ptr = std::unique_ptr<pqxx::connection>;

pqxx::binarystring bytes(std::string_view s) {
  return pqxx::binarystring{s.data() ? s.data() : "", s.size()};
}

std::string unbytes(const pqxx::field& f) {
  return pqxx::binarystring{f}.str();
}

record to_record(const pqxx::row& row, int first) {
  record rec;
  rec.value = unbytes(row[first]);
  rec.expires_at_ms = row[first + 1].as<std::int64_t>();
  // hlc and node are unsigned in Warp; the columns hold the signed values with the same bits.
  rec.ver.hlc = static_cast<std::uint64_t>(row[first + 2].as<std::int64_t>());
  rec.ver.node = static_cast<std::uint32_t>(row[first + 3].as<std::int32_t>());
  return rec;
}

/// Signals a connection failure out of a pool operation (caught inside run()).
struct connection_lost {
  std::string what;
};

class postgres_storage final : public storage, public fenced_writes {
 public:
  explicit postgres_storage(std::string conninfo)
      : conninfo_(with_defaults(conninfo)), described_(redact(conninfo)) {}

  ~postgres_storage() override = default;

  /// Connects once and creates the table, so a bad spec fails at startup, not on the
  /// first request.
  result<void> init() {
    auto r = run<bool>("create schema", [](pqxx::connection& c) {
      pqxx::work tx{c};
      tx.exec(schema_lock_sql);
      tx.exec(schema_sql);
      tx.commit();
      return true;
    });
    if (!r) return r.err();
    opened_.store(true, std::memory_order_release);
    return {};
  }

  result<std::optional<record>> fetch(std::string_view key) override {
    auto now = now_ms();
    return run<std::optional<record>>("fetch", [&](pqxx::connection& c) {
      pqxx::nontransaction tx{c};
      auto res = tx.exec_prepared("warp_fetch", bytes(key), now);
      if (res.empty()) return std::optional<record>{};
      return std::optional<record>{to_record(res[0], 0)};
    });
  }

  result<std::vector<std::optional<record>>> fetch_batch(
      std::span<const std::string> keys) override {
    auto now = now_ms();
    using out_t = std::vector<std::optional<record>>;
    return run<out_t>("fetch_batch", [&](pqxx::connection& c) {
      out_t out(keys.size());
      // One statement per chunk; the repeatable-read transaction makes the chunks one
      // snapshot. Keys may repeat in the request, so map results back by key.
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx{c};
      for (std::size_t first = 0; first < keys.size(); first += batch_chunk) {
        auto n = std::min(batch_chunk, keys.size() - first);
        std::string sql =
            "SELECT key, value, expires_at, hlc, node FROM warp_kv"
            " WHERE (expires_at = 0 OR expires_at > $1) AND key IN (";
        std::vector<pqxx::binarystring> params;
        params.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
          sql += (i ? ",$" : "$") + std::to_string(i + 2);
          params.push_back(bytes(keys[first + i]));
        }
        sql += ")";
        auto res = tx.exec_params(sql, now, pqxx::prepare::make_dynamic_params(params));
        std::map<std::string, record, std::less<>> found;
        for (const auto& row : res) found.emplace(unbytes(row[0]), to_record(row, 1));
        for (std::size_t i = 0; i < n; ++i)
          if (auto it = found.find(keys[first + i]); it != found.end()) out[first + i] = it->second;
      }
      tx.commit();
      return out;
    });
  }

  result<void> store(std::string_view key, const record& rec) override {
    auto r = run<bool>("store", [&](pqxx::connection& c) {
      pqxx::nontransaction tx{c};
      tx.exec_prepared("warp_upsert", bytes(key), bytes(rec.value), rec.expires_at_ms,
                       static_cast<std::int64_t>(rec.ver.hlc),
                       static_cast<std::int32_t>(rec.ver.node));
      return true;
    });
    return r ? result<void>{} : r.err();
  }

  result<void> write_fenced(std::string_view fence, std::uint64_t token,
                            std::span<const fenced_change> changes) override {
    if (!fence_ready_.load(std::memory_order_acquire)) {
      auto made = run<bool>("write_fenced", [&](pqxx::connection& c) {
        pqxx::work tx{c};
        tx.exec(schema_lock_sql);  // two nodes creating it at once would race on pg_type
        tx.exec(
            "CREATE TABLE IF NOT EXISTS warp_fence (name TEXT PRIMARY KEY, token BIGINT "
            "NOT NULL)");
        tx.commit();
        return true;
      });
      if (!made) return made.err();
      fence_ready_.store(true, std::memory_order_release);
    }
    auto r = run<bool>("write_fenced", [&](pqxx::connection& c) {
      pqxx::work tx{c};
      // Takes the fence's row lock until commit: a concurrent writer of the same fence waits,
      // then re-checks the token it finds (an older one gets no row back: fenced).
      auto held = tx.exec_params(
          "INSERT INTO warp_fence (name, token) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE"
          " SET token = EXCLUDED.token WHERE warp_fence.token <= EXCLUDED.token RETURNING token",
          std::string{fence}, static_cast<std::int64_t>(token));
      if (held.empty()) return false;
      for (const auto& ch : changes) {
        if (ch.erase)
          tx.exec_prepared("warp_delete", bytes(ch.key));
        else
          tx.exec_prepared("warp_upsert", bytes(ch.key), bytes(ch.rec.value), ch.rec.expires_at_ms,
                           static_cast<std::int64_t>(ch.rec.ver.hlc),
                           static_cast<std::int32_t>(ch.rec.ver.node));
      }
      tx.commit();
      return true;
    });
    if (!r) return r.err();
    if (!*r)
      return error{errc::conflict, "fenced: a newer writer holds '" + std::string{fence} + "'"};
    return {};
  }

  result<void> remove(std::string_view key) override {
    auto r = run<bool>("remove", [&](pqxx::connection& c) {
      pqxx::nontransaction tx{c};
      tx.exec_prepared("warp_delete", bytes(key));
      return true;
    });
    return r ? result<void>{} : r.err();
  }

  result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    auto now = now_ms();
    auto limit = static_cast<std::int64_t>(std::min<std::size_t>(count, INT64_MAX));
    return run<std::vector<std::string>>("scan", [&](pqxx::connection& c) {
      pqxx::nontransaction tx{c};
      auto res = tx.exec_prepared("warp_scan", bytes(after), now, limit);
      std::vector<std::string> out;
      out.reserve(res.size());
      for (const auto& row : res) out.push_back(unbytes(row[0]));
      return out;
    });
  }

  result<std::size_t> count() override {
    auto now = now_ms();
    return run<std::size_t>("count", [&](pqxx::connection& c) {
      pqxx::nontransaction tx{c};
      return static_cast<std::size_t>(tx.exec_prepared("warp_count", now)[0][0].as<std::int64_t>());
    });
  }

  result<void> clear() override {
    auto r = run<bool>("clear", [&](pqxx::connection& c) {
      pqxx::nontransaction tx{c};
      tx.exec("DELETE FROM warp_kv");
      return true;
    });
    return r ? result<void>{} : r.err();
  }

  // flush(): every store() is a committed autocommit statement; PostgreSQL's own WAL
  // (synchronous_commit) decides durability, so the default no-op is right.

  result<void> check() override {
    auto r = run<bool>("check", [&](pqxx::connection& c) {
      pqxx::nontransaction tx{c};
      tx.exec("SELECT 1");
      return true;
    });
    return r ? result<void>{} : r.err();
  }

  std::string describe() const override { return "postgres:" + described_; }

  // The first node to ask writes a random id (under the schema lock, so two nodes starting
  // at once agree); every node on the same database reads it back. warp_meta is outside
  // warp_kv, so clear() (FLUSHALL) keeps it.
  result<std::string> identity() override {
    {
      std::lock_guard guard{mtx_};
      if (!identity_.empty()) return identity_;
    }
    std::random_device rd;
    char token[33];
    std::snprintf(token, sizeof token, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
    auto r = run<std::string>("identity", [&](pqxx::connection& c) {
      pqxx::work tx{c};
      tx.exec(schema_lock_sql);
      tx.exec(
          "CREATE TABLE IF NOT EXISTS warp_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
      tx.exec_params(
          "INSERT INTO warp_meta (name, value) VALUES ('storage_id', $1) ON CONFLICT DO NOTHING",
          std::string{token});
      auto row = tx.exec1("SELECT value FROM warp_meta WHERE name = 'storage_id'");
      tx.commit();
      return row[0].as<std::string>();
    });
    if (!r) return r.err();
    std::lock_guard guard{mtx_};
    identity_ = *r;
    return identity_;
  }

 private:
  /// Returns an idle connection or opens a new one (at most pool_size in total).
  result<conn_ptr> acquire() {
    {
      std::unique_lock guard{mtx_};
      cv_.wait(guard, [&] { return !idle_.empty() || open_ < pool_size; });
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      ++open_;
    }
    // Connect outside the lock: it can take up to connect_timeout.
    try {
      auto c = std::make_unique<pqxx::connection>(conninfo_);
      // We replace broken connections ourselves (with freshly prepared statements);
      // pqxx 6's silent reactivation would hide the failure and lose session state.
      // Deprecated in 6.4 but reactivation is still on by default there: silence only here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
      {
        pqxx::nontransaction tx{*c};
        tx.exec("SET client_min_messages TO warning");  // no NOTICE chatter on stderr
      }
      c->prepare("warp_fetch",
                 "SELECT value, expires_at, hlc, node FROM warp_kv WHERE key = $1"
                 " AND (expires_at = 0 OR expires_at > $2)");
      c->prepare("warp_upsert",
                 "INSERT INTO warp_kv (key, value, expires_at, hlc, node)"
                 " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET"
                 " value = EXCLUDED.value, expires_at = EXCLUDED.expires_at,"
                 " hlc = EXCLUDED.hlc, node = EXCLUDED.node");
      c->prepare("warp_delete", "DELETE FROM warp_kv WHERE key = $1");
      c->prepare("warp_scan",
                 "SELECT key FROM warp_kv WHERE key > $1 AND (expires_at = 0 OR expires_at > $2)"
                 " ORDER BY key LIMIT $3");
      c->prepare("warp_count",
                 "SELECT count(*) FROM warp_kv WHERE expires_at = 0 OR expires_at > $1");
      return c;
    } catch (const std::exception& e) {
      release(nullptr);
      // At open the operator needs to see which server (password dropped); afterwards the
      // message can reach clients (a sidecar's GET), so it names no host, port or user:
      // those go to the log.
      if (!opened_.load(std::memory_order_acquire))
        return error{errc::storage_unavailable,
                     "cannot connect to PostgreSQL '" + described_ + "': " + trim(e.what())};
      spdlog::warn("storage: cannot connect to PostgreSQL '{}': {}", described_, trim(e.what()));
      return error{errc::storage_unavailable,
                   "cannot connect to PostgreSQL: " + connect_reason(e.what())};
    }
  }

  /// Puts a healthy connection back, or (nullptr) gives up a slot.
  void release(conn_ptr c) {
    std::lock_guard guard{mtx_};
    if (c && c->is_open())
      idle_.push_back(std::move(c));
    else
      --open_;
    cv_.notify_one();
  }

  /// After one broken connection the idle ones are suspect too (same server): close them
  /// so the retry opens a fresh connection.
  void drop_idle() {
    std::vector<conn_ptr> doomed;
    {
      std::lock_guard guard{mtx_};
      doomed.swap(idle_);
      open_ -= doomed.size();
      cv_.notify_all();
    }
  }

  /// Runs f on a pooled connection; maps every exception to a warp error and retries
  /// once on a fresh connection when the first one turns out to be broken.
  template <class T, class F>
  result<T> run(const char* op, F&& f) noexcept {
    std::string lost;
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        auto c = acquire();
        if (!c) return c.err();
        conn_ptr conn = std::move(*c);
        try {
          T value = f(*conn);
          release(std::move(conn));
          return value;
        } catch (const pqxx::broken_connection& e) {
          release(nullptr);
          throw connection_lost{e.what()};
        } catch (const pqxx::in_doubt_error& e) {
          // The commit may or may not have happened; the connection is unusable.
          release(nullptr);
          return error{errc::storage_unavailable,
                       std::string{"PostgreSQL "} + op + " outcome unknown: " + e.what()};
        } catch (const pqxx::sql_error& e) {
          if (connection_state(e.sqlstate())) {
            release(nullptr);
            throw connection_lost{e.what()};
          }
          // A server-side error: the connection is fine (nontransaction / aborted tx).
          release(conn->is_open() ? std::move(conn) : nullptr);
          return error{errc::storage_error,
                       std::string{"PostgreSQL "} + op + " failed: " + trim(e.what())};
        } catch (...) {
          // Unknown state: do not return this connection to the pool.
          release(nullptr);
          throw;
        }
      } catch (const connection_lost& e) {
        lost = trim(e.what);
        spdlog::warn("storage: PostgreSQL connection lost during {} ({}); {}", op, lost,
                     attempt == 0 ? "retrying on a fresh connection" : "giving up");
        drop_idle();
      } catch (const std::exception& e) {
        return error{errc::storage_error,
                     std::string{"PostgreSQL "} + op + " failed: " + trim(e.what())};
      } catch (...) {
        return error{errc::storage_error, std::string{"PostgreSQL "} + op + " failed"};
      }
    }
    return error{errc::storage_unavailable,
                 std::string{"PostgreSQL connection lost during "} + op + ": " + lost};
  }

  /// libpq messages span lines ("...refused\n\tIs the server running..."): make them one
  /// line for logs and error strings.
  static std::string trim(const std::string& in) {
    std::string s;
    s.reserve(in.size());
    for (char ch : in) {
      bool space = ch == '\n' || ch == '\t' || ch == ' ' || ch == '\r';
      if (space) {
        if (!s.empty() && s.back() != ' ') s += ' ';
      } else {
        s += ch;
      }
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  const std::string conninfo_;
  const std::string described_;
  std::atomic<bool> opened_{false};
  std::atomic<bool> fence_ready_{false};  ///< warp_fence exists (created by the first write_fenced)
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<conn_ptr> idle_;
  std::size_t open_ = 0;  // connections handed out + idle
  std::string identity_;  // cached after the first identity(), under mtx_
};

}  // namespace

result<std::unique_ptr<storage>> make_postgres_storage(std::string_view conninfo) {
  try {
    auto s = std::make_unique<postgres_storage>(std::string{conninfo});
    if (auto st = s->init(); !st) return st.err();
    return std::unique_ptr<storage>{std::move(s)};
  } catch (const std::exception& e) {
    return error{errc::storage_error, std::string{"cannot open PostgreSQL storage: "} + e.what()};
  }
}

}  // namespace warp
