// Encoding of typed values (layout in typed_value.hpp and docs/sidecar.md). Payloads are
// length-prefixed with LEB128 varints; scores are IEEE-754 doubles, little-endian. Every
// length is checked against the bytes left before anything is allocated, so a damaged or
// hostile value decodes to nullopt, never to a huge allocation.
#include "sidecar/typed_value.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <span>

namespace warp::sidecar {

std::string_view type_name(value_type t) noexcept {
  switch (t) {
    case value_type::string:
      return "string";
    case value_type::list:
      return "list";
    case value_type::zset:
      return "zset";
    case value_type::set:
      return "set";
    case value_type::hash:
      return "hash";
    default:
      return "none";
  }
}

namespace typed {

namespace {

constexpr char tag_string = 'r', tag_list = 'l', tag_zset = 'z', tag_set = 's', tag_hash = 'h';

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_bytes(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

void put_double(std::string& out, double d) {
  auto bits = std::bit_cast<std::uint64_t>(d);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

std::string header(char tag) {
  std::string out(magic);
  out.push_back(version);
  out.push_back(tag);
  return out;
}

struct reader {
  std::string_view in;
  bool ok = true;
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      auto b = static_cast<unsigned char>(in.front());
      in.remove_prefix(1);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::string_view bytes() {
    auto n = varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    auto s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
  double dbl() {
    if (in.size() < 8) {
      ok = false;
      return 0;
    }
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i)
      bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(8);
    return std::bit_cast<double>(bits);
  }
  /// An element count: each element takes at least `min_bytes`, so a count larger than the
  /// bytes left allow is damage (and never becomes a reserve()).
  std::size_t count(std::size_t min_bytes) {
    auto n = varint();
    if (!ok || n > in.size() / min_bytes) {
      ok = false;
      return 0;
    }
    return static_cast<std::size_t>(n);
  }
};

/// The payload after a header with this tag, or nullopt.
std::optional<std::string_view> payload(std::string_view stored, char tag) {
  if (stored.size() < header_size || stored.substr(0, magic.size()) != magic ||
      stored[3] != version || stored[4] != tag)
    return std::nullopt;
  return stored.substr(header_size);
}

/// A collection encoded as a count and `count` items (each at least `min_item_bytes`, so
/// the count is bounded by the bytes present before anything is reserved); `read_item`
/// appends one item and clears `r.ok` when it breaks an invariant (order, NaN). Empty
/// collections are never stored: a count of 0 does not decode.
template <class Out, class ReadItem>
std::optional<Out> decode_items(std::string_view stored, char tag, std::size_t min_item_bytes,
                                ReadItem read_item) {
  auto p = payload(stored, tag);
  if (!p) return std::nullopt;
  reader r{*p};
  auto n = r.count(min_item_bytes);
  Out out;
  out.reserve(n);
  for (std::size_t i = 0; i < n && r.ok; ++i) read_item(r, out);
  if (!r.ok || !r.in.empty() || n == 0) return std::nullopt;
  return out;
}

}  // namespace

value_type type_of(std::string_view stored) noexcept {
  if (!needs_escape(stored)) return value_type::string;
  if (stored.size() < header_size || stored[3] != version) return value_type::string;
  // A header-like prefix counts only when the whole value decodes (see the header comment).
  switch (stored[4]) {
    case tag_list:
      return decode_list(stored) ? value_type::list : value_type::string;
    case tag_zset:
      return decode_zset(stored) ? value_type::zset : value_type::string;
    case tag_set:
      return decode_set(stored) ? value_type::set : value_type::string;
    case tag_hash:
      return decode_hash(stored) ? value_type::hash : value_type::string;
    default:
      return value_type::string;
  }
}

std::string_view string_payload(std::string_view stored) noexcept {
  if (auto p = payload(stored, tag_string)) return *p;
  return stored;
}

std::string encode_string(std::string_view value) {
  if (!needs_escape(value)) return std::string(value);
  auto out = header(tag_string);
  out.append(value);
  return out;
}

std::optional<list_t> decode_list(std::string_view stored) {
  return decode_items<list_t>(stored, tag_list, 1,
                              [](reader& r, list_t& out) { out.push_back(r.bytes()); });
}

std::optional<zset_t> decode_zset(std::string_view stored) {
  return decode_items<zset_t>(stored, tag_zset, 9, [](reader& r, zset_t& out) {
    double s = r.dbl();
    out.emplace_back(s, r.bytes());
    if (s != s) r.ok = false;  // NaN: never stored
    auto i = out.size() - 1;
    if (i > 0 && r.ok && !zless(out[i - 1], out[i])) r.ok = false;
  });
}

std::optional<set_t> decode_set(std::string_view stored) {
  return decode_items<set_t>(stored, tag_set, 1, [](reader& r, set_t& out) {
    out.push_back(r.bytes());
    auto i = out.size() - 1;
    if (i > 0 && r.ok && !(out[i - 1] < out[i])) r.ok = false;
  });
}

std::optional<hash_t> decode_hash(std::string_view stored) {
  return decode_items<hash_t>(stored, tag_hash, 2, [](reader& r, hash_t& out) {
    auto f = r.bytes();
    out.emplace_back(f, r.bytes());
  });
}

namespace {

// Lists and sets share one body: a count, then each element's bytes.
std::string encode_strings(char tag, std::span<const std::string_view> v) {
  auto out = header(tag);
  std::size_t size = out.size() + 10;
  for (auto e : v) size += e.size() + 5;
  out.reserve(size);
  put_varint(out, v.size());
  for (auto e : v) put_bytes(out, e);
  return out;
}

}  // namespace

std::string encode_list(const list_t& v) { return encode_strings(tag_list, v); }

std::string encode_zset(const zset_t& v) {
  auto out = header(tag_zset);
  std::size_t size = out.size() + 10;
  for (auto& e : v) size += e.second.size() + 13;
  out.reserve(size);
  put_varint(out, v.size());
  for (auto& [score, member] : v) {
    put_double(out, score);
    put_bytes(out, member);
  }
  return out;
}

std::string encode_set(const set_t& v) { return encode_strings(tag_set, v); }

std::string encode_hash(const hash_t& v) {
  auto out = header(tag_hash);
  std::size_t size = out.size() + 10;
  for (auto& [f, val] : v) size += f.size() + val.size() + 10;
  out.reserve(size);
  put_varint(out, v.size());
  for (auto& [f, val] : v) {
    put_bytes(out, f);
    put_bytes(out, val);
  }
  return out;
}

}  // namespace typed
}  // namespace warp::sidecar
