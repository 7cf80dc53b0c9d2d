#include "warp/watch.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

namespace warp {

namespace {

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

}  // namespace

std::string format_cursor(const watch_cursor& c) {
  // Formatted for every event of every watcher: to_chars into one buffer, no temporaries.
  std::string out;
  out.resize(c.size() * 32);
  char* p = out.data();
  char* end = p + out.size();
  bool first = true;
  for (auto& [g, rev] : c) {
    if (!first) *p++ = ',';
    first = false;
    p = std::to_chars(p, end, g).ptr;
    *p++ = ':';
    p = std::to_chars(p, end, rev).ptr;
  }
  out.resize(static_cast<std::size_t>(p - out.data()));
  return out;
}

result<watch_from> parse_watch_from(std::string_view text, std::size_t max_groups) {
  watch_from f;
  if (text.empty()) return f;
  f.live = false;
  std::uint64_t n = 0;
  if (parse_u64(text, n)) {
    f.all = n;
    return f;
  }
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    auto colon = item.find(':');
    std::uint64_t g = 0, rev = 0;
    if (colon == std::string_view::npos || !parse_u64(item.substr(0, colon), g) ||
        !parse_u64(item.substr(colon + 1), rev) || g > 0xffffffffu)
      return error{errc::invalid_argument,
                   "watch start: a revision N or a cursor group:revision,... (got '" +
                       std::string{item.substr(0, 64)} + "')"};
    if (f.groups.size() >= max_groups)
      return error{errc::invalid_argument, "watch start: too many groups in the cursor"};
    f.groups[static_cast<std::uint32_t>(g)] = rev;
  }
  return f;
}

std::string_view to_string(watch_event::kind k) noexcept {
  switch (k) {
    case watch_event::kind::put:
      return "put";
    case watch_event::kind::del:
      return "delete";
    case watch_event::kind::progress:
      return "progress";
    case watch_event::kind::compacted:
      return "compacted";
    case watch_event::kind::slow:
      return "slow";
    case watch_event::kind::resync:
      return "resync";
    case watch_event::kind::canceled:
      return "canceled";
  }
  return "unknown";
}

std::string to_json(const watch_event& e) {
  nlohmann::json j;
  j["type"] = to_string(e.type);
  j["group"] = e.group;
  j["revision"] = e.revision;
  if (e.type == watch_event::kind::put || e.type == watch_event::kind::del) j["key"] = e.key;
  if (e.type == watch_event::kind::put) {
    j["value"] = e.value;
    if (e.expires_at_ms) j["expires_at_ms"] = e.expires_at_ms;
  }
  if (e.has_prev) j["prev_value"] = e.prev_value;
  j["cursor"] = e.cursor;
  if (!e.reason.empty()) j["reason"] = e.reason;
  // Values are bytes: invalid UTF-8 is replaced rather than thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// -- watch_stream ----------------------------------------------------------------------------

std::optional<watch_event> watch_stream::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock{mtx_};
  if (!cv_.wait_for(lock, timeout, [&] { return !q_.empty() || ended_; }) || q_.empty())
    return std::nullopt;
  auto e = std::move(q_.front());
  q_.pop_front();
  if (e.terminal()) ended_ = true;
  return e;
}

bool watch_stream::ended() const {
  std::lock_guard lock{mtx_};
  return ended_;
}

void watch_stream::cancel() {
  std::lock_guard lock{mtx_};
  cancel_ = true;
}

bool watch_stream::cancel_requested() const {
  std::lock_guard lock{mtx_};
  return cancel_;
}

bool watch_stream::push(watch_event e) {
  {
    std::lock_guard lock{mtx_};
    if (closed_) return true;
    if (q_.size() >= max_queue_) return false;
    q_.push_back(std::move(e));
  }
  cv_.notify_all();
  return true;
}

bool watch_stream::push_all(std::vector<watch_event>&& events) {
  {
    std::lock_guard lock{mtx_};
    if (closed_) return true;
    if (q_.size() + events.size() > max_queue_) return false;
    for (auto& e : events) q_.push_back(std::move(e));
  }
  cv_.notify_all();
  return true;
}

void watch_stream::end(watch_event e) {
  {
    std::lock_guard lock{mtx_};
    if (closed_) return;
    closed_ = true;
    q_.push_back(std::move(e));
  }
  cv_.notify_all();
}

std::size_t watch_stream::queued() const {
  std::lock_guard lock{mtx_};
  return q_.size();
}

bool watch_stream::closed() const {
  std::lock_guard lock{mtx_};
  return closed_;
}

// -- watch_handle ----------------------------------------------------------------------------

watch_handle::watch_handle(std::shared_ptr<watch_stream> s,
                           std::function<void(const watch_event&)> fn)
    : stream_(std::move(s)) {
  thread_ = std::thread([st = stream_, fn = std::move(fn)] {
    for (;;) {
      auto e = st->next(std::chrono::milliseconds{200});
      if (e) {
        fn(*e);
        if (e->terminal()) return;
      } else if (st->ended()) {
        return;
      }
    }
  });
}

watch_handle& watch_handle::operator=(watch_handle&& o) noexcept {
  if (this != &o) {
    cancel();
    if (thread_.joinable()) thread_.join();
    stream_ = std::move(o.stream_);
    thread_ = std::move(o.thread_);
  }
  return *this;
}

watch_handle::~watch_handle() {
  cancel();
  if (thread_.joinable()) thread_.join();
}

void watch_handle::cancel() {
  if (!stream_) return;
  stream_->cancel();
  // The hub notices a cancel on its next event or tick; ending it here too lets the thread
  // finish now even when the node already stopped.
  watch_event e;
  e.type = watch_event::kind::canceled;
  e.reason = "canceled";
  stream_->end(std::move(e));
}

void watch_handle::wait() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace warp
