#include "sidecar/resp_parser.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace warp::sidecar {

bool parse_int64(std::string_view s, std::int64_t& out) noexcept {
  if (s.empty() || s.size() > 20) return false;
  std::size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    if (s.size() == 1) return false;
    i = 1;
  }
  if (s[i] == '0') {  // "0" only; "-0" and "01" are not canonical, Redis rejects them
    if (s.size() == 1) {
      out = 0;
      return true;
    }
    return false;
  }
  std::uint64_t v = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return false;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1) return false;
    out = static_cast<std::int64_t>(0 - v);
  } else {
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
    out = static_cast<std::int64_t>(v);
  }
  return true;
}

namespace {

// C's isspace() in the "C" locale, which sdssplitargs uses to skip blanks between
// arguments and to check what follows a closing quote.
bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool is_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

}  // namespace

bool split_inline_in_place(std::span<char> line, std::vector<arg_slice>& out) {
  // A port of sdssplitargs, so inline commands tokenize exactly like Redis. It reads a C
  // string: the line ends at the first NUL byte, and at(i) past the end reads as NUL, the
  // way *(p+1) reads the terminator there.
  char* const d = line.data();
  std::size_t n = line.size();
  if (const void* z = std::memchr(d, '\0', n))
    n = static_cast<std::size_t>(static_cast<const char*>(z) - d);
  auto at = [&](std::size_t i) noexcept { return i < n ? d[i] : '\0'; };
  std::size_t p = 0;
  for (;;) {
    while (p < n && is_blank(d[p])) ++p;
    if (p >= n) return true;
    // The token is written from where it starts: every byte written consumed at least one
    // byte read (quotes and escapes consume more), so the write cursor w never passes the
    // read cursor p and nothing unread is overwritten.
    const std::size_t start = p;
    std::size_t w = start;
    bool in_dq = false, in_sq = false, done = false;
    while (!done) {
      const char c = at(p);
      if (in_dq) {
        if (c == '\\' && at(p + 1) == 'x' && is_hex(at(p + 2)) && is_hex(at(p + 3))) {
          d[w++] = static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          char e = d[p];
          switch (e) {
            case 'n':
              e = '\n';
              break;
            case 'r':
              e = '\r';
              break;
            case 't':
              e = '\t';
              break;
            case 'b':
              e = '\b';
              break;
            case 'a':
              e = '\a';
              break;
            default:
              break;
          }
          d[w++] = e;
        } else if (c == '"') {
          // The closing quote must be followed by a blank or nothing.
          if (at(p + 1) != '\0' && !is_blank(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated quotes
        } else {
          d[w++] = c;
        }
      } else if (in_sq) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          d[w++] = '\'';
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !is_blank(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          d[w++] = c;
        }
      } else {
        // Unlike the skip above, only these end an unquoted token (\v and \f do not).
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            in_dq = true;
            break;
          case '\'':
            in_sq = true;
            break;
          default:
            d[w++] = c;
            break;
        }
      }
      if (at(p) != '\0') ++p;
    }
    out.push_back({start, w - start});
  }
}

bool split_inline_args(std::string_view line, std::vector<std::string>& out) {
  std::string copy(line);
  std::vector<arg_slice> slices;
  if (!split_inline_in_place(copy, slices)) return false;
  for (const auto& a : slices) out.emplace_back(copy, a.offset, a.length);
  return true;
}

void resp_parser::reset() noexcept {
  kind_ = kind::none;
  cursor_ = 0;
  multibulk_ = -1;
  bulk_ = -1;
  hint_ = 0;
}

resp_parser::status resp_parser::fail(std::string message) {
  error_ = "Protocol error: " + std::move(message);
  reset();
  return status::error;
}

resp_parser::status resp_parser::parse(std::span<char> input, std::size_t& consumed) {
  if (kind_ == kind::none) {
    args_.clear();
    if (input.empty()) return status::incomplete;
    kind_ = input[0] == '*' ? kind::multibulk : kind::inline_cmd;
    cursor_ = 0;
    multibulk_ = -1;
    bulk_ = -1;
    hint_ = 0;
  }
  if (kind_ == kind::inline_cmd) return parse_inline(input, consumed);

  // Multibulk frames are only read: their arguments are slices of the input as it is.
  const std::string_view frame(input.data(), input.size());
  const char* data = frame.data();
  const std::size_t size = frame.size();
  if (multibulk_ < 0) {
    const void* cr = std::memchr(data, '\r', size);
    if (!cr) {
      if (size > limits_.max_inline_length) return fail("too big mbulk count string");
      return status::incomplete;
    }
    std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(cr) - data);
    if (pos + 1 >= size) return status::incomplete;  // the '\n' has not arrived
    std::int64_t count = 0;
    bool ok = parse_int64(frame.substr(1, pos - 1), count);
    if (!ok || count > static_cast<std::int64_t>(limits_.max_multibulk_length)) {
      return fail(limits_.unauthenticated && ok ? "unauthenticated multibulk length"
                                                : "invalid multibulk length");
    }
    cursor_ = pos + 2;
    if (count <= 0) {  // "*0" and "*-1": an empty command, skipped by the caller
      consumed = cursor_;
      reset();
      return status::complete;
    }
    multibulk_ = count;
    args_.reserve(static_cast<std::size_t>(std::min<std::int64_t>(count, 1024)));
  }
  while (multibulk_ > 0) {
    if (bulk_ < 0) {
      if (cursor_ >= size) return status::incomplete;
      const void* cr = std::memchr(data + cursor_, '\r', size - cursor_);
      if (!cr) {
        if (size - cursor_ > limits_.max_inline_length) return fail("too big bulk count string");
        return status::incomplete;
      }
      std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(cr) - data);
      if (pos + 1 >= size) return status::incomplete;
      if (data[cursor_] != '$')
        return fail(std::string("expected '$', got '") + data[cursor_] + "'");
      std::int64_t len = 0;
      bool ok = parse_int64(frame.substr(cursor_ + 1, pos - cursor_ - 1), len);
      if (!ok || len < 0 || static_cast<std::uint64_t>(len) > limits_.max_bulk_length) {
        return fail(limits_.unauthenticated && ok && len >= 0 ? "unauthenticated bulk length"
                                                              : "invalid bulk length");
      }
      bulk_ = len;
      cursor_ = pos + 2;
      hint_ = cursor_ + static_cast<std::size_t>(len) + 2;
    }
    const std::size_t need = static_cast<std::size_t>(bulk_) + 2;
    if (size - cursor_ < need) return status::incomplete;
    // Like Redis, the two bytes after the data are taken as the CRLF without checking.
    args_.push_back({cursor_, static_cast<std::size_t>(bulk_)});
    cursor_ += need;
    bulk_ = -1;
    --multibulk_;
  }
  consumed = cursor_;
  reset();
  return status::complete;
}

resp_parser::status resp_parser::parse_inline(std::span<char> frame, std::size_t& consumed) {
  const void* nl = std::memchr(frame.data(), '\n', frame.size());
  if (!nl) {
    if (frame.size() > limits_.max_inline_length) return fail("too big inline request");
    return status::incomplete;
  }
  std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(nl) - frame.data());
  // Redis checks only while no newline has arrived; checking complete lines as well makes
  // the limit independent of how the bytes were split.
  if (pos > limits_.max_inline_length) return fail("too big inline request");
  std::size_t length = pos;
  if (length > 0 && frame[length - 1] == '\r') --length;
  // Unescaped into the line itself: the arguments live in the caller's buffer, like those
  // of a multibulk frame, and nothing here outlives this frame.
  if (!split_inline_in_place(frame.first(length), args_)) {
    args_.clear();
    return fail("unbalanced quotes in request");
  }
  consumed = pos + 1;
  reset();
  return status::complete;
}

void resp_parser::args(std::string_view frame, std::vector<std::string_view>& out) const {
  out.clear();
  for (const auto& a : args_) out.push_back(frame.substr(a.offset, a.length));
}

}  // namespace warp::sidecar
