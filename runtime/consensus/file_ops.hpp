// The few file operations the durable log needs, behind an interface so a test can make a
// real one fail on demand (a write, an fsync) and check that the failure reaches the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "warp/error.hpp"

namespace warp::consensus {

class file_ops {
 public:
  virtual ~file_ops() = default;
  /// Opens for appending, creating it if absent; returns the descriptor.
  virtual result<int> open_append(const std::string& path);
  virtual result<void> write(int fd, std::string_view bytes);
  virtual result<void> datasync(int fd);
  virtual result<void> close(int fd);
  /// The whole file, refused (without reading it) when larger than `max_bytes`.
  virtual result<std::string> read(const std::string& path, std::size_t max_bytes);
  /// Writes `bytes` to `path` so that a crash leaves either the old or the new content:
  /// temp file, fsync, rename over, fsync the directory.
  virtual result<void> write_atomic(const std::string& dir, const std::string& name,
                                    std::string_view bytes);
  virtual result<void> truncate(const std::string& path, std::uint64_t size);
  virtual result<void> remove(const std::string& path);
  virtual result<void> sync_dir(const std::string& dir);
  virtual result<std::vector<std::string>> list(const std::string& dir);
  virtual result<void> make_dir(const std::string& dir);
  /// An exclusive lock on `path` (created if absent) until the returned descriptor is
  /// closed; refused at once, never waited for, when another descriptor holds it (in this
  /// process too). The kernel drops it with the process, kill -9 included.
  virtual result<int> lock(const std::string& path);
};

/// The process-wide POSIX implementation.
file_ops& posix_file_ops();

}  // namespace warp::consensus
