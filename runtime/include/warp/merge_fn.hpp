// The signature of a custom merge function for federated keys (docs/merge.md): what an
// embedder registers with node::register_merge and a pattern names with
// `+federated=NAME`.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "warp/error.hpp"
#include "warp/version.hpp"

namespace warp {

/// One side of a merge: the value bytes a key holds and the version that wrote them.
struct merge_input {
  std::string_view value;
  version ver;
};

/// merged = fn(local, incoming): the value the key holds after a write from another
/// region met the local one. It must be deterministic (same inputs, same bytes, on every
/// node of every region), commutative, associative and idempotent (fn(x, x) == x), do no
/// I/O, take no lock and return quickly: it runs on the federation apply path, under the
/// key's write stripe. An error keeps the local value, and the incoming write is counted
/// as failed (never silently applied half-way).
using merge_fn =
    std::function<result<std::string>(const merge_input& local, const merge_input& incoming)>;

}  // namespace warp
