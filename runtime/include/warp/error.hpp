// Warp's error codes and the small result type every public call returns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace warp {

/// Every failure a Warp call can report. Values are stable: they cross the network.
enum class errc : std::uint8_t {
  ok = 0,
  not_found = 1,            ///< the key has no value (in L1 nor in storage)
  key_too_large = 2,        ///< key longer than `limits.max_key_size`
  value_too_large = 3,      ///< value larger than `limits.max_value_size`
  invalid_argument = 4,     ///< malformed input: bad pattern, bad TTL, bad flag value
  storage_unavailable = 5,  ///< storage could not be reached (outage, closed, circuit open)
  storage_error = 6,        ///< storage answered with an error
  codec_error = 7,          ///< a value could not be encoded or decoded
  timeout = 8,              ///< no answer in time; the outcome is known NOT to be applied
  unknown_outcome = 9,      ///< no quorum/answer: the write may or may not have been applied
  unreachable = 10,         ///< a peer or node could not be reached
  rate_limited = 11,        ///< storage rate limit hit
  shutting_down = 12,       ///< the node is stopping
  conflict = 13,            ///< a conditional operation lost (version, NX/XX, fencing token)
  unsupported = 14,         ///< not available in this mode or build
  internal = 15,            ///< a bug: please report
};

/// Human-readable name of an error code ("not_found", "storage_unavailable", ...).
std::string_view to_string(errc code) noexcept;

/// An error code with a message for humans. Cheap to move; `ok()` when code is errc::ok.
class error {
 public:
  error() = default;
  error(errc code, std::string message = {}) : code_(code), message_(std::move(message)) {}

  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  bool ok() const noexcept { return code_ == errc::ok; }
  explicit operator bool() const noexcept { return !ok(); }  ///< true when it IS an error

  /// "storage_unavailable: connection refused"
  std::string to_string() const;

  friend bool operator==(const error& e, errc c) noexcept { return e.code_ == c; }

 private:
  errc code_ = errc::ok;
  std::string message_;
};

/// A value of type T or an error. A minimal `expected`, kept free of CAF so that the
/// headers an embedding service includes on its hot path stay light.
template <class T>
class result {
 public:
  result(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  result(error err) : data_(std::in_place_index<1>, std::move(err)) {}
  result(errc code, std::string message = {})
      : data_(std::in_place_index<1>, error{code, std::move(message)}) {}

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; only valid when !has_value().
  const error& err() const { return std::get<1>(data_); }
  errc code() const noexcept { return has_value() ? errc::ok : std::get<1>(data_).code(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, error> data_;
};

/// Success or an error, converting to true on success (as caf::expected<void>).
template <>
class result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)) {}
  result(errc code, std::string message = {}) : err_(code, std::move(message)) {}

  bool has_value() const noexcept { return err_.ok(); }
  explicit operator bool() const noexcept { return has_value(); }
  /// The error; errc::ok on success.
  const error& err() const noexcept { return err_; }
  errc code() const noexcept { return err_.code(); }

 private:
  error err_;
};

}  // namespace warp
