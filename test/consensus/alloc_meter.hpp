// Measures heap requests (malloc, calloc, realloc, and operator new through them) made
// between start() and stop(), for tests that must show a decoder never asks for more than
// its bounds: the size is noted even when the request fails.
#pragma once

#include <cstddef>

namespace warp::test::alloc_meter {

void start();
void stop();
std::size_t largest();  ///< the largest single request since start()
std::size_t total();    ///< the sum of all requests since start()

}  // namespace warp::test::alloc_meter
