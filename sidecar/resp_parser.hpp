// Incremental RESP request parser: multibulk (`*N\r\n$L\r\n...`) and inline commands
// (`SET k v\r\n`, as telnet and redis-cli's raw mode send them).
//
// The parser keeps its progress between calls, so a frame split at any byte costs only the
// new bytes (a 512 MB bulk arriving in 64 KB reads is not re-scanned). Arguments are
// returned as offsets relative to the frame start: the caller may compact or reallocate
// its input buffer between calls as long as the bytes from the frame start on stay.
//
// Argument storage is the same for both kinds of frame: the caller's input buffer. A
// multibulk argument is a slice of it; an inline command is unescaped in place (quotes and
// escapes only ever shrink a token, so each one is rewritten inside the line it came from).
// So the views args() hands out stay valid exactly as long as the input bytes do, for
// every command of a pipeline at once: a caller may keep them across later parse() calls
// (the sidecar batches pipelined writes) until it drops those bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace warp::sidecar {

/// Where one argument lives: offset and length relative to the frame start.
struct arg_slice {
  std::size_t offset = 0;
  std::size_t length = 0;
};

struct parser_limits {
  std::size_t max_bulk_length = 512 * 1024 * 1024;
  std::size_t max_multibulk_length = 1024 * 1024;
  std::size_t max_inline_length = 64 * 1024;
  /// Limits of a connection that has not authenticated: errors say "unauthenticated".
  bool unauthenticated = false;
};

class resp_parser {
 public:
  enum class status : std::uint8_t {
    complete,    ///< one command parsed (args() holds it; may be empty: skip it)
    incomplete,  ///< need more bytes
    error,       ///< protocol error: reply error() and close the connection
  };

  explicit resp_parser(parser_limits limits = {}) : limits_(limits) {}

  /// Parses one command from `frame` (which starts at the first byte of the frame not yet
  /// consumed). On `complete`, `consumed` is the frame's length and args() its arguments;
  /// the next call starts a new frame. On `incomplete`, call again with the same frame
  /// start and more bytes. `hint_total()` then tells the total frame size when known.
  /// A complete inline command is rewritten in place within its first `consumed` bytes
  /// (they hold its unescaped arguments afterwards); nothing else is written.
  status parse(std::span<char> frame, std::size_t& consumed);

  /// Arguments of the last complete command as views into `frame` (the same bytes that
  /// were passed to parse(), possibly moved: offsets are relative to the frame start).
  void args(std::string_view frame, std::vector<std::string_view>& out) const;
  std::size_t arg_count() const noexcept { return args_.size(); }

  /// Redis's wording, e.g. "Protocol error: invalid bulk length" (without "-ERR ").
  const std::string& error() const noexcept { return error_; }

  /// Bytes the current frame needs at least (0 = unknown); lets the caller reserve
  /// capacity once for a large bulk instead of growing the buffer read by read.
  std::size_t hint_total() const noexcept { return hint_; }

  /// Stricter limits for connections that have not authenticated yet (Redis 7 does the
  /// same: a stranger cannot make the server allocate a 512 MB bulk).
  void set_limits(parser_limits limits) noexcept { limits_ = limits; }
  const parser_limits& limits() const noexcept { return limits_; }

  void reset() noexcept;

 private:
  status parse_inline(std::span<char> frame, std::size_t& consumed);
  status fail(std::string message);

  enum class kind : std::uint8_t { none, multibulk, inline_cmd };

  parser_limits limits_;
  kind kind_ = kind::none;
  std::size_t cursor_ = 0;       // bytes of the frame already parsed
  std::int64_t multibulk_ = -1;  // arguments still expected, -1 = header unread
  std::int64_t bulk_ = -1;       // length of the bulk being read, -1 = read its header
  std::size_t hint_ = 0;
  std::vector<arg_slice> args_;
  std::string error_;
};

/// Splits an inline command line exactly like Redis's sdssplitargs: arguments separated by
/// blanks, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single quotes' with
/// \' only; a NUL byte ends the line (sdssplitargs reads a C string). False on unbalanced
/// quotes or a closing quote followed by something else than a blank.
///
/// In place: each argument is unescaped into the bytes of `line` it came from (never past
/// them), and `out` receives where each one ended up.
bool split_inline_in_place(std::span<char> line, std::vector<arg_slice>& out);

/// The same, returning copies (for callers that keep their input).
bool split_inline_args(std::string_view line, std::vector<std::string>& out);

/// Redis's string2ll: an optional '-', digits, no '+', no spaces, no leading zeros, no
/// overflow. What "value is not an integer or out of range" checks.
bool parse_int64(std::string_view text, std::int64_t& out) noexcept;

}  // namespace warp::sidecar
