// Fenced writes: storage writes that a newer writer fences off. The Raft engine's storage
// write-through (docs/strong.md, "Storage write-through") writes each group's committed
// changes with the leader's term as the token, so a deposed leader's batch still in flight
// can never overwrite what a newer leader wrote. An adapter shared by several processes
// implements this beside warp::storage (SQLite and PostgreSQL do; the wrapper
// open_storage() puts around an adapter forwards it); strong values are written through
// only to an adapter that does (docs/storage.md).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "warp/error.hpp"
#include "warp/storage.hpp"

namespace warp {

/// One change of a fenced write: put `rec` under `key`, or remove it.
struct fenced_change {
  std::string key;
  bool erase = false;
  record rec;  ///< put only
};

class fenced_writes {
 public:
  /// Writes `changes` in order, all or none, in one transaction that first checks that the
  /// fence named `fence` holds no token above `token` and leaves it at `token`.
  /// errc::conflict "fenced" when a newer token is there (nothing written). The fence must
  /// hold between processes sharing the store (SQLite and PostgreSQL: table warp_fence).
  virtual result<void> write_fenced(std::string_view fence, std::uint64_t token,
                                    std::span<const fenced_change> changes) = 0;

 protected:
  ~fenced_writes() = default;
};

/// The adapter's fenced writes, or nullptr when it has none.
inline fenced_writes* fenced_writes_of(storage& s) noexcept {
  return dynamic_cast<fenced_writes*>(&s);
}

}  // namespace warp
