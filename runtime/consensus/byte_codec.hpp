// The byte layout of replicated commands and state-machine snapshots: fixed-width
// little-endian integers and length-prefixed strings. These bytes come from the log, from a
// peer's snapshot or from a proposer on another node, so the reader checks every length
// against a bound and against the bytes left before it copies anything: a corrupt or
// hostile input costs a failed decode, never a large allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace warp::consensus {

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

/// Reads what the put_* functions wrote. The first failure sticks (`ok` false) and every
/// later read returns a zero value, so a decoder reads all its fields and checks `ok` once.
struct byte_reader {
  std::string_view in;
  bool ok = true;

  std::uint8_t u8() {
    if (in.empty()) return fail(), 0;
    auto v = static_cast<std::uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }

  std::uint64_t u64() {
    if (in.size() < 8) return fail(), 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(8);
    return v;
  }

  /// A string of at most `max` bytes.
  std::string str(std::size_t max) {
    auto n = u64();
    if (!ok || n > max || n > in.size()) return fail(), std::string{};
    std::string s{in.substr(0, n)};
    in.remove_prefix(n);
    return s;
  }

  /// An element count of at most `max`. Callers still never reserve by it: each element is
  /// read (and bounded by the bytes left) one at a time.
  std::uint64_t count(std::uint64_t max) {
    auto n = u64();
    if (!ok || n > max) return fail(), 0;
    return n;
  }

  /// True when everything was read and nothing is left over.
  bool done() const noexcept { return ok && in.empty(); }

  void fail() noexcept {
    ok = false;
    in = {};
  }
};

}  // namespace warp::consensus
