#include "test/support/postgres.hpp"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

#include <pqxx/pqxx>

namespace warp::test {

namespace {

constexpr const char* pg_user = "warp-pg";

/// Makes sure the unprivileged system user exists (PostgreSQL refuses to run as root).
/// Tests run in parallel processes: a concurrent useradd may win the race, so only a
/// user that is still missing afterwards is an error.
void ensure_user() {
  if (::getpwnam(pg_user)) return;
  auto useradd = find_program("useradd");
  if (useradd.empty()) throw std::runtime_error("postgres_server: useradd not found");
  auto r = run({useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", pg_user});
  if (!::getpwnam(pg_user))
    throw std::runtime_error("postgres_server: cannot create user " + std::string{pg_user} + ": " +
                             r.err);
}

void chown_tree(const std::filesystem::path& p, uid_t uid, gid_t gid) {
  if (::chown(p.c_str(), uid, gid) != 0)
    throw std::runtime_error("postgres_server: chown " + p.string() + " failed");
  if (std::filesystem::is_directory(p))
    for (auto& entry : std::filesystem::recursive_directory_iterator(p))
      if (::lchown(entry.path().c_str(), uid, gid) != 0)
        throw std::runtime_error("postgres_server: chown " + entry.path().string() + " failed");
}

std::string require(const std::string& bin_dir, const std::string& name) {
  auto p = std::filesystem::path(bin_dir) / name;
  if (::access(p.c_str(), X_OK) != 0)
    throw std::runtime_error("postgres_server: " + p.string() +
                             " not found (install postgresql: apt-get install postgresql)");
  return p.string();
}

}  // namespace

postgres_server::postgres_server(std::string dbname) : dbname_(std::move(dbname)) {
  auto initdb = find_program("initdb");
  if (initdb.empty())
    throw std::runtime_error(
        "postgres_server: initdb not found on PATH nor in /usr/lib/postgresql/*/bin "
        "(install postgresql: apt-get install postgresql)");
  // Take `postgres` from the folder initdb really lives in, so their versions match
  // (/usr/local/bin may hold symlinks into /usr/lib/postgresql/NN/bin).
  bin_dir_ = std::filesystem::canonical(initdb).parent_path().string();
  require(bin_dir_, "postgres");

  drop_privileges_ = ::geteuid() == 0;
  if (drop_privileges_) {
    ensure_user();
    auto* pw = ::getpwnam(pg_user);
    // mkdtemp made the dir 0700 root: hand it to the server user.
    chown_tree(dir_.path(), pw->pw_uid, pw->pw_gid);
  }

  auto r = run(as_server_user({require(bin_dir_, "initdb"), "-D", data_dir(), "-U", "postgres",
                               "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"}),
               120s);
  if (r.exit_code != 0)
    throw std::runtime_error("postgres_server: initdb failed (exit " + std::to_string(r.exit_code) +
                             "): " + r.out + r.err);

  port_ = free_port();
  start();

  try {
    pqxx::connection c{uri_for("postgres")};
    pqxx::nontransaction tx{c};
    tx.exec("CREATE DATABASE " + tx.quote_name(dbname_));
  } catch (const std::exception& e) {
    throw std::runtime_error("postgres_server: cannot create database " + dbname_ + ": " +
                             e.what() + "\nserver log:\n" + log());
  }
}

postgres_server::~postgres_server() {
  try {
    stop();
  } catch (...) {
    // A destructor must not throw; the child_process destructor SIGKILLs as a last resort.
  }
}

std::vector<std::string> postgres_server::as_server_user(std::vector<std::string> argv) const {
  if (!drop_privileges_) return argv;
  std::vector<std::string> out{find_program("runuser"), "-u", pg_user, "--"};
  if (out[0].empty()) throw std::runtime_error("postgres_server: runuser not found");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string postgres_server::data_dir() const {
  return dir_.str() + "/data";
}

std::string postgres_server::uri_for(const std::string& dbname) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname +
         "?connect_timeout=2";
}

std::string postgres_server::uri() const {
  return uri_for(dbname_);
}

std::string postgres_server::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname_ +
         " connect_timeout=2";
}

void postgres_server::start() {
  if (server_ && server_->running()) return;
  std::vector<std::string> argv{require(bin_dir_, "postgres"),
                                "-D",
                                data_dir(),
                                "-p",
                                std::to_string(port_),
                                "-k",
                                dir_.str(),  // unix socket in our dir, not /run/postgresql
                                "-c",
                                "listen_addresses=127.0.0.1",
                                "-c",
                                "max_connections=60",
                                "-c",
                                "shared_buffers=16MB"};
  if (drop_privileges_) {
    // setpriv, not runuser: runuser forks a watching parent, so the PID we hold would
    // not be the server's, and on a signal it SIGKILLs the child after 2 s (no clean
    // shutdown). setpriv changes ids and execs: the PID is postgres itself.
    auto setpriv = find_program("setpriv");
    if (setpriv.empty()) throw std::runtime_error("postgres_server: setpriv not found");
    std::vector<std::string> wrapped{setpriv, std::string{"--reuid="} + pg_user,
                                     std::string{"--regid="} + pg_user, "--init-groups", "--"};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    argv = std::move(wrapped);
  }
  server_ = std::make_unique<child_process>(argv, dir_.str() + "/server.log");
  wait_ready();
}

void postgres_server::wait_ready() {
  // Accepting TCP is not enough (it answers "the database system is starting up"):
  // wait until a real connection works.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!server_->running())
      throw std::runtime_error("postgres_server: postgres exited during startup; log:\n" + log());
    try {
      pqxx::connection c{uri_for("postgres")};
      return;
    } catch (const std::exception& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("postgres_server: not ready after 60 s (" + last + "); log:\n" + log());
}

void postgres_server::stop() {
  if (!server_) return;
  // SIGINT = fast shutdown: disconnects clients and checkpoints. SIGTERM ("smart") would
  // wait for every client, including a pool the test still holds.
  server_->stop(SIGINT, 60s);
}

bool postgres_server::running() {
  return server_ && server_->running();
}

std::string postgres_server::log() const {
  return server_ ? server_->log() : std::string{};
}

}  // namespace warp::test

// libpqxx 6.4 (Debian 12) leaks libpq's error PGresult when a statement runs on a
// connection the server has dropped (inside connection_base::exec_prepared and
// register_prepared). Outage tests do exactly that, so an ASan build would fail them on
// a library bug; suppress those two frames only, for every test that uses this fixture.
extern "C" __attribute__((used)) const char* __lsan_default_suppressions() {
  return "leak:pqxx::connection_base::exec_prepared\n"
         "leak:pqxx::connection_base::register_prepared\n";
}
