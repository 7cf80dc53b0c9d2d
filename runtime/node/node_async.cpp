// warp::node's async API: every call that may leave the process, with a callback or a
// future, never blocking the caller (docs/api.md, "The async API").
#include "warp/node.hpp"

#include <future>
#include <memory>

#include "runtime/modes/mode.hpp"
#include "runtime/node/node_impl.hpp"

namespace warp {

// -- the async API ----------------------------------------------------------------------
//
// Each call is the blocking call run on the executor, except where the key's mode completes
// it without a thread: get, set and remove of strong_distributed keys go straight to the
// quorum actor, whose continuation calls `done`.

bool node::post(std::function<void()> job) {
  auto& st = *impl_;
  if (st.stopped.load(std::memory_order_relaxed) || !st.executor) return false;
  return st.executor->post(std::move(job));
}

namespace {

error stopping() {
  return error{errc::shutting_down, "node is stopping"};
}

/// The future form of an async call: a promise the callback fulfils.
template <class T, class Start>
std::future<T> as_future(Start&& start) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  start([p](T outcome) { p->set_value(std::move(outcome)); });
  return f;
}

}  // namespace

// A mode that completes writes without a thread (strong_distributed) takes them directly;
// false = run the blocking call on the executor. `value` null = a remove.
bool node::try_write_async(std::string_view key, const std::string* value,
                           std::optional<std::chrono::milliseconds> ttl,
                           std::function<void(result<void>)>& done) {
  auto& st = *impl_;
  if (!st.strong_mode || st.stopped.load(std::memory_order_relaxed)) return false;
  auto policy = st.patterns.lookup(key);
  if (policy.consistency != mode::strong_distributed) return false;
  auto fail = [&](error err) {
    done(std::move(err));
    return true;
  };
  if (auto err = st.config.limits.check_key(key); !err.has_value()) return fail(err.err());
  // The quorum actor completes the call; `done` is the caller's code, which may block, so
  // it runs on the executor as the other async calls' callbacks do.
  std::function<void(result<void>)> on_executor = [this, done](result<void> r) {
    if (!post([done, r] { done(r); })) done(r);
  };
  if (!value) return st.strong_mode->remove_async(key, policy, on_executor);
  if (auto err = st.config.limits.check_value(*value); !err.has_value()) return fail(err.err());
  std::int64_t expires = 0;
  if (ttl) {
    if (ttl->count() < 0) return fail(error{errc::invalid_argument, "negative TTL"});
    if (ttl->count() > 0) expires = now_ms() + ttl->count();
  }
  return st.strong_mode->set_async(key, policy, *value, expires, on_executor);
}

void node::get_async(std::string key, std::function<void(result<buffer>)> done) {
  // An L1 hit needs no I/O: answered on the caller's thread.
  if (auto hit = get_if_present(key)) return done(std::move(*hit));
  auto& st = *impl_;
  if (st.strong_mode && !st.stopped.load(std::memory_order_relaxed)) {
    auto policy = st.patterns.lookup(key);
    if (policy.consistency == mode::strong_distributed) {
      if (auto err = st.config.limits.check_key(key); !err.has_value()) return done(err.err());
      std::function<void(result<buffer>)> on_executor = [this, done](result<buffer> r) {
        if (!post([done, r] { done(r); })) done(r);
      };
      if (st.strong_mode->get_async(key, policy, on_executor)) return;
    }
  }
  auto job = [this, key = std::move(key), done]() { done(get(key)); };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<buffer>> node::get_async(std::string key) {
  return as_future<result<buffer>>([&](auto done) { get_async(std::move(key), std::move(done)); });
}

void node::get_many_async(std::vector<std::string> keys,
                          std::function<void(std::vector<result<buffer>>)> done) {
  auto job = [this, keys = std::move(keys), done]() {
    std::vector<std::string_view> views(keys.begin(), keys.end());
    done(get_many(views));
  };
  if (!post(std::move(job))) done(std::vector<result<buffer>>(keys.size(), stopping()));
}

std::future<std::vector<result<buffer>>> node::get_many_async(std::vector<std::string> keys) {
  return as_future<std::vector<result<buffer>>>(
      [&](auto done) { get_many_async(std::move(keys), std::move(done)); });
}

void node::set_async(std::string key, std::string value,
                     std::optional<std::chrono::milliseconds> ttl,
                     std::function<void(result<void>)> done) {
  if (try_write_async(key, &value, ttl, done)) return;
  auto job = [this, key = std::move(key), value = std::move(value), ttl, done]() {
    done(set(key, value, ttl));
  };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<void>> node::set_async(std::string key, std::string value,
                                    std::optional<std::chrono::milliseconds> ttl) {
  return as_future<result<void>>(
      [&](auto done) { set_async(std::move(key), std::move(value), ttl, std::move(done)); });
}

void node::remove_async(std::string key, std::function<void(result<void>)> done) {
  if (try_write_async(key, nullptr, std::nullopt, done)) return;
  auto job = [this, key = std::move(key), done]() { done(remove(key)); };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<void>> node::remove_async(std::string key) {
  return as_future<result<void>>([&](auto done) { remove_async(std::move(key), std::move(done)); });
}

void node::update_async(
    std::string key,
    std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)> fn,
    std::function<void(result<mutation>)> done) {
  auto job = [this, key = std::move(key), fn = std::move(fn), done]() { done(update(key, fn)); };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<mutation>> node::update_async(
    std::string key,
    std::function<result<mutation>(const buffer* current, std::int64_t expires_at_ms)> fn) {
  return as_future<result<mutation>>(
      [&](auto done) { update_async(std::move(key), std::move(fn), std::move(done)); });
}

void node::get_or_load_async(std::string key, loader load,
                             std::function<void(result<buffer>)> done) {
  if (auto hit = get_if_present(key)) return done(std::move(*hit));
  auto job = [this, key = std::move(key), load = std::move(load), done]() {
    done(get_or_load(key, load));
  };
  if (!post(std::move(job))) done(stopping());
}

std::future<result<buffer>> node::get_or_load_async(std::string key, loader load) {
  return as_future<result<buffer>>(
      [&](auto done) { get_or_load_async(std::move(key), std::move(load), std::move(done)); });
}

}  // namespace warp
