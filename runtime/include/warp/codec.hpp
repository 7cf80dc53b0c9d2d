// Codecs turn typed values into the bytes L1 and storage keep, and back.
//
// A codec is a type with two static functions:
//   static result<std::string> encode(const T&);
//   static result<T> decode(const buffer&);
// msgpack_codec<T> is the default for user structs (declare MSGPACK_DEFINE(...) in them);
// byte_codec serves std::string and warp::buffer, and hands out L1's own buffer for
// warp::buffer without copying. Supply your own as the second argument of warp::cache.
#pragma once

#include <string>
#include <type_traits>

#include <msgpack.hpp>

#include "warp/buffer.hpp"
#include "warp/error.hpp"

namespace warp {

template <class T>
struct msgpack_codec {
  static result<std::string> encode(const T& value) {
    msgpack::sbuffer out;
    try {
      msgpack::pack(out, value);
    } catch (const std::exception& e) {
      return error{errc::codec_error, std::string{"msgpack encode: "} + e.what()};
    }
    return std::string{out.data(), out.size()};
  }
  static result<T> decode(const buffer& bytes) {
    if (!bytes) return error{errc::codec_error, "msgpack decode: empty buffer"};
    try {
      auto handle = msgpack::unpack(bytes->data(), bytes->size());
      return handle.get().as<T>();
    } catch (const std::exception& e) {
      return error{errc::codec_error, std::string{"msgpack decode: "} + e.what()};
    }
  }
};

/// Raw bytes. decode() into warp::buffer shares L1's buffer; into std::string it copies
/// (a std::string owns its bytes; use warp::cache<warp::buffer> for the zero-copy path).
struct byte_codec {
  static result<std::string> encode(std::string_view bytes) { return std::string{bytes}; }
  static result<std::string> encode(const buffer& bytes) { return std::string{view(bytes)}; }
  template <class T>
  static result<T> decode(const buffer& bytes) {
    if constexpr (std::is_same_v<T, buffer>) {
      return bytes;
    } else {
      static_assert(std::is_same_v<T, std::string>, "byte_codec serves std::string and buffer");
      return std::string{view(bytes)};
    }
  }
};

/// The codec warp::cache<T> uses when none is named.
template <class T>
struct default_codec {
  using type = msgpack_codec<T>;
};
template <>
struct default_codec<std::string> {
  using type = byte_codec;
};
template <>
struct default_codec<buffer> {
  using type = byte_codec;
};
template <class T>
using default_codec_t = typename default_codec<T>::type;

namespace detail {
template <class Codec, class T>
result<T> decode_with(const buffer& bytes) {
  if constexpr (requires { Codec::template decode<T>(bytes); }) {
    return Codec::template decode<T>(bytes);
  } else {
    return Codec::decode(bytes);
  }
}
}  // namespace detail

}  // namespace warp
