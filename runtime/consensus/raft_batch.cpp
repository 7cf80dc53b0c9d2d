#include "runtime/consensus/raft_batch.hpp"

#include <cstring>

namespace warp::consensus {

namespace {

template <class T>
void put_le(std::string& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff));
}

template <class T>
bool get_le(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    x |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  v = static_cast<T>(x);
  in.remove_prefix(sizeof(T));
  return true;
}

error bad(std::string what) {
  return error{errc::codec_error, "raft batch: " + std::move(what)};
}

}  // namespace

result<std::string> encode(const raft_batch& b, const batch_limits& lim) {
  if (b.items.size() > lim.max_items)
    return error{errc::invalid_argument, "raft batch: too many items"};
  std::size_t size = batch_header_bytes();
  for (const auto& it : b.items) {
    if (it.bytes.size() > lim.max_item_bytes)
      return error{errc::invalid_argument, "raft batch: item too large"};
    size += batch_item_overhead() + it.bytes.size();
  }
  if (size > lim.max_frame_bytes) return error{errc::invalid_argument, "raft batch: too large"};
  std::string out;
  out.reserve(size);
  out.push_back(static_cast<char>(raft_batch_version));
  put_le<std::uint64_t>(out, b.sender);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(b.items.size()));
  for (const auto& it : b.items) {
    put_le<std::uint32_t>(out, it.group);
    put_le<std::uint32_t>(out, static_cast<std::uint32_t>(it.bytes.size()));
    out.append(it.bytes);
  }
  return out;
}

result<raft_batch> decode_batch(std::string_view in, const batch_limits& lim) {
  if (in.size() > lim.max_frame_bytes) return bad("frame above max_frame_bytes");
  if (in.empty()) return bad("empty frame");
  auto ver = static_cast<std::uint8_t>(in[0]);
  if (ver != raft_batch_version) return bad("unknown version " + std::to_string(ver));
  in.remove_prefix(1);
  raft_batch b;
  std::uint32_t count = 0;
  if (!get_le(in, b.sender) || !get_le(in, count)) return bad("truncated header");
  if (b.sender == 0) return bad("sender 0");
  // Each item takes at least its 8-byte header: a count the remaining bytes cannot hold is
  // refused before the vector is sized for it.
  if (count > lim.max_items || count > in.size() / batch_item_overhead())
    return bad("count " + std::to_string(count) + " beyond the frame or the limit");
  b.items.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    batch_item it;
    std::uint32_t len = 0;
    if (!get_le(in, it.group) || !get_le(in, len)) return bad("truncated item header");
    if (len > lim.max_item_bytes || len > in.size()) return bad("item length beyond the frame");
    it.bytes.assign(in.substr(0, len));
    in.remove_prefix(len);
    b.items.push_back(std::move(it));
  }
  if (!in.empty()) return bad("trailing bytes");
  return b;
}

}  // namespace warp::consensus
