// Watch and history of strong keys through a node (docs/coordination.md, "Watch",
// "History"); the vocabulary is in warp/watch.hpp. They need the strong Raft engine
// (errc::unsupported otherwise). Blocking for a moment (a request to the node's watch hub):
// call them from application threads or the executor, never a CAF scheduler thread.
//
// `filter`: a key prefix, or a glob when it holds * ? or [. `from`: "" (live), "N" or a
// cursor "g:rev,...". Events of one key come in revision order; a start below the retained
// window ends the watch with a `compacted` event. At most strong_options::watch.max_watchers
// watches per node (errc::rate_limited).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"
#include "warp/watch.hpp"

namespace warp {

class node;

/// The raw stream: read it with next(); cancel() (or dropping it) ends the watch.
result<std::shared_ptr<watch_stream>> open_watch(node& n, std::string_view filter,
                                                 std::string_view from, bool prev = false);
/// `fn` runs on a thread of the handle's own, once per event, the terminal one last.
result<watch_handle> watch(node& n, std::string_view filter, std::string_view from,
                           std::function<void(const watch_event&)> fn, bool prev = false);
/// The retained versions of a strong key, newest first (deletes included).
result<std::vector<key_version>> history(node& n, std::string_view key);
/// The key's version as of `revision` of its group: `deleted` when it had no value then;
/// errc::not_found "compacted(N): ..." when the window no longer reaches back to it.
result<key_version> get_at(node& n, std::string_view key, std::uint64_t revision);

namespace detail {
/// The control protocol's history requests (coord_atom verbs): history [key] -> json array;
/// get_at [key, revision] -> json object.
result<std::string> history_request(node& n, std::string_view verb,
                                    const std::vector<std::string>& args);
}  // namespace detail

}  // namespace warp
