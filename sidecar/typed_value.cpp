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

// The encoders size the value first and write it through a pointer: appending byte by byte
// was half of every LPUSH and ZADD (a capacity check per byte).
std::size_t varint_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

char* write_varint(char* p, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

char* write_bytes(char* p, std::string_view s) noexcept {
  p = write_varint(p, s.size());
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

char* write_double(char* p, double d) noexcept {
  auto bits = std::bit_cast<std::uint64_t>(d);
  for (int i = 0; i < 8; ++i) *p++ = static_cast<char>((bits >> (8 * i)) & 0xff);
  return p;
}

char* write_header(char* p, char tag, std::size_t count) noexcept {
  std::memcpy(p, magic.data(), magic.size());
  p += magic.size();
  *p++ = version;
  *p++ = tag;
  return write_varint(p, count);
}

struct reader {
  std::string_view in;
  bool ok = true;
  std::uint64_t varint() {
    if (!in.empty() && !(static_cast<unsigned char>(in.front()) & 0x80)) {  // the usual length
      auto v = static_cast<unsigned char>(in.front());
      in.remove_prefix(1);
      return v;
    }
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
      return scan_list(stored) ? value_type::list : value_type::string;
    case tag_zset:
      return scan_zset(stored) ? value_type::zset : value_type::string;
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
  std::size_t size = header_size + varint_size(v.size());
  for (auto e : v) size += varint_size(e.size()) + e.size();
  std::string out(size, '\0');
  char* p = write_header(out.data(), tag, v.size());
  for (auto e : v) p = write_bytes(p, e);
  return out;
}

}  // namespace

std::string encode_list(const list_t& v) { return encode_strings(tag_list, v); }

std::string encode_zset(const zset_t& v) {
  std::size_t size = header_size + varint_size(v.size());
  for (auto& e : v) size += 8 + varint_size(e.second.size()) + e.second.size();
  std::string out(size, '\0');
  char* p = write_header(out.data(), tag_zset, v.size());
  for (auto& [score, member] : v) p = write_bytes(write_double(p, score), member);
  return out;
}

std::string encode_set(const set_t& v) { return encode_strings(tag_set, v); }

std::string encode_hash(const hash_t& v) {
  std::size_t size = header_size + varint_size(v.size());
  for (auto& [f, val] : v)
    size += varint_size(f.size()) + f.size() + varint_size(val.size()) + val.size();
  std::string out(size, '\0');
  char* p = write_header(out.data(), tag_hash, v.size());
  for (auto& [f, val] : v) p = write_bytes(write_bytes(p, f), val);
  return out;
}

namespace {

// The scans run once per typed command over the whole value: they walk raw bytes (a
// reader per element cost ~100 instructions per sorted-set entry, most of ZRANGE 0 9).
// Same rules as reader: a varint of at most 10 bytes, every length within the value.
const char* get_varint(const char* p, const char* end, std::uint64_t& v) noexcept {
  if (p < end && !(static_cast<unsigned char>(*p) & 0x80)) {
    v = static_cast<unsigned char>(*p);
    return p + 1;
  }
  v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const auto b = static_cast<unsigned char>(*p++);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return p;
  }
  return nullptr;
}

/// Skips one (length, bytes) element; nullptr when it does not fit.
const char* get_bytes(const char* p, const char* end, std::string_view& out) noexcept {
  std::uint64_t len = 0;
  p = get_varint(p, end, len);
  if (!p || len > static_cast<std::uint64_t>(end - p)) return nullptr;
  out = {p, static_cast<std::size_t>(len)};
  return p + len;
}

double get_double(const char* p) noexcept {
  std::uint64_t bits = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&bits, p, 8);
  } else {
    for (int i = 0; i < 8; ++i)
      bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return std::bit_cast<double>(bits);
}

bool same_bytes(std::string_view a, std::string_view b) noexcept {
  // Members often share a prefix (user:1, user:2): the last byte rejects most of them.
  return a.size() == b.size() &&
         (a.empty() || (a.back() == b.back() && std::memcmp(a.data(), b.data(), a.size()) == 0));
}

/// The count after a header with this tag, and where the elements start.
bool scan_head(std::string_view stored, char tag, std::size_t min_item_bytes, scan_info& info) {
  auto p = payload(stored, tag);
  if (!p) return false;
  reader r{*p};
  info.count = r.count(min_item_bytes);
  info.body = stored.size() - r.in.size();
  return r.ok && info.count != 0;
}

}  // namespace

std::optional<scan_info> scan_list(std::string_view stored) {
  scan_info info;
  if (!scan_head(stored, tag_list, 1, info)) return std::nullopt;
  const char* const base = stored.data();
  const char* const end = base + stored.size();
  const char* p = base + info.body;
  std::string_view e;
  for (std::size_t i = 0; i < info.count; ++i) {
    info.last = static_cast<std::size_t>(p - base);
    if (!(p = get_bytes(p, end, e))) return std::nullopt;
  }
  if (p != end) return std::nullopt;
  return info;
}

std::optional<zscan_info> scan_zset(std::string_view stored, const std::string_view* member,
                                    const std::pair<double, std::string_view>* insert) {
  zscan_info info;
  if (!scan_head(stored, tag_zset, 9, info)) return std::nullopt;
  const char* const base = stored.data();
  const char* const end = base + stored.size();
  const char* p = base + info.body;
  info.insert_at = stored.size();
  bool placed = false;
  std::pair<double, std::string_view> prev, cur;
  for (std::size_t i = 0; i < info.count; ++i) {
    const char* at = p;
    if (end - p < 8) return std::nullopt;
    cur.first = get_double(p);
    if (!(p = get_bytes(p + 8, end, cur.second))) return std::nullopt;
    // The decoder's checks: no NaN, strictly in (score, member) order.
    if (cur.first != cur.first || (i > 0 && !zless(prev, cur))) return std::nullopt;
    const bool is_member = member && !info.found && same_bytes(cur.second, *member);
    if (is_member) {
      info.found = true;
      info.score = cur.first;
      info.rank = i;
      info.at = static_cast<std::size_t>(at - base);
      info.end = static_cast<std::size_t>(p - base);
    } else if (insert && !placed && zless(*insert, cur)) {
      placed = true;
      info.insert_at = static_cast<std::size_t>(at - base);
    }
    info.last = static_cast<std::size_t>(at - base);
    prev = cur;
  }
  if (p != end) return std::nullopt;
  return info;
}

std::string_view cursor::bytes() noexcept {
  if (pos_ >= s_.size()) return {};
  reader r{s_.substr(pos_)};
  auto b = r.bytes();
  if (!r.ok) {
    pos_ = s_.size();
    return {};
  }
  pos_ = s_.size() - r.in.size();
  return b;
}

double cursor::score() noexcept {
  if (pos_ + 8 > s_.size()) {
    pos_ = s_.size();
    return 0;
  }
  reader r{s_.substr(pos_, 8)};
  pos_ += 8;
  return r.dbl();
}

void cursor::skip(bool zset) noexcept {
  if (zset) score();
  bytes();
}

std::string begin_value(value_type t, std::size_t count, std::size_t reserve) {
  const char tag = t == value_type::zset ? tag_zset : tag_list;
  std::string out;
  out.reserve(header_size + varint_size(count) + reserve);
  out.resize(header_size + varint_size(count));
  write_header(out.data(), tag, count);
  return out;
}

void append_element(std::string& out, std::string_view element) {
  put_bytes(out, element);
}

void append_entry(std::string& out, double score, std::string_view member) {
  put_double(out, score);
  put_bytes(out, member);
}

std::size_t zset_insert_pos(std::string_view stored, std::size_t body, double score,
                            std::string_view member, std::size_t skip_at, std::size_t skip_end) {
  const std::pair<double, std::string_view> item{score, member};
  reader r{stored.substr(std::min(body, stored.size()))};
  while (!r.in.empty()) {
    const std::size_t at = stored.size() - r.in.size();
    std::pair<double, std::string_view> cur;
    cur.first = r.dbl();
    cur.second = r.bytes();
    if (!r.ok) break;
    if (skip_end != 0 && at == skip_at) continue;
    if (zless(item, cur)) return at;
  }
  return stored.size();
}

}  // namespace typed
}  // namespace warp::sidecar
