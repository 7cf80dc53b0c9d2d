// strong_local: this node's L1 over storage, nothing leaves the process. Linearizable per
// key on one node (writes are ordered by the key's write stripe and go through to storage
// before L1); other nodes sharing the storage are not told (docs/architecture.md).
#include "runtime/modes/storage_backed_mode.hpp"

namespace warp::detail {

namespace {

class strong_local_mode final : public storage_backed_mode {
 public:
  explicit strong_local_mode(write_path& path) : storage_backed_mode(path) {}

  warp::mode kind() const noexcept override { return warp::mode::strong_local; }
};

}  // namespace

std::unique_ptr<consistency_mode> make_strong_local_mode(write_path& path) {
  return std::make_unique<strong_local_mode>(path);
}

}  // namespace warp::detail
