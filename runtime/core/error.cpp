#include "warp/error.hpp"

namespace warp {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::ok:
      return "ok";
    case errc::not_found:
      return "not_found";
    case errc::key_too_large:
      return "key_too_large";
    case errc::value_too_large:
      return "value_too_large";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::storage_unavailable:
      return "storage_unavailable";
    case errc::storage_error:
      return "storage_error";
    case errc::codec_error:
      return "codec_error";
    case errc::timeout:
      return "timeout";
    case errc::unknown_outcome:
      return "unknown_outcome";
    case errc::unreachable:
      return "unreachable";
    case errc::rate_limited:
      return "rate_limited";
    case errc::shutting_down:
      return "shutting_down";
    case errc::conflict:
      return "conflict";
    case errc::unsupported:
      return "unsupported";
    case errc::internal:
      return "internal";
  }
  return "unknown";
}

std::string error::to_string() const {
  std::string out{warp::to_string(code_)};
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace warp
