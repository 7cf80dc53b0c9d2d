// strong_distributed: linearizable single-key reads and writes by ABD quorums over the
// replicas of the key's range (runtime/modes/strong.*, docs/strong.md). No L1, no storage
// adapter: the values live in the replicas. This file is only the node's entry into the
// coordinator.
#include "runtime/modes/mode.hpp"
#include "runtime/modes/strong.hpp"

namespace warp::detail {

namespace {

class strong_distributed_mode final : public consistency_mode {
 public:
  explicit strong_distributed_mode(strong_coordinator& c) : coordinator_(c) {}

  warp::mode kind() const noexcept override { return warp::mode::strong_distributed; }

  result<buffer> get(std::string_view key, const key_policy&) override {
    return coordinator_.get(key);
  }
  result<buffer> get_or_load(std::string_view key, const key_policy&, const loader& load) override {
    return coordinator_.get_or_load(key, load);
  }
  result<void> set(std::string_view key, const key_policy&, std::string_view value,
             std::int64_t expires_at_ms) override {
    auto r = coordinator_.write(
        key,
        [&](const buffer*, std::int64_t) -> result<mutation> {
          return mutation::put(std::string{value}, expires_at_ms);
        },
        false);
    return r ? result<void>{} : r.err();
  }
  result<mutation> write(std::string_view key, const key_policy&, const write_fn& fn,
                         bool read_current) override {
    return coordinator_.write(key, fn, read_current);
  }
  bool get_async(std::string_view key, const key_policy&, get_done& done) override {
    coordinator_.get_async(key, std::move(done));
    return true;
  }
  bool set_async(std::string_view key, const key_policy&, std::string_view value,
                 std::int64_t expires_at_ms, write_done& done) override {
    coordinator_.set_async(key, value, expires_at_ms, std::move(done));
    return true;
  }
  bool remove_async(std::string_view key, const key_policy&, write_done& done) override {
    coordinator_.remove_async(key, std::move(done));
    return true;
  }
  // Quorum writes go one by one (each key is atomic; a batch is not a transaction).
  bool batches() const noexcept override { return false; }

 private:
  strong_coordinator& coordinator_;
};

}  // namespace

std::unique_ptr<consistency_mode> make_strong_distributed_mode(strong_coordinator& c) {
  return std::make_unique<strong_distributed_mode>(c);
}

}  // namespace warp::detail
