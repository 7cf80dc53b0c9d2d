// The one accessor of Warp's logger ("warp", stderr, colour when a terminal). Every layer
// logs through it, so an embedder that registers its own "warp" logger first gets
// everything Warp says in its own sinks.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace warp::detail {

std::shared_ptr<spdlog::logger> log();

}  // namespace warp::detail
