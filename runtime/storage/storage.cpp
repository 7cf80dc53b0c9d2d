// open_storage(): maps a storage spec to an adapter; plus the default fetch_batch().
#include <atomic>
#include <filesystem>
#include <system_error>

#include "warp/storage.hpp"
#include "warp/storage_fence.hpp"

namespace warp {

result<std::vector<std::optional<record>>> storage::fetch_batch(std::span<const std::string> keys) {
  std::vector<std::optional<record>> out;
  out.reserve(keys.size());
  for (auto& key : keys) {
    auto rec = fetch(key);
    if (!rec) return rec.err();
    out.push_back(std::move(*rec));
  }
  return out;
}

std::string_view to_string(storage_op op) noexcept {
  switch (op) {
    case storage_op::fetch:
      return "fetch";
    case storage_op::store:
      return "store";
    case storage_op::remove:
      return "remove";
    case storage_op::scan:
      return "scan";
    case storage_op::count:
      return "count";
    case storage_op::clear:
      return "clear";
    case storage_op::flush:
      return "flush";
    case storage_op::check:
      return "check";
  }
  return "?";
}

namespace {

// Counts every failed call per operation, whatever the adapter, so SQLite and PostgreSQL
// errors show up the same way on /metrics, and times fetches and writes into histograms.
// Forwarding only: no lock; a relaxed atomic add on a failure, two on a timed call.
class counted_storage : public storage {
 public:
  explicit counted_storage(std::unique_ptr<storage> inner) : inner_(std::move(inner)) {}

  result<std::optional<record>> fetch(std::string_view key) override {
    latency_timer t{fetch_latency_};
    return counted(storage_op::fetch, inner_->fetch(key));
  }
  result<std::vector<std::optional<record>>> fetch_batch(
      std::span<const std::string> keys) override {
    latency_timer t{fetch_latency_};
    return counted(storage_op::fetch, inner_->fetch_batch(keys));
  }
  result<void> store(std::string_view key, const record& rec) override {
    latency_timer t{write_latency_};
    return counted_status(storage_op::store, inner_->store(key, rec));
  }
  result<void> remove(std::string_view key) override {
    latency_timer t{write_latency_};
    return counted_status(storage_op::remove, inner_->remove(key));
  }
  result<std::string> identity() override { return inner_->identity(); }
  const latency_histogram* fetch_latency() const override { return &fetch_latency_; }
  const latency_histogram* write_latency() const override { return &write_latency_; }
  result<std::vector<std::string>> scan(std::string_view after, std::size_t count) override {
    return counted(storage_op::scan, inner_->scan(after, count));
  }
  result<std::size_t> count() override { return counted(storage_op::count, inner_->count()); }
  result<void> clear() override { return counted_status(storage_op::clear, inner_->clear()); }
  result<void> flush() override { return counted_status(storage_op::flush, inner_->flush()); }
  result<void> check() override { return counted_status(storage_op::check, inner_->check()); }
  std::string describe() const override { return inner_->describe(); }
  memory_usage memory() const override { return inner_->memory(); }
  std::optional<storage_error_counts> error_counts() const override {
    storage_error_counts out{};
    for (std::size_t i = 0; i < storage_op_count; ++i)
      out[i] = errors_[i].load(std::memory_order_relaxed);
    return out;
  }

 protected:
  template <class T>
  result<T> counted(storage_op op, result<T> r) {
    if (!r) bump(op);
    return r;
  }
  result<void> counted_status(storage_op op, result<void> st) {
    if (!st) bump(op);
    return st;
  }
  void bump(storage_op op) {
    errors_[static_cast<std::size_t>(op)].fetch_add(1, std::memory_order_relaxed);
  }

  std::unique_ptr<storage> inner_;
  std::array<std::atomic<std::uint64_t>, storage_op_count> errors_{};
  latency_histogram fetch_latency_;
  latency_histogram write_latency_;
};

// The same for an adapter with fenced writes: forwarded, timed as a write, a failure
// counted as a failed store (being fenced is an answer, not a failure).
class counted_fenced_storage final : public counted_storage, public fenced_writes {
 public:
  counted_fenced_storage(std::unique_ptr<storage> inner, fenced_writes& fenced)
      : counted_storage(std::move(inner)), fenced_(fenced) {}

  result<void> write_fenced(std::string_view fence, std::uint64_t token,
                            std::span<const fenced_change> changes) override {
    latency_timer t{write_latency_};
    auto st = fenced_.write_fenced(fence, token, changes);
    if (!st && st.code() != errc::conflict) bump(storage_op::store);
    return st;
  }

 private:
  fenced_writes& fenced_;  ///< the inner adapter's
};

result<std::unique_ptr<storage>> counted(result<std::unique_ptr<storage>> r) {
  if (!r) return r;
  if (auto* fenced = fenced_writes_of(**r))
    return std::unique_ptr<storage>{
        std::make_unique<counted_fenced_storage>(std::move(*r), *fenced)};
  return std::unique_ptr<storage>{std::make_unique<counted_storage>(std::move(*r))};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

result<std::unique_ptr<storage>> open_adapter(std::string_view spec, std::string_view data_dir) {
  if (spec == "memory") return make_memory_storage();
  if (spec == "sqlite") {
    // The embedded default: one database file in the node's data directory.
    std::filesystem::path dir{data_dir.empty() ? std::string_view{"."} : data_dir};
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return error{errc::storage_unavailable, "cannot create data directory '" + dir.string() +
                                                  "' for storage 'sqlite': " + ec.message()};
    return make_sqlite_storage((dir / "warp.db").string());
  }
  if (starts_with(spec, "sqlite:")) {
    auto path = spec.substr(7);
    if (path.empty()) return error{errc::invalid_argument, "storage spec 'sqlite:' names no path"};
    return make_sqlite_storage(path);
  }
  // Bare libpq URIs are accepted as they are; "postgres:" prefixes any conninfo form
  // (a URI or "host=... dbname=...").
  if (starts_with(spec, "postgresql://") || starts_with(spec, "postgres://"))
    return make_postgres_storage(spec);
  for (std::string_view prefix : {"postgres:", "postgresql:"}) {
    if (starts_with(spec, prefix)) {
      auto conninfo = spec.substr(prefix.size());
      if (conninfo.empty())
        return error{errc::invalid_argument,
                     "storage spec '" + std::string{spec} + "' names no connection"};
      return make_postgres_storage(conninfo);
    }
  }
  return error{errc::invalid_argument,
               "unknown storage spec '" + std::string{spec} +
                   "' (expected memory, sqlite, sqlite:PATH, postgres:URI or postgresql://...)"};
}

}  // namespace

result<std::unique_ptr<storage>> open_storage(std::string_view spec, std::string_view data_dir) {
  return counted(open_adapter(spec, data_dir));
}

}  // namespace warp
