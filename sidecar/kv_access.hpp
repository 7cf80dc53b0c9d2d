// What command handlers read and write keys through (context::n): the node, or, while EXEC
// evaluates a transaction over strong_distributed keys (tx_commands.cpp), an overlay of
// the values that EXEC read linearizably. The handlers are the one evaluation of every
// command; the overlay lets EXEC run them without writing, then commit what they wrote as
// one Raft proposal (docs/sidecar.md, "Transactions on strong keys").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "warp/node.hpp"

namespace warp::sidecar::detail {

/// The keys of one strong transaction as EXEC read them, and what its commands made of them.
struct tx_overlay {
  struct entry {
    std::optional<std::string> value;  ///< nullopt: absent (or expired) when read / deleted
    std::int64_t expires_at_ms = 0;
    bool dirty = false;  ///< written by a command of the transaction
  };
  std::map<std::string, entry, std::less<>> keys;
  std::int64_t now_ms = 0;  ///< when read: a value expiring later is live for the whole EXEC

  entry* find(std::string_view key) {
    auto it = keys.find(key);
    return it == keys.end() ? nullptr : &it->second;
  }
};

class kv_access {
 public:
  kv_access(node& n) : raw_(n) {}  // NOLINT: implicit, contexts are built from the node

  node& raw() noexcept { return raw_; }
  /// Set while EXEC evaluates a strong transaction: reads and writes stay in the overlay.
  tx_overlay* tx = nullptr;

  result<buffer> get(std::string_view key) {
    if (!tx) return raw_.get(key);
    auto* e = entry_of(key);
    if (!e) return outside(key);
    if (!e->value) return error{errc::not_found};
    return make_buffer(*e->value);
  }
  template <class F>
  bool read_if_present(std::string_view key, F&& fn) {
    if (!tx) return raw_.read_if_present(key, std::forward<F>(fn));
    auto* e = entry_of(key);
    if (!e || !e->value) return false;  // the handler then asks get(), which answers
    fn(std::string_view{*e->value});
    return true;
  }
  result<mutation> update(std::string_view key,
                          const std::function<result<mutation>(const buffer* current,
                                                               std::int64_t expires_at_ms)>& fn) {
    if (!tx) return raw_.update(key, fn);
    auto* e = entry_of(key);
    if (!e) return outside(key);
    std::optional<buffer> cur;
    if (e->value) cur = make_buffer(*e->value);
    auto decision = fn(cur ? &*cur : nullptr, e->value ? e->expires_at_ms : 0);
    if (!decision) return decision;
    switch (decision->what) {
      case mutation::kind::keep:
        break;
      case mutation::kind::put:
        if (auto ok = put(*e, key, decision->value, decision->expires_at_ms); !ok) return ok.err();
        break;
      case mutation::kind::erase:
        e->value.reset();
        e->expires_at_ms = 0;
        e->dirty = true;
        break;
    }
    return decision;
  }
  result<void> set_at(std::string_view key, std::string_view value, std::int64_t expires_at_ms) {
    if (!tx) return raw_.set_at(key, value, expires_at_ms);
    auto* e = entry_of(key);
    if (!e) return outside(key);
    return put(*e, key, value, expires_at_ms);
  }
  result<void> set(std::string_view key, std::string_view value, lease_id lease) {
    if (!tx) return raw_.set(key, value, lease);
    return error{errc::unsupported,
                 "SET ... LEASE is not supported inside a transaction over strong keys"};
  }
  result<void> set_many(std::span<const kv_write> items) {
    if (!tx) return raw_.set_many(items);
    // As node.set_many: every key and value is checked before anything is written.
    for (const auto& it : items) {
      if (!entry_of(it.key)) return outside(it.key);
      if (auto ok = raw_.config().limits.check_value(it.value); !ok) return ok.err();
    }
    for (const auto& it : items)
      if (auto ok = put(*entry_of(it.key), it.key, it.value, it.expires_at_ms); !ok) return ok;
    return {};
  }
  result<void> remove(std::string_view key) {
    if (!tx) return raw_.remove(key);
    auto* e = entry_of(key);
    if (!e) return outside(key);
    e->value.reset();
    e->expires_at_ms = 0;
    e->dirty = true;
    return {};
  }
  result<bool> contains(std::string_view key) {
    if (!tx) return raw_.contains(key);
    auto* e = entry_of(key);
    if (!e) return outside(key);
    return e->value.has_value();
  }
  result<std::int64_t> expiry(std::string_view key) {
    if (!tx) return raw_.expiry(key);
    auto* e = entry_of(key);
    if (!e) return outside(key);
    if (!e->value) return error{errc::not_found};
    return e->expires_at_ms;
  }

  // Whole-keyspace and coordination calls never run inside a strong transaction (EXEC
  // refuses such commands before evaluating): they go to the node.
#define WARP_KV_FORWARD(name)                \
  template <class... A>                      \
  decltype(auto) name(A&&... a) {            \
    return raw_.name(std::forward<A>(a)...); \
  }
  WARP_KV_FORWARD(clear)
  WARP_KV_FORWARD(storage)
  WARP_KV_FORWARD(scan)
  WARP_KV_FORWARD(key_count)
  WARP_KV_FORWARD(lease_grant)
  WARP_KV_FORWARD(lease_keepalive)
  WARP_KV_FORWARD(lease_revoke)
  WARP_KV_FORWARD(lease_time_to_live)
  WARP_KV_FORWARD(leases)
  WARP_KV_FORWARD(lock)
  WARP_KV_FORWARD(unlock)
  WARP_KV_FORWARD(set_if_fence)
  WARP_KV_FORWARD(get_fenced)
#undef WARP_KV_FORWARD

 private:
  tx_overlay::entry* entry_of(std::string_view key) {
    auto* e = tx->find(key);
    // A value that expired while EXEC ran reads as absent, as the node would answer.
    if (e && e->value && e->expires_at_ms != 0 && e->expires_at_ms <= tx->now_ms) {
      e->value.reset();
      e->expires_at_ms = 0;
    }
    return e;
  }
  static error outside(std::string_view key) {
    // EXEC reads every key its commands name before evaluating them; this is a key a
    // command computed (none does today): refuse rather than read it unconditioned.
    return error{errc::unsupported,
                 "key '" + std::string(key.substr(0, 128)) + "' was not read by EXEC"};
  }
  result<void> put(tx_overlay::entry& e, std::string_view, std::string_view value,
                   std::int64_t expires_at_ms) {
    if (auto ok = raw_.config().limits.check_value(value); !ok) return ok.err();
    e.value.emplace(value);
    e.expires_at_ms = expires_at_ms;
    e.dirty = true;
    return {};
  }

  node& raw_;
};

}  // namespace warp::sidecar::detail
