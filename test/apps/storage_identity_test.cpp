// Item 7 of issue 12: a clustered node running eventual_distributed keys on storage no
// other member shares refuses to run (or, with --allow-unshared-storage, warns loudly).
// Real warpd processes: two SQLite files (refused), one PostgreSQL database (accepted).
#include <catch2/catch.hpp>

#include <signal.h>

#include <memory>
#include <string>
#include <thread>

#include "test/support/eventually.hpp"
#include "test/support/postgres.hpp"
#include "test/support/process.hpp"
#include "test/apps/warpd_fixture.hpp"

using namespace std::chrono_literals;
using namespace warp::test;

namespace {

// Members a and b, seeds of each other, eventual_distributed everywhere.
struct pair_ports {
  std::uint16_t a = free_port();
  std::uint16_t b = free_port();
};

std::unique_ptr<warpd_process> member(const std::string& name, std::uint16_t port,
                                      std::uint16_t peer, const std::string& storage,
                                      const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--name",       name,
                                "--listen",     "127.0.0.1:" + std::to_string(port),
                                "--peers",      "127.0.0.1:" + std::to_string(peer),
                                "--http",       "127.0.0.1:0",
                                "--resp",       "",
                                "--storage",    storage,
                                "--data-dir",   dir + "/" + name,
                                "--default-mode", "eventual_distributed",
                                "--heartbeat-interval", "100ms",
                                "--log-level",  "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<warpd_process>(args, false, dir);
}

bool has(const warpd_process& d, const std::string& text) {
  return d.log().find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("storage identity: two members on different SQLite files: the newer one refuses") {
  temp_dir dir{"identity-sqlite"};
  pair_ports p;
  auto a = member("a", p.a, p.b, "sqlite:" + dir.str() + "/a.db", dir.str());
  REQUIRE(a->wait_ready());
  auto b = member("b", p.b, p.a, "sqlite:" + dir.str() + "/b.db", dir.str());
  REQUIRE(b->wait_ready());
  INFO("a:\n" << a->log() << "\nb:\n" << b->log());
  // b joined last: it exits with status 1 and says why and what to do.
  CHECK(b->process().wait(20s) == 1);
  CHECK(has(*b, "UNSHARED STORAGE"));
  CHECK(has(*b, "refusing to run"));
  CHECK(has(*b, "--allow-unshared-storage"));
  // a logged it too, and keeps serving.
  CHECK(eventually([&] { return has(*a, "UNSHARED STORAGE"); }, 10s));
  CHECK(has(*a, "that node joined last"));
  CHECK(a->process().running());
  CHECK(a->ctl({"set", "k", "v"}).exit_code == 0);
  CHECK(a->process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("storage identity: memory storage is never shared, --allow-unshared-storage warns") {
  temp_dir dir{"identity-memory"};
  pair_ports p;
  auto a = member("a", p.a, p.b, "memory", dir.str(), {"--allow-unshared-storage"});
  REQUIRE(a->wait_ready());
  auto b = member("b", p.b, p.a, "memory", dir.str(), {"--allow-unshared-storage"});
  REQUIRE(b->wait_ready());
  INFO("a:\n" << a->log() << "\nb:\n" << b->log());
  CHECK(eventually([&] { return has(*b, "UNSHARED STORAGE") && has(*a, "UNSHARED STORAGE"); },
                   10s));
  CHECK(has(*b, "allowed by --allow-unshared-storage"));
  // Both keep running: the operator said so.
  std::this_thread::sleep_for(500ms);
  CHECK(a->process().running());
  CHECK(b->process().running());
  CHECK(a->process().stop(SIGTERM, 20s) == 0);
  CHECK(b->process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("storage identity: two members on one PostgreSQL database are accepted") {
  postgres_server pg;
  temp_dir dir{"identity-pg"};
  pair_ports p;
  auto a = member("a", p.a, p.b, pg.uri(), dir.str());
  REQUIRE(a->wait_ready());
  auto b = member("b", p.b, p.a, pg.uri(), dir.str());
  REQUIRE(b->wait_ready());
  INFO("a:\n" << a->log() << "\nb:\n" << b->log());
  // They see each other (the identities were compared) and neither complains.
  CHECK(eventually([&] { return has(*a, "joined") && has(*b, "joined"); }, 15s));
  std::this_thread::sleep_for(1s);
  CHECK_FALSE(has(*a, "UNSHARED STORAGE"));
  CHECK_FALSE(has(*b, "UNSHARED STORAGE"));
  CHECK(b->process().running());
  // And they do share: a write on one is read on the other.
  REQUIRE(a->ctl({"set", "shared:1", "hello"}).exit_code == 0);
  CHECK(eventually([&] { return b->ctl({"get", "shared:1"}).out == "hello\n"; }, 10s));
  // Membership changes are logged at info with the member's name and address.
  auto b_at = "(b at 127.0.0.1:" + std::to_string(p.b) + ")";
  CHECK(has(*a, b_at + " joined"));
  CHECK(b->process().stop(SIGTERM, 20s) == 0);
  // "left" when b's leave announcement arrived, "failed" when a had already marked it
  // suspect (no heartbeat under a loaded ctest -j2) or the announcement was lost: both
  // name the member and its address, which is what this checks.
  CHECK(eventually([&] { return has(*a, b_at + " left") || has(*a, b_at + " failed"); }, 20s));
  CHECK(a->process().stop(SIGTERM, 20s) == 0);
}

TEST_CASE("storage identity: the same SQLite file through two members is accepted") {
  temp_dir dir{"identity-shared-sqlite"};
  pair_ports p;
  auto db = "sqlite:" + dir.str() + "/shared.db";
  auto a = member("a", p.a, p.b, db, dir.str());
  REQUIRE(a->wait_ready());
  auto b = member("b", p.b, p.a, db, dir.str());
  REQUIRE(b->wait_ready());
  INFO("a:\n" << a->log() << "\nb:\n" << b->log());
  CHECK(eventually([&] { return has(*a, "joined") && has(*b, "joined"); }, 15s));
  std::this_thread::sleep_for(1s);
  CHECK_FALSE(has(*b, "UNSHARED STORAGE"));
  CHECK(b->process().running());
  CHECK(a->process().stop(SIGTERM, 20s) == 0);
  CHECK(b->process().stop(SIGTERM, 20s) == 0);
}
