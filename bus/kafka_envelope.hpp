// The change envelope on Kafka topics (docs/kafka.md, "Envelope"): one record per change,
// Debezium-like field names so any consumer can read it, in one of two encodings chosen per
// topic. Both carry a version field; a reader rejects versions it does not know.
//
// JSON (one object):
//   {"v":1, "op":"c|u|d|r", "key":"user:1" (or "key_b64" when the key is not UTF-8),
//    "value":"<base64>"|null, "version":{"hlc":N,"node":N}, "origin":"eu",
//    "path":["eu","us"], "ttl_ms":N, "ts_ms":N, "policy":"counter" (absent = lww)}
// msgpack (an array):
//   [v=1, op(uint: 'c','u','d','r'), key(bin), value(bin|nil), hlc, node, origin(str),
//    [path(str)...], ttl_ms, ts_ms (, policy(str): an 11th element, absent = lww)]
//
// Decoding never trusts the input: the size is checked before parsing, JSON nesting is
// bounded before the parser runs, every field is type- and size-checked, and any failure is
// an errc::codec_error (never an exception or a crash). Fuzzed by test/bus (20,000 inputs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"
#include "warp/version.hpp"

namespace warp::bus {

inline constexpr std::uint8_t kafka_envelope_version = 1;

enum class kafka_format : std::uint8_t { json = 0, msgpack = 1 };

/// "json" / "msgpack"; parse_kafka_format rejects anything else.
std::string_view to_string(kafka_format f) noexcept;
result<kafka_format> parse_kafka_format(std::string_view text);

/// Debezium's op letters, plus r (Debezium: snapshot read; Warp: a repair).
enum class kafka_op : char { create = 'c', update = 'u', remove = 'd', repair = 'r' };

struct kafka_change {
  kafka_op op = kafka_op::update;
  std::string key;
  bool has_value = false;         ///< false for deletes (JSON null, msgpack nil)
  std::string value;              ///< raw bytes (base64 in JSON)
  version ver;                    ///< HLC + writer node
  std::string origin;             ///< region that made the change
  std::vector<std::string> path;  ///< regions it went through, origin first (loop-freedom)
  std::int64_t ttl_ms = 0;        ///< value expiry relative to ts_ms; 0 = none
  std::int64_t ts_ms = 0;         ///< wall clock of the change at its origin
  /// Merge policy of the key (federation: counter, set, ...); empty = lww, and then absent
  /// on the wire, so a plain change's bytes are those of a reader that predates the field.
  std::string policy;
  friend bool operator==(const kafka_change&, const kafka_change&) = default;
};

struct kafka_limits {
  std::size_t max_message_bytes = 24 * 1024 * 1024;  ///< whole encoded record
  std::size_t max_key_bytes = 64 * 1024;
  std::size_t max_value_bytes = 16 * 1024 * 1024;
  std::size_t max_text_bytes = 256;  ///< origin, each path entry
  std::size_t max_path = 64;         ///< regions in path
  std::size_t max_json_depth = 8;
};

/// errc::invalid_argument when a bound is exceeded.
result<std::string> encode(const kafka_change& c, kafka_format f, const kafka_limits& l = {});
/// errc::codec_error on anything malformed, of an unknown version or out of bounds.
result<kafka_change> decode_kafka(std::string_view bytes, kafka_format f,
                                  const kafka_limits& l = {});

/// Standard base64 (RFC 4648, with padding). decode fails on bad characters or padding.
std::string base64_encode(std::string_view bytes);
result<std::string> base64_decode(std::string_view text, std::size_t max_bytes);

/// Deepest nesting of objects/arrays in `json`, skipping strings, stopping early once past
/// `limit` (so a hostile input costs one linear scan): checked before any JSON parser runs.
std::size_t json_depth(std::string_view json, std::size_t limit) noexcept;

}  // namespace warp::bus
