// eventual_distributed: strong_local's L1 over storage, plus the cluster (runtime/modes/
// cluster.*, the sync bus, the range actors): a miss is read through the key's range
// owner, a committed write is published to every peer (invalidation, or the value with
// hydration), and a fetched version older than a change this node already applied is
// served but not cached. See docs/cluster.md.
#include "runtime/modes/cluster.hpp"
#include "runtime/modes/storage_backed_mode.hpp"

namespace warp::detail {

namespace {

class eventual_mode final : public storage_backed_mode {
 public:
  eventual_mode(write_path& path, cluster& c) : storage_backed_mode(path), cluster_(c) {}

  warp::mode kind() const noexcept override { return warp::mode::eventual_distributed; }


  std::optional<result<std::optional<record>>> fetch_elsewhere(std::string_view key) override {
    return cluster_.fetch_from_owner(key);
  }
  bool may_cache(std::string_view key, version ver) const override {
    // An owner may answer from an L1 that lags what this node already applied.
    return cluster_.may_cache(key, ver);
  }
  void committed(const committed_change& c) override {
    if (c.what == committed_change::kind::erase) {
      cluster_.published(c.key, c.ver, 0, bus::record_kind::erase, {});
      return;
    }
    cluster_.published(c.key, c.ver, c.expires_at_ms,
                       c.hydrate ? bus::record_kind::value : bus::record_kind::invalidate, c.value);
  }
  void unknown_outcome(std::string_view key, version ver) override {
    // Storage may have applied the write: a peer's L1 (or a range owner's, serving this
    // node's next miss) holding the old value would serve it until its TTL, forever
    // with none.
    cluster_.unknown_outcome(key, ver);
  }

 private:
  cluster& cluster_;
};

}  // namespace

std::unique_ptr<consistency_mode> make_eventual_mode(write_path& path, cluster& c) {
  return std::make_unique<eventual_mode>(path, c);
}

}  // namespace warp::detail
