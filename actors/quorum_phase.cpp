#include "actors/quorum_phase.hpp"

#include <utility>

namespace warp::detail {

namespace {

// Built with += rather than chains of operator+: GCC 12 reports a false -Warray-bounds on
// those once inlined.
std::string no_quorum(std::size_t ok, std::size_t need, bool repair, bool write) {
  std::string s = "no quorum of ready replicas answered in time (";
  s += std::to_string(ok);
  s += " of ";
  s += std::to_string(need);
  s += " needed";
  if (repair) s += ", read repair";
  s += ")";
  if (write) s += "; nothing was written";
  return s;
}

std::string unacknowledged(std::size_t ok, std::size_t need) {
  std::string s = "only ";
  s += std::to_string(ok);
  s += " of ";
  s += std::to_string(need);
  s += " replicas acknowledged in time; the write may or may not have been applied";
  return s;
}

}  // namespace

// -- quorum_call ------------------------------------------------------------------------------

quorum_call::quorum_call(std::uint64_t id_base, std::size_t replicas,
                         std::vector<std::size_t> slots, std::size_t need)
    : id_base_(id_base), slots_(std::move(slots)), need_(need), replies_(replicas) {}

std::vector<quorum_send> quorum_call::requests(const wire::request& proto) const {
  std::vector<quorum_send> out;
  out.reserve(slots_.size());
  for (auto s : slots_) {
    out.push_back({s, proto});
    out.back().req.id = id_base_ | s;
  }
  return out;
}

bool quorum_call::on_reply(wire::reply rep) {
  if ((rep.id & ~slot_mask) != id_base_) return false;
  auto slot = static_cast<std::size_t>(rep.id & slot_mask);
  if (slot >= replies_.size() || replies_[slot]) return false;
  bool asked = false;
  for (auto s : slots_) asked |= s == slot;
  if (!asked) return false;
  if (rep.code == wire::status::ok) ++ok_;
  if (rep.code == wire::status::mismatch) mismatch_ = true;
  ++answered_;
  replies_[slot] = std::move(rep);
  return true;
}

// -- quorum_op --------------------------------------------------------------------------------

quorum_op::quorum_op(std::uint64_t op_id, kind k, shape s, std::string_view key)
    : id_(op_id), kind_(k), shape_(s), key_(key) {
  if (shape_.replicas > max_quorum_slots) shape_.replicas = max_quorum_slots;
}

quorum_op quorum_op::read(std::uint64_t op_id, shape s, std::string_view key) {
  return quorum_op{op_id, kind::read, s, key};
}

quorum_op quorum_op::write(std::uint64_t op_id, shape s, std::string_view key, strong_record rec,
                           version_picker pick) {
  quorum_op op{op_id, kind::write, s, key};
  op.rec_ = std::move(rec);
  op.pick_ = std::move(pick);
  return op;
}

std::vector<quorum_send> quorum_op::begin(int phase, std::vector<std::size_t> slots,
                                          std::size_t need, const wire::request& proto) {
  phase_ = phase;
  call_.emplace(id_base(phase), shape_.replicas, std::move(slots), need);
  auto out = call_->requests(proto);
  // A phase with nothing to ask (never for a sane shape) decides at once.
  if (call_->complete()) {
    auto next = phase_done();
    out.insert(out.end(), std::make_move_iterator(next.begin()),
               std::make_move_iterator(next.end()));
  }
  return out;
}

std::vector<quorum_send> quorum_op::start() {
  if (phase_ != 0 || done()) return {};
  std::vector<std::size_t> all(shape_.replicas);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  wire::request req;
  req.what = kind_ == kind::read ? wire::op::read : wire::op::read_version;
  req.range = shape_.range;
  req.key = key_;
  return begin(1, std::move(all), shape_.majority, req);
}

std::vector<quorum_send> quorum_op::on_reply(wire::reply rep) {
  if (done() || !call_ || !call_->on_reply(std::move(rep))) return {};
  if (!call_->complete()) return {};
  return phase_done();
}

void quorum_op::fail(errc code, std::string text) {
  outcome_.emplace(code, std::move(text));
}

std::vector<quorum_send> quorum_op::phase_done() {
  mismatch_ |= call_->saw_mismatch();
  auto maj = shape_.majority;
  auto& replies = call_->replies();
  if (phase_ == 1) {
    if (call_->ok() < maj) {
      fail(errc::timeout, no_quorum(call_->ok(), maj, false, kind_ == kind::write));
      return {};
    }
    if (kind_ == kind::read) {
      strong_record newest;
      for (auto& r : replies)
        if (r && r->code == wire::status::ok && r->rec && newest.ver < r->rec->ver)
          newest = *r->rec;
      // Which ok replies already hold the newest version: they count toward the write-back.
      std::vector<std::size_t> lacking;
      have_ = 0;
      for (std::size_t s = 0; s < replies.size(); ++s) {
        auto& r = replies[s];
        if (r && r->code == wire::status::ok && r->rec && r->rec->ver == newest.ver)
          ++have_;
        else
          lacking.push_back(s);
      }
      if (have_ >= maj || newest.ver.empty()) {
        outcome_.emplace(std::move(newest));
        return {};
      }
      // Replicas disagree: make the newest value stable at a majority before returning it,
      // so no later read can return an older one (the ABD read's second phase).
      repaired_ = true;
      rec_ = std::move(newest);
      wire::request wb;
      wb.what = wire::op::store;
      wb.range = shape_.range;
      wb.key = key_;
      wb.rec = rec_;
      return begin(2, std::move(lacking), maj - have_, wb);
    }
    version highest;
    for (auto& r : replies)
      if (r && r->code == wire::status::ok && r->rec && highest < r->rec->ver)
        highest = r->rec->ver;
    auto v = pick_ ? pick_(highest) : version{highest.hlc + 1, 0};
    if (!(highest < v)) v = version{highest.hlc + 1, v.node};  // never below a seen version
    rec_.ver = v;
    std::vector<std::size_t> all(shape_.replicas);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    wire::request w;
    w.what = wire::op::store;
    w.range = shape_.range;
    w.key = key_;
    w.rec = rec_;
    return begin(2, std::move(all), maj, w);
  }
  // Phase 2: a majority holds rec_ (or not).
  if (kind_ == kind::read) {
    if (call_->ok() + have_ < maj) {
      fail(errc::timeout, no_quorum(call_->ok() + have_, maj, true, false));
      return {};
    }
    outcome_.emplace(std::move(rec_));
    return {};
  }
  if (call_->ok() < maj) {
    fail(errc::unknown_outcome, unacknowledged(call_->ok(), maj));
    return {};
  }
  outcome_.emplace(rec_);
  return {};
}

void quorum_op::on_timeout() {
  if (done()) return;
  if (call_) mismatch_ |= call_->saw_mismatch();
  if (kind_ == kind::write && phase_ == 2) {
    fail(errc::unknown_outcome, unacknowledged(call_->ok(), shape_.majority));
    return;
  }
  auto ok = call_ ? call_->ok() + (phase_ == 2 ? have_ : 0) : 0;
  fail(errc::timeout, no_quorum(ok, shape_.majority, phase_ == 2, kind_ == kind::write));
}

void quorum_op::on_shutdown() {
  if (done()) return;
  if (kind_ == kind::write && phase_ == 2)
    fail(errc::unknown_outcome,
         "node stopped during the write; it may or may not have been applied");
  else
    fail(errc::shutting_down, "node is stopping");
}

}  // namespace warp::detail
