// strong_local: this node's L1 over storage, nothing leaves the process. Linearizable per
// key on one node (writes are ordered by the key's write stripe and go through to storage
// before L1); other nodes sharing the storage are not told (docs/architecture.md).
#include "runtime/modes/mode.hpp"
#include "runtime/modes/write_path.hpp"

namespace warp::detail {

namespace {

class strong_local_mode final : public consistency_mode {
 public:
  explicit strong_local_mode(write_path& path) : path_(path) {}

  warp::mode kind() const noexcept override { return warp::mode::strong_local; }

  result<buffer> get(std::string_view key, const key_policy& policy) override {
    return path_.read(key, policy, *this);
  }
  result<buffer> get_or_load(std::string_view key, const key_policy& policy,
                             const loader& load) override {
    return path_.get_or_load(key, policy, *this, load);
  }
  status set(std::string_view key, const key_policy& policy, std::string_view value,
             std::int64_t expires_at_ms) override {
    return path_.put(key, policy, *this, value, expires_at_ms);
  }
  result<mutation> write(std::string_view key, const key_policy& policy, const write_fn& fn,
                         bool read_current) override {
    return path_.write(key, policy, *this, fn, read_current);
  }

 private:
  write_path& path_;
};

}  // namespace

std::unique_ptr<consistency_mode> make_strong_local_mode(write_path& path) {
  return std::make_unique<strong_local_mode>(path);
}

}  // namespace warp::detail
