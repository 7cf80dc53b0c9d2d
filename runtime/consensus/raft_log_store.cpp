#include "runtime/consensus/raft_log_store.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "runtime/consensus/crc32c.hpp"

namespace warp::consensus {

namespace {

constexpr std::string_view seg_magic{"WRSEG001", 8};
constexpr std::string_view hard_magic{"WRHARD01", 8};
constexpr std::string_view snap_magic{"WRSNAP01", 8};
constexpr std::size_t seg_header_bytes = 16;
constexpr std::size_t record_header_bytes = 8;
constexpr std::size_t entry_fixed_bytes = 17;  // term, index, type
constexpr std::size_t hard_bytes = 8 + 4 + 24;

void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint32_t get32(std::string_view s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}
std::uint64_t get64(std::string_view s, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

error corrupt(const std::string& what) {
  return error{errc::storage_error, "raft log corrupt: " + what};
}

std::string encode_record(const entry& e) {
  std::string payload;
  payload.reserve(entry_fixed_bytes + e.data.size());
  put64(payload, e.term);
  put64(payload, e.index);
  payload.push_back(static_cast<char>(e.type));
  payload.append(e.data);
  std::string rec;
  rec.reserve(record_header_bytes + payload.size());
  put32(rec, static_cast<std::uint32_t>(payload.size()));
  put32(rec, crc32c(payload));
  rec.append(payload);
  return rec;
}

// A record at `at`: its entry and total size, or nothing if it is not a whole valid record.
struct parsed_record {
  entry e;
  std::size_t size;
};
std::optional<parsed_record> parse_record(std::string_view buf, std::size_t at,
                                          std::size_t max_entry_bytes) {
  if (buf.size() - at < record_header_bytes) return std::nullopt;
  const std::uint32_t len = get32(buf, at);
  if (len < entry_fixed_bytes || len > entry_fixed_bytes + max_entry_bytes) return std::nullopt;
  if (buf.size() - at - record_header_bytes < len) return std::nullopt;
  std::string_view payload = buf.substr(at + record_header_bytes, len);
  if (crc32c(payload) != get32(buf, at + 4)) return std::nullopt;
  const auto type = static_cast<std::uint8_t>(payload[16]);
  if (type > static_cast<std::uint8_t>(entry_type::config)) return std::nullopt;
  parsed_record r;
  r.e.term = get64(payload, 0);
  r.e.index = get64(payload, 8);
  r.e.type = static_cast<entry_type>(type);
  r.e.data.assign(payload.substr(entry_fixed_bytes));
  r.size = record_header_bytes + len;
  return r;
}

std::string encode_hard(const hard_state& h) {
  std::string body;
  put64(body, h.term);
  put64(body, h.vote);
  put64(body, h.commit);
  std::string out{hard_magic};
  put32(out, crc32c(body));
  return out + body;
}

}  // namespace

std::string raft_log_store::seg_path(std::uint64_t seq) const {
  char name[40];
  std::snprintf(name, sizeof name, "seg-%016llx.log", static_cast<unsigned long long>(seq));
  return dir_ + "/" + name;
}

result<std::unique_ptr<raft_log_store>> raft_log_store::open(std::string dir,
                                                             log_store_options opts,
                                                             file_ops& ops) {
  std::unique_ptr<raft_log_store> s{new raft_log_store(std::move(dir), opts, ops)};
  if (auto r = s->recover(); !r) return r.err();
  return s;
}

raft_log_store::~raft_log_store() {
  // Nothing is flushed here: whatever was not synced was never reported durable.
  if (fd_ >= 0) (void)ops_.close(fd_);
  if (lock_fd_ >= 0) (void)ops_.close(lock_fd_);
}

result<void> raft_log_store::fail(error e) {
  failed_ = true;
  return e;
}

result<void> raft_log_store::recover() {
  if (auto r = ops_.make_dir(dir_); !r) return r;
  // Two stores appending to one segment (each O_APPEND, each writing a segment header into
  // the same new file) leave a header where a record belongs: refuse the second one.
  auto lk = ops_.lock(dir_ + "/lock");
  if (!lk) return lk.err();
  lock_fd_ = *lk;
  // Snapshot first: it says which segments are still live.
  std::uint64_t first_seq = 0;
  const std::size_t snap_bound = 8 + 4 + 28 + opts_.max_voters * 8 + 8 + opts_.max_snapshot_bytes;
  auto sb = ops_.read(dir_ + "/snapshot", snap_bound);
  if (sb) {
    std::string_view b = *sb;
    if (b.size() < 8 + 4 + 28 || b.substr(0, 8) != snap_magic ||
        crc32c(b.substr(12)) != get32(b, 8))
      return corrupt("snapshot file fails its checksum");
    snapshot s;
    s.index = get64(b, 12);
    s.term = get64(b, 20);
    first_seq = get64(b, 28);
    const std::uint32_t nv = get32(b, 36);
    if (nv > opts_.max_voters || b.size() < 40 + nv * 8ull + 8) return corrupt("snapshot voters");
    for (std::uint32_t i = 0; i < nv; ++i) s.voters.push_back(get64(b, 40 + i * 8));
    const std::uint64_t dlen = get64(b, 40 + nv * 8);
    if (dlen != b.size() - (48 + nv * 8ull)) return corrupt("snapshot data length");
    s.data.assign(b.substr(48 + nv * 8));
    snap_index_ = s.index;
    recovered_.snap = std::move(s);
  } else if (sb.code() != errc::not_found) {
    return sb.err();
  }
  auto hb = ops_.read(dir_ + "/hardstate", hard_bytes);
  if (hb) {
    std::string_view b = *hb;
    if (b.size() != hard_bytes || b.substr(0, 8) != hard_magic ||
        crc32c(b.substr(12)) != get32(b, 8))
      return corrupt("hard state fails its checksum");
    recovered_.hard = hard_state{get64(b, 12), get64(b, 20), get64(b, 28)};
    saved_hard_ = recovered_.hard;
  } else if (hb.code() != errc::not_found) {
    return hb.err();
  }

  auto names = ops_.list(dir_);
  if (!names) return names.err();
  std::vector<std::uint64_t> seqs;
  for (const auto& n : *names) {
    unsigned long long seq = 0;
    char tail[8] = {};
    if (n.size() == 24 && std::sscanf(n.c_str(), "seg-%16llx.%3s", &seq, tail) == 2 &&
        std::strcmp(tail, "log") == 0) {
      if (seq < first_seq)
        (void)ops_.remove(dir_ + "/" + n);  // compacted or replaced before a crash
      else
        seqs.push_back(seq);
    } else if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp") {
      (void)ops_.remove(dir_ + "/" + n);  // an atomic replace that did not finish
    }
  }
  std::sort(seqs.begin(), seqs.end());

  std::vector<entry>& log = recovered_.entries;
  const std::size_t seg_bound = opts_.max_segment_bytes + seg_header_bytes + record_header_bytes +
                                entry_fixed_bytes + opts_.max_entry_bytes;
  for (std::size_t k = 0; k < seqs.size(); ++k) {
    const bool last = k + 1 == seqs.size();
    const std::string path = seg_path(seqs[k]);
    auto rb = ops_.read(path, seg_bound);
    if (!rb) return rb.err();
    std::string_view b = *rb;
    if (b.size() < seg_header_bytes || b.substr(0, 8) != seg_magic || get64(b, 8) != seqs[k]) {
      if (!last || b.size() >= seg_header_bytes) return corrupt(path + ": bad segment header");
      // Created but its header never fully written: nothing was ever in it.
      if (auto r = ops_.remove(path); !r) return r;
      seqs.pop_back();
      break;
    }
    segment seg{seqs[k], 0};
    std::size_t at = seg_header_bytes;
    while (at < b.size()) {
      auto rec = parse_record(b, at, opts_.max_entry_bytes);
      if (!rec) {
        // A torn write leaves nothing valid after it. Any whole valid record further on
        // means this is corruption in the middle: refuse rather than drop acked entries.
        for (std::size_t p = at + 1; p + record_header_bytes <= b.size(); ++p)
          if (parse_record(b, p, opts_.max_entry_bytes))
            return corrupt(path + ": bad record at offset " + std::to_string(at) +
                           " followed by valid ones");
        if (!last)
          return corrupt(path + ": bad record at offset " + std::to_string(at) +
                         " in a segment that is not the last");
        report_.truncated_bytes = b.size() - at;
        report_.truncated_why = path + ": torn or corrupt tail at offset " + std::to_string(at);
        if (auto r = ops_.truncate(path, at); !r) return r;
        b = b.substr(0, at);
        break;
      }
      entry& e = rec->e;
      if (seg.first_index == 0) seg.first_index = e.index;
      ++report_.records;
      at += rec->size;
      // Replay the Raft truncation: a record at index i replaces i and everything after.
      if (e.index <= snap_index_) {
        log.clear();
        continue;
      }
      if (!log.empty() && e.index <= log.back().index) log.resize(e.index - log.front().index);
      const index_t expect = log.empty() ? snap_index_ + 1 : log.back().index + 1;
      if (e.index != expect)
        return corrupt(path + ": entry " + std::to_string(e.index) + " where " +
                       std::to_string(expect) + " was due");
      log.push_back(std::move(e));
    }
    segments_.push_back(seg);
    cur_size_ = b.size();  // the last one pushed is the one appended to
  }
  report_.segments = segments_.size();
  last_index_ = log.empty() ? snap_index_ : log.back().index;
  if (segments_.empty()) return start_segment(std::max<std::uint64_t>(first_seq, 1));
  auto fd = ops_.open_append(seg_path(segments_.back().seq));
  if (!fd) return fd.err();
  fd_ = *fd;
  return {};
}

result<void> raft_log_store::start_segment(std::uint64_t seq) {
  if (fd_ >= 0) {
    if (dirty_) {
      if (auto r = ops_.datasync(fd_); !r) return fail(r.err());
      dirty_ = false;
    }
    (void)ops_.close(fd_);
    fd_ = -1;
  }
  auto fd = ops_.open_append(seg_path(seq));
  if (!fd) return fail(fd.err());
  fd_ = *fd;
  std::string header{seg_magic};
  put64(header, seq);
  if (auto r = ops_.write(fd_, header); !r) return fail(r.err());
  if (auto r = ops_.datasync(fd_); !r) return fail(r.err());
  if (auto r = ops_.sync_dir(dir_); !r) return fail(r.err());
  segments_.push_back(segment{seq, 0});
  cur_size_ = header.size();
  return {};
}

result<void> raft_log_store::append(std::span<const entry> entries) {
  if (failed_) return error{errc::storage_error, "raft log failed earlier: reopen it"};
  std::string batch;
  index_t expect_max = last_index_ + 1;
  for (const auto& e : entries) {
    if (e.data.size() > opts_.max_entry_bytes)
      return error{errc::value_too_large, "raft log: entry exceeds max_entry_bytes"};
    if (e.index <= snap_index_ || e.index > expect_max)
      return error{errc::invalid_argument,
                   "raft log: entry " + std::to_string(e.index) + " does not follow the log"};
    expect_max = e.index + 1;
    std::string rec = encode_record(e);
    if (cur_size_ + batch.size() + rec.size() > opts_.max_segment_bytes &&
        cur_size_ + batch.size() > seg_header_bytes) {
      if (!batch.empty()) {
        if (auto r = ops_.write(fd_, batch); !r) return fail(r.err());
        dirty_ = true;
        cur_size_ += batch.size();
        batch.clear();
      }
      if (auto r = start_segment(segments_.back().seq + 1); !r) return r;
    }
    if (segments_.back().first_index == 0) segments_.back().first_index = e.index;
    batch += rec;
    last_index_ = e.index;
  }
  if (!batch.empty()) {
    if (auto r = ops_.write(fd_, batch); !r) return fail(r.err());
    dirty_ = true;
    cur_size_ += batch.size();
  }
  return {};
}

result<void> raft_log_store::sync() {
  if (failed_) return error{errc::storage_error, "raft log failed earlier: reopen it"};
  if (!dirty_) return {};
  // After a failed fdatasync the kernel may have dropped the dirty pages and cleared the
  // error: retrying could "succeed" without the data. Hence fail() and no retry.
  if (auto r = ops_.datasync(fd_); !r) return fail(r.err());
  dirty_ = false;
  return {};
}

result<void> raft_log_store::save_hard_state(const hard_state& hs) {
  if (failed_) return error{errc::storage_error, "raft log failed earlier: reopen it"};
  if (auto r = ops_.write_atomic(dir_, "hardstate", encode_hard(hs)); !r) return fail(r.err());
  saved_hard_ = hs;
  return {};
}

result<void> raft_log_store::persist(const ready& rd) {
  if (rd.snap)
    if (auto r = install_snapshot(*rd.snap); !r) return r;
  if (!rd.entries.empty())
    if (auto r = append(rd.entries); !r) return r;
  if (auto r = sync(); !r) return r;
  // The commit index is volatile state in Raft (a restarted node learns it again from the
  // leader), so a ready that only moves it costs no extra fsyncs: the hard state file is
  // rewritten (temp, fsync, rename, fsync dir) when term or vote change, which must be
  // durable before any message that depends on them leaves.
  if (rd.hard && (rd.hard->term != saved_hard_.term || rd.hard->vote != saved_hard_.vote))
    if (auto r = save_hard_state(*rd.hard); !r) return r;
  return {};
}

result<void> raft_log_store::save_snapshot(const snapshot& s, std::uint64_t first_seq) {
  if (s.data.size() > opts_.max_snapshot_bytes || s.voters.size() > opts_.max_voters)
    return error{errc::value_too_large, "raft log: snapshot exceeds its bounds"};
  std::string body;
  put64(body, s.index);
  put64(body, s.term);
  put64(body, first_seq);
  put32(body, static_cast<std::uint32_t>(s.voters.size()));
  for (auto v : s.voters) put64(body, v);
  put64(body, s.data.size());
  body.append(s.data);
  std::string out{snap_magic};
  put32(out, crc32c(body));
  out += body;
  if (auto r = ops_.write_atomic(dir_, "snapshot", out); !r) return fail(r.err());
  snap_index_ = s.index;
  return {};
}

result<void> raft_log_store::compact(const snapshot& s) {
  if (failed_) return error{errc::storage_error, "raft log failed earlier: reopen it"};
  if (s.index <= snap_index_ || s.index > last_index_)
    return error{errc::invalid_argument, "raft log: snapshot index outside the log"};
  // Segment j may go once segment j+1 starts at or below s.index + 1: replaying j+1
  // replaces whatever j held above that, so j holds nothing the snapshot does not cover.
  std::size_t keep = 0;
  while (keep + 1 < segments_.size() && segments_[keep + 1].first_index != 0 &&
         segments_[keep + 1].first_index <= s.index + 1)
    ++keep;
  if (auto r = sync(); !r) return r;  // the kept entries above the snapshot are durable
  if (auto r = save_snapshot(s, segments_[keep].seq); !r) return r;
  for (std::size_t j = 0; j < keep; ++j)
    if (auto r = ops_.remove(seg_path(segments_[j].seq)); !r) return fail(r.err());
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(keep));
  if (keep > 0)
    if (auto r = ops_.sync_dir(dir_); !r) return fail(r.err());
  return {};
}

result<void> raft_log_store::install_snapshot(const snapshot& s) {
  if (failed_) return error{errc::storage_error, "raft log failed earlier: reopen it"};
  // A fresh segment, then the snapshot naming it as the first live one (the atomic switch),
  // then the old segments go. A crash anywhere leaves the old log or the new one whole.
  const std::uint64_t seq = segments_.back().seq + 1;
  auto old = segments_;
  if (auto r = start_segment(seq); !r) return r;
  if (auto r = save_snapshot(s, seq); !r) return r;
  for (const auto& seg : old)
    if (auto r = ops_.remove(seg_path(seg.seq)); !r) return fail(r.err());
  segments_.erase(segments_.begin(), segments_.end() - 1);
  if (auto r = ops_.sync_dir(dir_); !r) return fail(r.err());
  last_index_ = s.index;
  return {};
}

}  // namespace warp::consensus
