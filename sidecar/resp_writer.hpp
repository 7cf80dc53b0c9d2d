// Reply encoder for RESP2 and RESP3. RESP3 types degrade to their RESP2 equivalents
// (map -> flat array, set/push -> array, null -> $-1 or *-1, double -> bulk, boolean ->
// integer, verbatim -> bulk) so command code writes each reply once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace warp::sidecar {

class resp_writer {
 public:
  explicit resp_writer(std::string& out, int protocol = 2) : out_(&out), proto_(protocol) {}

  int protocol() const noexcept { return proto_; }
  void set_protocol(int p) noexcept { proto_ = p; }
  std::string& buffer() noexcept { return *out_; }

  void simple(std::string_view s);  ///< +OK
  /// `-ERR ...`; `message` must start with the error code (ERR, WRONGPASS, ...).
  void error(std::string_view message);
  void integer(std::int64_t v);
  void bulk(std::string_view s);
  void null();        ///< a missing value: $-1 (RESP2) or _ (RESP3)
  void null_array();  ///< *-1 (RESP2) or _ (RESP3)
  void array(std::size_t n);
  void map(std::size_t pairs);  ///< RESP2: array of 2*pairs
  void set(std::size_t n);
  void push(std::size_t n);  ///< RESP3 out-of-band data; RESP2: array (pub/sub messages)
  void dbl(double v);
  void boolean(bool v);
  void verbatim(std::string_view text, std::string_view format = "txt");

  static constexpr std::string_view ok = "+OK\r\n";

 private:
  void header(char type, std::int64_t n);
  std::string* out_;
  int proto_;
};

}  // namespace warp::sidecar
