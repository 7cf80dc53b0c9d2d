// The immutable, shared byte buffer that values live in: L1 hands it out without copying.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace warp {

/// A value's bytes. Immutable once built, shared by L1 and every reader holding it.
using buffer = std::shared_ptr<const std::string>;

inline buffer make_buffer(std::string bytes) {
  return std::make_shared<const std::string>(std::move(bytes));
}
inline buffer make_buffer(std::string_view bytes) {
  return make_buffer(std::string{bytes});
}
inline buffer make_buffer(const char* bytes) {
  return make_buffer(std::string{bytes});
}

inline std::string_view view(const buffer& b) noexcept {
  return b ? std::string_view{*b} : std::string_view{};
}

}  // namespace warp
