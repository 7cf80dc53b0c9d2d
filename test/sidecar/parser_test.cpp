// The RESP parser and writer on their own: split frames, limits, Redis's error wording.
#include <catch2/catch.hpp>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "sidecar/resp_parser.hpp"
#include "sidecar/resp_writer.hpp"

using warp::sidecar::parser_limits;
using warp::sidecar::resp_parser;
using warp::sidecar::resp_writer;

namespace {

struct parsed {
  std::vector<std::vector<std::string>> commands;
  std::string error;
};

// Feeds `input` in pieces of the given sizes (cyclic), the way a socket would deliver it,
// keeping the unconsumed tail like the server's input buffer does.
parsed feed(const std::string& input, std::vector<std::size_t> pieces, parser_limits limits = {}) {
  resp_parser p{limits};
  parsed out;
  std::string buf;
  std::size_t fed = 0, piece = 0, start = 0;
  std::vector<std::string_view> args;
  while (true) {
    std::size_t consumed = 0;
    auto st = p.parse(std::span<char>(buf).subspan(start), consumed);
    if (st == resp_parser::status::complete) {
      p.args(std::string_view(buf).substr(start), args);
      if (!args.empty()) out.commands.emplace_back(args.begin(), args.end());
      start += consumed;
      continue;
    }
    if (st == resp_parser::status::error) {
      out.error = p.error();
      return out;
    }
    if (fed >= input.size()) return out;
    // Drop consumed bytes now and then: offsets are relative to the frame start.
    if (start > 0 && piece % 3 == 0) {
      buf.erase(0, start);
      start = 0;
    }
    std::size_t n = std::min(pieces[piece++ % pieces.size()], input.size() - fed);
    buf.append(input, fed, n);
    fed += n;
  }
}

std::string multibulk(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

}  // namespace

TEST_CASE("a pipelined buffer parses the same at every split point", "[parser]") {
  std::string big(70000, 'x');
  std::string input = multibulk({"SET", "key", "va\r\nlue"}) + multibulk({"GET", "key"}) +
                      "PING\r\n" + multibulk({}) + "*-1\r\n" + "\r\n" +
                      "set \"a b\" 'c d' \"\\x41\\n\"\n" + multibulk({"SET", "big", big}) +
                      multibulk({"MGET", "", "k"});
  auto whole = feed(input, {input.size()});
  REQUIRE(whole.error.empty());
  REQUIRE(whole.commands.size() == 6);
  CHECK(whole.commands[0] == std::vector<std::string>{"SET", "key", "va\r\nlue"});
  CHECK(whole.commands[1] == std::vector<std::string>{"GET", "key"});
  CHECK(whole.commands[2] == std::vector<std::string>{"PING"});
  CHECK(whole.commands[3] == std::vector<std::string>{"set", "a b", "c d", "A\n"});
  CHECK(whole.commands[4][2].size() == big.size());
  CHECK(whole.commands[5] == std::vector<std::string>{"MGET", "", "k"});

  // Two pieces, split at every byte.
  for (std::size_t split = 1; split < input.size(); split += (split < 200 ? 1 : 997)) {
    auto r = feed(input, {split, input.size()});
    INFO("split at " << split);
    REQUIRE(r.error.empty());
    REQUIRE(r.commands == whole.commands);
  }
  // Byte by byte and odd sizes.
  for (std::size_t step : {1, 2, 3, 7, 13, 4096}) {
    auto r = feed(input, {step});
    INFO("step " << step);
    REQUIRE(r.commands == whole.commands);
  }
}

TEST_CASE("arguments of every command of a pipeline stay valid until the bytes go",
          "[parser][security]") {
  // The sidecar batches pipelined writes: it keeps the views of several commands while it
  // parses the next ones. Inline arguments must not live in storage the next command reuses.
  std::string buf = "SET a 1\r\n" + multibulk({"SET", "b", "2"}) +
                    "SET \"c\\x41\" 'long value that needs the heap, long long long'\r\n" +
                    "INCR c1\r\nMSET m1 x m2 y\r\n";
  resp_parser p;
  std::vector<std::vector<std::string_view>> kept;
  std::size_t start = 0;
  while (start < buf.size()) {
    std::size_t consumed = 0;
    REQUIRE(p.parse(std::span<char>(buf).subspan(start), consumed) ==
            resp_parser::status::complete);
    std::vector<std::string_view> args;
    p.args(std::string_view(buf).substr(start), args);
    kept.push_back(args);
    start += consumed;
  }
  using v = std::vector<std::string_view>;
  REQUIRE(kept.size() == 5);
  CHECK(kept[0] == v{"SET", "a", "1"});
  CHECK(kept[1] == v{"SET", "b", "2"});
  CHECK(kept[2] == v{"SET", "cA", "long value that needs the heap, long long long"});
  CHECK(kept[3] == v{"INCR", "c1"});
  CHECK(kept[4] == v{"MSET", "m1", "x", "m2", "y"});
  for (auto& cmd : kept)
    for (auto a : cmd) {
      CHECK(a.data() >= buf.data());
      CHECK(a.data() + a.size() <= buf.data() + buf.size());
    }
}

TEST_CASE("inline commands split like Redis's sdssplitargs", "[parser]") {
  auto split = [](std::string line) {
    std::vector<std::string> out;
    bool ok = warp::sidecar::split_inline_args(line, out);
    return ok ? out : std::vector<std::string>{"<unbalanced>"};
  };
  using v = std::vector<std::string>;
  CHECK(split("  set\ta  b ") == v{"set", "a", "b"});
  // \v and \f are blanks between arguments but part of an unquoted one.
  CHECK(split("\v\fset a\vb c") == v{"set", "a\vb", "c"});
  CHECK(split("set a\fb") == v{"set", "a\fb"});
  // \r ends an unquoted argument.
  CHECK(split("set a\rb") == v{"set", "a", "b"});
  // A NUL byte ends the line (sdssplitargs reads a C string).
  CHECK(split(std::string("set a\0b c", 9)) == v{"set", "a"});
  CHECK(split(std::string("set \"a\0b\"", 9)) == v{"<unbalanced>"});
  CHECK(split(std::string("set \"a\"\0junk\"", 13)) == v{"set", "a"});
  // Quotes: escapes, adjacency, what may follow the closing quote.
  CHECK(split("set x\"a b\" 'c\\'d' \"\\x4a\\x4G\\q\"") == v{"set", "xa b", "c'd", "Jx4Gq"});
  CHECK(split("set \"a\"\vb") == v{"set", "a", "b"});
  CHECK(split("set \"a\"b") == v{"<unbalanced>"});
  CHECK(split("set 'a'b") == v{"<unbalanced>"});
  CHECK(split("set \"a") == v{"<unbalanced>"});
  CHECK(split("set \"a\\") == v{"<unbalanced>"});
  CHECK(split("set '' \"\"") == v{"set", "", ""});
  CHECK(split("") == v{});
  CHECK(split(" \t ") == v{});
}

TEST_CASE("protocol errors use Redis's wording", "[parser]") {
  CHECK(feed("*abc\r\n", {100}).error == "Protocol error: invalid multibulk length");
  CHECK(feed("*2000000\r\n", {100}).error == "Protocol error: invalid multibulk length");
  CHECK(feed("*1\r\n$-5\r\n", {100}).error == "Protocol error: invalid bulk length");
  CHECK(feed("*1\r\n$999999999999\r\n", {100}).error == "Protocol error: invalid bulk length");
  CHECK(feed("*1\r\n$+5\r\nhello\r\n", {100}).error == "Protocol error: invalid bulk length");
  CHECK(feed("*1\r\nxyz\r\n", {100}).error == "Protocol error: expected '$', got 'x'");
  CHECK(feed("set a \"b\n", {100}).error == "Protocol error: unbalanced quotes in request");
  CHECK(feed("set a \"b\"c\n", {100}).error == "Protocol error: unbalanced quotes in request");
  CHECK(feed(std::string(70000, 'a'), {1000}).error == "Protocol error: too big inline request");
  CHECK(feed("*" + std::string(70000, '1'), {1000}).error ==
        "Protocol error: too big mbulk count string");
  CHECK(feed("*1\r\n$" + std::string(70000, '1'), {1000}).error ==
        "Protocol error: too big bulk count string");

  parser_limits small;
  small.max_bulk_length = 10;
  small.max_multibulk_length = 3;
  small.max_inline_length = 16;
  CHECK(feed(multibulk({"a", "b", "c", "d"}), {100}, small).error ==
        "Protocol error: invalid multibulk length");
  CHECK(feed(multibulk({"set", "k", "01234567890"}), {100}, small).error ==
        "Protocol error: invalid bulk length");
  CHECK(feed(multibulk({"set", "k", "0123456789"}), {100}, small).error.empty());
  CHECK(feed("set k 01234567890123\r\n", {100}, small).error ==
        "Protocol error: too big inline request");
  small.unauthenticated = true;
  CHECK(feed(multibulk({"set", "k", "01234567890"}), {100}, small).error ==
        "Protocol error: unauthenticated bulk length");
}

TEST_CASE("garbage never crashes the parser", "[parser]") {
  std::uint64_t seed = 42;
  auto next = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<unsigned>(seed >> 33);
  };
  const std::string alphabet = "*$\r\n0123456789-+ \"'\\xabc";
  for (int round = 0; round < 3000; ++round) {
    std::string input;
    std::size_t len = next() % 64;
    for (std::size_t i = 0; i < len; ++i)
      input.push_back(next() % 4 == 0 ? static_cast<char>(next())
                                      : alphabet[next() % alphabet.size()]);
    // Whatever the bytes, the parse must not depend on how the socket cut them: random
    // pieces give the same commands (or the same error) as the whole input at once, and
    // no argument carries more bytes than were sent.
    auto whole = feed(input, {std::max<std::size_t>(input.size(), 1)});
    auto pieces = feed(input, {1 + next() % 8, 1 + next() % 8});
    INFO("round " << round << ", input of " << input.size() << " bytes");
    CHECK(pieces.commands == whole.commands);
    CHECK(pieces.error == whole.error);
    std::size_t arg_bytes = 0;
    for (auto& cmd : whole.commands)
      for (auto& arg : cmd) arg_bytes += arg.size();
    CHECK(arg_bytes <= input.size());
  }
}

TEST_CASE("integers parse like Redis's string2ll", "[parser]") {
  std::int64_t v = 0;
  CHECK(warp::sidecar::parse_int64("0", v));
  CHECK(warp::sidecar::parse_int64("-9223372036854775808", v));
  CHECK(v == INT64_MIN);
  CHECK(warp::sidecar::parse_int64("9223372036854775807", v));
  CHECK_FALSE(warp::sidecar::parse_int64("9223372036854775808", v));
  CHECK_FALSE(warp::sidecar::parse_int64("01", v));
  CHECK_FALSE(warp::sidecar::parse_int64("-0", v));
  CHECK_FALSE(warp::sidecar::parse_int64("+1", v));
  CHECK_FALSE(warp::sidecar::parse_int64(" 1", v));
  CHECK_FALSE(warp::sidecar::parse_int64("", v));
  CHECK_FALSE(warp::sidecar::parse_int64("1.5", v));
}

TEST_CASE("the writer encodes RESP2 and RESP3", "[writer]") {
  std::string out;
  resp_writer w2{out, 2};
  w2.map(1);
  w2.bulk("a");
  w2.integer(-3);
  w2.null();
  w2.null_array();
  w2.boolean(true);
  w2.push(2);
  w2.set(0);
  w2.error("ERR bad\r\nthing");
  CHECK(out == "*2\r\n$1\r\na\r\n:-3\r\n$-1\r\n*-1\r\n:1\r\n*2\r\n*0\r\n-ERR bad  thing\r\n");
  out.clear();
  resp_writer w3{out, 3};
  w3.map(1);
  w3.null();
  w3.boolean(false);
  w3.push(2);
  w3.set(1);
  w3.dbl(1.5);
  w3.verbatim("hi");
  CHECK(out == "%1\r\n_\r\n#f\r\n>2\r\n~1\r\n,1.5\r\n=6\r\ntxt:hi\r\n");
}
