#include "sidecar/resp_writer.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

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
  char buf[64];
  int len;
  if (std::isinf(v))
    len = std::snprintf(buf, sizeof(buf), "%s", v > 0 ? "inf" : "-inf");
  else
    len = std::snprintf(buf, sizeof(buf), "%.17g", v);
  if (proto_ >= 3) {
    out_->push_back(',');
    out_->append(buf, static_cast<std::size_t>(len));
    out_->append("\r\n", 2);
  } else {
    bulk(std::string_view(buf, static_cast<std::size_t>(len)));
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
