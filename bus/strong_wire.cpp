#include "bus/strong_wire.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <new>

#include <msgpack.hpp>

#include "bus/msgpack_fields.hpp"

namespace warp::detail::wire {

namespace {

constexpr std::size_t envelope_fields = 6;
constexpr std::size_t request_fields = 6;
constexpr std::size_t reply_fields = 7;
constexpr std::size_t record_fields = 5;
constexpr std::uint8_t kind_requests = 1;
constexpr std::uint8_t kind_replies = 2;

using packer = msgpack::packer<msgpack::sbuffer>;

error bad(std::string_view what, std::string_view detail = {}) {
  std::string msg{"bad quorum message: "};
  msg.append(what).append(detail);
  return error{errc::codec_error, std::move(msg)};
}

error too_big(const char* what, std::size_t size, std::size_t limit) {
  return error{errc::invalid_argument, std::string{what} + " of " + std::to_string(size) +
                                           " exceeds the quorum wire limit of " +
                                           std::to_string(limit)};
}

void pack_bin(packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<std::uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

warp::result<void> check_record(const strong_record& r, const strong_limits& lim) {
  if (r.value.size() > lim.max_value_bytes)
    return too_big("value", r.value.size(), lim.max_value_bytes);
  return {};
}

void pack_record(packer& pk, const strong_record& r) {
  pk.pack_array(record_fields);
  pk.pack(r.ver.hlc);
  pk.pack(r.ver.node);
  pk.pack(r.tombstone);
  pk.pack(r.expires_at_ms);
  pack_bin(pk, r.value);
}

void pack_header(packer& pk, const header& h, std::uint8_t kind) {
  pk.pack_array(envelope_fields);
  pk.pack(strong_wire_version);
  pk.pack(kind);
  pk.pack(h.fingerprint);
  pk.pack(h.incarnation);
  pk.pack(h.hlc_now);
}

struct reader : bus::msgpack_fields {
  const strong_limits& lim;
  explicit reader(const strong_limits& l) : bus::msgpack_fields("bad quorum message: "), lim(l) {}

  result<strong_record> record(const msgpack::object& o) const {
    auto f = array(o, record_fields, record_fields, "record");
    if (!f) return f.err();
    const auto* a = *f;
    strong_record r;
    auto hlc = uint<std::uint64_t>(a[0], "hlc");
    if (!hlc) return hlc.err();
    auto node = uint<std::uint32_t>(a[1], "node");
    if (!node) return node.err();
    r.ver = version{*hlc, *node};
    auto tomb = boolean(a[2], "tombstone");
    if (!tomb) return tomb.err();
    r.tombstone = *tomb;
    auto exp = sint(a[3], "expiry");
    if (!exp) return exp.err();
    r.expires_at_ms = *exp;
    auto v = bytes(a[4], lim.max_value_bytes, "value");
    if (!v) return v.err();
    r.value = std::move(*v);
    if (r.tombstone && !r.value.empty()) return bad("tombstone with a value");
    return r;
  }
  result<std::optional<strong_record>> opt_record(const msgpack::object& o) const {
    if (o.type == msgpack::type::NIL) return std::optional<strong_record>{};
    auto r = record(o);
    if (!r) return r.err();
    return std::optional<strong_record>{std::move(*r)};
  }
};

msgpack::unpack_limit limits_for(const strong_limits& lim) {
  auto arrays = std::max({lim.max_items, lim.max_dump_records, reply_fields});
  auto strs = std::max(lim.max_key_bytes, lim.max_value_bytes);
  return msgpack::unpack_limit(arrays, 0, strs, strs, 0, 8);
}

struct parsed {
  header head;
  msgpack::object_handle handle;
  const msgpack::object* body = nullptr;
};

result<parsed> parse(std::string_view bytes, const strong_limits& lim, std::uint8_t want_kind) {
  if (bytes.size() > lim.max_message_bytes) return bad("message too large");
  if (bytes.empty()) return bad("empty message");
  parsed p;
  reader rd{lim};
  std::size_t offset = 0;
  p.handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limits_for(lim));
  if (offset != bytes.size()) return bad("trailing bytes");
  auto f = rd.array(p.handle.get(), envelope_fields, envelope_fields, "envelope");
  if (!f) return f.err();
  const auto* a = *f;
  auto v = rd.uint<std::uint8_t>(a[0], "version");
  if (!v) return v.err();
  if (*v != strong_wire_version)
    return error{errc::codec_error, "unsupported quorum message version " + std::to_string(*v)};
  auto kind = rd.uint<std::uint8_t>(a[1], "kind");
  if (!kind) return kind.err();
  if (*kind != want_kind) return bad("unexpected message kind");
  auto fp = rd.uint<std::uint64_t>(a[2], "fingerprint");
  if (!fp) return fp.err();
  auto inc = rd.uint<std::uint64_t>(a[3], "incarnation");
  if (!inc) return inc.err();
  auto hlc = rd.uint<std::uint64_t>(a[4], "hlc");
  if (!hlc) return hlc.err();
  p.head = header{*kind, *fp, *inc, *hlc};
  p.body = &a[5];
  return p;
}

template <class F>
auto guarded(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return bad("out of memory");
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

}  // namespace

result<std::string> encode(const request_batch& batch, const strong_limits& lim) {
  if (batch.items.size() > lim.max_items)
    return too_big("batch", batch.items.size(), lim.max_items);
  msgpack::sbuffer out;
  packer pk(out);
  pack_header(pk, batch.head, kind_requests);
  pk.pack_array(static_cast<std::uint32_t>(batch.items.size()));
  for (auto& r : batch.items) {
    if (r.key.size() > lim.max_key_bytes) return too_big("key", r.key.size(), lim.max_key_bytes);
    pk.pack_array(request_fields);
    pk.pack(r.id);
    pk.pack(static_cast<std::uint8_t>(r.what));
    pk.pack(r.range);
    pack_bin(pk, r.key);
    pk.pack(r.first);
    if (r.rec) {
      if (auto st = check_record(*r.rec, lim); !st) return st.err();
      pack_record(pk, *r.rec);
    } else {
      pk.pack_nil();
    }
  }
  if (out.size() > lim.max_message_bytes)
    return too_big("message", out.size(), lim.max_message_bytes);
  return std::string{out.data(), out.size()};
}

result<std::string> encode(const reply_batch& batch, const strong_limits& lim) {
  if (batch.items.size() > lim.max_items)
    return too_big("batch", batch.items.size(), lim.max_items);
  msgpack::sbuffer out;
  packer pk(out);
  pack_header(pk, batch.head, kind_replies);
  pk.pack_array(static_cast<std::uint32_t>(batch.items.size()));
  for (auto& r : batch.items) {
    if (r.records.size() > lim.max_dump_records)
      return too_big("dump page", r.records.size(), lim.max_dump_records);
    pk.pack_array(reply_fields);
    pk.pack(r.id);
    pk.pack(static_cast<std::uint8_t>(r.code));
    if (r.rec) {
      if (auto st = check_record(*r.rec, lim); !st) return st.err();
      pack_record(pk, *r.rec);
    } else {
      pk.pack_nil();
    }
    pk.pack(r.digest.hash);
    pk.pack(r.digest.count);
    pk.pack(r.more);
    pk.pack_array(static_cast<std::uint32_t>(r.records.size()));
    for (auto& [k, rec] : r.records) {
      if (k.size() > lim.max_key_bytes) return too_big("key", k.size(), lim.max_key_bytes);
      if (auto st = check_record(rec, lim); !st) return st.err();
      pk.pack_array(2);
      pack_bin(pk, k);
      pack_record(pk, rec);
    }
  }
  if (out.size() > lim.max_message_bytes)
    return too_big("message", out.size(), lim.max_message_bytes);
  return std::string{out.data(), out.size()};
}

result<request_batch> decode_requests(std::string_view bytes, const strong_limits& lim) {
  return guarded([&]() -> result<request_batch> {
    auto p = parse(bytes, lim, kind_requests);
    if (!p) return p.err();
    reader rd{lim};
    auto items = rd.array(*p->body, 0, lim.max_items, "request list");
    if (!items) return items.err();
    request_batch out;
    out.head = p->head;
    auto n = p->body->via.array.size;
    out.items.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      auto f = rd.array((*items)[i], request_fields, request_fields, "request");
      if (!f) return f.err();
      const auto* a = *f;
      request r;
      auto id = rd.uint<std::uint64_t>(a[0], "id");
      if (!id) return id.err();
      r.id = *id;
      auto o = rd.uint<std::uint8_t>(a[1], "op");
      if (!o) return o.err();
      if (*o < 1 || *o > 5) return bad("unknown op");
      r.what = static_cast<op>(*o);
      auto range = rd.uint<std::uint32_t>(a[2], "range");
      if (!range) return range.err();
      r.range = *range;
      auto key = rd.bytes(a[3], lim.max_key_bytes, "key");
      if (!key) return key.err();
      r.key = std::move(*key);
      auto first = rd.boolean(a[4], "first");
      if (!first) return first.err();
      r.first = *first;
      auto rec = rd.opt_record(a[5]);
      if (!rec) return rec.err();
      r.rec = std::move(*rec);
      if (r.what == op::store && !r.rec) return bad("store without a record");
      out.items.push_back(std::move(r));
    }
    return out;
  });
}

result<reply_batch> decode_replies(std::string_view bytes, const strong_limits& lim) {
  return guarded([&]() -> result<reply_batch> {
    auto p = parse(bytes, lim, kind_replies);
    if (!p) return p.err();
    reader rd{lim};
    auto items = rd.array(*p->body, 0, lim.max_items, "reply list");
    if (!items) return items.err();
    reply_batch out;
    out.head = p->head;
    auto n = p->body->via.array.size;
    out.items.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      auto f = rd.array((*items)[i], reply_fields, reply_fields, "reply");
      if (!f) return f.err();
      const auto* a = *f;
      reply r;
      auto id = rd.uint<std::uint64_t>(a[0], "id");
      if (!id) return id.err();
      r.id = *id;
      auto code = rd.uint<std::uint8_t>(a[1], "status");
      if (!code) return code.err();
      if (*code > static_cast<std::uint8_t>(status::unreachable)) return bad("unknown status");
      r.code = static_cast<status>(*code);
      auto rec = rd.opt_record(a[2]);
      if (!rec) return rec.err();
      r.rec = std::move(*rec);
      auto dh = rd.uint<std::uint64_t>(a[3], "digest");
      if (!dh) return dh.err();
      auto dc = rd.uint<std::uint64_t>(a[4], "digest count");
      if (!dc) return dc.err();
      r.digest = range_digest{*dh, *dc};
      auto more = rd.boolean(a[5], "more");
      if (!more) return more.err();
      r.more = *more;
      auto recs = rd.array(a[6], 0, lim.max_dump_records, "dump");
      if (!recs) return recs.err();
      auto m = a[6].via.array.size;
      r.records.reserve(m);
      for (std::uint32_t j = 0; j < m; ++j) {
        auto pair = rd.array((*recs)[j], 2, 2, "dump entry");
        if (!pair) return pair.err();
        auto k = rd.bytes((*pair)[0], lim.max_key_bytes, "dump key");
        if (!k) return k.err();
        auto rr = rd.record((*pair)[1]);
        if (!rr) return rr.err();
        r.records.emplace_back(std::move(*k), std::move(*rr));
      }
      out.items.push_back(std::move(r));
    }
    return out;
  });
}

}  // namespace warp::detail::wire
