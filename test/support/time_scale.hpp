// Scaling of a test's own timing assumptions for slowed-down builds. A sanitizer build runs
// the same code 2-15x slower (TSan the most), so a window a test relies on (a request
// timeout that must not expire before N threads have arrived) can close before a correct
// program gets there. scripts/sanitize.sh sets WARP_TEST_TIME_SCALE; a plain run leaves it
// unset and keeps the tight figures.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace warp::test {

/// WARP_TEST_TIME_SCALE as a factor in [1, 100]; 1 when unset or not a number.
inline double time_scale() {
  static const double scale = [] {
    const char* text = std::getenv("WARP_TEST_TIME_SCALE");
    if (!text || !*text) return 1.0;
    char* end = nullptr;
    double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(v >= 1.0)) return 1.0;
    return std::min(v, 100.0);
  }();
  return scale;
}

/// `d` stretched by time_scale().
template <class Rep, class Period>
std::chrono::milliseconds scaled(std::chrono::duration<Rep, Period> d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::chrono::milliseconds{static_cast<std::chrono::milliseconds::rep>(ms * time_scale())};
}

}  // namespace warp::test
