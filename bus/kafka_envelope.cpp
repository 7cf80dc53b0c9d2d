#include "bus/kafka_envelope.hpp"

#include <array>
#include <limits>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include "bus/msgpack_fields.hpp"

namespace warp::bus {

namespace {

constexpr char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool valid_op(std::uint64_t c) {
  return c == 'c' || c == 'u' || c == 'd' || c == 'r';
}

error too_big(const char* what) {
  return error{errc::invalid_argument, std::string{"kafka envelope: "} + what + " too large"};
}

result<void> check_bounds(const kafka_change& c, const kafka_limits& l) {
  if (!valid_op(static_cast<unsigned char>(c.op)))
    return error{errc::invalid_argument, "kafka envelope: bad op"};
  if (c.key.size() > l.max_key_bytes) return too_big("key");
  if (c.value.size() > l.max_value_bytes) return too_big("value");
  if (c.origin.size() > l.max_text_bytes) return too_big("origin");
  if (c.path.size() > l.max_path) return too_big("path");
  for (auto& p : c.path)
    if (p.size() > l.max_text_bytes) return too_big("path entry");
  if (c.policy.size() > l.max_text_bytes) return too_big("policy");
  return {};
}

error bad(std::string_view what) {
  return error{errc::codec_error, std::string{"bad kafka envelope: "}.append(what)};
}

// -- JSON -------------------------------------------------------------------------------

result<std::string> encode_json(const kafka_change& c) {
  nlohmann::json j;
  j["v"] = kafka_envelope_version;
  j["op"] = std::string(1, static_cast<char>(c.op));
  // JSON strings must be UTF-8: a binary key travels base64 in its own field.
  try {
    (void)nlohmann::json(c.key).dump();
    j["key"] = c.key;
  } catch (const nlohmann::json::exception&) {
    j["key_b64"] = base64_encode(c.key);
  }
  if (c.has_value)
    j["value"] = base64_encode(c.value);
  else
    j["value"] = nullptr;
  j["version"] = {{"hlc", c.ver.hlc}, {"node", c.ver.node}};
  j["origin"] = c.origin;
  j["path"] = c.path;
  j["ttl_ms"] = c.ttl_ms;
  j["ts_ms"] = c.ts_ms;
  if (!c.policy.empty()) j["policy"] = c.policy;
  try {
    return j.dump();
  } catch (const nlohmann::json::exception&) {
    return error{errc::invalid_argument, "kafka envelope: origin or path is not UTF-8"};
  }
}

result<std::string> json_text(const nlohmann::json& j, const char* field, std::size_t max) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_string())
    return bad(std::string{field} + " missing or not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) return bad(std::string{field} + " too large");
  return s;
}

template <class T>
result<T> json_uint(const nlohmann::json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_number_unsigned())
    return bad(std::string{field} + " not an unsigned");
  auto v = it->get<std::uint64_t>();
  if (v > std::numeric_limits<T>::max()) return bad(std::string{field} + " out of range");
  return static_cast<T>(v);
}

result<std::int64_t> json_int(const nlohmann::json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return std::int64_t{0};  // optional: absent = 0
  if (it->is_number_unsigned()) {
    auto v = it->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return bad(std::string{field} + " out of range");
    return static_cast<std::int64_t>(v);
  }
  if (it->is_number_integer()) return it->get<std::int64_t>();
  return bad(std::string{field} + " not an integer");
}

result<kafka_change> decode_json(std::string_view bytes, const kafka_limits& l) {
  if (json_depth(bytes, l.max_json_depth) > l.max_json_depth) return bad("nested too deep");
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) return bad("not JSON");
  if (!j.is_object()) return bad("not an object");
  auto v = json_uint<std::uint8_t>(j, "v");
  if (!v) return v.err();
  if (*v != kafka_envelope_version) return bad("unknown version");
  kafka_change c;
  auto op = json_text(j, "op", 1);
  if (!op) return op.err();
  if (op->size() != 1 || !valid_op(static_cast<unsigned char>((*op)[0]))) return bad("bad op");
  c.op = static_cast<kafka_op>((*op)[0]);
  if (j.contains("key_b64")) {
    auto k64 = json_text(j, "key_b64", (l.max_key_bytes + 2) / 3 * 4);
    if (!k64) return k64.err();
    auto k = base64_decode(*k64, l.max_key_bytes);
    if (!k) return k.err();
    c.key = std::move(*k);
  } else {
    auto k = json_text(j, "key", l.max_key_bytes);
    if (!k) return k.err();
    c.key = std::move(*k);
  }
  auto val = j.find("value");
  if (val != j.end() && !val->is_null()) {
    if (!val->is_string()) return bad("value not a string");
    auto d = base64_decode(val->get_ref<const std::string&>(), l.max_value_bytes);
    if (!d) return d.err();
    c.value = std::move(*d);
    c.has_value = true;
  }
  auto ver = j.find("version");
  if (ver == j.end() || !ver->is_object()) return bad("version missing or not an object");
  auto hlc = json_uint<std::uint64_t>(*ver, "hlc");
  if (!hlc) return hlc.err();
  auto node = json_uint<std::uint32_t>(*ver, "node");
  if (!node) return node.err();
  c.ver = version{*hlc, *node};
  auto origin = json_text(j, "origin", l.max_text_bytes);
  if (!origin) return origin.err();
  c.origin = std::move(*origin);
  auto path = j.find("path");
  if (path != j.end()) {
    if (!path->is_array()) return bad("path not an array");
    if (path->size() > l.max_path) return bad("path too long");
    for (auto& p : *path) {
      if (!p.is_string()) return bad("path entry not a string");
      auto& s = p.get_ref<const std::string&>();
      if (s.size() > l.max_text_bytes) return bad("path entry too large");
      c.path.push_back(s);
    }
  }
  auto ttl = json_int(j, "ttl_ms");
  if (!ttl) return ttl.err();
  auto ts = json_int(j, "ts_ms");
  if (!ts) return ts.err();
  if (*ttl < 0) return bad("ttl_ms negative");
  c.ttl_ms = *ttl;
  c.ts_ms = *ts;
  if (j.contains("policy")) {
    auto policy = json_text(j, "policy", l.max_text_bytes);
    if (!policy) return policy.err();
    if (policy->empty()) return bad("policy empty");
    c.policy = std::move(*policy);
  }
  if (c.op == kafka_op::remove && c.has_value) return bad("a delete carries a value");
  return c;
}

// -- msgpack ----------------------------------------------------------------------------

result<std::string> encode_msgpack(const kafka_change& c) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(c.policy.empty() ? 10 : 11);
  pk.pack_uint8(kafka_envelope_version);
  pk.pack_uint8(static_cast<std::uint8_t>(c.op));
  pk.pack_bin(static_cast<std::uint32_t>(c.key.size()));
  pk.pack_bin_body(c.key.data(), static_cast<std::uint32_t>(c.key.size()));
  if (c.has_value) {
    pk.pack_bin(static_cast<std::uint32_t>(c.value.size()));
    pk.pack_bin_body(c.value.data(), static_cast<std::uint32_t>(c.value.size()));
  } else {
    pk.pack_nil();
  }
  pk.pack_uint64(c.ver.hlc);
  pk.pack_uint32(c.ver.node);
  pk.pack(c.origin);
  pk.pack_array(static_cast<std::uint32_t>(c.path.size()));
  for (auto& p : c.path) pk.pack(p);
  pk.pack_int64(c.ttl_ms);
  pk.pack_int64(c.ts_ms);
  if (!c.policy.empty()) pk.pack(c.policy);
  return std::string{buf.data(), buf.size()};
}

// msgpack-c sizes arrays/maps/strings from the header before checking the input holds
// them: the limits make it refuse anything larger than this message can possibly carry.
msgpack::unpack_limit unpack_limits(std::size_t bytes) {
  auto n = std::min<std::size_t>(bytes, std::numeric_limits<std::uint32_t>::max());
  return msgpack::unpack_limit(n, n, n, n, n, 4);
}

result<kafka_change> decode_msgpack(std::string_view bytes, const kafka_limits& l) {
  msgpack_fields f{"bad kafka envelope: "};
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                         unpack_limits(bytes.size()));
    if (off != bytes.size()) return bad("trailing bytes");
  } catch (const std::exception&) {
    return bad("not msgpack");
  }
  auto arr = f.array(oh.get(), 10, 11, "envelope");
  if (!arr) return arr.err();
  const msgpack::object* a = *arr;
  auto v = f.uint<std::uint8_t>(a[0], "v");
  if (!v) return v.err();
  if (*v != kafka_envelope_version) return bad("unknown version");
  auto op = f.uint<std::uint8_t>(a[1], "op");
  if (!op) return op.err();
  if (!valid_op(*op)) return bad("bad op");
  kafka_change c;
  c.op = static_cast<kafka_op>(*op);
  auto key = f.bytes(a[2], l.max_key_bytes, "key");
  if (!key) return key.err();
  c.key = std::move(*key);
  if (a[3].type != msgpack::type::NIL) {
    auto val = f.bytes(a[3], l.max_value_bytes, "value");
    if (!val) return val.err();
    c.value = std::move(*val);
    c.has_value = true;
  }
  auto hlc = f.uint<std::uint64_t>(a[4], "hlc");
  if (!hlc) return hlc.err();
  auto node = f.uint<std::uint32_t>(a[5], "node");
  if (!node) return node.err();
  c.ver = version{*hlc, *node};
  auto origin = f.bytes(a[6], l.max_text_bytes, "origin");
  if (!origin) return origin.err();
  c.origin = std::move(*origin);
  auto path = f.array(a[7], 0, l.max_path, "path");
  if (!path) return path.err();
  for (std::uint32_t i = 0; i < a[7].via.array.size; ++i) {
    auto p = f.bytes((*path)[i], l.max_text_bytes, "path entry");
    if (!p) return p.err();
    c.path.push_back(std::move(*p));
  }
  auto ttl = f.sint(a[8], "ttl_ms");
  if (!ttl) return ttl.err();
  if (*ttl < 0) return bad("ttl_ms negative");
  auto ts = f.sint(a[9], "ts_ms");
  if (!ts) return ts.err();
  c.ttl_ms = *ttl;
  c.ts_ms = *ts;
  if (oh.get().via.array.size == 11) {
    auto policy = f.bytes(a[10], l.max_text_bytes, "policy");
    if (!policy) return policy.err();
    if (policy->empty()) return bad("policy empty");
    c.policy = std::move(*policy);
  }
  if (c.op == kafka_op::remove && c.has_value) return bad("a delete carries a value");
  return c;
}

}  // namespace

std::string_view to_string(kafka_format f) noexcept {
  return f == kafka_format::json ? "json" : "msgpack";
}

result<kafka_format> parse_kafka_format(std::string_view text) {
  if (text == "json") return kafka_format::json;
  if (text == "msgpack") return kafka_format::msgpack;
  return error{errc::invalid_argument, "kafka format must be json or msgpack, not '" +
                                           std::string{text.substr(0, 64)} + "'"};
}

result<std::string> encode(const kafka_change& c, kafka_format f, const kafka_limits& l) {
  if (auto ok = check_bounds(c, l); !ok) return ok.err();
  auto out = f == kafka_format::json ? encode_json(c) : encode_msgpack(c);
  if (out && out->size() > l.max_message_bytes) return too_big("message");
  return out;
}

result<kafka_change> decode_kafka(std::string_view bytes, kafka_format f, const kafka_limits& l) {
  if (bytes.size() > l.max_message_bytes) return bad("message too large");
  if (bytes.empty()) return bad("empty");
  return f == kafka_format::json ? decode_json(bytes, l) : decode_msgpack(bytes, l);
}

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t n = (std::uint32_t(std::uint8_t(in[i])) << 16) |
                      (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
    out += b64_chars[(n >> 18) & 63];
    out += b64_chars[(n >> 12) & 63];
    out += b64_chars[(n >> 6) & 63];
    out += b64_chars[n & 63];
  }
  if (auto rest = in.size() - i; rest) {
    std::uint32_t n = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (rest == 2) n |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += b64_chars[(n >> 18) & 63];
    out += b64_chars[(n >> 12) & 63];
    out += rest == 2 ? b64_chars[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

result<std::string> base64_decode(std::string_view text, std::size_t max_bytes) {
  static const auto table = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i)
      t[static_cast<unsigned char>(b64_chars[i])] = static_cast<std::int8_t>(i);
    return t;
  }();
  if (text.size() % 4 != 0) return bad("base64 length not a multiple of 4");
  if (text.size() / 4 * 3 > max_bytes + 2) return bad("base64 value too large");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int pad = 0;
    std::uint32_t n = 0;
    for (int k = 0; k < 4; ++k) {
      char ch = text[i + k];
      if (ch == '=') {
        // Padding only in the last group, only at its end.
        if (i + 4 != text.size() || k < 2) return bad("base64 padding misplaced");
        ++pad;
        n <<= 6;
        continue;
      }
      if (pad) return bad("base64 padding misplaced");
      auto d = table[static_cast<unsigned char>(ch)];
      if (d < 0) return bad("base64 character invalid");
      n = (n << 6) | static_cast<std::uint32_t>(d);
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  if (out.size() > max_bytes) return bad("base64 value too large");
  return out;
}

std::size_t json_depth(std::string_view json, std::size_t limit) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char ch : json) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if ((ch == '}' || ch == ']') && depth) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace warp::bus
