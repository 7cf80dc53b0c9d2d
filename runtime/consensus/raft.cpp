#include "runtime/consensus/raft.hpp"

#include <algorithm>
#include <utility>

namespace warp::consensus {

std::string_view to_string(role r) noexcept {
  switch (r) {
    case role::follower:
      return "follower";
    case role::pre_candidate:
      return "pre_candidate";
    case role::candidate:
      return "candidate";
    case role::leader:
      return "leader";
  }
  return "?";
}

std::string encode_voters(const std::vector<node_id>& voters) {
  std::vector<node_id> sorted = voters;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  out.reserve(sorted.size() * 8);
  for (auto v : sorted)
    for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
  return out;
}

result<std::vector<node_id>> decode_voters(std::string_view data, std::size_t max_voters) {
  if (data.size() % 8 != 0) return error{errc::codec_error, "voter set: size not a multiple of 8"};
  if (data.size() / 8 > max_voters) return error{errc::codec_error, "voter set: too many voters"};
  std::vector<node_id> out;
  out.reserve(data.size() / 8);
  for (std::size_t i = 0; i < data.size(); i += 8) {
    node_id v = 0;
    for (int b = 0; b < 8; ++b)
      v |= static_cast<node_id>(static_cast<unsigned char>(data[i + b])) << (8 * b);
    // Sorted and unique on the way in, so anything else is corruption, not a configuration.
    if (v == 0 || (!out.empty() && v <= out.back()))
      return error{errc::codec_error, "voter set: ids not strictly ascending or zero"};
    out.push_back(v);
  }
  return out;
}

raft_core::raft_core(raft_config cfg, persisted_state st)
    : cfg_(std::move(cfg)), rng_(cfg_.seed * 0x9e3779b97f4a7c15ULL + cfg_.id) {
  if (st.snap) snap_ = std::move(*st.snap);
  if (snap_.voters.empty()) snap_.voters = cfg_.voters;
  // The store hands over a contiguous run after the snapshot; anything else is cut at the
  // first gap rather than trusted.
  for (auto& e : st.entries) {
    if (e.index != last_index() + 1) break;
    log_.push_back(std::move(e));
  }
  term_ = st.hard.term;
  vote_ = st.hard.vote;
  commit_ = std::clamp(st.hard.commit, snap_.index, last_index());
  applied_ = snap_.index;
  stable_ = last_index();
  persisted_hard_ = st.hard;
  recompute_voters();
  reset_randomized_timeout();
}

std::optional<term_t> raft_core::term_at(index_t i) const {
  if (i == snap_.index) return snap_.term;
  if (i < snap_.index || i > last_index()) return std::nullopt;
  return log_[i - snap_.index - 1].term;
}

const entry* raft_core::entry_at(index_t i) const {
  if (i <= snap_.index || i > last_index()) return nullptr;
  return &log_[i - snap_.index - 1];
}

bool raft_core::is_voter(node_id n) const {
  return std::find(voters_.begin(), voters_.end(), n) != voters_.end();
}

bool raft_core::promotable() const {
  return is_voter(cfg_.id);
}

void raft_core::reset_randomized_timeout() {
  std::uniform_int_distribution<int> d(cfg_.election_tick, 2 * cfg_.election_tick - 1);
  randomized_timeout_ = d(rng_);
}

void raft_core::reset(term_t term) {
  if (term != term_) {
    term_ = term;
    vote_ = 0;
  }
  leader_ = 0;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  votes_.clear();
  progress_.clear();
  reads_pending_.clear();
  pending_broadcast_ = false;
}

void raft_core::become_follower(term_t term, node_id leader) {
  reset(term);
  role_ = role::follower;
  leader_ = leader;
}

void raft_core::become_pre_candidate() {
  // Pre-vote changes neither term nor vote: a node that cannot win does not disturb anyone.
  votes_.clear();
  progress_.clear();
  reads_pending_.clear();
  leader_ = 0;
  role_ = role::pre_candidate;
}

void raft_core::become_candidate() {
  reset(term_ + 1);
  vote_ = cfg_.id;
  role_ = role::candidate;
  ++elections_started_;
}

void raft_core::become_leader() {
  reset(term_);
  role_ = role::leader;
  leader_ = cfg_.id;
  ++elections_won_;
  sync_progress();
  // An empty entry of the new term: committing it commits everything before it (entries of
  // older terms are never committed by counting replicas) and opens ReadIndex and
  // configuration changes.
  append_local(entry{term_, last_index() + 1, entry_type::normal, {}});
  term_start_ = last_index();
  pending_broadcast_ = true;
}

void raft_core::sync_progress() {
  if (role_ != role::leader) return;
  for (auto v : voters_) {
    if (v == cfg_.id || progress_.count(v)) continue;
    progress p;
    p.next = last_index() + 1;
    p.recent_active = true;  // a fresh peer gets one election timeout before it counts
    progress_.emplace(v, std::move(p));
  }
  for (auto it = progress_.begin(); it != progress_.end();)
    it = is_voter(it->first) ? std::next(it) : progress_.erase(it);
}

void raft_core::recompute_voters() {
  std::vector<node_id> v = snap_.voters;
  for (const auto& e : log_) {
    if (e.type != entry_type::config) continue;
    auto d = decode_voters(e.data, cfg_.max_voters);
    if (d) v = std::move(*d);
  }
  voters_ = std::move(v);
  sync_progress();
}

void raft_core::append_local(entry e) {
  bool conf = e.type == entry_type::config;
  log_.push_back(std::move(e));
  if (conf) recompute_voters();  // single-server changes take effect when appended
}

void raft_core::truncate_from(index_t index) {
  log_.resize(index - snap_.index - 1);
  stable_ = std::min(stable_, index - 1);
  recompute_voters();
}

void raft_core::send(message m) {
  m.from = cfg_.id;
  if (m.term == 0) m.term = term_;
  msgs_.push_back(std::move(m));
}

void raft_core::tick() {
  if (role_ == role::leader)
    tick_heartbeat();
  else
    tick_election();
}

void raft_core::tick_election() {
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_timeout_) {
    election_elapsed_ = 0;
    reset_randomized_timeout();
    campaign(cfg_.pre_vote);
  }
}

void raft_core::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      // Check quorum: a leader that heard from no majority for an election timeout may be
      // on the minority side of a partition; stepping down stops it serving reads.
      std::size_t active = is_voter(cfg_.id) ? 1 : 0;
      for (auto& [id, pr] : progress_) {
        if (pr.recent_active) ++active;
        pr.recent_active = false;
      }
      if (active < quorum()) {
        become_follower(term_, 0);
        return;
      }
    }
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat(0);
  }
}

void raft_core::campaign(bool pre) {
  term_t vote_term;
  msg_type type;
  if (pre) {
    become_pre_candidate();
    vote_term = term_ + 1;
    type = msg_type::pre_vote;
  } else {
    become_candidate();
    vote_term = term_;
    type = msg_type::vote;
  }
  votes_[cfg_.id] = true;
  if (quorum() <= 1) {
    if (pre)
      campaign(false);
    else
      become_leader();
    return;
  }
  term_t last_term = *term_at(last_index());
  for (auto v : voters_) {
    if (v == cfg_.id) continue;
    message m;
    m.type = type;
    m.to = v;
    m.term = vote_term;
    m.log_term = last_term;
    m.index = last_index();
    send(std::move(m));
  }
}

void raft_core::step(const message& m) {
  if (m.from == 0 || m.from == cfg_.id) return;
  const bool from_leader = m.type == msg_type::append || m.type == msg_type::heartbeat ||
                           m.type == msg_type::install_snapshot;
  if (m.term > term_) {
    if (m.type == msg_type::pre_vote || m.type == msg_type::vote) {
      // Within the lease of a leader we heard from, a vote request is ignored: a server
      // that was partitioned away (or removed) must not depose a working leader.
      bool in_lease = cfg_.check_quorum && leader_ != 0 && election_elapsed_ < cfg_.election_tick;
      if (in_lease) return;
    }
    if (m.type == msg_type::pre_vote || (m.type == msg_type::pre_vote_resp && !m.reject)) {
      // A pre-vote (or a grant of one) carries the term the sender would campaign at; it
      // moves nobody's term.
    } else {
      become_follower(m.term, from_leader ? m.from : 0);
    }
  } else if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == msg_type::append || m.type == msg_type::heartbeat)) {
      // Tell a stale leader our term, so it steps down instead of waiting (with pre-vote
      // nobody would ever bump its term for it).
      message r;
      r.type = msg_type::append_resp;
      r.to = m.from;
      send(std::move(r));
    } else if (m.type == msg_type::pre_vote) {
      message r;
      r.type = msg_type::pre_vote_resp;
      r.to = m.from;
      r.reject = true;
      send(std::move(r));
    }
    return;
  }

  switch (m.type) {
    case msg_type::pre_vote:
    case msg_type::vote:
      handle_vote_request(m);
      return;
    case msg_type::pre_vote_resp:
    case msg_type::vote_resp:
      handle_vote_response(m);
      return;
    case msg_type::append:
    case msg_type::heartbeat:
    case msg_type::install_snapshot:
      if (role_ == role::leader) return;  // two leaders of one term: cannot happen
      if (role_ != role::follower) become_follower(term_, m.from);
      leader_ = m.from;
      election_elapsed_ = 0;
      if (m.type == msg_type::append)
        handle_append(m);
      else if (m.type == msg_type::heartbeat)
        handle_heartbeat(m);
      else
        handle_snapshot(m);
      return;
    case msg_type::append_resp:
      if (role_ == role::leader) handle_append_response(m);
      return;
    case msg_type::heartbeat_resp:
      if (role_ == role::leader) handle_heartbeat_response(m);
      return;
  }
}

void raft_core::handle_vote_request(const message& m) {
  const bool pre = m.type == msg_type::pre_vote;
  const bool can_vote = vote_ == m.from || (vote_ == 0 && leader_ == 0) || (pre && m.term > term_);
  const term_t last_term = *term_at(last_index());
  const bool up_to_date =
      m.log_term > last_term || (m.log_term == last_term && m.index >= last_index());
  message r;
  r.type = pre ? msg_type::pre_vote_resp : msg_type::vote_resp;
  r.to = m.from;
  if (can_vote && up_to_date) {
    r.term = m.term;
    if (!pre) {
      vote_ = m.from;
      election_elapsed_ = 0;
    }
  } else {
    r.reject = true;
  }
  send(std::move(r));
}

void raft_core::handle_vote_response(const message& m) {
  const bool pre = m.type == msg_type::pre_vote_resp;
  if ((pre && role_ != role::pre_candidate) || (!pre && role_ != role::candidate)) return;
  if (!is_voter(m.from)) return;
  votes_.emplace(m.from, !m.reject);
  std::size_t granted = 0, rejected = 0;
  for (auto& [id, g] : votes_) (g ? granted : rejected) += 1;
  if (granted >= quorum()) {
    if (pre)
      campaign(false);
    else
      become_leader();
  } else if (rejected >= quorum()) {
    become_follower(term_, 0);
  }
}

void raft_core::handle_append(const message& m) {
  message r;
  r.type = msg_type::append_resp;
  r.to = m.from;
  if (m.index < commit_) {
    r.index = commit_;
    send(std::move(r));
    return;
  }
  auto t = term_at(m.index);
  if (!t || *t != m.log_term) {
    r.reject = true;
    r.index = m.index;
    r.reject_hint = last_index();
    send(std::move(r));
    return;
  }
  for (std::size_t k = 0; k < m.entries.size(); ++k)
    if (m.entries[k].index != m.index + 1 + k) return;  // malformed: not contiguous
  for (const auto& e : m.entries) {
    if (e.index <= last_index()) {
      if (*term_at(e.index) == e.term) continue;
      if (e.index <= commit_) return;  // would rewrite a committed entry: refuse outright
      truncate_from(e.index);
    }
    append_local(e);
  }
  const index_t last_new = m.index + m.entries.size();
  commit_to(std::min(m.commit, last_new));
  r.index = last_new;
  send(std::move(r));
}

void raft_core::handle_heartbeat(const message& m) {
  // The leader sends min(match, commit): every index up to it is in our log as the leader's.
  commit_to(std::min(m.commit, last_index()));
  message r;
  r.type = msg_type::heartbeat_resp;
  r.to = m.from;
  r.context = m.context;
  send(std::move(r));
}

void raft_core::handle_snapshot(const message& m) {
  if (!m.snap) return;
  const snapshot& s = *m.snap;
  message r;
  r.type = msg_type::append_resp;
  r.to = m.from;
  if (s.index <= commit_) {
    r.index = commit_;
  } else if (term_at(s.index) == s.term) {
    // We already hold the entry the snapshot ends with: keep the log, just commit.
    commit_to(s.index);
    r.index = s.index;
  } else {
    snap_ = s;
    log_.clear();
    commit_ = applied_ = stable_ = s.index;
    snap_unstable_ = true;
    recompute_voters();
    r.index = s.index;
  }
  send(std::move(r));
}

void raft_core::handle_append_response(const message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    if (pr.state == progress_state::replicate) {
      if (m.index <= pr.match) return;  // stale
      pr.state = progress_state::probe;
      pr.next = pr.match + 1;
      pr.inflight.clear();
    } else {
      if (pr.next - 1 != m.index) return;  // an answer to an older probe
      pr.next = std::max(pr.match + 1, std::min(m.index, m.reject_hint + 1));
      pr.state = progress_state::probe;
    }
    pr.paused = false;
    send_append(m.from, true);
    return;
  }
  bool updated = false;
  if (m.index > pr.match) {
    pr.match = m.index;
    updated = true;
  }
  pr.next = std::max(pr.next, pr.match + 1);
  while (!pr.inflight.empty() && pr.inflight.front() <= m.index) pr.inflight.pop_front();
  if (pr.state == progress_state::probe ||
      (pr.state == progress_state::snapshot && pr.match >= pr.pending_snapshot)) {
    pr.state = progress_state::replicate;
    pr.next = pr.match + 1;
    pr.inflight.clear();
  }
  pr.paused = false;
  if (updated && maybe_commit())
    broadcast_append();
  else
    send_append(m.from, false);
}

void raft_core::handle_heartbeat_response(const message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  progress& pr = it->second;
  pr.recent_active = true;
  pr.paused = false;
  // An AppendEntries may have been lost: free one slot so the pipeline probes again
  // instead of waiting forever for answers that will not come.
  if (pr.state == progress_state::replicate && pr.inflight.size() >= cfg_.max_inflight)
    pr.inflight.pop_front();
  if (pr.match < last_index()) send_append(m.from, true);
  if (m.context != 0) {
    for (auto& r : reads_pending_)
      if (r.context == m.context &&
          std::find(r.acks.begin(), r.acks.end(), m.from) == r.acks.end() && is_voter(m.from))
        r.acks.push_back(m.from);
    check_reads();
  }
}

void raft_core::check_reads() {
  // A majority confirming round k confirms leadership after every earlier round began.
  std::size_t last_ok = 0;
  for (std::size_t i = 0; i < reads_pending_.size(); ++i)
    if (reads_pending_[i].acks.size() >= quorum()) last_ok = i + 1;
  for (std::size_t i = 0; i < last_ok; ++i) {
    reads_ready_.push_back(
        read_state{reads_pending_.front().context, reads_pending_.front().index});
    reads_pending_.pop_front();
  }
}

void raft_core::send_append(node_id to, bool allow_empty) {
  auto it = progress_.find(to);
  if (it == progress_.end()) return;
  progress& pr = it->second;
  for (;;) {
    if (pr.paused) return;
    if (pr.state == progress_state::replicate && pr.inflight.size() >= cfg_.max_inflight) return;
    const index_t prev = pr.next - 1;
    auto prev_term = term_at(prev);
    if (!prev_term) {
      if (prev > last_index()) {  // next ran past our log (we were truncated): probe again
        pr.next = last_index() + 1;
        continue;
      }
      message m;
      m.type = msg_type::install_snapshot;
      m.to = to;
      m.snap = snap_;
      send(std::move(m));
      pr.state = progress_state::snapshot;
      pr.pending_snapshot = snap_.index;
      pr.inflight.clear();
      pr.paused = true;
      return;
    }
    message m;
    m.type = msg_type::append;
    m.to = to;
    m.index = prev;
    m.log_term = *prev_term;
    m.commit = commit_;
    std::size_t bytes = 0;
    for (index_t i = pr.next; i <= last_index() && m.entries.size() < cfg_.max_entries_per_msg;
         ++i) {
      const entry& e = *entry_at(i);
      if (!m.entries.empty() && bytes + e.data.size() > cfg_.max_bytes_per_msg) break;
      bytes += e.data.size();
      m.entries.push_back(e);
    }
    if (m.entries.empty() && !allow_empty) return;
    const bool had_entries = !m.entries.empty();
    const index_t last_sent = had_entries ? m.entries.back().index : prev;
    send(std::move(m));
    if (pr.state == progress_state::replicate) {
      if (!had_entries) return;
      // Pipelining: optimistically move on and keep sending until the window is full.
      pr.next = last_sent + 1;
      pr.inflight.push_back(last_sent);
      allow_empty = false;
      continue;
    }
    pr.paused = true;  // probe: one message, then wait for the answer
    return;
  }
}

void raft_core::broadcast_append() {
  for (auto& [id, pr] : progress_) send_append(id, true);
}

void raft_core::broadcast_heartbeat(std::uint64_t context) {
  for (auto& [id, pr] : progress_) {
    message m;
    m.type = msg_type::heartbeat;
    m.to = id;
    m.commit = std::min(pr.match, commit_);
    m.context = context;
    send(std::move(m));
  }
}

bool raft_core::maybe_commit() {
  index_t q;
  if (cfg_.unsafe_commit_without_quorum) {
    q = stable_;
  } else {
    std::vector<index_t> matches;
    for (auto v : voters_) {
      if (v == cfg_.id)
        matches.push_back(stable_);  // our own entries count once they are durable
      else if (auto it = progress_.find(v); it != progress_.end())
        matches.push_back(it->second.match);
      else
        matches.push_back(0);
    }
    if (matches.empty()) return false;
    std::sort(matches.begin(), matches.end(), std::greater<>());
    q = matches[quorum() - 1];
  }
  // Only an entry of the current term is committed by counting (thesis 3.6.2, figure 3.7).
  if (q <= commit_ || term_at(q) != term_) return false;
  commit_ = q;
  if (!is_voter(cfg_.id)) {
    // A leader that removed itself leads until that change commits, then steps aside.
    index_t last_conf = 0;
    for (const auto& e : log_)
      if (e.type == entry_type::config) last_conf = e.index;
    if (last_conf <= commit_) {
      become_follower(term_, 0);
      return false;
    }
  }
  return true;
}

void raft_core::commit_to(index_t index) {
  if (index > commit_) commit_ = std::min(index, last_index());
}

result<index_t> raft_core::propose(std::string data) {
  if (role_ != role::leader) return error{errc::unreachable, "not the leader"};
  if (data.size() > cfg_.max_entry_bytes)
    return error{errc::value_too_large, "entry exceeds max_entry_bytes"};
  if (last_index() - commit_ >= cfg_.max_uncommitted)
    return error{errc::rate_limited, "too many uncommitted entries"};
  append_local(entry{term_, last_index() + 1, entry_type::normal, std::move(data)});
  pending_broadcast_ = true;  // batched: one AppendEntries per follower per ready
  return last_index();
}

result<index_t> raft_core::propose_conf_change(conf_change_type type, node_id node) {
  if (role_ != role::leader) return error{errc::unreachable, "not the leader"};
  if (node == 0) return error{errc::invalid_argument, "node id 0"};
  if (commit_ < term_start_)
    return error{errc::conflict, "the leader has not committed an entry of its term yet"};
  for (const auto& e : log_)
    if (e.type == entry_type::config && e.index > commit_)
      return error{errc::conflict, "a configuration change is still uncommitted"};
  std::vector<node_id> next = voters_;
  if (type == conf_change_type::add_voter) {
    if (is_voter(node)) return error{errc::invalid_argument, "already a voter"};
    if (next.size() >= cfg_.max_voters) return error{errc::invalid_argument, "too many voters"};
    next.push_back(node);
  } else {
    if (!is_voter(node)) return error{errc::invalid_argument, "not a voter"};
    if (next.size() == 1) return error{errc::invalid_argument, "cannot remove the last voter"};
    next.erase(std::find(next.begin(), next.end(), node));
  }
  append_local(entry{term_, last_index() + 1, entry_type::config, encode_voters(next)});
  pending_broadcast_ = true;
  return last_index();
}

result<void> raft_core::read_index(std::uint64_t context) {
  if (role_ != role::leader) return error{errc::unreachable, "not the leader"};
  if (context == 0) return error{errc::invalid_argument, "read context 0 is reserved"};
  if (term_at(commit_) != term_)
    return error{errc::unreachable, "the leader has not committed an entry of its term yet"};
  if (quorum() <= 1 && is_voter(cfg_.id)) {
    reads_ready_.push_back(read_state{context, commit_});
    return {};
  }
  reads_pending_.push_back(pending_read{context, commit_, {}});
  if (is_voter(cfg_.id)) reads_pending_.back().acks.push_back(cfg_.id);
  broadcast_heartbeat(context);
  return {};
}

bool raft_core::has_ready() const {
  return pending_broadcast_ || !msgs_.empty() || snap_unstable_ || stable_ < last_index() ||
         applied_ < commit_ || !reads_ready_.empty() ||
         hard_state{term_, vote_, commit_} != persisted_hard_;
}

ready raft_core::take_ready() {
  if (pending_broadcast_) {
    pending_broadcast_ = false;
    broadcast_append();
  }
  ready rd;
  hard_state hs{term_, vote_, commit_};
  if (hs != persisted_hard_) rd.hard = hs;
  if (snap_unstable_) rd.snap = snap_;
  for (index_t i = stable_ + 1; i <= last_index(); ++i) rd.entries.push_back(*entry_at(i));
  rd.messages = std::move(msgs_);
  msgs_.clear();
  // Everything up to commit_ is in this ready or already durable, and the owner persists
  // before it applies: nothing is applied that a crash could take back.
  for (index_t i = applied_ + 1; i <= commit_; ++i) rd.committed.push_back(*entry_at(i));
  rd.reads = std::move(reads_ready_);
  reads_ready_.clear();
  return rd;
}

void raft_core::advance(const ready& rd) {
  if (rd.hard) persisted_hard_ = *rd.hard;
  if (rd.snap) snap_unstable_ = false;
  if (!rd.entries.empty()) stable_ = std::max(stable_, rd.entries.back().index);
  if (!rd.committed.empty()) applied_ = std::max(applied_, rd.committed.back().index);
  if (role_ == role::leader && maybe_commit()) pending_broadcast_ = true;
}

result<void> raft_core::compact(index_t index, std::string data) {
  if (index <= snap_.index) return error{errc::invalid_argument, "already compacted"};
  if (index > applied_) return error{errc::invalid_argument, "snapshot beyond the applied index"};
  std::vector<node_id> voters = snap_.voters;
  for (index_t i = snap_.index + 1; i <= index; ++i) {
    const entry& e = *entry_at(i);
    if (e.type != entry_type::config) continue;
    if (auto d = decode_voters(e.data, cfg_.max_voters)) voters = std::move(*d);
  }
  const term_t t = *term_at(index);
  log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(index - snap_.index));
  snap_ = snapshot{index, t, std::move(voters), std::move(data)};
  return {};
}

}  // namespace warp::consensus
