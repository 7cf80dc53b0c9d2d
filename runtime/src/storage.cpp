// open_storage(): maps a storage spec to an adapter; plus the default fetch_batch().
#include <filesystem>
#include <system_error>

#include "warp/storage.hpp"

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

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

result<std::unique_ptr<storage>> open_storage(std::string_view spec, std::string_view data_dir) {
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

}  // namespace warp
