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

bool is_space(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0';
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

bool split_inline_args(std::string_view line, std::vector<std::string>& out) {
  // A port of sdssplitargs, so inline commands tokenize exactly like Redis.
  std::size_t p = 0;
  const std::size_t n = line.size();
  for (;;) {
    while (p < n && is_space(line[p])) ++p;
    if (p >= n) return true;
    bool in_dq = false, in_sq = false, done = false;
    std::string current;
    while (!done) {
      if (in_dq) {
        if (p >= n) return false;
        char c = line[p];
        if (c == '\\' && p + 3 < n && line[p + 1] == 'x' && is_hex(line[p + 2]) &&
            is_hex(line[p + 3])) {
          current.push_back(
              static_cast<char>(hex_value(line[p + 2]) * 16 + hex_value(line[p + 3])));
          p += 3;
        } else if (c == '\\' && p + 1 < n) {
          ++p;
          switch (line[p]) {
            case 'n':
              current.push_back('\n');
              break;
            case 'r':
              current.push_back('\r');
              break;
            case 't':
              current.push_back('\t');
              break;
            case 'b':
              current.push_back('\b');
              break;
            case 'a':
              current.push_back('\a');
              break;
            default:
              current.push_back(line[p]);
              break;
          }
        } else if (c == '"') {
          // The closing quote must be followed by a space or nothing.
          if (p + 1 < n && !is_space(line[p + 1])) return false;
          done = true;
        } else {
          current.push_back(c);
        }
      } else if (in_sq) {
        if (p >= n) return false;
        char c = line[p];
        if (c == '\\' && p + 1 < n && line[p + 1] == '\'') {
          ++p;
          current.push_back('\'');
        } else if (c == '\'') {
          if (p + 1 < n && !is_space(line[p + 1])) return false;
          done = true;
        } else {
          current.push_back(c);
        }
      } else {
        if (p >= n) {
          done = true;
          break;
        }
        char c = line[p];
        if (is_space(c)) {
          done = true;
        } else if (c == '"') {
          in_dq = true;
        } else if (c == '\'') {
          in_sq = true;
        } else {
          current.push_back(c);
        }
      }
      if (p < n) ++p;
    }
    out.push_back(std::move(current));
  }
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

resp_parser::status resp_parser::parse(std::string_view frame, std::size_t& consumed) {
  if (kind_ == kind::none) {
    args_.clear();
    inline_args_.clear();
    if (frame.empty()) return status::incomplete;
    kind_ = frame[0] == '*' ? kind::multibulk : kind::inline_cmd;
    cursor_ = 0;
    multibulk_ = -1;
    bulk_ = -1;
    hint_ = 0;
  }
  if (kind_ == kind::inline_cmd) return parse_inline(frame, consumed);

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
      last_inline_ = false;
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
  last_inline_ = false;
  reset();
  return status::complete;
}

resp_parser::status resp_parser::parse_inline(std::string_view frame, std::size_t& consumed) {
  const void* nl = std::memchr(frame.data(), '\n', frame.size());
  if (!nl) {
    if (frame.size() > limits_.max_inline_length) return fail("too big inline request");
    return status::incomplete;
  }
  std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(nl) - frame.data());
  // Redis checks only while no newline has arrived; checking complete lines as well makes
  // the limit independent of how the bytes were split.
  if (pos > limits_.max_inline_length) return fail("too big inline request");
  std::string_view line = frame.substr(0, pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!split_inline_args(line, inline_args_)) {
    inline_args_.clear();
    return fail("unbalanced quotes in request");
  }
  consumed = pos + 1;
  last_inline_ = true;
  reset();
  return status::complete;
}

void resp_parser::args(std::string_view frame, std::vector<std::string_view>& out) const {
  out.clear();
  if (last_inline_) {
    for (const auto& a : inline_args_) out.emplace_back(a);
    return;
  }
  for (const auto& a : args_) out.push_back(frame.substr(a.offset, a.length));
}

}  // namespace warp::sidecar
