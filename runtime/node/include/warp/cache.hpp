// warp::cache<T>: the typed API over a node's byte API.
//
//   warp::cache<user> users{*node};
//   users.set("user:42", user{"Ada"});
//   auto u = users.get("user:42");          // result<user>
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "warp/codec.hpp"
#include "warp/node.hpp"

namespace warp {

template <class T, class Codec = default_codec_t<T>>
class cache {
 public:
  explicit cache(node& n) : node_(&n) {}

  /// L1 hit, else read-through (coalesced). errc::not_found when absent.
  result<T> get(std::string_view key) const {
    auto bytes = node_->get(key);
    if (!bytes) return bytes.err();
    return detail::decode_with<Codec, T>(*bytes);
  }

  /// Stores with the key's policy TTL, or `ttl` when given (0 = no expiry).
  result<void> set(std::string_view key, const T& value,
             std::optional<std::chrono::milliseconds> ttl = std::nullopt) {
    auto bytes = Codec::encode(value);
    if (!bytes) return bytes.err();
    return node_->set(key, *bytes, ttl);
  }

  result<void> remove(std::string_view key) { return node_->remove(key); }
  result<bool> contains(std::string_view key) const { return node_->contains(key); }

  /// On a miss, `load(key)` produces the value (nullopt = absent); concurrent misses of
  /// one key call it once. The loaded value is written through to storage and L1.
  result<T> get_or_load(std::string_view key,
                        const std::function<result<std::optional<T>>(std::string_view)>& load) {
    auto bytes =
        node_->get_or_load(key, [&](std::string_view k) -> result<std::optional<std::string>> {
          auto v = load(k);
          if (!v) return v.err();
          if (!*v) return std::optional<std::string>{};
          auto enc = Codec::encode(**v);
          if (!enc) return enc.err();
          return std::optional<std::string>{std::move(*enc)};
        });
    if (!bytes) return bytes.err();
    return detail::decode_with<Codec, T>(*bytes);
  }

  /// Loads these keys from storage into L1; returns how many were found.
  result<std::size_t> warmup(std::span<const std::string> keys) { return node_->warmup(keys); }

  node& owner() const noexcept { return *node_; }

 private:
  node* node_;
};

}  // namespace warp
