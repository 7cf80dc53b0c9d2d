// What strong_local and eventual_distributed share: both read and write through the one
// read/write path (write_path) over L1 and storage; they differ only in the hooks
// (where a miss is fetched, whether a version may be cached, who hears of a commit).
#pragma once

#include "runtime/modes/mode.hpp"
#include "runtime/modes/write_path.hpp"

namespace warp::detail {

class storage_backed_mode : public consistency_mode {
 public:
  explicit storage_backed_mode(write_path& path) : path_(path) {}

  result<buffer> get(std::string_view key, const key_policy& policy) override {
    return path_.read(key, policy, *this);
  }
  result<buffer> get_or_load(std::string_view key, const key_policy& policy,
                             const loader& load) override {
    return path_.get_or_load(key, policy, *this, load);
  }
  result<void> set(std::string_view key, const key_policy& policy, std::string_view value,
             std::int64_t expires_at_ms) override {
    return path_.put(key, policy, *this, value, expires_at_ms);
  }
  result<mutation> write(std::string_view key, const key_policy& policy, const write_fn& fn,
                         bool read_current) override {
    return path_.write(key, policy, *this, fn, read_current);
  }

 protected:
  write_path& path_;
};

}  // namespace warp::detail
