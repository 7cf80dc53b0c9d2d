#include "federation/frame.hpp"

#include "runtime/consensus/byte_codec.hpp"

namespace warp::federation {

namespace {
constexpr std::string_view magic = "WFED";
}

result<std::string> encode(const batch& b, const frame_limits& lim) {
  using namespace warp::consensus;
  if (b.changes.size() > lim.max_changes || b.sender.size() > lim.max_name)
    return error{errc::invalid_argument, "federation frame: too many changes or sender name"};
  std::string out{magic};
  put_u8(out, frame_version);
  put_str(out, b.sender);
  put_u64(out, b.seq);
  put_u64(out, b.changes.size());
  for (const auto& c : b.changes) {
    if (c.key.size() > lim.max_key || c.value.size() > lim.max_value ||
        c.path.size() > lim.max_path || c.origin.size() > lim.max_name ||
        c.policy.size() > lim.max_name)
      return error{errc::invalid_argument, "federation frame: a change exceeds the limits"};
    put_u8(out, static_cast<std::uint8_t>(c.what));
    put_str(out, c.key);
    put_str(out, c.value);
    put_u64(out, c.ver.hlc);
    put_u64(out, c.ver.node);
    put_u64(out, static_cast<std::uint64_t>(c.expires_at_ms));
    put_str(out, c.origin);
    put_u64(out, c.path.size());
    for (const auto& r : c.path) {
      if (r.size() > lim.max_name)
        return error{errc::invalid_argument, "federation frame: region name too long"};
      put_str(out, r);
    }
    put_str(out, c.policy);
  }
  if (out.size() > lim.max_frame_bytes)
    return error{errc::invalid_argument, "federation frame: larger than the frame limit"};
  return out;
}

result<batch> decode(std::string_view bytes, const frame_limits& lim) {
  using warp::consensus::byte_reader;
  auto bad = [](const char* why) {
    return error{errc::codec_error, std::string{"federation frame: "} + why};
  };
  if (bytes.size() > lim.max_frame_bytes) return bad("larger than the frame limit");
  if (bytes.substr(0, magic.size()) != magic) return bad("no WFED magic");
  byte_reader rd{bytes.substr(magic.size())};
  if (auto v = rd.u8(); !rd.ok || v != frame_version) return bad("unknown version");
  batch b;
  b.sender = rd.str(lim.max_name);
  b.seq = rd.u64();
  auto n = rd.count(lim.max_changes);
  if (!rd.ok) return bad("truncated header");
  // Smallest change: op + 3 u64 + 5 empty strings' lengths + path count = 8 x 8 + 1 bytes.
  if (n > rd.in.size() / 65) return bad("count beyond the bytes left");
  b.changes.reserve(n);
  for (std::uint64_t i = 0; i < n && rd.ok; ++i) {
    change c;
    auto op = rd.u8();
    if (op != 1 && op != 2) return bad("unknown op");
    c.what = static_cast<change::op>(op);
    c.key = rd.str(lim.max_key);
    c.value = rd.str(lim.max_value);
    c.ver.hlc = rd.u64();
    auto node = rd.u64();
    if (node > 0xffffffffu) return bad("node id out of range");
    c.ver.node = static_cast<std::uint32_t>(node);
    c.expires_at_ms = static_cast<std::int64_t>(rd.u64());
    c.origin = rd.str(lim.max_name);
    auto p = rd.count(lim.max_path);
    for (std::uint64_t j = 0; j < p && rd.ok; ++j) c.path.push_back(rd.str(lim.max_name));
    c.policy = rd.str(lim.max_name);
    if (!rd.ok) return bad("truncated or oversized change");
    if (c.key.empty() || c.origin.empty()) return bad("empty key or origin");
    b.changes.push_back(std::move(c));
  }
  if (!rd.done()) return bad("truncated, or trailing bytes");
  return b;
}

}  // namespace warp::federation
