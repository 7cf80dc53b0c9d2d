#include "test/support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace warp::test {

namespace {

bool can_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

refused_port::refused_port() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd_);
    throw std::runtime_error("bind() of a refused port failed");
  }
  port_ = ntohs(addr.sin_port);
}

refused_port::~refused_port() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint16_t free_port() {
  // Ports from the kernel's ephemeral allocator can be handed out again soon after; keep
  // a per-process set so two servers of one test never get the same port.
  static std::atomic<int> calls{0};
  for (int attempt = 0; attempt < 200; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      continue;
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    auto port = ntohs(addr.sin_port);
    static std::vector<std::uint16_t> handed_out;
    static std::mutex mtx;
    std::lock_guard<std::mutex> guard{mtx};
    if (std::find(handed_out.begin(), handed_out.end(), port) != handed_out.end()) continue;
    handed_out.push_back(port);
    ++calls;
    return port;
  }
  throw std::runtime_error("no free port found");
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (can_connect(port)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string binary(const std::string& relative) {
  const char* dir = std::getenv("WARP_BINARY_DIR");
  std::string base = dir ? dir : WARP_BINARY_DIR;
  return base + "/" + relative;
}

std::string find_program(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss{path};
    std::string d;
    while (std::getline(ss, d, ':')) dirs.push_back(d);
  }
  for (auto d : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"})
    dirs.emplace_back(d);
  // PostgreSQL's server binaries live in a versioned folder.
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec))
    dirs.push_back(entry.path().string() + "/bin");
  for (auto& d : dirs) {
    auto p = std::filesystem::path(d) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return {};
}

temp_dir::temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

child_process::child_process(std::vector<std::string> argv, std::string log_path)
    : log_path_(std::move(log_path)) {
  if (argv.empty()) throw std::invalid_argument("child_process: empty argv");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log_path_.empty() ? "/dev/null" : log_path_.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
}

child_process::~child_process() {
  if (running()) stop(SIGKILL, 5s);
}

bool child_process::running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int st = 0;
  auto r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return false;
}

void child_process::signal(int sig) {
  if (pid_ > 0 && exit_code_ < 0) ::kill(pid_, sig);
}

int child_process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(10ms);
  }
  return exit_code_;
}

int child_process::stop(int sig, std::chrono::milliseconds timeout) {
  if (!running()) return exit_code_;
  signal(sig);
  if (sig == SIGSTOP) return -1;
  auto code = wait(timeout);
  if (code < 0) {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    code = wait(5s);
  }
  return code;
}

std::string child_process::log() const {
  return log_path_.empty() ? "" : slurp(log_path_);
}

command_result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  temp_dir dir{"warp-cmd"};
  auto out_path = dir.str() + "/out";
  auto err_path = dir.str() + "/err";
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::dup2(in, 0);
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  command_result res;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    auto r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      res.err = "timed out";
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  res.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  res.out = slurp(out_path);
  res.err += slurp(err_path);
  return res;
}

}  // namespace warp::test
