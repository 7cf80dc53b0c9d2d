#include "runtime/consensus/file_ops.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace warp::consensus {

namespace {

error os_error(std::string_view what, const std::string& path) {
  return error{errc::storage_error, std::string{what} + " " + path + ": " + std::strerror(errno)};
}

struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

result<int> file_ops::open_append(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("open", path);
  return fd;
}

result<void> file_ops::write(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("write", "fd " + std::to_string(fd));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

result<void> file_ops::datasync(int fd) {
  if (::fdatasync(fd) != 0) return os_error("fdatasync", "fd " + std::to_string(fd));
  return {};
}

result<void> file_ops::close(int fd) {
  if (::close(fd) != 0) return os_error("close", "fd " + std::to_string(fd));
  return {};
}

result<std::string> file_ops::read(const std::string& path, std::size_t max_bytes) {
  fd_guard g{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (g.fd < 0) {
    if (errno == ENOENT) return error{errc::not_found, path};
    return os_error("open", path);
  }
  struct stat st {};
  if (::fstat(g.fd, &st) != 0) return os_error("stat", path);
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return error{errc::storage_error,
                 path + ": larger than its bound of " + std::to_string(max_bytes) + " bytes"};
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(g.fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("read", path);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

result<void> file_ops::write_atomic(const std::string& dir, const std::string& name,
                                    std::string_view bytes) {
  const std::string tmp = dir + "/" + name + ".tmp";
  auto fd = open_append(tmp);
  if (!fd) return fd.err();
  // O_APPEND onto a leftover temp file would extend it: start from empty.
  if (::ftruncate(*fd, 0) != 0) {
    auto e = os_error("truncate", tmp);
    ::close(*fd);
    return e;
  }
  auto w = write(*fd, bytes);
  if (w) w = datasync(*fd);
  auto c = close(*fd);
  if (!w) return w;
  if (!c) return c;
  if (::rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) return os_error("rename", tmp);
  return sync_dir(dir);
}

result<void> file_ops::truncate(const std::string& path, std::uint64_t size) {
  fd_guard g{::open(path.c_str(), O_WRONLY | O_CLOEXEC)};
  if (g.fd < 0) return os_error("open", path);
  if (::ftruncate(g.fd, static_cast<off_t>(size)) != 0) return os_error("truncate", path);
  if (::fdatasync(g.fd) != 0) return os_error("fdatasync", path);
  return {};
}

result<void> file_ops::remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return os_error("unlink", path);
  return {};
}

result<void> file_ops::sync_dir(const std::string& dir) {
  fd_guard g{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (g.fd < 0) return os_error("open", dir);
  if (::fsync(g.fd) != 0) return os_error("fsync", dir);
  return {};
}

result<std::vector<std::string>> file_ops::list(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> out;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    out.push_back(it->path().filename().string());
  if (ec) return error{errc::storage_error, "list " + dir + ": " + ec.message()};
  return out;
}

result<void> file_ops::make_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return error{errc::storage_error, "mkdir " + dir + ": " + ec.message()};
  return {};
}

result<int> file_ops::lock(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("open", path);
  // flock, not fcntl: its lock belongs to the open file description, so a second open in
  // the same process conflicts too.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const bool held = errno == EWOULDBLOCK;
    auto e = held ? error{errc::storage_error, path + ": in use by another open raft log store"}
                  : os_error("flock", path);
    ::close(fd);
    return e;
  }
  return fd;
}

file_ops& posix_file_ops() {
  static file_ops ops;
  return ops;
}

}  // namespace warp::consensus
