// Bounded waiting for what another thread or process makes true: the one way tests wait.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace warp::test {

/// Polls `cond` until it holds or `limit` has passed; the last poll decides. Polls start
/// 5 ms apart and back off to 100 ms, so an in-process condition is seen at once and a
/// condition that runs a command each time (warpctl) does not flood the machine.
template <class Pred>
bool eventually(Pred&& cond, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::chrono::milliseconds pause{5};
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds{100});
  }
  return cond();
}

}  // namespace warp::test
