// Watch and history of strong keys (docs/coordination.md, "Watch", "History"): the
// vocabulary of warp::node's watch calls, and the stream a watcher reads from.
//
// A strong key's revision is the Raft log index of the entry that wrote it, in the key's
// group. Groups count their indexes independently, so a watch spanning groups resumes
// from a cursor with one revision per group ("g:rev,g:rev,..."): every event carries the
// cursor to resume from right after it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <thread>

#include "warp/error.hpp"

namespace warp {

/// group -> the last revision seen of it.
using watch_cursor = std::map<std::uint32_t, std::uint64_t>;

/// "0:12,1:40,..." (groups ascending); "" for an empty cursor.
std::string format_cursor(const watch_cursor& c);

/// Where a watch starts. `live`: only what is applied after it opened. `all`: revision N in
/// every group (meaningful for one key, or 0 = everything retained). Otherwise `groups`:
/// a cursor; groups it does not name start live.
struct watch_from {
  bool live = true;
  std::optional<std::uint64_t> all;
  watch_cursor groups;
};

/// "" (live), "N", or a cursor "g:rev,...". Bounded: at most `max_groups` entries.
result<watch_from> parse_watch_from(std::string_view text, std::size_t max_groups = 4096);

struct watch_event {
  enum class kind : std::uint8_t {
    put,        ///< key set to value (revision: the entry's index)
    del,        ///< key deleted
    progress,   ///< idle: `cursor` is how far every group is; nothing matched up to it
    compacted,  ///< terminal: the start is below the retained window of `group`;
                ///< `revision` is the oldest start that group can resume from
    slow,       ///< terminal: the watcher's queue overflowed; resume from the last cursor
    resync,     ///< terminal: the hub lost events of `group` (a snapshot was installed);
                ///< re-read the keys and watch again from `revision`
    canceled,   ///< terminal: canceled by the watcher or the node stopped
  };
  kind type = kind::put;
  std::uint32_t group = 0;
  std::uint64_t revision = 0;
  std::string key;
  std::string value;
  bool has_prev = false;  ///< put/del with prev requested: the value it replaced, if any
  std::string prev_value;
  std::int64_t expires_at_ms = 0;  ///< the value's expiry (0: none)
  std::string cursor;              ///< resume here to see what comes after this event
  std::string reason;              ///< terminal events: for humans

  bool terminal() const noexcept { return type >= kind::compacted; }
};

std::string_view to_string(watch_event::kind k) noexcept;
/// One JSON object (no newline): type, group, revision, key, value, prev, cursor, ...
std::string to_json(const watch_event& e);

/// The bounded queue between the node's watch hub (producer) and one watcher (consumer).
/// push() refuses beyond `max_queue`; the hub then ends the watch `slow`: never a silent
/// drop. Thread-safe.
class watch_stream {
 public:
  explicit watch_stream(std::size_t max_queue) : max_queue_(max_queue) {}

  // -- consumer ---------------------------------------------------------------------------
  /// The next event, or nullopt after `timeout` without one (or once ended and drained).
  std::optional<watch_event> next(std::chrono::milliseconds timeout);
  /// A terminal event was taken (or the stream was canceled): nothing more will come.
  bool ended() const;
  /// Asks the hub to stop; next() then returns what was queued and a `canceled` event.
  void cancel();
  bool cancel_requested() const;

  // -- producer (the hub) -----------------------------------------------------------------
  /// False (nothing queued) when `max_queue` events are waiting.
  bool push(watch_event e);
  /// All of `events` (one revision's, so a cursor never points inside it) or, when they do
  /// not all fit under `max_queue`, none.
  bool push_all(std::vector<watch_event>&& events);
  /// Queues a terminal event regardless of the bound; later pushes are ignored.
  void end(watch_event e);
  std::size_t queued() const;
  bool closed() const;

 private:
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<watch_event> q_;
  std::size_t max_queue_;
  bool closed_ = false;  // terminal queued
  bool ended_ = false;   // terminal taken
  bool cancel_ = false;
};

/// A watch with a callback (node::watch(filter, from, fn)): a thread of its own takes the
/// events and calls `fn`, so a slow callback slows only this watch (and ends it `slow` if
/// it falls too far behind). Destroying the handle cancels and joins.
class watch_handle {
 public:
  watch_handle() = default;
  watch_handle(std::shared_ptr<watch_stream> s, std::function<void(const watch_event&)> fn);
  watch_handle(watch_handle&&) noexcept = default;
  watch_handle& operator=(watch_handle&&) noexcept;
  ~watch_handle();
  void cancel();
  /// Waits until the watch ended (a terminal event was delivered).
  void wait();
  const std::shared_ptr<watch_stream>& stream() const noexcept { return stream_; }

 private:
  std::shared_ptr<watch_stream> stream_;
  std::thread thread_;
};

/// One retained version of a strong key (history, get_at).
struct key_version {
  std::uint64_t revision = 0;  ///< the entry that wrote it (0: older than the window)
  std::uint32_t group = 0;
  bool deleted = false;
  std::string value;
  std::int64_t expires_at_ms = 0;
};

}  // namespace warp
