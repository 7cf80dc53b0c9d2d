#include "runtime/core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace warp::detail {

std::shared_ptr<spdlog::logger> log() {
  if (auto existing = spdlog::get("warp")) return existing;
  try {
    return spdlog::stderr_color_mt("warp");
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("warp");  // another thread registered it first
  }
}

}  // namespace warp::detail
