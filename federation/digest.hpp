// Anti-entropy between regions: the federated keys a node holds (L1, storage, the
// remembered deletes) summarised as `digest_buckets` buckets of (XOR of a 64-bit hash of
// key|version|op, count). Two regions compare bucket by bucket and re-send only the keys
// of the buckets that differ (the receiver's LWW keeps whichever side is newer). XOR makes
// a bucket independent of the order keys are visited in. The frame is fixed-size:
//   "WFDG" | u8 version | 256 x (u64 hash | u64 count)
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"
#include "warp/version.hpp"

namespace warp::federation {

inline constexpr std::size_t digest_buckets = 256;

/// FNV-1a: the same on every build and platform (std::hash is not promised to be).
std::uint64_t stable_hash(std::string_view bytes) noexcept;
inline std::size_t bucket_of(std::string_view key) noexcept {
  return stable_hash(key) % digest_buckets;
}

struct digest {
  struct bucket {
    std::uint64_t hash = 0;
    std::uint64_t count = 0;
    friend bool operator==(const bucket&, const bucket&) = default;
  };
  std::array<bucket, digest_buckets> buckets{};
  void add(std::string_view key, version ver, bool erased);
  friend bool operator==(const digest&, const digest&) = default;
};

/// Buckets whose hash or count differ.
std::vector<std::size_t> differing(const digest& a, const digest& b);

std::string encode_digest(const digest& d);
result<digest> decode_digest(std::string_view bytes);

}  // namespace warp::federation
