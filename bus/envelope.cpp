#include "bus/envelope.hpp"

#include <zlib.h>

#include <algorithm>
#include <exception>
#include <limits>

#include <msgpack.hpp>

#include "bus/msgpack_fields.hpp"

namespace warp::bus {

namespace {

constexpr std::uint8_t flag_compressed = 1;
constexpr std::size_t header_fields = 8;

using packer = msgpack::packer<msgpack::sbuffer>;

error too_big(const char* what, std::size_t size, std::size_t limit) {
  return error{errc::invalid_argument, std::string{what} + " of " + std::to_string(size) +
                                           " exceeds the wire limit of " + std::to_string(limit)};
}

error bad(std::string_view what, std::string_view detail = {}) {
  std::string msg;
  msg.reserve(14 + what.size() + detail.size());
  msg.append("bad envelope: ").append(what).append(detail);
  return error{errc::codec_error, std::move(msg)};
}

void pack_str(packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_bin(packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<std::uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

result<void> check_record(const change_record& r, const wire_limits& lim) {
  if (r.key.size() > lim.max_key_bytes) return too_big("key", r.key.size(), lim.max_key_bytes);
  if (r.value.size() > lim.max_value_bytes)
    return too_big("value", r.value.size(), lim.max_value_bytes);
  return {};
}

void pack_record(packer& pk, const change_record& r) {
  pk.pack_array(6);
  pack_str(pk, r.key);
  pk.pack(r.ver.hlc);
  pk.pack(r.ver.node);
  pk.pack(r.expires_at_ms);
  pk.pack(static_cast<std::uint8_t>(r.kind));
  if (r.kind == record_kind::value)
    pack_bin(pk, r.value);
  else
    pk.pack_nil();
}

// Writes the envelope around an already packed body, compressing it when large.
result<std::string> seal(const envelope_header& h, const msgpack::sbuffer& body,
                         const wire_limits& lim) {
  if (body.size() > lim.max_message_bytes)
    return too_big("message", body.size(), lim.max_message_bytes);
  msgpack::sbuffer out(body.size() + 64);
  packer pk(out);
  bool compress = lim.compress_above != 0 && body.size() > lim.compress_above;
  std::string compressed;
  if (compress) {
    uLongf cap = compressBound(static_cast<uLong>(body.size()));
    compressed.resize(cap);
    if (compress2(reinterpret_cast<Bytef*>(compressed.data()), &cap,
                  reinterpret_cast<const Bytef*>(body.data()), static_cast<uLong>(body.size()),
                  Z_BEST_SPEED) != Z_OK ||
        cap >= body.size()) {
      compress = false;  // incompressible: send it raw
    } else {
      compressed.resize(cap);
    }
  }
  pk.pack_array(header_fields);
  pk.pack(envelope_version);
  pk.pack(static_cast<std::uint8_t>(h.kind));
  pk.pack(static_cast<std::uint8_t>(compress ? flag_compressed : 0));
  pk.pack(h.sender);
  pk.pack(h.incarnation);
  pk.pack(h.seq);
  pk.pack(h.hlc_now);
  if (compress) {
    pk.pack_array(2);
    pk.pack(static_cast<std::uint64_t>(body.size()));
    pack_bin(pk, compressed);
  } else {
    out.write(body.data(), body.size());  // the body is one msgpack object already
  }
  return std::string{out.data(), out.size()};
}

// -- decoding helpers: every accessor checks the type first --------------------------

struct reader : msgpack_fields {
  const wire_limits& lim;
  explicit reader(const wire_limits& l) : msgpack_fields("bad envelope: "), lim(l) {}

  result<change_record> record(const msgpack::object& o) const {
    auto f = array(o, 6, 6, "record");
    if (!f) return f.err();
    const auto* a = *f;
    change_record r;
    auto key = bytes(a[0], lim.max_key_bytes, "key");
    if (!key) return key.err();
    r.key = std::move(*key);
    auto hlc = uint<std::uint64_t>(a[1], "hlc");
    if (!hlc) return hlc.err();
    auto node = uint<std::uint32_t>(a[2], "node");
    if (!node) return node.err();
    r.ver = version{*hlc, *node};
    auto exp = sint(a[3], "expiry");
    if (!exp) return exp.err();
    r.expires_at_ms = *exp;
    auto kind = uint<std::uint8_t>(a[4], "record kind");
    if (!kind) return kind.err();
    if (*kind > static_cast<std::uint8_t>(record_kind::clear)) return bad("unknown record kind");
    r.kind = static_cast<record_kind>(*kind);
    if (r.kind == record_kind::value) {
      auto v = bytes(a[5], lim.max_value_bytes, "value");
      if (!v) return v.err();
      r.value = std::move(*v);
    } else if (a[5].type != msgpack::type::NIL) {
      return bad("value on a record without one");
    }
    return r;
  }
};

// A parsed envelope: the header plus the body object (inside `handle`'s zone, or inside a
// second handle when the body was compressed).
struct parsed {
  envelope_header header;
  msgpack::object_handle handle;
  msgpack::object_handle inner;
  const msgpack::object* body = nullptr;
};

msgpack::unpack_limit limits_for(const wire_limits& lim) {
  auto arrays = std::max({lim.max_records, lim.max_members, lim.max_patterns, header_fields});
  auto strs =
      std::max({lim.max_key_bytes, lim.max_value_bytes, lim.max_text_bytes, lim.max_spec_bytes});
  return msgpack::unpack_limit(arrays, 0, strs, std::max(strs, lim.max_message_bytes), 0, 6);
}

result<parsed> parse(std::string_view bytes, const wire_limits& lim, bool body_too) {
  if (bytes.size() > lim.max_message_bytes) return bad("message too large");
  if (bytes.empty()) return bad("empty message");
  parsed p;
  reader rd{lim};
  try {
    std::size_t offset = 0;
    p.handle =
        msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limits_for(lim));
    if (offset != bytes.size()) return bad("trailing bytes");
    auto f = rd.array(p.handle.get(), header_fields, header_fields, "envelope");
    if (!f) return f.err();
    const auto* a = *f;
    auto v = rd.uint<std::uint8_t>(a[0], "version");
    if (!v) return v.err();
    if (*v != envelope_version)
      return error{errc::codec_error, "unsupported envelope version " + std::to_string(*v)};
    auto kind = rd.uint<std::uint8_t>(a[1], "kind");
    if (!kind) return kind.err();
    if (*kind < 1 || *kind > 4) return bad("unknown message kind");
    p.header.kind = static_cast<message_kind>(*kind);
    auto flags = rd.uint<std::uint8_t>(a[2], "flags");
    if (!flags) return flags.err();
    if (*flags & ~flag_compressed) return bad("unknown flags");
    auto sender = rd.uint<std::uint32_t>(a[3], "sender");
    auto inc = rd.uint<std::uint64_t>(a[4], "incarnation");
    auto seq = rd.uint<std::uint64_t>(a[5], "seq");
    auto hlc = rd.uint<std::uint64_t>(a[6], "hlc");
    if (!sender) return sender.err();
    if (!inc) return inc.err();
    if (!seq) return seq.err();
    if (!hlc) return hlc.err();
    p.header.sender = *sender;
    p.header.incarnation = *inc;
    p.header.seq = *seq;
    p.header.hlc_now = *hlc;
    if (!body_too) return p;
    p.body = &a[7];
    if (*flags & flag_compressed) {
      auto c = rd.array(a[7], 2, 2, "compressed body");
      if (!c) return c.err();
      auto raw = rd.uint<std::uint64_t>((*c)[0], "raw size");
      if (!raw) return raw.err();
      if (*raw > lim.max_message_bytes || *raw == 0) return bad("compressed body too large");
      if ((*c)[1].type != msgpack::type::BIN) return bad("compressed body not binary");
      std::string out(static_cast<std::size_t>(*raw), '\0');
      uLongf out_len = static_cast<uLongf>(*raw);
      if (uncompress(reinterpret_cast<Bytef*>(out.data()), &out_len,
                     reinterpret_cast<const Bytef*>((*c)[1].via.bin.ptr),
                     (*c)[1].via.bin.size) != Z_OK ||
          out_len != *raw)
        return bad("corrupt compressed body");
      std::size_t off = 0;
      p.inner = msgpack::unpack(out.data(), out.size(), off, nullptr, nullptr, limits_for(lim));
      if (off != out.size()) return bad("trailing bytes in compressed body");
      p.body = &p.inner.get();
    }
    return p;
  } catch (const std::bad_alloc&) {
    return bad("out of memory");
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

}  // namespace

result<std::string> encode(const change_batch& batch, const wire_limits& lim) {
  if (batch.records.size() > lim.max_records)
    return too_big("batch", batch.records.size(), lim.max_records);
  msgpack::sbuffer body;
  packer pk(body);
  pk.pack_array(static_cast<std::uint32_t>(batch.records.size()));
  for (auto& r : batch.records) {
    if (auto st = check_record(r, lim); !st) return st.err();
    pack_record(pk, r);
  }
  auto h = batch.header;
  h.kind = message_kind::changes;
  return seal(h, body, lim);
}

result<std::string> encode(const heartbeat& hb, const wire_limits& lim) {
  if (hb.members.size() > lim.max_members)
    return too_big("member list", hb.members.size(), lim.max_members);
  auto text_ok = [&](const std::string& s) { return s.size() <= lim.max_text_bytes; };
  if (!text_ok(hb.name) || !text_ok(hb.address) || !text_ok(hb.storage_id))
    return error{errc::invalid_argument, "name, address or storage id too long for the wire"};
  msgpack::sbuffer body;
  packer pk(body);
  // Trailing optional elements, each written only when known, so a heartbeat with neither
  // is the 4-element form earlier builds send: [4] the pattern-table version (nil when only
  // the storage id follows), [5] the storage identity.
  const bool versioned = hb.patterns != pattern_version{};
  const bool has_storage_id = !hb.storage_id.empty();
  pk.pack_array(has_storage_id ? 6 : versioned ? 5 : 4);
  pack_str(pk, hb.name);
  pack_str(pk, hb.address);
  pk.pack(hb.leaving);
  pk.pack_array(static_cast<std::uint32_t>(hb.members.size()));
  for (auto& m : hb.members) {
    if (!text_ok(m.name) || !text_ok(m.address))
      return error{errc::invalid_argument, "member name or address too long for the wire"};
    pk.pack_array(5);
    pk.pack(m.id);
    pk.pack(m.incarnation);
    pack_str(pk, m.name);
    pack_str(pk, m.address);
    pk.pack(static_cast<std::uint8_t>(m.state));
  }
  if (versioned) {
    pk.pack_array(2);
    pk.pack(hb.patterns.counter);
    pk.pack(hb.patterns.node);
  } else if (has_storage_id) {
    pk.pack_nil();
  }
  if (has_storage_id) pack_str(pk, hb.storage_id);
  auto h = hb.header;
  h.kind = message_kind::heartbeat;
  return seal(h, body, lim);
}

result<std::string> encode(const fetch_reply& reply, const wire_limits& lim) {
  msgpack::sbuffer body;
  packer pk(body);
  pk.pack_array(2);
  pk.pack(reply.found);
  if (reply.found) {
    if (auto st = check_record(reply.rec, lim); !st) return st.err();
    pack_record(pk, reply.rec);
  } else {
    pk.pack_nil();
  }
  auto h = reply.header;
  h.kind = message_kind::fetch_reply;
  return seal(h, body, lim);
}

bool pattern_wins(const pattern_entry& a, const pattern_entry& b) noexcept {
  if (a.ver != b.ver) return b.ver < a.ver;
  return b.spec < a.spec;
}

bool merge_pattern(pattern_entries& into, const pattern_entry& e) {
  auto it = into.find(e.glob);
  if (it == into.end()) {
    into.emplace(e.glob, e);
    return true;
  }
  if (!pattern_wins(e, it->second)) return false;
  it->second = e;
  return true;
}

pattern_version pattern_summary(const pattern_entries& table) {
  if (table.empty()) return {};
  // FNV-1a over the entries in glob order (the map's), each field length-prefixed so no
  // two different tables feed the same bytes.
  std::uint64_t h = 1469598103934665603ull, counter = 0;
  auto mix = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  auto str = [&](const std::string& s) {
    std::uint64_t n = s.size();
    mix(&n, sizeof n);
    mix(s.data(), s.size());
  };
  bool any = false;
  for (const auto& [glob, e] : table) {
    if (e.ver == pattern_version{}) continue;  // a node's own command line: not shared
    any = true;
    str(e.glob);
    str(e.spec);
    mix(&e.ver.counter, sizeof e.ver.counter);
    mix(&e.ver.node, sizeof e.ver.node);
    counter = std::max(counter, e.ver.counter);
  }
  if (!any) return {};
  auto digest = static_cast<std::uint32_t>(h ^ (h >> 32));
  return {counter, digest == 0 ? 1u : digest};  // (n, 0) would read as "no table" at 0
}

result<std::string> encode(const pattern_table& table, const wire_limits& lim) {
  if (table.entries.size() > lim.max_patterns)
    return too_big("pattern table", table.entries.size(), lim.max_patterns);
  msgpack::sbuffer body;
  packer pk(body);
  pk.pack_array(2);
  pk.pack(std::uint8_t{2});
  pk.pack_array(static_cast<std::uint32_t>(table.entries.size()));
  for (auto& e : table.entries) {
    if (e.glob.size() > lim.max_spec_bytes || e.spec.size() > lim.max_spec_bytes)
      return too_big("pattern spec", std::max(e.glob.size(), e.spec.size()), lim.max_spec_bytes);
    if (e.glob.empty()) return error{errc::invalid_argument, "pattern table: an empty glob"};
    pk.pack_array(4);
    pack_str(pk, e.glob);
    if (e.removed())
      pk.pack_nil();
    else
      pack_str(pk, e.spec);
    pk.pack(e.ver.counter);
    pk.pack(e.ver.node);
  }
  auto h = table.header;
  h.kind = message_kind::pattern_table;
  return seal(h, body, lim);
}

result<envelope_header> decode_header(std::string_view bytes, const wire_limits& lim) {
  auto p = parse(bytes, lim, false);
  if (!p) return p.err();
  return p->header;
}

result<change_batch> decode_batch(std::string_view bytes, const wire_limits& lim) {
  auto p = parse(bytes, lim, true);
  if (!p) return p.err();
  if (p->header.kind != message_kind::changes) return bad("not a change batch");
  reader rd{lim};
  auto recs = rd.array(*p->body, 0, lim.max_records, "records");
  if (!recs) return recs.err();
  change_batch out;
  out.header = p->header;
  auto n = p->body->via.array.size;
  out.records.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    auto r = rd.record((*recs)[i]);
    if (!r) return r.err();
    out.records.push_back(std::move(*r));
  }
  return out;
}

result<heartbeat> decode_heartbeat(std::string_view bytes, const wire_limits& lim) {
  auto p = parse(bytes, lim, true);
  if (!p) return p.err();
  if (p->header.kind != message_kind::heartbeat) return bad("not a heartbeat");
  reader rd{lim};
  auto f = rd.array(*p->body, 4, 6, "heartbeat");
  if (!f) return f.err();
  const auto* a = *f;
  heartbeat hb;
  hb.header = p->header;
  auto name = rd.bytes(a[0], lim.max_text_bytes, "name");
  auto addr = rd.bytes(a[1], lim.max_text_bytes, "address");
  auto leaving = rd.boolean(a[2], "leaving");
  if (!name) return name.err();
  if (!addr) return addr.err();
  if (!leaving) return leaving.err();
  hb.name = std::move(*name);
  hb.address = std::move(*addr);
  hb.leaving = *leaving;
  if (p->body->via.array.size == 6) {
    auto sid = rd.bytes(a[5], lim.max_text_bytes, "storage id");
    if (!sid) return sid.err();
    hb.storage_id = std::move(*sid);
  }
  auto ms = rd.array(a[3], 0, lim.max_members, "members");
  if (!ms) return ms.err();
  auto n = a[3].via.array.size;
  for (std::uint32_t i = 0; i < n; ++i) {
    auto m = rd.array((*ms)[i], 5, 5, "member");
    if (!m) return m.err();
    const auto* e = *m;
    member_entry out;
    auto id = rd.uint<std::uint32_t>(e[0], "member id");
    auto inc = rd.uint<std::uint64_t>(e[1], "member incarnation");
    auto mname = rd.bytes(e[2], lim.max_text_bytes, "member name");
    auto maddr = rd.bytes(e[3], lim.max_text_bytes, "member address");
    auto state = rd.uint<std::uint8_t>(e[4], "member state");
    if (!id) return id.err();
    if (!inc) return inc.err();
    if (!mname) return mname.err();
    if (!maddr) return maddr.err();
    if (!state) return state.err();
    if (*state > static_cast<std::uint8_t>(member_state::leaving))
      return bad("unknown member state");
    out.id = *id;
    out.incarnation = *inc;
    out.name = std::move(*mname);
    out.address = std::move(*maddr);
    out.state = static_cast<member_state>(*state);
    hb.members.push_back(std::move(out));
  }
  if (p->body->via.array.size >= 5 && a[4].type != msgpack::type::NIL) {
    auto v = rd.array(a[4], 2, 2, "pattern version");
    if (!v) return v.err();
    auto counter = rd.uint<std::uint64_t>((*v)[0], "pattern counter");
    auto node = rd.uint<std::uint32_t>((*v)[1], "pattern node");
    if (!counter) return counter.err();
    if (!node) return node.err();
    hb.patterns = {*counter, *node};
  }
  return hb;
}

result<pattern_table> decode_pattern_table(std::string_view bytes, const wire_limits& lim) {
  auto p = parse(bytes, lim, true);
  if (!p) return p.err();
  if (p->header.kind != message_kind::pattern_table) return bad("not a pattern table");
  reader rd{lim};
  auto f = rd.array(*p->body, 2, 3, "pattern table");
  if (!f) return f.err();
  const auto* a = *f;
  pattern_table out;
  out.header = p->header;
  const bool first_format = p->body->via.array.size == 3;
  pattern_version table_ver;
  if (first_format) {
    auto counter = rd.uint<std::uint64_t>(a[0], "pattern counter");
    auto node = rd.uint<std::uint32_t>(a[1], "pattern node");
    if (!counter) return counter.err();
    if (!node) return node.err();
    table_ver = {*counter, *node};
  } else {
    auto format = rd.uint<std::uint8_t>(a[0], "pattern table format");
    if (!format) return format.err();
    if (*format != 2) return bad("unknown pattern table format");
  }
  const auto& list = a[first_format ? 2 : 1];
  auto es = rd.array(list, 0, lim.max_patterns, "patterns");
  if (!es) return es.err();
  auto n = list.via.array.size;
  out.entries.reserve(n);
  pattern_entries seen;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::size_t fields = first_format ? 2 : 4;
    auto e = rd.array((*es)[i], fields, fields, "pattern");
    if (!e) return e.err();
    pattern_entry pe;
    auto glob = rd.bytes((*e)[0], lim.max_spec_bytes, "glob");
    if (!glob) return glob.err();
    if (glob->empty()) return bad("pattern with an empty glob");
    pe.glob = std::move(*glob);
    if ((*e)[1].type != msgpack::type::NIL || first_format) {
      auto spec = rd.bytes((*e)[1], lim.max_spec_bytes, "spec");
      if (!spec) return spec.err();
      if (spec->empty()) return bad("pattern with an empty spec");
      pe.spec = std::move(*spec);
    }
    if (first_format) {
      pe.ver = table_ver;
    } else {
      auto counter = rd.uint<std::uint64_t>((*e)[2], "pattern counter");
      auto node = rd.uint<std::uint32_t>((*e)[3], "pattern node");
      if (!counter) return counter.err();
      if (!node) return node.err();
      pe.ver = {*counter, *node};
    }
    merge_pattern(seen, pe);
    out.entries.push_back(std::move(pe));
  }
  out.ver = pattern_summary(seen);
  return out;
}

result<fetch_reply> decode_fetch_reply(std::string_view bytes, const wire_limits& lim) {
  auto p = parse(bytes, lim, true);
  if (!p) return p.err();
  if (p->header.kind != message_kind::fetch_reply) return bad("not a fetch reply");
  reader rd{lim};
  auto f = rd.array(*p->body, 2, 2, "fetch reply");
  if (!f) return f.err();
  const auto* a = *f;
  fetch_reply out;
  out.header = p->header;
  auto found = rd.boolean(a[0], "found");
  if (!found) return found.err();
  out.found = *found;
  if (out.found) {
    auto r = rd.record(a[1]);
    if (!r) return r.err();
    if (r->kind != record_kind::value) return bad("fetch reply without a value");
    out.rec = std::move(*r);
  } else if (a[1].type != msgpack::type::NIL) {
    return bad("record in a not-found reply");
  }
  return out;
}

}  // namespace warp::bus
