#include "actors/watch_hub.hpp"

#include <algorithm>
#include <iterator>

#include "warp/pattern.hpp"

namespace warp::actors {

decoded_value decode_strong_value(std::string_view raw) {
  decoded_value out;
  if (raw.size() >= 9 && static_cast<unsigned char>(raw[0]) == 1) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(raw[1 + i])} << (8 * i);
    out.expires_at_ms = static_cast<std::int64_t>(v);
    out.value.assign(raw.substr(9));
    return out;
  }
  out.value.assign(raw);
  return out;
}

// -- watched_kv_state_machine ------------------------------------------------------------------

result<std::string> watched_kv_state_machine::apply(consensus::index_t index,
                                                    std::string_view data) {
  applied_change c;
  c.group = group_;
  c.index = index;
  auto cmd = consensus::decode_kv_command(data, lim_);
  if (!cmd) {
    auto r = inner_.apply(index, data);
    if (on_change_) on_change_(std::move(c));
    return r;
  }
  // What the entry will write, in order: one key, or a transaction's writes.
  std::vector<applied_write> writes;
  if (cmd->op == consensus::kv_op::stored) {
    // The write-through's mark writes no key.
  } else if (cmd->op == consensus::kv_op::batch) {
    if (auto b = consensus::decode_kv_batch(cmd->value, lim_)) {
      writes.reserve(b->writes.size());
      for (auto& w : b->writes)
        writes.push_back(
            {w.erase, std::move(w.key), w.erase ? std::string{} : std::move(w.value), false, {}});
    }
  } else {
    bool del = cmd->op == consensus::kv_op::del || cmd->op == consensus::kv_op::cas_del;
    writes.push_back({del, cmd->key, del ? std::string{} : cmd->value, false, {}});
  }
  // The values they replace, read before the entry applies (a key written twice by one
  // transaction replaces its own first write the second time).
  std::map<std::string, std::optional<std::string>, std::less<>> current;
  for (const auto& w : writes)
    if (!current.contains(w.key)) {
      auto v = inner_.read(w.key);
      current.emplace(w.key, v ? std::optional<std::string>{std::move(*v)} : std::nullopt);
    }
  auto dedup = inner_.deduplicated();
  auto r = inner_.apply(index, data);
  // A retry answered from its session, or a refused conditional write, changed nothing.
  if (r && inner_.deduplicated() == dedup) {
    for (auto& w : writes) {
      auto& now = current.find(w.key)->second;
      if (w.deleted && !now) continue;  // a delete of an absent key changes nothing
      w.had_prev = now.has_value();
      if (now) w.raw_prev = *now;
      now = w.deleted ? std::nullopt : std::optional<std::string>{w.raw_value};
      c.writes.push_back(std::move(w));
    }
  }
  if (on_change_) on_change_(std::move(c));
  return r;
}

result<void> watched_kv_state_machine::restore(std::string_view data) {
  auto r = inner_.restore(data);
  if (r && on_restore_) on_restore_(group_, inner_.applied());
  return r;
}

// -- watch_hub -----------------------------------------------------------------------------------

watch_hub::watch_hub(watch_hub_options opts, std::vector<std::uint32_t> groups, bool all_groups)
    : opts_(opts), all_groups_(all_groups) {
  for (auto g : groups) rings_[g];
}

std::uint64_t watch_hub::floor(std::uint32_t group) const {
  auto it = rings_.find(group);
  return it == rings_.end() ? 0 : it->second.floor;
}

std::uint64_t watch_hub::last(std::uint32_t group) const {
  auto it = rings_.find(group);
  return it == rings_.end() ? 0 : it->second.last;
}

std::size_t watch_hub::retained(std::uint32_t group) const {
  auto it = rings_.find(group);
  return it == rings_.end() ? 0 : it->second.changes.size();
}

watch_cursor watch_hub::progress() const {
  watch_cursor c;
  for (auto& [g, r] : rings_) c[g] = r.last;
  return c;
}

bool watch_hub::matches(const watcher& w, std::string_view key) const {
  if (w.glob) return glob_match(w.filter, key);
  return key.substr(0, w.filter.size()) == w.filter;
}

watch_event watch_hub::make_event(std::uint32_t group, const change& c, const watcher& w) const {
  watch_event e;
  e.type = c.deleted ? watch_event::kind::del : watch_event::kind::put;
  e.group = group;
  e.revision = c.revision;
  e.key = c.key;
  if (!c.deleted) {
    e.value = c.value;
    e.expires_at_ms = c.expires_at_ms;
  }
  if (w.prev && c.had_prev) {
    e.has_prev = true;
    e.prev_value = c.prev;
  }
  e.cursor = format_cursor(w.pos);
  return e;
}

void watch_hub::end(watcher& w, watch_event::kind k, std::uint32_t group, std::uint64_t rev,
                    std::string reason) {
  watch_event e;
  e.type = k;
  e.group = group;
  e.revision = rev;
  e.cursor = format_cursor(w.pos);
  e.reason = std::move(reason);
  w.out->end(std::move(e));
}

bool watch_hub::deliver(watcher& w, std::uint32_t group, std::deque<change>::const_iterator first,
                        std::deque<change>::const_iterator last, time_point now) {
  auto& pos = w.pos[group];
  auto revision = first->revision;
  if (revision <= pos) return true;  // already past it (a resumed cursor ahead of a replay)
  auto before = pos;
  // Every event but the revision's last carries the cursor before the revision, the last
  // one the cursor past it: a resume from any of them replays a transaction whole, never half.
  std::vector<watch_event> events;
  for (auto c = first; c != last; ++c)
    if (matches(w, c->key)) events.push_back(make_event(group, *c, w));
  if (events.empty()) {
    pos = revision;
    return true;
  }
  pos = revision;
  events.back().cursor = format_cursor(w.pos);
  pos = before;
  auto n = events.size();
  if (!w.out->push_all(std::move(events))) {
    // Everything up to `before` is in the queue (and reaches the watcher before this end),
    // so the cursor of the end is exactly where a resume picks up: nothing lost, nothing twice.
    ++stats_.slow;
    end(w, watch_event::kind::slow, group, revision,
        "slow: more than " + std::to_string(opts_.max_queue) +
            " events queued; resume from the last cursor");
    return false;
  }
  pos = revision;
  stats_.delivered += n;
  w.last_sent = now;
  return true;
}

bool watch_hub::deliver_ring(watcher& w, std::uint32_t group, const ring& r, time_point now) {
  for (auto first = r.changes.begin(); first != r.changes.end();) {
    auto last = std::find_if(first, r.changes.end(), [rev = first->revision](const change& c) {
      return c.revision != rev;
    });
    if (!deliver(w, group, first, last, now)) return false;
    first = last;
  }
  return true;
}

void watch_hub::applied(const applied_change& a, time_point now) {
  auto it = rings_.find(a.group);
  if (it == rings_.end()) return;
  auto& r = it->second;
  if (a.index <= r.last) return;  // replayed twice (cannot happen in order; be safe)
  r.last = a.index;
  if (a.writes.empty()) return;
  auto first_new = r.changes.size();
  for (const auto& wr : a.writes) {
    change c;
    c.revision = a.index;
    c.deleted = wr.deleted;
    c.key = wr.key;
    if (!wr.deleted) {
      auto v = decode_strong_value(wr.raw_value);
      c.value = std::move(v.value);
      c.expires_at_ms = v.expires_at_ms;
    }
    c.had_prev = wr.had_prev;
    if (wr.had_prev) c.prev = decode_strong_value(wr.raw_prev).value;
    ++stats_.events;
    r.bytes += c.bytes();
    r.changes.push_back(std::move(c));
  }
  std::vector<std::uint64_t> ended;
  auto first = r.changes.cbegin() + static_cast<std::ptrdiff_t>(first_new);
  for (auto& [id, w] : watchers_)
    if (!w.out->cancel_requested() && !deliver(w, a.group, first, r.changes.cend(), now))
      ended.push_back(id);
  for (auto id : ended) watchers_.erase(id);
  // The floor is the newest evicted revision: a revision evicted in part is compacted whole.
  while (!r.changes.empty() &&
         (r.changes.size() > opts_.ring_entries || r.bytes > opts_.ring_bytes)) {
    r.floor = r.changes.front().revision;
    r.bytes -= r.changes.front().bytes();
    r.changes.pop_front();
    ++stats_.evicted;
  }
}

void watch_hub::restored(std::uint32_t group, std::uint64_t index) {
  auto it = rings_.find(group);
  if (it == rings_.end()) return;
  auto& r = it->second;
  if (index <= r.last) return;
  r.changes.clear();
  r.bytes = 0;
  r.floor = index;
  r.last = index;
  std::vector<std::uint64_t> ended;
  for (auto& [id, w] : watchers_) {
    if (w.pos[group] >= index) continue;
    ++stats_.compacted;
    end(w, watch_event::kind::compacted, group, index,
        "compacted(" + std::to_string(index) + "): group " + std::to_string(group) +
            " installed a snapshot at " + std::to_string(index) +
            "; re-read and resume from there");
    ended.push_back(id);
  }
  for (auto id : ended) watchers_.erase(id);
}

result<std::uint64_t> watch_hub::add(std::string filter, const watch_from& from, bool prev,
                                     std::shared_ptr<watch_stream> out, time_point now) {
  if (!all_groups_)
    return error{errc::unsupported,
                 "watch: this node does not replicate every key group (replication factor "
                 "below the member count); watch on a node that does"};
  if (watchers_.size() >= opts_.max_watchers)
    return error{errc::rate_limited,
                 "watch: " + std::to_string(opts_.max_watchers) + " watches already open here"};
  for (auto& [g, rev] : from.groups)
    if (!rings_.contains(g))
      return error{errc::invalid_argument,
                   "watch: the cursor names group " + std::to_string(g) + ", which does not exist"};
  watcher w;
  w.filter = std::move(filter);
  w.glob = w.filter.find_first_of("*?[") != std::string::npos;
  w.prev = prev;
  w.out = std::move(out);
  w.last_sent = now;
  for (auto& [g, r] : rings_) {
    std::uint64_t start = r.last;
    if (from.all) {
      start = *from.all;
    } else if (auto it = from.groups.find(g); it != from.groups.end()) {
      start = it->second;
    }
    w.pos[g] = start;
  }
  auto id = next_id_++;
  for (auto& [g, r] : rings_) {
    if (w.pos[g] < r.floor) {
      ++stats_.compacted;
      auto rev = w.pos[g];
      end(w, watch_event::kind::compacted, g, r.floor,
          "compacted(" + std::to_string(r.floor) + "): revision " + std::to_string(rev) +
              " of group " + std::to_string(g) + " is below the retained window; re-read and " +
              "watch from " + std::to_string(r.floor));
      return id;  // ended at once: not registered
    }
  }
  for (auto& [g, r] : rings_)
    if (!deliver_ring(w, g, r, now)) return id;
  watchers_.emplace(id, std::move(w));
  return id;
}

void watch_hub::remove(std::uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;
  end(it->second, watch_event::kind::canceled, 0, 0, "canceled");
  watchers_.erase(it);
}

void watch_hub::tick(time_point now) {
  std::vector<std::uint64_t> gone;
  for (auto& [id, w] : watchers_) {
    if (w.out->cancel_requested() || w.out->closed()) {
      gone.push_back(id);
      continue;
    }
    if (now - w.last_sent < opts_.progress_interval || w.out->queued() > 0) continue;
    // Nothing is queued and every change up to `last` was offered: the watcher is past it.
    for (auto& [g, r] : rings_) w.pos[g] = std::max(w.pos[g], r.last);
    watch_event e;
    e.type = watch_event::kind::progress;
    e.cursor = format_cursor(w.pos);
    w.out->push(std::move(e));
    w.last_sent = now;
  }
  for (auto id : gone) remove(id);
}

void watch_hub::stop_all(std::string_view why) {
  for (auto& [id, w] : watchers_) end(w, watch_event::kind::canceled, 0, 0, std::string{why});
  watchers_.clear();
}

std::vector<key_version> watch_hub::history(std::uint32_t group, std::string_view key) const {
  std::vector<key_version> out;
  auto it = rings_.find(group);
  if (it == rings_.end()) return out;
  auto& ch = it->second.changes;
  for (auto c = ch.rbegin(); c != ch.rend(); ++c) {
    if (c->key != key) continue;
    key_version v;
    v.revision = c->revision;
    v.group = group;
    v.deleted = c->deleted;
    v.value = c->value;
    v.expires_at_ms = c->expires_at_ms;
    out.push_back(std::move(v));
  }
  return out;
}

result<std::optional<key_version>> watch_hub::get_at(std::uint32_t group, std::string_view key,
                                                     std::uint64_t revision) const {
  auto it = rings_.find(group);
  if (it == rings_.end())
    return error{errc::unsupported, "history: group " + std::to_string(group) + " is not here"};
  auto& r = it->second;
  if (revision < r.floor)
    return error{errc::not_found, "compacted(" + std::to_string(r.floor) + "): revision " +
                                      std::to_string(revision) + " of group " +
                                      std::to_string(group) + " is below the retained window"};
  if (revision > r.last)
    return error{errc::invalid_argument, "revision " + std::to_string(revision) + " of group " +
                                             std::to_string(group) + " is not applied yet (at " +
                                             std::to_string(r.last) + ")"};
  // The newest change at or below `revision`; else the oldest above it tells (by the value
  // it replaced) what the key held at `revision`.
  const change* above = nullptr;
  for (auto c = r.changes.rbegin(); c != r.changes.rend(); ++c) {
    if (c->key != key) continue;
    if (c->revision <= revision) {
      key_version v;
      v.revision = c->revision;
      v.group = group;
      v.deleted = c->deleted;
      v.value = c->value;
      v.expires_at_ms = c->expires_at_ms;
      return std::optional<key_version>{std::move(v)};
    }
    above = &*c;
  }
  if (!above) return std::optional<key_version>{};
  key_version v;
  v.group = group;  // revision 0: written before the window
  v.deleted = !above->had_prev;
  if (above->had_prev) v.value = above->prev;
  return std::optional<key_version>{std::move(v)};
}

}  // namespace warp::actors
