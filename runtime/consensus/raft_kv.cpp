#include "runtime/consensus/raft_kv.hpp"

#include <algorithm>
#include <limits>

namespace warp::consensus {

namespace {

// 2: the same layout; what it writes gets the entry's index as revision (1: revision 0).
constexpr std::uint8_t kv_version = 2;
// 2 adds the write-through's stored mark and unstored keys; 3 each key's revision and the
// tombstones. 1 and 2 are still restored (every key at revision 0, no tombstone).
constexpr std::uint8_t kv_snapshot_version = 3;
// 2: conditions on revisions; 1 (conditions on bytes) still decodes and applies.
constexpr std::uint8_t kv_batch_version = 2;
// A tombstone's cost counted against max_tombstone_bytes: its key twice (two indexes).
std::size_t tomb_cost(std::string_view key) {
  return 2 * key.size() + 64;
}

void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put64(out, s.size());
  out.append(s);
}

struct reader {
  std::string_view in;
  bool ok = true;

  std::uint64_t u64() {
    if (in.size() < 8) return ok = false, 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(8);
    return v;
  }
  std::uint32_t u32() {
    if (in.size() < 4) return ok = false, 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(4);
    return v;
  }
  std::uint8_t u8() {
    if (in.empty()) return ok = false, 0;
    auto v = static_cast<std::uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }
  // The length is checked against the bound and the bytes left before any copy.
  std::string str(std::size_t max) {
    auto n = u64();
    if (!ok || n > max || n > in.size()) return ok = false, std::string{};
    std::string s{in.substr(0, n)};
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

kv_command stored_mark(index_t index) {
  kv_command c;
  c.op = kv_op::stored;
  put64(c.value, index);
  return c;
}

std::string encode(const kv_command& c) {
  std::string out;
  out.reserve(1 + 8 * 5 + 2 + c.key.size() + c.value.size() + c.expected.size());
  out.push_back(static_cast<char>(c.legacy ? 1 : kv_version));
  put64(out, c.client);
  put64(out, c.seq);
  out.push_back(static_cast<char>(c.op));
  out.push_back(static_cast<char>(c.expect_absent ? 1 : 0));
  put_str(out, c.key);
  put_str(out, c.value);
  put_str(out, c.expected);
  return out;
}

result<kv_command> decode_kv_command(std::string_view bytes, const kv_limits& lim) {
  reader r{bytes};
  const auto version = r.u8();
  if (!r.ok || version < 1 || version > kv_version)
    return error{errc::codec_error, "kv command: bad version"};
  kv_command c;
  c.legacy = version == 1;
  c.client = r.u64();
  c.seq = r.u64();
  auto op = r.u8();
  auto absent = r.u8();
  c.key = r.str(lim.max_key_bytes);
  // A batch carries its whole transaction in `value`: bounded by the batch limit instead.
  c.value = r.str(op == static_cast<std::uint8_t>(kv_op::batch) ? lim.max_batch_bytes
                                                                : lim.max_value_bytes);
  c.expected = r.str(lim.max_value_bytes);
  if (!r.ok || !r.in.empty() || op > static_cast<std::uint8_t>(kv_op::stored) || absent > 1)
    return error{errc::codec_error, "kv command: malformed or beyond its bounds"};
  c.op = static_cast<kv_op>(op);
  c.expect_absent = absent == 1;
  return c;
}

std::string encode(const kv_batch& b) {
  std::size_t size = 9;
  for (const auto& c : b.conditions) size += 17 + c.key.size() + c.expected.size();
  for (const auto& w : b.writes) size += 17 + w.key.size() + w.value.size();
  std::string out;
  out.reserve(size);
  out.push_back(static_cast<char>(b.by_revision ? kv_batch_version : 1));
  put32(out, static_cast<std::uint32_t>(b.conditions.size()));
  for (const auto& c : b.conditions) {
    out.push_back(static_cast<char>(c.absent ? 1 : 0));
    put_str(out, c.key);
    if (b.by_revision)
      put64(out, c.revision);
    else
      put_str(out, c.absent ? std::string_view{} : std::string_view{c.expected});
  }
  put32(out, static_cast<std::uint32_t>(b.writes.size()));
  for (const auto& w : b.writes) {
    out.push_back(static_cast<char>(w.erase ? 1 : 0));
    put_str(out, w.key);
    put_str(out, w.erase ? std::string_view{} : std::string_view{w.value});
  }
  return out;
}

result<kv_batch> decode_kv_batch(std::string_view bytes, const kv_limits& lim) {
  if (bytes.size() > lim.max_batch_bytes)
    return error{errc::codec_error, "kv batch: larger than its bound"};
  reader r{bytes};
  const auto version = r.u8();
  if (!r.ok || version < 1 || version > kv_batch_version)
    return error{errc::codec_error, "kv batch: bad version"};
  kv_batch b;
  b.by_revision = version >= 2;
  // Counts are checked against the item bound and against the bytes left (each item takes
  // at least 17 bytes) before anything is reserved.
  auto count = [&](std::size_t already) -> std::uint32_t {
    auto n = r.u32();
    if (!r.ok || n > lim.max_batch_items - std::min(already, lim.max_batch_items) ||
        n > r.in.size() / 17)
      return r.ok = false, 0;
    return n;
  };
  auto nc = count(0);
  b.conditions.reserve(nc);
  for (std::uint32_t i = 0; r.ok && i < nc; ++i) {
    kv_batch::condition c;
    auto absent = r.u8();
    c.key = r.str(lim.max_key_bytes);
    if (b.by_revision)
      c.revision = r.u64();
    else
      c.expected = r.str(lim.max_value_bytes);
    if (absent > 1 || (absent == 1 && !c.expected.empty())) r.ok = false;
    c.absent = absent == 1;
    b.conditions.push_back(std::move(c));
  }
  auto nw = r.ok ? count(nc) : 0;
  b.writes.reserve(nw);
  for (std::uint32_t i = 0; r.ok && i < nw; ++i) {
    kv_batch::write w;
    auto erase = r.u8();
    w.key = r.str(lim.max_key_bytes);
    w.value = r.str(lim.max_value_bytes);
    if (erase > 1 || (erase == 1 && !w.value.empty())) r.ok = false;
    w.erase = erase == 1;
    b.writes.push_back(std::move(w));
  }
  if (!r.ok || !r.in.empty())
    return error{errc::codec_error, "kv batch: malformed or beyond its bounds"};
  return b;
}

std::string encode(const kv_versioned& v) {
  std::string out;
  out.reserve(9 + v.value.size());
  out.push_back(static_cast<char>(v.present ? 1 : 0));
  put64(out, v.revision);
  if (v.present) out.append(v.value);
  return out;
}

result<kv_versioned> decode_kv_versioned(std::string_view bytes, const kv_limits& lim) {
  reader r{bytes};
  kv_versioned v;
  auto present = r.u8();
  v.revision = r.u64();
  // The stored bytes carry their expiry header: room for it above the value bound.
  if (!r.ok || present > 1 || (present == 0 && !r.in.empty()) ||
      r.in.size() > lim.max_value_bytes + 64)
    return error{errc::codec_error, "kv versioned read: malformed or beyond its bounds"};
  v.present = present == 1;
  v.value.assign(r.in);
  return v;
}

void kv_state_machine::put_key(std::string key, std::string value, bool legacy) {
  drop_tombstone(key);
  data_.insert_or_assign(std::move(key), record{std::move(value), legacy ? 0 : applying_});
}

void kv_state_machine::erase_key(const std::string& key, bool legacy) {
  auto it = data_.find(key);
  // Deleting an absent key changes no revision (Redis's WATCH ignores a DEL of nothing).
  if (it == data_.end()) return;
  data_.erase(it);
  if (legacy) return;
  drop_tombstone(key);
  tombs_.emplace(key, applying_);
  tomb_order_.emplace(applying_, key);
  tomb_bytes_ += tomb_cost(key);
  // Forget the oldest beyond the bounds; the floor keeps a forgotten delete visible to a
  // WATCH taken before it (its key then reads at the floor, a revision it never had).
  while (!tomb_order_.empty() &&
         (tombs_.size() > lim_.max_tombstones || tomb_bytes_ > lim_.max_tombstone_bytes)) {
    auto oldest = tomb_order_.begin();
    tomb_floor_ = std::max(tomb_floor_, oldest->first);
    tomb_bytes_ -= tomb_cost(oldest->second);
    tombs_.erase(oldest->second);
    tomb_order_.erase(oldest);
  }
}

void kv_state_machine::drop_tombstone(std::string_view key) {
  auto it = tombs_.find(key);
  if (it == tombs_.end()) return;
  tomb_order_.erase({it->second, it->first});
  tomb_bytes_ -= tomb_cost(it->first);
  tombs_.erase(it);
}

index_t kv_state_machine::absent_revision(std::string_view key) const {
  auto it = tombs_.find(key);
  return it == tombs_.end() ? tomb_floor_ : it->second;
}

kv_versioned kv_state_machine::versioned(std::string_view key) const {
  kv_versioned v;
  if (auto it = data_.find(key); it != data_.end()) {
    v.present = true;
    v.revision = it->second.revision;
    v.value = it->second.value;
  } else {
    v.revision = absent_revision(key);
  }
  return v;
}

void kv_state_machine::changed(const std::string& key) {
  if (track_) unstored_.insert_or_assign(key, applying_);
}

result<std::string> kv_state_machine::execute(const kv_command& c) {
  switch (c.op) {
    case kv_op::stored: {
      reader r{c.value};
      auto through = r.u64();
      if (!r.ok || !r.in.empty()) return error{errc::codec_error, "stored mark: malformed"};
      // A mark proposed by an older leader may arrive after a newer one: never backwards.
      if (through <= stored_through_) return std::string{};
      stored_through_ = through;
      std::erase_if(unstored_, [through](const auto& kv) { return kv.second <= through; });
      return std::string{};
    }
    case kv_op::batch: {
      auto b = decode_kv_batch(c.value, lim_);
      if (!b) return b.err();
      // Every condition first: a failed one leaves the map as it was.
      for (const auto& cond : b->conditions) {
        auto it = data_.find(cond.key);
        bool match = false;
        if (!b->by_revision)
          match = cond.absent ? it == data_.end()
                              : (it != data_.end() && it->second.value == cond.expected);
        else if (cond.absent)
          match = it == data_.end() && absent_revision(cond.key) == cond.revision;
        else
          match = it != data_.end() && it->second.revision == cond.revision;
        if (!match)
          return error{errc::conflict,
                       "transaction: key '" + cond.key.substr(0, 128) + "' changed"};
      }
      for (auto& w : b->writes) {
        changed(w.key);
        if (w.erase)
          erase_key(w.key, c.legacy);
        else
          put_key(std::move(w.key), std::move(w.value), c.legacy);
      }
      return std::string{};
    }
    case kv_op::put:
      changed(c.key);
      put_key(c.key, c.value, c.legacy);
      return std::string{};
    case kv_op::del:
      // Also when absent here: storage may still hold it (written before the key was strong).
      changed(c.key);
      erase_key(c.key, c.legacy);
      return std::string{};
    case kv_op::cas: {
      auto it = data_.find(c.key);
      bool match = c.expect_absent ? it == data_.end()
                                   : (it != data_.end() && it->second.value == c.expected);
      if (!match) return error{errc::conflict, "compare-and-set: the value differs"};
      changed(c.key);
      put_key(c.key, c.value, c.legacy);
      return std::string{};
    }
    case kv_op::cas_del: {
      auto it = data_.find(c.key);
      if (it == data_.end() || it->second.value != c.expected)
        return error{errc::conflict, "compare-and-delete: the value differs"};
      changed(c.key);
      erase_key(c.key, c.legacy);
      return std::string{};
    }
  }
  return error{errc::internal, "kv: unknown op"};
}

result<std::string> kv_state_machine::apply(index_t index, std::string_view data) {
  applied_ = std::max(applied_, index);
  applying_ = index;
  auto cmd = decode_kv_command(data, lim_);
  // A malformed entry is refused the same way on every replica: deterministic, no state change.
  if (!cmd) return cmd.err();
  if (cmd->client != 0) {
    auto it = sessions_.find(cmd->client);
    if (it != sessions_.end()) {
      if (cmd->seq == it->second.seq) {
        ++deduplicated_;
        it->second.last_used = index;
        if (it->second.code != errc::ok) return error{it->second.code, "(answered before)"};
        return std::string{};
      }
      if (cmd->seq < it->second.seq)
        return error{errc::invalid_argument, "sequence below the client's last applied one"};
    }
  }
  auto out = execute(*cmd);
  if (cmd->client != 0) {
    if (!sessions_.contains(cmd->client) && sessions_.size() >= lim_.max_sessions) {
      // Deterministic eviction (by the log index of last use), so replicas agree on it.
      auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
        return a.second.last_used < b.second.last_used;
      });
      sessions_.erase(oldest);
    }
    sessions_[cmd->client] = session{cmd->seq, out.code(), index};
  }
  return out;
}

result<std::string> kv_state_machine::read(std::string_view key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return error{errc::not_found, "no value"};
  return it->second.value;
}

result<std::string> kv_state_machine::read_versioned(std::string_view key) const {
  return encode(versioned(key));
}

std::string kv_state_machine::snapshot() const {
  std::string out;
  out.push_back(static_cast<char>(kv_snapshot_version));
  put64(out, applied_);
  put64(out, data_.size());
  for (auto& [k, v] : data_) {
    put_str(out, k);
    put_str(out, v.value);
    put64(out, v.revision);
  }
  put64(out, sessions_.size());
  for (auto& [client, s] : sessions_) {
    put64(out, client);
    put64(out, s.seq);
    out.push_back(static_cast<char>(s.code));
    put64(out, s.last_used);
  }
  put64(out, stored_through_);
  put64(out, unstored_.size());
  for (auto& [k, index] : unstored_) {
    put_str(out, k);
    put64(out, index);
  }
  put64(out, tomb_floor_);
  put64(out, tombs_.size());
  for (auto& [k, index] : tombs_) {
    put_str(out, k);
    put64(out, index);
  }
  return out;
}

result<void> kv_state_machine::restore(std::string_view data) {
  reader r{data};
  const auto version = r.u8();
  if (!r.ok || version < 1 || version > kv_snapshot_version)
    return error{errc::codec_error, "kv snapshot: bad version"};
  decltype(data_) next;
  decltype(sessions_) next_sessions;
  index_t applied = r.u64();
  // Counts are not trusted for reserving: every element read is bounded by the bytes left.
  auto n = r.u64();
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    auto k = r.str(lim_.max_key_bytes);
    auto v = r.str(lim_.max_value_bytes);
    index_t rev = version >= 3 ? r.u64() : 0;
    if (r.ok) next.insert_or_assign(std::move(k), record{std::move(v), rev});
  }
  auto s = r.u64();
  if (r.ok && s > lim_.max_sessions) r.ok = false;
  for (std::uint64_t i = 0; r.ok && i < s; ++i) {
    auto client = r.u64();
    session ses;
    ses.seq = r.u64();
    ses.code = static_cast<errc>(r.u8());
    ses.last_used = r.u64();
    if (r.ok) next_sessions[client] = ses;
  }
  index_t stored_through = 0;
  decltype(unstored_) next_unstored;
  if (version >= 2) {
    stored_through = r.u64();
    auto u = r.u64();
    for (std::uint64_t i = 0; r.ok && i < u; ++i) {
      auto k = r.str(lim_.max_key_bytes);
      auto index = r.u64();
      if (r.ok) next_unstored.insert_or_assign(std::move(k), index);
    }
  } else if (track_) {
    // Taken before the write-through existed: storage has none of it yet.
    for (const auto& [k, v] : next) next_unstored.emplace(k, applied);
  }
  index_t floor = 0;
  decltype(tombs_) next_tombs;
  decltype(tomb_order_) next_order;
  std::size_t tomb_bytes = 0;
  if (version >= 3) {
    floor = r.u64();
    auto t = r.u64();
    for (std::uint64_t i = 0; r.ok && i < t; ++i) {
      auto k = r.str(lim_.max_key_bytes);
      auto index = r.u64();
      if (!r.ok) break;
      if (next_tombs.size() >= lim_.max_tombstones || next_tombs.contains(k)) {
        r.ok = false;
        break;
      }
      tomb_bytes += tomb_cost(k);
      next_order.emplace(index, k);
      next_tombs.insert_or_assign(std::move(k), index);
    }
  }
  if (!r.ok || !r.in.empty()) return error{errc::codec_error, "kv snapshot: malformed"};
  data_ = std::move(next);
  tombs_ = std::move(next_tombs);
  tomb_order_ = std::move(next_order);
  tomb_bytes_ = tomb_bytes;
  tomb_floor_ = floor;
  sessions_ = std::move(next_sessions);
  applied_ = applied;
  stored_through_ = stored_through;
  unstored_ = track_ ? std::move(next_unstored) : decltype(unstored_){};
  return {};
}

}  // namespace warp::consensus
