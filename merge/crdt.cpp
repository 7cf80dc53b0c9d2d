#include "merge/crdt.hpp"

#include <algorithm>
#include <limits>
#include <tuple>

#include "merge/rules.hpp"
#include "runtime/consensus/byte_codec.hpp"

namespace warp::merge {

namespace {

using consensus::byte_reader;
using consensus::put_str;
using consensus::put_u64;
using consensus::put_u8;

error bad(std::string_view what) {
  return error{errc::codec_error, "bad CRDT state: " + std::string{what}};
}

void put_header(std::string& out, crdt_kind kind) {
  put_u8(out, static_cast<std::uint8_t>(kind));
  put_u8(out, crdt_encoding_version);
}

/// Reads and checks the kind and version bytes.
result<void> read_header(byte_reader& r, crdt_kind want) {
  auto kind = r.u8();
  auto ver = r.u8();
  if (!r.ok) return bad("truncated header");
  if (kind != static_cast<std::uint8_t>(want)) return bad("not a state of this kind");
  if (ver != crdt_encoding_version) return bad("unknown encoding version " + std::to_string(ver));
  return {};
}

/// An origin id: non-empty, bounded.
bool valid_origin(std::string_view origin, const crdt_limits& lim) {
  return !origin.empty() && origin.size() <= lim.max_origin;
}

}  // namespace

result<crdt_kind> crdt_kind_of(std::string_view bytes) {
  if (bytes.size() < 2) return bad("truncated header");
  auto k = static_cast<std::uint8_t>(bytes[0]);
  if (k < 1 || k > 3) return bad("unknown kind");
  return static_cast<crdt_kind>(k);
}

result<bool> crdt_present(std::string_view bytes) {
  auto kind = crdt_kind_of(bytes);
  if (!kind) return kind.err();
  switch (*kind) {
    case crdt_kind::counter: {
      auto c = pn_counter::decode(bytes);
      if (!c) return c.err();
      return c->present();
    }
    case crdt_kind::set: {
      auto s = or_set::decode(bytes);
      if (!s) return s.err();
      return s->size() > 0;
    }
    case crdt_kind::map: {
      auto m = lww_map::decode(bytes);
      if (!m) return m.err();
      return m->live_count() > 0;
    }
  }
  return bad("unknown kind");
}

// -- pn_counter ---------------------------------------------------------------------------

namespace {
constexpr std::string_view reset_suffix = "/reset";

bool is_floor(std::string_view origin) noexcept {
  return origin.ends_with(reset_suffix);
}

/// Sum of the counted entries' P - N minus that of the floors (what resets observed).
__int128 sum_of(const std::map<std::string, pn_counter::totals, std::less<>>& entries) {
  __int128 v = 0;
  for (auto& [origin, t] : entries) {
    auto d = static_cast<__int128>(t.p) - static_cast<__int128>(t.n);
    v += is_floor(origin) ? -d : d;
  }
  return v;
}

/// Adds `delta` to `origin`'s totals in `entries` (a new entry when absent), or refuses
/// without a change when a total would pass 2^64 - 1 or the origins their bound.
result<void> add_to(std::map<std::string, pn_counter::totals, std::less<>>& entries,
                    std::string_view origin, __int128 delta, const crdt_limits& lim) {
  auto it = entries.find(origin);
  if (it == entries.end() && entries.size() >= lim.max_origins)
    return error{errc::invalid_argument, "too many counter origins"};
  pn_counter::totals t = it == entries.end() ? pn_counter::totals{} : it->second;
  const __int128 mag = delta < 0 ? -delta : delta;
  auto& slot = delta < 0 ? t.n : t.p;
  if (mag > static_cast<__int128>(std::numeric_limits<std::uint64_t>::max() - slot))
    return error{errc::invalid_argument, "increment or decrement would overflow"};
  slot += static_cast<std::uint64_t>(mag);
  if (it == entries.end())
    entries.emplace(std::string{origin}, t);
  else
    it->second = t;
  return {};
}
}  // namespace

std::int64_t pn_counter::value() const noexcept {
  auto v = sum_of(entries_);
  constexpr auto lo = std::numeric_limits<std::int64_t>::min();
  constexpr auto hi = std::numeric_limits<std::int64_t>::max();
  if (v < lo) return lo;
  if (v > hi) return hi;
  return static_cast<std::int64_t>(v);
}

result<std::int64_t> pn_counter::add(std::string_view origin, std::int64_t delta,
                                     const crdt_limits& lim) {
  if (!valid_origin(origin, lim)) return error{errc::invalid_argument, "bad counter origin"};
  auto next = sum_of(entries_) + delta;
  if (next < std::numeric_limits<std::int64_t>::min() ||
      next > std::numeric_limits<std::int64_t>::max())
    return error{errc::invalid_argument, "increment or decrement would overflow"};
  if (auto st = add_to(entries_, origin, delta, lim); !st) return st.err();
  if (delta == 0) touch(origin);
  return static_cast<std::int64_t>(next);
}

result<void> pn_counter::assign(std::string_view origin, std::int64_t target,
                                const crdt_limits& lim) {
  if (!valid_origin(origin, lim)) return error{errc::invalid_argument, "bad counter origin"};
  // Exact even when merged totals saturate value(): the difference is taken in 128 bits.
  auto delta = static_cast<__int128>(target) - sum_of(entries_);
  if (auto st = add_to(entries_, origin, delta, lim); !st) return st.err();
  if (delta == 0) touch(origin);
  return {};
}

std::string pn_counter::reset_origin(std::string_view origin) {
  std::string r{origin};
  r += reset_suffix;
  return r;
}

result<bool> pn_counter::reset(const crdt_limits& lim) {
  const bool was = present();
  // Each counted origin's floor becomes its totals as observed here. A floor is only ever
  // raised to totals the origin reached, so merging floors by max never subtracts one
  // increment twice, however many regions reset concurrently.
  std::vector<std::pair<std::string, totals>> floors;
  for (auto& [origin, t] : entries_) {
    if (is_floor(origin)) continue;
    auto name = reset_origin(origin);
    if (!valid_origin(name, lim)) return error{errc::invalid_argument, "bad counter origin"};
    floors.emplace_back(std::move(name), t);
  }
  std::size_t fresh = 0;
  for (auto& [name, t] : floors) fresh += entries_.contains(name) ? 0 : 1;
  if (entries_.size() + fresh > lim.max_origins)
    return error{errc::invalid_argument, "too many counter origins"};
  for (auto& [name, t] : floors) {
    auto& f = entries_[name];
    f.p = std::max(f.p, t.p);
    f.n = std::max(f.n, t.n);
  }
  return was;
}

bool pn_counter::present() const noexcept {
  bool floors = false;
  for (auto& [origin, t] : entries_) {
    if (is_floor(origin)) {
      floors = true;
      continue;
    }
    // An origin that moved past its floor (or has none) wrote after the last DEL it saw.
    auto f = entries_.find(reset_origin(origin));
    if (f == entries_.end() || f->second != t) return true;
  }
  return !floors;
}

void pn_counter::touch(std::string_view origin) {
  // A write of net 0 after a DEL (INCRBY 0, SET to the value) still makes the key present:
  // both totals move, the value does not. Both are below 2^64 - 1 or add_to refuses.
  if (present()) return;
  auto it = entries_.find(origin);
  constexpr auto top = std::numeric_limits<std::uint64_t>::max();
  if (it == entries_.end() || it->second.p == top || it->second.n == top) return;
  ++it->second.p;
  ++it->second.n;
}

void pn_counter::merge(const pn_counter& other) {
  for (auto& [origin, t] : other.entries_) {
    auto [it, fresh] = entries_.try_emplace(origin, t);
    if (fresh) continue;
    it->second.p = std::max(it->second.p, t.p);
    it->second.n = std::max(it->second.n, t.n);
  }
}

std::string pn_counter::encode() const {
  std::string out;
  put_header(out, crdt_kind::counter);
  put_u64(out, entries_.size());
  for (auto& [origin, t] : entries_) {
    put_str(out, origin);
    put_u64(out, t.p);
    put_u64(out, t.n);
  }
  return out;
}

result<pn_counter> pn_counter::decode(std::string_view bytes, const crdt_limits& lim) {
  byte_reader r{bytes};
  if (auto h = read_header(r, crdt_kind::counter); !h) return h.err();
  auto n = r.count(lim.max_origins);
  if (!r.ok) return bad("counter origin count out of bounds");
  pn_counter c;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto origin = r.str(lim.max_origin);
    totals t{r.u64(), r.u64()};
    if (!r.ok) return bad("truncated counter entry");
    if (origin.empty()) return bad("empty counter origin");
    if (!c.entries_.empty() && !(c.entries_.rbegin()->first < origin))
      return bad("counter origins not sorted");
    c.entries_.emplace_hint(c.entries_.end(), std::move(origin), t);
  }
  if (!r.done()) return bad("trailing bytes");
  return c;
}

// -- or_set ---------------------------------------------------------------------------------

bool or_set::seen(const dot& d) const {
  auto it = context_.find(d.origin);
  return it != context_.end() && d.counter <= it->second;
}

bool or_set::contains(std::string_view element) const {
  return elements_.contains(element);
}

std::vector<std::string> or_set::members() const {
  std::vector<std::string> out;
  out.reserve(elements_.size());
  for (auto& [e, dots] : elements_) out.push_back(e);
  return out;
}

result<bool> or_set::add(std::string_view origin, std::string_view element,
                         const crdt_limits& lim) {
  if (!valid_origin(origin, lim)) return error{errc::invalid_argument, "bad set origin"};
  if (element.size() > lim.max_item) return error{errc::value_too_large, "set element too large"};
  auto ctx = context_.find(origin);
  if (ctx == context_.end() && context_.size() >= lim.max_origins)
    return error{errc::invalid_argument, "too many set origins"};
  auto it = elements_.find(element);
  if (it == elements_.end() && elements_.size() >= lim.max_entries)
    return error{errc::value_too_large, "too many set elements"};
  if (ctx == context_.end()) ctx = context_.emplace(std::string{origin}, 0).first;
  if (ctx->second == std::numeric_limits<std::uint64_t>::max())
    return error{errc::invalid_argument, "set origin counter exhausted"};
  dot d{std::string{origin}, ++ctx->second};
  if (it != elements_.end()) {
    it->second = {std::move(d)};
    return false;
  }
  elements_.emplace(std::string{element}, std::set<dot>{std::move(d)});
  return true;
}

bool or_set::remove(std::string_view element) {
  auto it = elements_.find(element);
  if (it == elements_.end()) return false;
  elements_.erase(it);
  return true;
}

void or_set::merge(const or_set& other) {
  // A dot only one side holds survives unless the other side's context covers it (the
  // other side saw that add and removed or replaced it).
  std::map<std::string, std::set<dot>, std::less<>> merged;
  auto a = elements_.begin();
  auto b = other.elements_.begin();
  auto keep_unseen = [](const std::set<dot>& dots, const or_set& by, std::set<dot>& out) {
    for (auto& d : dots)
      if (!by.seen(d)) out.insert(d);
  };
  while (a != elements_.end() || b != other.elements_.end()) {
    std::set<dot> dots;
    std::string element;
    if (b == other.elements_.end() || (a != elements_.end() && a->first < b->first)) {
      keep_unseen(a->second, other, dots);
      element = a->first;
      ++a;
    } else if (a == elements_.end() || b->first < a->first) {
      keep_unseen(b->second, *this, dots);
      element = b->first;
      ++b;
    } else {
      for (auto& d : a->second) {
        if (b->second.contains(d) || !other.seen(d)) dots.insert(d);
      }
      for (auto& d : b->second) {
        if (!a->second.contains(d) && !seen(d)) dots.insert(d);
      }
      element = a->first;
      ++a;
      ++b;
    }
    if (!dots.empty()) merged.emplace_hint(merged.end(), std::move(element), std::move(dots));
  }
  elements_ = std::move(merged);
  for (auto& [origin, counter] : other.context_) {
    auto [it, fresh] = context_.try_emplace(origin, counter);
    if (!fresh) it->second = std::max(it->second, counter);
  }
}

std::string or_set::encode() const {
  std::string out;
  put_header(out, crdt_kind::set);
  put_u64(out, context_.size());
  for (auto& [origin, counter] : context_) {
    put_str(out, origin);
    put_u64(out, counter);
  }
  put_u64(out, elements_.size());
  for (auto& [element, dots] : elements_) {
    put_str(out, element);
    put_u64(out, dots.size());
    for (auto& d : dots) {
      put_str(out, d.origin);
      put_u64(out, d.counter);
    }
  }
  return out;
}

result<or_set> or_set::decode(std::string_view bytes, const crdt_limits& lim) {
  byte_reader r{bytes};
  if (auto h = read_header(r, crdt_kind::set); !h) return h.err();
  or_set s;
  auto origins = r.count(lim.max_origins);
  if (!r.ok) return bad("set origin count out of bounds");
  for (std::uint64_t i = 0; i < origins; ++i) {
    auto origin = r.str(lim.max_origin);
    auto counter = r.u64();
    if (!r.ok) return bad("truncated set context");
    if (origin.empty() || counter == 0) return bad("empty set context entry");
    if (!s.context_.empty() && !(s.context_.rbegin()->first < origin))
      return bad("set context not sorted");
    s.context_.emplace_hint(s.context_.end(), std::move(origin), counter);
  }
  auto elements = r.count(lim.max_entries);
  if (!r.ok) return bad("set element count out of bounds");
  for (std::uint64_t i = 0; i < elements; ++i) {
    auto element = r.str(lim.max_item);
    // An element holds at most one dot per origin (a local add replaces the dots).
    auto ndots = r.count(s.context_.size());
    if (!r.ok) return bad("truncated set element");
    if (ndots == 0) return bad("set element without a dot");
    if (!s.elements_.empty() && !(s.elements_.rbegin()->first < element))
      return bad("set elements not sorted");
    std::set<dot> dots;
    for (std::uint64_t j = 0; j < ndots; ++j) {
      dot d{r.str(lim.max_origin), r.u64()};
      if (!r.ok) return bad("truncated set dot");
      if (d.counter == 0 || !s.seen(d)) return bad("set dot outside the context");
      if (!dots.empty() && !(*dots.rbegin() < d)) return bad("set dots not sorted");
      dots.insert(dots.end(), std::move(d));
    }
    s.elements_.emplace_hint(s.elements_.end(), std::move(element), std::move(dots));
  }
  if (!r.done()) return bad("trailing bytes");
  return s;
}

// -- lww_map ----------------------------------------------------------------------------------

bool lww_field_wins(const lww_field& incoming, const lww_field& current) noexcept {
  if (replaces(current.ver, incoming.ver)) return true;
  if (replaces(incoming.ver, current.ver)) return false;
  static const std::string none;
  auto key = [](const lww_field& f) {
    return std::tuple<std::string_view, bool, std::string_view>{
        f.origin, !f.value.has_value(), f.value ? std::string_view{*f.value} : none};
  };
  return key(current) < key(incoming);
}

result<bool> lww_map::put(std::string_view field, lww_field f, const crdt_limits& lim) {
  if (!valid_origin(f.origin, lim)) return error{errc::invalid_argument, "bad map origin"};
  if (field.size() > lim.max_item || (f.value && f.value->size() > lim.max_item))
    return error{errc::value_too_large, "map field or value too large"};
  auto it = fields_.find(field);
  if (it == fields_.end()) {
    if (fields_.size() >= lim.max_entries)
      return error{errc::value_too_large, "too many map fields"};
    fields_.emplace(std::string{field}, std::move(f));
    return true;
  }
  if (!lww_field_wins(f, it->second)) return false;
  it->second = std::move(f);
  return true;
}

result<bool> lww_map::set(std::string_view field, std::string_view value, version ver,
                          std::string_view origin, const crdt_limits& lim) {
  return put(field, lww_field{std::string{value}, ver, std::string{origin}}, lim);
}

result<bool> lww_map::remove(std::string_view field, version ver, std::string_view origin,
                             const crdt_limits& lim) {
  return put(field, lww_field{std::nullopt, ver, std::string{origin}}, lim);
}

std::optional<std::string_view> lww_map::get(std::string_view field) const {
  auto it = fields_.find(field);
  if (it == fields_.end() || !it->second.value) return std::nullopt;
  return std::string_view{*it->second.value};
}

std::vector<std::pair<std::string, std::string>> lww_map::live() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [field, f] : fields_)
    if (f.value) out.emplace_back(field, *f.value);
  return out;
}

std::size_t lww_map::live_count() const noexcept {
  return static_cast<std::size_t>(std::count_if(
      fields_.begin(), fields_.end(), [](auto& kv) { return kv.second.value.has_value(); }));
}

void lww_map::merge(const lww_map& other) {
  for (auto& [field, f] : other.fields_) {
    auto [it, fresh] = fields_.try_emplace(field, f);
    if (!fresh && lww_field_wins(f, it->second)) it->second = f;
  }
}

std::size_t lww_map::drop_tombstones(std::uint64_t hlc) {
  return std::erase_if(fields_,
                       [hlc](auto& kv) { return !kv.second.value && kv.second.ver.hlc <= hlc; });
}

std::string lww_map::encode() const {
  std::string out;
  put_header(out, crdt_kind::map);
  put_u64(out, fields_.size());
  for (auto& [field, f] : fields_) {
    put_str(out, field);
    put_u64(out, f.ver.hlc);
    put_u64(out, f.ver.node);
    put_str(out, f.origin);
    put_u8(out, f.value ? 1 : 0);
    if (f.value) put_str(out, *f.value);
  }
  return out;
}

result<lww_map> lww_map::decode(std::string_view bytes, const crdt_limits& lim) {
  byte_reader r{bytes};
  if (auto h = read_header(r, crdt_kind::map); !h) return h.err();
  auto n = r.count(lim.max_entries);
  if (!r.ok) return bad("map field count out of bounds");
  lww_map m;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto field = r.str(lim.max_item);
    lww_field f;
    f.ver.hlc = r.u64();
    auto node = r.u64();
    f.origin = r.str(lim.max_origin);
    auto has = r.u8();
    if (has == 1) f.value = r.str(lim.max_item);
    if (!r.ok) return bad("truncated map field");
    if (has > 1) return bad("bad map value flag");
    if (node > std::numeric_limits<std::uint32_t>::max()) return bad("map node id out of range");
    if (f.origin.empty()) return bad("empty map origin");
    f.ver.node = static_cast<std::uint32_t>(node);
    if (!m.fields_.empty() && !(m.fields_.rbegin()->first < field))
      return bad("map fields not sorted");
    m.fields_.emplace_hint(m.fields_.end(), std::move(field), std::move(f));
  }
  if (!r.done()) return bad("trailing bytes");
  return m;
}

}  // namespace warp::merge
