// The node's coordination calls (warp/node.hpp, docs/coordination.md): each one is a
// command or query of the coordination group's state machine
// (runtime/coordination/coord_command.hpp) through the strong Raft engine's host.
#include <charconv>
#include <future>

#include <nlohmann/json.hpp>

#include "runtime/coordination/coord_command.hpp"
#include "runtime/modes/strong.hpp"
#include "runtime/modes/strong_lock.hpp"
#include "runtime/node/node_impl.hpp"
#include "warp/node.hpp"
#include "warp/strong_watch.hpp"

namespace warp {

namespace detail {
strong_raft* strong_raft_of(const node& n) {
  if (n.impl_->stopped.load() || !n.impl_->strong) return nullptr;
  return n.impl_->strong->raft();
}
}  // namespace detail

namespace co = coordination;

namespace {

detail::strong_raft* engine(node::impl& st) {
  if (st.stopped.load() || !st.strong) return nullptr;
  return st.strong->raft();
}

error no_engine() {
  return error{errc::unsupported,
               "locks and leases need the strong Raft engine (a cluster with strong members, "
               "--strong-engine raft)"};
}

co::coord_command command(co::coord_op op) {
  co::coord_command c;
  c.client = actors::fresh_coord_client();  // its retries apply once
  c.seq = 1;
  c.op = op;
  return c;
}

std::string owner_of(std::string_view owner) {
  return std::string{owner.empty() ? detail::default_lock_owner : owner};
}

result<std::uint64_t> number(const result<std::string>& r) {
  if (!r) return r.err();
  try {
    return std::stoull(*r);
  } catch (const std::exception&) {
    return error{errc::codec_error, "coordination: not a number: " + *r};
  }
}

}  // namespace

result<lease_id> node::lease_grant(std::chrono::milliseconds ttl) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  if (ttl.count() <= 0) return error{errc::invalid_argument, "lease TTL must be positive"};
  auto c = command(co::coord_op::grant);
  c.number = static_cast<std::uint64_t>(ttl.count());
  return number(e->coord(true, co::encode(c)));
}

result<std::chrono::milliseconds> node::lease_keepalive(lease_id id) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  auto c = command(co::coord_op::keepalive);
  c.lease = id;
  auto n = number(e->coord(true, co::encode(c)));
  if (!n) return n.err();
  return std::chrono::milliseconds{static_cast<long>(*n)};
}

result<void> node::lease_revoke(lease_id id) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  // The leader deletes a revoked lease's keys asynchronously after the revoke applied;
  // deleting them here too before answering (a delete is idempotent) means a read that
  // starts after this call returns sees none of the keys attached before the revoke was
  // asked for, as in etcd, where revoke deletes them in its own transaction. Only a key
  // attached concurrently with the revoke (after this read of the lease) is left to the
  // leader's delete.
  auto before = lease_time_to_live(id);
  if (!before) return before.err();  // not_found as the revoke would say; else nothing done
  auto c = command(co::coord_op::revoke);
  c.lease = id;
  auto r = e->coord(true, co::encode(c));
  if (!r) return r.err();
  for (const auto& key : before->keys)
    if (auto d = remove(key); !d && d.err().code() != errc::not_found)
      return error{d.err().code(), "lease " + std::to_string(id) + " revoked; deleting its key '" +
                                       key +
                                       "' failed (the leader retries it): " + d.err().message()};
  return {};
}

result<lease_status> node::lease_time_to_live(lease_id id) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  auto r = e->coord(false, co::encode(co::coord_query{co::coord_query_kind::lease, id, {}}));
  if (!r) return r.err();
  auto l = co::decode_lease_info(*r);
  if (!l) return l.err();
  lease_status s;
  s.id = l->id;
  s.ttl = std::chrono::milliseconds{static_cast<long>(l->ttl_ms)};
  s.remaining = std::chrono::milliseconds{static_cast<long>(l->remaining_ms)};
  s.keepalives = l->epoch;
  s.keys = std::move(l->keys);
  return s;
}

result<std::vector<lease_id>> node::leases() {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  auto r = e->coord(false, co::encode(co::coord_query{co::coord_query_kind::leases, 0, {}}));
  if (!r) return r.err();
  return co::decode_ids(*r);
}

result<void> node::set(std::string_view key, std::string_view value, lease_id lease) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  if (auto ok = impl_->config.limits.check_key(key); !ok) return ok.err();
  // Set first, attach second: a lease that ends in between makes the attach fail, and the
  // key is deleted here; one that ends after the attach deletes it itself.
  if (auto w = set(key, value); !w) return w.err();
  auto c = command(co::coord_op::attach);
  c.lease = lease;
  c.name.assign(key);
  auto r = e->coord(true, co::encode(c));
  if (!r) {
    (void)remove(key);
    return r.err();
  }
  return {};
}

result<fencing_token> node::lock(std::string_view name, lease_id session,
                                 std::chrono::milliseconds timeout, std::string_view owner) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  // The wait itself is an actor's (strong_lock.hpp): this thread only waits for its answer.
  auto p = std::make_shared<std::promise<result<fencing_token>>>();
  auto f = p->get_future();
  auto waiter = detail::lock_async(
      *e, system(),
      actors::lock_wait_spec{std::string{name}, session, owner_of(owner),
                             std::max(timeout, std::chrono::milliseconds{0}), false},
      actors::completion<std::uint64_t>{
          [p](result<std::uint64_t> r) { p->set_value(std::move(r)); }});
  // A backstop: the waiter answers by its deadline plus a few Raft requests, each bounded.
  const auto bound = std::max(timeout, std::chrono::milliseconds{0}) +
                     impl_->config.strong.timeout * 6 + std::chrono::seconds{10};
  if (f.wait_for(bound) != std::future_status::ready) {
    actors::cancel_lock_wait(waiter);  // it leaves the queue, or releases a late grant
    return error{errc::timeout, "the lock wait did not finish in time"};
  }
  return f.get();
}

result<fencing_token> node::try_lock(std::string_view name, lease_id session,
                                     std::string_view owner) {
  return lock(name, session, std::chrono::milliseconds{0}, owner);
}

result<void> node::unlock(std::string_view name, lease_id session, fencing_token token,
                          std::string_view owner) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  auto c = command(co::coord_op::unlock);
  c.name.assign(name);
  c.lease = session;
  c.owner = owner_of(owner);
  c.number = token;
  auto r = e->coord(true, co::encode(c));
  if (!r) return r.err();
  return {};
}

result<lock_status> node::lock_info(std::string_view name) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  auto r = e->coord(false, co::encode(co::coord_query{co::coord_query_kind::lock, 0,
                                                      std::string{name}}));
  if (!r && r.code() == errc::not_found) return lock_status{};
  if (!r) return r.err();
  auto l = co::decode_lock_info(*r);
  if (!l) return l.err();
  return lock_status{l->held, l->holder_lease, l->holder_owner, l->token, l->waiters};
}

result<void> node::set_if_fence(std::string_view key, std::string_view value,
                                std::string_view lock, fencing_token token) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  if (auto ok = impl_->config.limits.check_value(value); !ok) return ok.err();
  auto c = command(co::coord_op::fenced_put);
  c.name.assign(key);
  c.value.assign(value);
  c.owner.assign(lock);
  c.number = token;
  auto r = e->coord(true, co::encode(c));
  if (!r) return r.err();
  return {};
}

result<std::string> node::get_fenced(std::string_view key) {
  auto* e = engine(*impl_);
  if (!e) return no_engine();
  return e->coord(false, co::encode(co::coord_query{co::coord_query_kind::fenced, 0,
                                                    std::string{key}}));
}

void node::lease_grant_async(std::chrono::milliseconds ttl,
                             std::function<void(result<lease_id>)> done) {
  auto* e = engine(*impl_);
  if (!e) return done(no_engine());
  auto c = command(co::coord_op::grant);
  c.number = static_cast<std::uint64_t>(std::max<long>(ttl.count(), 0));
  e->coord_async(true, co::encode(c),
                 [done = std::move(done)](result<std::string> r) { done(number(r)); });
}

void node::lease_keepalive_async(lease_id id,
                                 std::function<void(result<std::chrono::milliseconds>)> done) {
  auto* e = engine(*impl_);
  if (!e) return done(no_engine());
  auto c = command(co::coord_op::keepalive);
  c.lease = id;
  e->coord_async(true, co::encode(c), [done = std::move(done)](result<std::string> r) {
    auto n = number(r);
    if (!n) return done(n.err());
    done(std::chrono::milliseconds{static_cast<long>(*n)});
  });
}

void node::try_lock_async(std::string name, lease_id session, std::string owner,
                          std::function<void(result<fencing_token>)> done) {
  auto* e = engine(*impl_);
  if (!e) return done(no_engine());
  detail::lock_async(*e, system(),
                     actors::lock_wait_spec{std::move(name), session, owner_of(owner),
                                            std::chrono::milliseconds{0}, false},
                     actors::completion<std::uint64_t>{std::move(done)});
}

namespace {

result<std::uint64_t> uint_arg(const std::vector<std::string>& args, std::size_t i,
                               std::string_view what) {
  if (i >= args.size()) return error{errc::invalid_argument, "missing " + std::string{what}};
  std::uint64_t v = 0;
  const auto& a = args[i];
  auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), v);
  if (ec != std::errc{} || p != a.data() + a.size())
    return error{errc::invalid_argument, std::string{what} + " is not a number: " + a};
  return v;
}

}  // namespace

result<std::string> coordination_request(node& n, std::string_view verb,
                                         const std::vector<std::string>& args) {
  using ms = std::chrono::milliseconds;
  auto arg = [&](std::size_t i) -> std::string_view {
    return i < args.size() ? std::string_view{args[i]} : std::string_view{};
  };
  if (verb == "lease.list") {
    auto r = n.leases();
    if (!r) return r.err();
    return nlohmann::json(*r).dump();
  }
  if (verb == "lease.grant") {
    auto ttl = uint_arg(args, 0, "ttl_ms");
    if (!ttl) return ttl.err();
    auto r = n.lease_grant(ms{static_cast<long>(std::min<std::uint64_t>(*ttl, 1ull << 40))});
    if (!r) return r.err();
    return std::to_string(*r);
  }
  if (verb == "lease.keepalive" || verb == "lease.revoke" || verb == "lease.ttl") {
    auto id = uint_arg(args, 0, "lease id");
    if (!id) return id.err();
    if (verb == "lease.keepalive") {
      auto r = n.lease_keepalive(*id);
      if (!r) return r.err();
      return std::to_string(r->count());
    }
    if (verb == "lease.revoke") {
      auto r = n.lease_revoke(*id);
      if (!r) return r.err();
      return std::string{};
    }
    auto r = n.lease_time_to_live(*id);
    if (!r) return r.err();
    return nlohmann::json{{"id", r->id},
                          {"ttl_ms", r->ttl.count()},
                          {"remaining_ms", r->remaining.count()},
                          {"keepalives", r->keepalives},
                          {"keys", r->keys}}
        .dump();
  }
  if (verb == "history" || verb == "get_at") return detail::history_request(n, verb, args);
  if (verb == "lock") {
    auto session = uint_arg(args, 1, "session");
    if (!session) return session.err();
    auto timeout = uint_arg(args, 2, "timeout_ms");
    if (!timeout) return timeout.err();
    auto r = n.lock(arg(0), *session, ms{static_cast<long>(std::min<std::uint64_t>(*timeout, 3'600'000))},
                    arg(3));
    if (!r) return r.err();
    return std::to_string(*r);
  }
  if (verb == "unlock") {
    auto session = uint_arg(args, 1, "session");
    if (!session) return session.err();
    auto token = uint_arg(args, 2, "token");
    if (!token) return token.err();
    auto r = n.unlock(arg(0), *session, *token, arg(3));
    if (!r) return r.err();
    return std::string{};
  }
  if (verb == "set") {
    auto lease = uint_arg(args, 2, "lease");
    if (!lease) return lease.err();
    auto r = n.set(arg(0), arg(1), lease_id{*lease});
    if (!r) return r.err();
    return std::string{};
  }
  if (verb == "fencedset") {
    auto token = uint_arg(args, 3, "token");
    if (!token) return token.err();
    auto r = n.set_if_fence(arg(0), arg(1), arg(2), *token);
    if (!r) return r.err();
    return std::string{};
  }
  if (verb == "fencedget") return n.get_fenced(arg(0));
  return error{errc::unsupported, "unknown coordination request: " + std::string{verb}};
}

}  // namespace warp
