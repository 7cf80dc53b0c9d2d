#include "bus/hot_keys_wire.hpp"

namespace warp::bus {

namespace {

constexpr char magic = 'H';
constexpr char version = 1;

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool get_be(std::string_view& in, int bytes, std::uint64_t& v) {
  if (in.size() < static_cast<std::size_t>(bytes)) return false;
  v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(static_cast<std::size_t>(bytes));
  return true;
}

error bad(const char* what) {
  return error{errc::codec_error, std::string{"hot-key list: "} + what};
}

}  // namespace

std::string encode_hot_keys(const std::vector<hot_key_item>& items) {
  std::string out{magic, version};
  put_be(out, items.size(), 4);
  for (const auto& it : items) {
    put_be(out, it.key.size(), 4);
    out += it.key;
    put_be(out, it.reads, 8);
  }
  return out;
}

result<std::vector<hot_key_item>> decode_hot_keys(std::string_view in, std::size_t max_items,
                                                  std::size_t max_key_bytes) {
  if (in.size() < 6 || in[0] != magic) return bad("not a hot-key list");
  if (in[1] != version) return bad("unknown version");
  in.remove_prefix(2);
  std::uint64_t count = 0;
  get_be(in, 4, count);
  if (count > max_items) return bad("too many keys");
  // Each item takes at least 12 bytes: a count larger than the rest allows is a lie.
  if (count > in.size() / 12) return bad("truncated");
  std::vector<hot_key_item> out;
  out.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t len = 0, reads = 0;
    if (!get_be(in, 4, len)) return bad("truncated");
    if (len > max_key_bytes) return bad("key too large");
    if (in.size() < len + 8) return bad("truncated");
    std::string key{in.substr(0, static_cast<std::size_t>(len))};
    in.remove_prefix(static_cast<std::size_t>(len));
    get_be(in, 8, reads);
    out.push_back({std::move(key), reads});
  }
  if (!in.empty()) return bad("trailing bytes");
  return out;
}

}  // namespace warp::bus
