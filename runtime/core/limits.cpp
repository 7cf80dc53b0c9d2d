// limits::check_key / check_value: the one size check of keys and values (warp/config.hpp).
#include <string>

#include "warp/config.hpp"

namespace warp {

result<void> limits::check_key(std::string_view key) const {
  if (key.size() > max_key_size)
    return error{errc::key_too_large, "key of " + std::to_string(key.size()) +
                                          " bytes exceeds max-key-size " +
                                          std::to_string(max_key_size)};
  return {};
}

result<void> limits::check_value(std::string_view value) const {
  if (value.size() > max_value_size)
    return error{errc::value_too_large, "value of " + std::to_string(value.size()) +
                                            " bytes exceeds max-value-size " +
                                            std::to_string(max_value_size)};
  return {};
}

}  // namespace warp
