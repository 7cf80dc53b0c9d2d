#include "runtime/consensus/raft_wire.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <new>
#include <optional>

#include <msgpack.hpp>

namespace warp::consensus {

namespace {

constexpr std::uint32_t message_fields = 13;
constexpr std::uint32_t entry_fields = 4;
constexpr std::uint32_t snapshot_fields = 4;

using packer = msgpack::packer<msgpack::sbuffer>;

error bad(std::string_view what) {
  return error{errc::codec_error, std::string{"bad raft message: "}.append(what)};
}

void pack_bin(packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<std::uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

template <class T>
result<T> uint(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return bad(std::string{what} + " not an unsigned");
  if (o.via.u64 > std::numeric_limits<T>::max()) return bad(std::string{what} + " out of range");
  return static_cast<T>(o.via.u64);
}

result<std::string> bin(const msgpack::object& o, std::size_t max, const char* what) {
  if (o.type != msgpack::type::BIN) return bad(std::string{what} + " not bytes");
  if (o.via.bin.size > max) return bad(std::string{what} + " too large");
  return std::string{o.via.bin.ptr, o.via.bin.size};
}

// The array's items, or nothing when `o` is no array of min..max items (an empty array's
// item pointer is null, hence the optional).
std::optional<const msgpack::object*> array(const msgpack::object& o, std::size_t min,
                                            std::size_t max) {
  if (o.type != msgpack::type::ARRAY) return std::nullopt;
  if (o.via.array.size < min || o.via.array.size > max) return std::nullopt;
  return o.via.array.ptr;
}

#define WARP_TRY_ASSIGN(lhs, expr) \
  do {                             \
    auto _r = (expr);              \
    if (!_r) return _r.err();      \
    lhs = std::move(*_r);          \
  } while (0)

result<message> read_message(const msgpack::object& root, const wire_limits& lim) {
  const auto root_items = array(root, message_fields, message_fields);
  if (!root_items) return bad("not an array of the message's fields");
  const msgpack::object* a = *root_items;
  std::uint8_t v = 0;
  WARP_TRY_ASSIGN(v, uint<std::uint8_t>(a[0], "version"));
  if (v != raft_wire_version)
    return error{errc::codec_error, "unsupported raft wire version " + std::to_string(v)};
  message m;
  std::uint8_t type = 0;
  WARP_TRY_ASSIGN(type, uint<std::uint8_t>(a[1], "type"));
  if (type >= msg_type_count) return bad("unknown type");
  m.type = static_cast<msg_type>(type);
  WARP_TRY_ASSIGN(m.from, uint<node_id>(a[2], "from"));
  WARP_TRY_ASSIGN(m.to, uint<node_id>(a[3], "to"));
  WARP_TRY_ASSIGN(m.term, uint<term_t>(a[4], "term"));
  WARP_TRY_ASSIGN(m.log_term, uint<term_t>(a[5], "log_term"));
  WARP_TRY_ASSIGN(m.index, uint<index_t>(a[6], "index"));
  WARP_TRY_ASSIGN(m.commit, uint<index_t>(a[7], "commit"));
  if (a[8].type != msgpack::type::BOOLEAN) return bad("reject not a bool");
  m.reject = a[8].via.boolean;
  WARP_TRY_ASSIGN(m.reject_hint, uint<index_t>(a[9], "reject_hint"));
  WARP_TRY_ASSIGN(m.context, uint<std::uint64_t>(a[10], "context"));
  const auto es_items = array(a[11], 0, lim.max_entries);
  if (!es_items) return bad("entries not an array or too many");
  const msgpack::object* es = *es_items;
  m.entries.reserve(a[11].via.array.size);  // bounded by max_entries just above
  for (std::uint32_t i = 0; i < a[11].via.array.size; ++i) {
    const auto f_items = array(es[i], entry_fields, entry_fields);
    if (!f_items) return bad("entry not an array of its fields");
    const msgpack::object* f = *f_items;
    entry e;
    WARP_TRY_ASSIGN(e.term, uint<term_t>(f[0], "entry term"));
    WARP_TRY_ASSIGN(e.index, uint<index_t>(f[1], "entry index"));
    std::uint8_t et = 0;
    WARP_TRY_ASSIGN(et, uint<std::uint8_t>(f[2], "entry type"));
    if (et > static_cast<std::uint8_t>(entry_type::config)) return bad("unknown entry type");
    e.type = static_cast<entry_type>(et);
    WARP_TRY_ASSIGN(e.data, bin(f[3], lim.max_entry_bytes, "entry data"));
    if (e.type == entry_type::config && !decode_voters(e.data, lim.max_voters))
      return bad("config entry is not a voter set");
    m.entries.push_back(std::move(e));
  }
  if (a[12].type != msgpack::type::NIL) {
    const auto s_items = array(a[12], snapshot_fields, snapshot_fields);
    if (!s_items) return bad("snapshot not an array of its fields");
    const msgpack::object* s = *s_items;
    snapshot sn;
    WARP_TRY_ASSIGN(sn.index, uint<index_t>(s[0], "snapshot index"));
    WARP_TRY_ASSIGN(sn.term, uint<term_t>(s[1], "snapshot term"));
    const auto vs_items = array(s[2], 0, lim.max_voters);
    if (!vs_items) return bad("snapshot voters not an array or too many");
    const msgpack::object* vs = *vs_items;
    for (std::uint32_t i = 0; i < s[2].via.array.size; ++i) {
      node_id id = 0;
      WARP_TRY_ASSIGN(id, uint<node_id>(vs[i], "voter"));
      sn.voters.push_back(id);
    }
    WARP_TRY_ASSIGN(sn.data, bin(s[3], lim.max_snapshot_bytes, "snapshot data"));
    m.snap = std::move(sn);
  }
  if ((m.type == msg_type::install_snapshot) != m.snap.has_value())
    return bad("snapshot present on the wrong type");
  return m;
}

}  // namespace

result<std::string> encode(const message& m, const wire_limits& lim) {
  if (m.entries.size() > lim.max_entries)
    return error{errc::invalid_argument, "raft message: too many entries"};
  for (const auto& e : m.entries)
    if (e.data.size() > lim.max_entry_bytes)
      return error{errc::invalid_argument, "raft message: entry too large"};
  if (m.snap &&
      (m.snap->data.size() > lim.max_snapshot_bytes || m.snap->voters.size() > lim.max_voters))
    return error{errc::invalid_argument, "raft message: snapshot too large"};
  try {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_array(message_fields);
    pk.pack(raft_wire_version);
    pk.pack(static_cast<std::uint8_t>(m.type));
    pk.pack(m.from);
    pk.pack(m.to);
    pk.pack(m.term);
    pk.pack(m.log_term);
    pk.pack(m.index);
    pk.pack(m.commit);
    pk.pack(m.reject);
    pk.pack(m.reject_hint);
    pk.pack(m.context);
    pk.pack_array(static_cast<std::uint32_t>(m.entries.size()));
    for (const auto& e : m.entries) {
      pk.pack_array(entry_fields);
      pk.pack(e.term);
      pk.pack(e.index);
      pk.pack(static_cast<std::uint8_t>(e.type));
      pack_bin(pk, e.data);
    }
    if (m.snap) {
      pk.pack_array(snapshot_fields);
      pk.pack(m.snap->index);
      pk.pack(m.snap->term);
      pk.pack_array(static_cast<std::uint32_t>(m.snap->voters.size()));
      for (auto v : m.snap->voters) pk.pack(v);
      pack_bin(pk, m.snap->data);
    } else {
      pk.pack_nil();
    }
    if (buf.size() > lim.max_message_bytes)
      return error{errc::invalid_argument, "raft message: exceeds max_message_bytes"};
    return std::string{buf.data(), buf.size()};
  } catch (const std::bad_alloc&) {
    return error{errc::internal, "raft message: out of memory"};
  }
}

result<message> decode(std::string_view bytes, const wire_limits& lim) {
  if (bytes.empty()) return bad("empty");
  if (bytes.size() > lim.max_message_bytes) return bad("message too large");
  // msgpack allocates for the counts it reads before it sees the items: the unpack limits
  // cap every array/bin length, the depth caps recursion.
  const auto arrays = std::max<std::size_t>({lim.max_entries, lim.max_voters, message_fields});
  const auto bins = std::max(lim.max_entry_bytes, lim.max_snapshot_bytes);
  msgpack::unpack_limit limits(arrays, 0, 0, bins, 0, 4);
  try {
    std::size_t offset = 0;
    auto handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limits);
    if (offset != bytes.size()) return bad("trailing bytes");
    return read_message(handle.get(), lim);
  } catch (const std::bad_alloc&) {
    return bad("out of memory");
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

}  // namespace warp::consensus
