// The lock and lease checkers of warp-nemesis's coordination workloads
// (test/support/coord_check.hpp): correct histories pass, and each rule flags the history
// it exists for.
#include <catch2/catch.hpp>

#include "test/support/coord_check.hpp"

using warp::test::check_leases;
using warp::test::check_locks;
using warp::test::lease_read;
using warp::test::lease_record;
using warp::test::lock_hold;
using wo = lock_hold::write_outcome;

namespace {

constexpr std::int64_t ms = 1'000'000;

/// A critical section at [t, t + 4) ms: acquire, read `read`, write with `outcome`.
lock_hold hold(int client, std::uint64_t token, std::int64_t t, std::vector<std::uint64_t> read,
               wo outcome = wo::ok, std::int64_t safe_until = 1'000'000 * ms) {
  lock_hold h;
  h.client = client;
  h.token = token;
  h.acquire_invoke_ns = t * ms;
  h.acquire_return_ns = (t + 1) * ms;
  h.read_done = true;
  h.read = std::move(read);
  h.read_invoke_ns = (t + 1) * ms;
  h.read_return_ns = (t + 2) * ms;
  h.write = outcome;
  h.write_invoke_ns = (t + 2) * ms;
  h.write_return_ns = outcome == wo::unknown ? lock_hold::unknown_return : (t + 3) * ms;
  h.session_safe_until_ns = safe_until;
  return h;
}

}  // namespace

TEST_CASE("coord checker: locks: sequential critical sections that append their tokens pass") {
  std::vector<lock_hold> h{hold(0, 10, 0, {}), hold(1, 14, 10, {10}), hold(2, 20, 20, {10, 14})};
  auto r = check_locks(h, std::string{"10,14,20"});
  INFO(r.notes.size());
  CHECK(r.ok());
  CHECK(r.holds == 3);
  CHECK(r.writes_acknowledged == 3);
}

TEST_CASE("coord checker: locks: a write of unknown outcome may or may not be in the register") {
  // Token 14's write is unknown: the next holder may see it or not, the final may hold it.
  std::vector<lock_hold> seen{hold(0, 10, 0, {}), hold(1, 14, 10, {10}, wo::unknown),
                              hold(2, 20, 20, {10, 14})};
  CHECK(check_locks(seen, std::string{"10,14,20"}).ok());
  std::vector<lock_hold> not_seen{hold(0, 10, 0, {}), hold(1, 14, 10, {10}, wo::unknown),
                                  hold(2, 20, 20, {10})};
  auto r = check_locks(not_seen, std::string{"10,20"});
  CHECK(r.ok());
  CHECK(r.writes_unknown == 1);
}

TEST_CASE("coord checker: locks: interleaved critical sections are flagged") {
  // Two holders read the same register: the second's read misses the first's
  // acknowledged write (a lock that let both in, or a fence that let a stale write by).
  std::vector<lock_hold> h{hold(0, 10, 0, {}), hold(1, 14, 1, {})};
  auto r = check_locks(h, std::string{"14"});
  CHECK(r.violations >= 1);
  CHECK(r.lost == 1);  // 10's acknowledged write is gone too
  CHECK_FALSE(r.ok());
}

TEST_CASE("coord checker: locks: a token that does not increase in acquisition order is flagged") {
  std::vector<lock_hold> h{hold(0, 14, 0, {}), hold(1, 10, 10, {}, wo::none)};
  h[1].read_done = false;
  auto r = check_locks(h, std::string{"14"});
  CHECK(r.violations == 1);
  // The same token twice.
  std::vector<lock_hold> twice{hold(0, 10, 0, {}), hold(1, 10, 10, {10}, wo::refused)};
  CHECK(check_locks(twice, std::string{"10"}).violations >= 1);
}

TEST_CASE("coord checker: locks: an acknowledged fenced write missing at the end is lost") {
  std::vector<lock_hold> h{hold(0, 10, 0, {}), hold(1, 14, 10, {10})};
  auto r = check_locks(h, std::string{"10"});
  CHECK(r.lost == 1);
  CHECK(r.violations == 0);
  CHECK_FALSE(r.ok());
  CHECK(check_locks(h, std::nullopt).lost == 2);
}

TEST_CASE("coord checker: locks: a refused write is fine only when its token was stale") {
  // Refused while a higher token had been asked for: stale, fine.
  std::vector<lock_hold> stale{hold(0, 10, 0, {}, wo::refused), hold(1, 14, 1, {})};
  stale[0].write_return_ns = 5 * ms;
  CHECK(check_locks(stale, std::string{"14"}).ok());
  // Refused after its session may have ended (last keep-alive + TTL passed): fine.
  std::vector<lock_hold> expired{hold(0, 10, 0, {}, wo::refused, 2 * ms)};
  CHECK(check_locks(expired, std::nullopt).ok());
  // Refused with nobody else asking and the session alive: the fence refused a current
  // token.
  std::vector<lock_hold> current{hold(0, 10, 0, {}, wo::refused)};
  auto r = check_locks(current, std::nullopt);
  CHECK(r.violations == 1);
  CHECK(r.writes_refused == 1);
}

TEST_CASE("coord checker: locks: a refused write that shows up in the register is flagged") {
  std::vector<lock_hold> h{hold(0, 10, 0, {}, wo::refused, 2 * ms), hold(1, 14, 10, {10})};
  CHECK(check_locks(h, std::string{"10,14"}).violations >= 1);
}

TEST_CASE("coord checker: locks: an acknowledged write with a token already replaced is flagged") {
  // Token 14 was granted (returned at 2 ms) before token 10's write was sent (at 12 ms).
  std::vector<lock_hold> h{hold(0, 10, 10, {}), hold(1, 14, 1, {})};
  h[1].write = wo::none;
  auto r = check_locks(h, std::string{"10"});
  CHECK(r.violations >= 1);
  // And a write acknowledged over a register already holding a higher token.
  std::vector<lock_hold> over{hold(0, 20, 0, {}), hold(1, 14, 10, {20})};
  CHECK(check_locks(over, std::string{"20,14"}).violations >= 1);
}

TEST_CASE("coord checker: locks: tokens nobody wrote and malformed registers are flagged") {
  std::vector<lock_hold> h{hold(0, 10, 0, {7})};
  CHECK(check_locks(h, std::string{"7,10"}).violations >= 1);
  std::vector<lock_hold> ok{hold(0, 10, 0, {})};
  auto bad = check_locks(ok, std::string{"10,x"});
  CHECK(bad.violations == 1);
  CHECK(bad.lost == 1);
  CHECK(warp::test::parse_token_list("1,2,3") == std::vector<std::uint64_t>{1, 2, 3});
  CHECK_FALSE(warp::test::parse_token_list("1,,3"));
  CHECK_FALSE(warp::test::parse_token_list("1,"));
  CHECK(warp::test::parse_token_list("")->empty());
}

namespace {

lease_record lease(std::uint64_t id, std::int64_t ttl_ms, std::int64_t granted_ms,
                   std::vector<std::int64_t> keepalives_ms, std::int64_t revoked_ms = -1) {
  lease_record l;
  l.id = id;
  l.ttl_ms = ttl_ms;
  l.grant_return_ns = granted_ms * ms;
  for (auto k : keepalives_ms) l.keepalives.push_back(k * ms);
  if (revoked_ms >= 0) l.revoke_return_ns = revoked_ms * ms;
  l.keys = {{"k", "lease-" + std::to_string(id)}};
  return l;
}

lease_read read(std::int64_t at_ms, std::optional<std::string> value) {
  return {"k", std::move(value), at_ms * ms, (at_ms + 1) * ms};
}

}  // namespace

TEST_CASE("coord checker: leases: reads before the revoke and absent reads after it pass") {
  std::vector<lease_record> l{lease(5, 2000, 0, {500, 1500}, 1800)};
  std::vector<lease_read> r{read(100, "lease-5"), read(1700, "lease-5"), read(1790, "lease-5"),
                            read(1801, std::nullopt), read(5000, std::nullopt)};
  auto res = check_leases(l, r, 2500);
  CHECK(res.ok());
  CHECK(res.revoked == 1);
  CHECK(res.reads == 5);
}

TEST_CASE(
    "coord checker: leases: a read after the revoke's acknowledgement that sees a key is "
    "flagged") {
  std::vector<lease_record> l{lease(5, 2000, 0, {}, 1000)};
  auto res = check_leases(l, {read(1001, "lease-5")}, 2500);
  CHECK(res.violations == 1);
  // A read that started before the acknowledgement may still see it.
  CHECK(check_leases(l, {read(999, "lease-5")}, 2500).ok());
  // Another lease's value of the same key is not this lease's.
  std::vector<lease_record> two{lease(5, 2000, 0, {}, 1000), lease(9, 2000, 1100, {})};
  CHECK(check_leases(two, {read(1200, "lease-9")}, 2500).ok());
}

TEST_CASE(
    "coord checker: leases: a lease found alive beyond TTL + the extension after its "
    "last keep-alive is flagged") {
  std::vector<lease_record> l{lease(5, 2000, 0, {1000})};
  l[0].alive_seen = {5400 * ms};  // 1000 + 2000 + 2500 = 5500
  CHECK(check_leases(l, {}, 2500).ok());
  l[0].alive_seen.push_back(5600 * ms);
  CHECK(check_leases(l, {}, 2500).violations == 1);
  // A keep-alive of unknown outcome leaves the end unbounded.
  l[0].unbounded = true;
  CHECK(check_leases(l, {}, 2500).ok());
}

TEST_CASE("coord checker: leases: an outage of every node lengthens the bound by its length") {
  std::vector<lease_record> l{lease(5, 2000, 0, {1000})};
  std::vector<std::pair<std::int64_t, std::int64_t>> outage{{2000 * ms, 4000 * ms}};
  l[0].alive_seen = {7400 * ms};  // 5500 + 2000
  CHECK(check_leases(l, {}, 2500, outage).ok());
  l[0].alive_seen = {7600 * ms};
  CHECK(check_leases(l, {}, 2500, outage).violations == 1);
  // One after the bound does not count.
  std::vector<std::pair<std::int64_t, std::int64_t>> later{{6000 * ms, 9000 * ms}};
  l[0].alive_seen = {5600 * ms};
  CHECK(check_leases(l, {}, 2500, later).violations == 1);
}
