// Type- and bounds-checked accessors for msgpack objects that came off the network. Every
// decoder of a wire message (change envelopes, quorum messages) reads its fields through
// these, so a hostile or corrupt message is a codec_error naming the field, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "warp/error.hpp"

namespace warp::bus {

class msgpack_fields {
 public:
  /// `context` prefixes every error message ("bad envelope: ", "bad quorum message: ").
  explicit msgpack_fields(std::string_view context) : context_(context) {}

  error bad(std::string_view what, std::string_view detail = {}) const {
    std::string msg;
    msg.reserve(context_.size() + what.size() + detail.size());
    msg.append(context_).append(what).append(detail);
    return error{errc::codec_error, std::move(msg)};
  }

  template <class T>
  result<T> uint(const msgpack::object& o, const char* what) const {
    if (o.type != msgpack::type::POSITIVE_INTEGER) return bad(what, " not an unsigned");
    if (o.via.u64 > std::numeric_limits<T>::max()) return bad(what, " out of range");
    return static_cast<T>(o.via.u64);
  }

  result<std::int64_t> sint(const msgpack::object& o, const char* what) const {
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
      if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return bad(what, " out of range");
      return static_cast<std::int64_t>(o.via.u64);
    }
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
    return bad(what, " not an integer");
  }

  /// A STR or BIN of at most `max` bytes.
  result<std::string> bytes(const msgpack::object& o, std::size_t max, const char* what) const {
    std::string_view s;
    if (o.type == msgpack::type::BIN)
      s = {o.via.bin.ptr, o.via.bin.size};
    else if (o.type == msgpack::type::STR)
      s = {o.via.str.ptr, o.via.str.size};
    else
      return bad(what, " not bytes");
    if (s.size() > max) return bad(what, " too large");
    return std::string{s};
  }

  result<const msgpack::object*> array(const msgpack::object& o, std::size_t min_size,
                                       std::size_t max_size, const char* what) const {
    if (o.type != msgpack::type::ARRAY) return bad(what, " not an array");
    if (o.via.array.size < min_size || o.via.array.size > max_size)
      return bad(what, " has a wrong size");
    return o.via.array.ptr;
  }

  result<bool> boolean(const msgpack::object& o, const char* what) const {
    if (o.type != msgpack::type::BOOLEAN) return bad(what, " not a bool");
    return o.via.boolean;
  }

 private:
  std::string_view context_;
};

}  // namespace warp::bus
