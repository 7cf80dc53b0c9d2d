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

// Walking a value without decoding it: the typed writes most clients send (LPUSH, RPUSH,
// LPOP, RPOP, ZADD of one pair) and the reads of a few elements (LRANGE, LINDEX, ZRANGE by
// rank, ZSCORE, ZRANK) splice or read the encoded bytes instead of building a vector of
// every element and encoding it again. A scan validates exactly what the decoder validates
// (the same values are lists or sorted sets: a damaged one is still a plain string), in one
// pass that allocates nothing.

/// A list or sorted set as a scan found it: `count` elements, the first starting at byte
/// `body` (after the count), the last at `last`.
struct scan_info {
  std::size_t count = 0;
  std::size_t body = 0;
  std::size_t last = 0;
};
/// nullopt when decode_list would refuse `stored`.
std::optional<scan_info> scan_list(std::string_view stored);

/// A sorted set's scan, with the entry of one member when asked for and present.
struct zscan_info : scan_info {
  bool found = false;
  double score = 0;      ///< the member's score
  std::size_t rank = 0;  ///< its index in (score, member) order
  std::size_t at = 0;    ///< its entry's first byte
  std::size_t end = 0;   ///< one past its entry's last byte
  /// Where the entry `insert` goes (zset_insert_pos, skipping the member's own entry);
  /// the value's size when it goes last or none was asked for.
  std::size_t insert_at = 0;
};
/// nullopt when decode_zset would refuse `stored`. On the way, `member` (optional) is
/// looked up and the place of the entry `insert` (optional, its member `member`) found.
std::optional<zscan_info> scan_zset(std::string_view stored,
                                    const std::string_view* member = nullptr,
                                    const std::pair<double, std::string_view>* insert = nullptr);

/// Reads the elements of a value a scan accepted, from a byte offset on (bounds are still
/// checked: a reader past the end returns empty elements, never reads outside).
class cursor {
 public:
  cursor(std::string_view stored, std::size_t pos) noexcept : s_(stored), pos_(pos) {}
  std::size_t pos() const noexcept { return pos_; }
  /// A list element or a sorted-set member.
  std::string_view bytes() noexcept;
  /// A sorted-set entry's score (before its member).
  double score() noexcept;
  /// Skips one list element (`zset`: one sorted-set entry).
  void skip(bool zset = false) noexcept;

 private:
  std::string_view s_;
  std::size_t pos_;
};

/// The start of a value of type `t` (list or zset) holding `count` elements: header and
/// count; the caller appends the encoded elements (spliced bytes of another value of the
/// type, or append_element/append_entry) and sizes `reserve` for them.
std::string begin_value(value_type t, std::size_t count, std::size_t reserve);
/// Appends one encoded list element.
void append_element(std::string& out, std::string_view element);
/// Appends one encoded sorted-set entry.
void append_entry(std::string& out, double score, std::string_view member);
/// The offset in a sorted-set value where an entry (score, member) goes, skipping the
/// entry in [skip_at, skip_end) (the member's current one; 0, 0: none): the first entry
/// after it in (score, member) order, or the value's end.
std::size_t zset_insert_pos(std::string_view stored, std::size_t body, double score,
                            std::string_view member, std::size_t skip_at = 0,
                            std::size_t skip_end = 0);

/// Redis's sorted-set order.
inline bool zless(const std::pair<double, std::string_view>& a,
                  const std::pair<double, std::string_view>& b) noexcept {
  return a.first < b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace typed
}  // namespace warp::sidecar
