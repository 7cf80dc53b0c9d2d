#include "federation/digest.hpp"

#include "runtime/consensus/byte_codec.hpp"

namespace warp::federation {

namespace {
constexpr std::string_view magic = "WFDG";
constexpr std::uint8_t digest_version = 1;
}  // namespace

std::uint64_t stable_hash(std::string_view bytes) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void digest::add(std::string_view key, version ver, bool erased) {
  std::string item{key};
  item.push_back('\0');
  item += std::to_string(ver.hlc) + ":" + std::to_string(ver.node) + (erased ? "d" : "p");
  auto& b = buckets[bucket_of(key)];
  b.hash ^= stable_hash(item);
  ++b.count;
}

std::vector<std::size_t> differing(const digest& a, const digest& b) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < digest_buckets; ++i)
    if (!(a.buckets[i] == b.buckets[i])) out.push_back(i);
  return out;
}

std::string encode_digest(const digest& d) {
  std::string out{magic};
  consensus::put_u8(out, digest_version);
  for (const auto& b : d.buckets) {
    consensus::put_u64(out, b.hash);
    consensus::put_u64(out, b.count);
  }
  return out;
}

result<digest> decode_digest(std::string_view bytes) {
  constexpr std::size_t size = 4 + 1 + digest_buckets * 16;
  if (bytes.size() != size || bytes.substr(0, 4) != magic)
    return error{errc::codec_error, "federation digest: wrong size or magic"};
  consensus::byte_reader rd{bytes.substr(4)};
  if (rd.u8() != digest_version)
    return error{errc::codec_error, "federation digest: unknown version"};
  digest d;
  for (auto& b : d.buckets) {
    b.hash = rd.u64();
    b.count = rd.u64();
  }
  if (!rd.done()) return error{errc::codec_error, "federation digest: malformed"};
  return d;
}

}  // namespace warp::federation
