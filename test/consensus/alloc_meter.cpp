// Interposes malloc & co. for this test executable only (glibc resolves them to the
// executable's definitions) and forwards to glibc's own entry points. msgpack's zone uses
// ::malloc directly, so a counting operator new alone would not see it.
#include "test/consensus/alloc_meter.hpp"

#include <atomic>
#include <cstdlib>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
}

namespace {

std::atomic<bool> metering{false};
std::atomic<std::size_t> largest_request{0};
std::atomic<std::size_t> total_requested{0};

void note(std::size_t n) noexcept {
  if (!metering.load(std::memory_order_relaxed)) return;
  total_requested.fetch_add(n, std::memory_order_relaxed);
  std::size_t l = largest_request.load(std::memory_order_relaxed);
  while (n > l && !largest_request.compare_exchange_weak(l, n, std::memory_order_relaxed)) {
  }
}

}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  note(n);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t m) {
  std::size_t bytes = 0;
  note(__builtin_mul_overflow(n, m, &bytes) ? static_cast<std::size_t>(-1) : bytes);
  return __libc_calloc(n, m);
}
void* realloc(void* p, std::size_t n) {
  note(n);
  return __libc_realloc(p, n);
}
void free(void* p) {
  __libc_free(p);
}
}

namespace warp::test::alloc_meter {

void start() {
  largest_request = 0;
  total_requested = 0;
  metering = true;
}
void stop() {
  metering = false;
}
std::size_t largest() {
  return largest_request;
}
std::size_t total() {
  return total_requested;
}

}  // namespace warp::test::alloc_meter
