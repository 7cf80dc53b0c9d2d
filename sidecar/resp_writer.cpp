#include "sidecar/resp_writer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace warp::sidecar {

void resp_writer::header(char type, std::int64_t n) {
  char buf[24];
  buf[0] = type;
  auto [end, ec] = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n);
  (void)ec;
  *end++ = '\r';
  *end++ = '\n';
  out_->append(buf, static_cast<std::size_t>(end - buf));
}

void resp_writer::simple(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n", 2);
}

void resp_writer::error(std::string_view message) {
  out_->push_back('-');
  // CR/LF inside an error would break the framing: Redis replaces them with spaces.
  for (char c : message) out_->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out_->append("\r\n", 2);
}

void resp_writer::integer(std::int64_t v) {
  header(':', v);
}

void resp_writer::bulk(std::string_view s) {
  header('$', static_cast<std::int64_t>(s.size()));
  out_->append(s);
  out_->append("\r\n", 2);
}

void resp_writer::null() {
  if (proto_ >= 3)
    out_->append("_\r\n", 3);
  else
    out_->append("$-1\r\n", 5);
}

void resp_writer::null_array() {
  if (proto_ >= 3)
    out_->append("_\r\n", 3);
  else
    out_->append("*-1\r\n", 5);
}

void resp_writer::array(std::size_t n) {
  header('*', static_cast<std::int64_t>(n));
}

void resp_writer::map(std::size_t pairs) {
  if (proto_ >= 3)
    header('%', static_cast<std::int64_t>(pairs));
  else
    header('*', static_cast<std::int64_t>(pairs * 2));
}

void resp_writer::set(std::size_t n) {
  header(proto_ >= 3 ? '~' : '*', static_cast<std::int64_t>(n));
}

void resp_writer::push(std::size_t n) {
  header(proto_ >= 3 ? '>' : '*', static_cast<std::int64_t>(n));
}

void resp_writer::dbl(double v) {
  // Redis 7.0's "%.17g". std::to_chars with a precision is specified as printf's and avoids
  // glibc's multi-precision printf (half of ZRANGE ... WITHSCORES went there); an integral
  // score below 1e17 (the usual kind) prints as the integer it is, as %.17g does.
  char buf[64];
  char* end = buf;
  if (std::isinf(v)) {
    const std::string_view s = v > 0 ? "inf" : "-inf";
    end = std::copy(s.begin(), s.end(), buf);
  } else if (v == std::trunc(v) && std::fabs(v) < 1e17) {
    if (v == 0 && std::signbit(v)) *end++ = '-';
    end = std::to_chars(end, buf + sizeof(buf), static_cast<std::int64_t>(v)).ptr;
  } else {
    end = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 17).ptr;
  }
  const auto len = static_cast<std::size_t>(end - buf);
  if (proto_ >= 3) {
    out_->push_back(',');
    out_->append(buf, len);
    out_->append("\r\n", 2);
  } else {
    bulk(std::string_view(buf, len));
  }
}

void resp_writer::boolean(bool v) {
  if (proto_ >= 3)
    out_->append(v ? "#t\r\n" : "#f\r\n", 4);
  else
    integer(v ? 1 : 0);
}

void resp_writer::verbatim(std::string_view text, std::string_view format) {
  if (proto_ < 3) {
    bulk(text);
    return;
  }
  header('=', static_cast<std::int64_t>(text.size() + 4));
  out_->append(format.substr(0, 3));
  out_->push_back(':');
  out_->append(text);
  out_->append("\r\n", 2);
}

}  // namespace warp::sidecar
