// Epoch-based reclamation: nothing is freed while a reader that may see it is pinned;
// exiting threads give their slot back.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "runtime/core/epoch.hpp"

using warp::detail::epoch_domain;
using warp::detail::epoch_guard;
using warp::detail::garbage_list;

namespace {
std::atomic<int> destroyed{0};
void count_destroy(void*) noexcept {
  destroyed.fetch_add(1);
}
}  // namespace

TEST_CASE("garbage waits for pinned readers, then is freed", "[l1][epoch]") {
  destroyed = 0;
  garbage_list garbage;
  std::atomic<bool> pinned{false}, release{false};
  std::thread reader([&] {
    epoch_guard guard;
    pinned = true;
    while (!release.load()) std::this_thread::yield();
  });
  while (!pinned.load()) std::this_thread::yield();
  int dummy = 0;
  garbage.retire(&dummy, &count_destroy, 8);
  for (int i = 0; i < 10; ++i) garbage.collect();
  CHECK(destroyed.load() == 0);  // the reader pinned before the retire may still see it
  CHECK(garbage.size() == 1);
  release = true;
  reader.join();
  garbage.collect();
  CHECK(destroyed.load() == 1);
  CHECK(garbage.size() == 0);
}

TEST_CASE("guards nest: only the outermost unpins", "[l1][epoch]") {
  destroyed = 0;
  garbage_list garbage;
  std::atomic<int> stage{0};
  std::thread reader([&] {
    epoch_guard outer;
    { epoch_guard inner; }
    stage = 1;  // still pinned by `outer`
    while (stage.load() != 2) std::this_thread::yield();
  });
  while (stage.load() != 1) std::this_thread::yield();
  int dummy = 0;
  garbage.retire(&dummy, &count_destroy, 8);
  garbage.collect();
  garbage.collect();
  CHECK(destroyed.load() == 0);
  stage = 2;
  reader.join();
  garbage.collect();
  CHECK(destroyed.load() == 1);
}

TEST_CASE("exiting threads give their reader slot back", "[l1][epoch]") {
  auto& domain = epoch_domain::global();
  { epoch_guard warm; }  // this thread's slot
  const std::size_t before = domain.slot_count();
  for (int i = 0; i < 100; ++i) {
    std::thread t([] { epoch_guard g; });
    t.join();
  }
  // Sequential threads reuse one slot (other test threads may still hold a few).
  CHECK(domain.slot_count() <= before + 2);
}
