// The sidecar's value encoding for Redis's non-string types (lists, sorted sets, sets,
// hashes): one storage value per key, so every type goes through node.update() and is
// stored, invalidated and propagated exactly like a string.
//
// Why a tag inside the value: a storage record is (value, expiry, version) and has no type
// field, and adding one would change every adapter, L1 and the wire protocol. So a typed
// value starts with a 5-byte header that no UTF-8 text can start with:
//
//     0xFF 'W' 'T' <version = 0x01> <type: 'l' list, 'z' zset, 's' set, 'h' hash, 'r' string>
//
// Plain strings stay byte-identical to what they always were. The one collision, a binary
// string that happens to start with the header, is handled on both sides: a string the
// sidecar writes that starts with 0xFF 'W' 'T' is stored escaped (type 'r', the raw bytes
// after the header) and read back unescaped, so a client can store any bytes; and a value
// written earlier (or through another API) that starts with the header but does not decode
// completely under the header's type is read as a plain string. docs/sidecar.md,
// "Value encoding", has the full layout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warp::sidecar {

enum class value_type : std::uint8_t { none, string, list, zset, set, hash };

/// Redis's name for TYPE: "string", "list", "zset", "set", "hash", "none".
std::string_view type_name(value_type t) noexcept;

namespace typed {

inline constexpr std::string_view magic = "\xffWT";
inline constexpr char version = 1;
inline constexpr std::size_t header_size = 5;

/// The type of stored bytes (never none): string for plain and escaped strings and for
/// anything that starts like a header but does not decode.
value_type type_of(std::string_view stored) noexcept;

/// The client-visible bytes of a value whose type_of() is string.
std::string_view string_payload(std::string_view stored) noexcept;

/// True when `value` must be stored escaped (it starts with the magic).
inline bool needs_escape(std::string_view value) noexcept {
  return value.size() >= magic.size() && value.substr(0, magic.size()) == magic;
}
/// What to store for the string `value`: itself, or escaped.
std::string encode_string(std::string_view value);

// Decoded forms view the stored bytes (and, while a command builds a new value, its
// arguments): decoding copies no element.
using list_t = std::vector<std::string_view>;
/// Sorted by (score, member bytes), as Redis orders a sorted set.
using zset_t = std::vector<std::pair<double, std::string_view>>;
/// Sorted by member bytes (membership is a binary search).
using set_t = std::vector<std::string_view>;
/// Insertion order, as Redis keeps a small hash (HGETALL's order).
using hash_t = std::vector<std::pair<std::string_view, std::string_view>>;

/// Decoders: nullopt when `stored` is not a complete, valid value of that type.
std::optional<list_t> decode_list(std::string_view stored);
std::optional<zset_t> decode_zset(std::string_view stored);
std::optional<set_t> decode_set(std::string_view stored);
std::optional<hash_t> decode_hash(std::string_view stored);

std::string encode_list(const list_t& v);
std::string encode_zset(const zset_t& v);
std::string encode_set(const set_t& v);
std::string encode_hash(const hash_t& v);

/// Redis's sorted-set order.
inline bool zless(const std::pair<double, std::string_view>& a,
                  const std::pair<double, std::string_view>& b) noexcept {
  return a.first < b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace typed
}  // namespace warp::sidecar
